"""ProcedureStateChanged (spec 5.2, 5.4): written by hooks inside the task's own transactions.

The leases (``anigraph.jobs.leases``) know nothing of events; they run hooks in the transaction
that records a subtask or finishes a task. These hooks, installed at start-up by the composition
root (``anigraph.server.start_notifications``), write the event into the outbox
(``anigraph.notify.outbox``) there, so an event exists exactly when the state change it reports
was committed:

- ``Finish`` (the default; ``""`` counts as it): one event when the task is FINISH.
- ``Change``: one event each time a subtask changes state, ``Status: PROCESSING``, and for the
  change that ends the last subtask the FINISH event only (it follows in the finish
  transaction), so a task with n subtasks makes n events and the last one says FINISH.
- ``None``: never.

Only Procedure tasks report this event; a PullUpload task reports PullComplete itself.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from anigraph.context import Context
from anigraph.db.models import Media, Task
from anigraph.jobs import leases
from anigraph.notify.outbox import emit, wanted
from anigraph.services.tasks import procedure_task

EVENT_TYPE = "ProcedureStateChanged"
FINISH_MODES = frozenset({"Finish", "Change", ""})


def _emit_state(ctx: Context, session: Session, task: Task) -> None:
    if not wanted(session, task.sub_app_id, EVENT_TYPE):
        return  # no event configured (the default): no media lookup, no payload to render
    source = session.get(Media, task.file_id) if task.file_id else None
    emit(session, ctx, task.sub_app_id, EVENT_TYPE, procedure_task(ctx, task, source))


def on_finish(ctx: Context, session: Session, task: Task) -> None:
    """The task is FINISH (in this transaction): report it unless its mode is ``None``."""
    if task.task_type == "Procedure" and task.notify_mode in FINISH_MODES:
        _emit_state(ctx, session, task)


def on_subtask_change(ctx: Context, session: Session, task: Task, index: int) -> None:
    """Subtask ``index`` changed state (in this transaction): report it in ``Change`` mode."""
    if task.task_type != "Procedure" or task.notify_mode != "Change":
        return
    if all(leases.subtask_ended(entry) for entry in task.subtasks):
        return  # the finish transaction reports this change, as FINISH
    _emit_state(ctx, session, task)


class _Installed:
    """The hooks currently registered, so installing again replaces instead of doubling."""

    finish: Callable[[Session, Task], None] | None = None
    subtask: Callable[[Session, Task, int], None] | None = None


def uninstall_hooks() -> None:
    """Remove the hooks :func:`install_hooks` registered (tests; a context being closed)."""
    if _Installed.finish in leases.on_finish:
        leases.on_finish.remove(_Installed.finish)
    if _Installed.subtask in leases.on_subtask_change:
        leases.on_subtask_change.remove(_Installed.subtask)
    _Installed.finish = None
    _Installed.subtask = None


def install_hooks(ctx: Context) -> Callable[[], None]:
    """Register the hooks with the worker layer, bound to ``ctx`` (its clock, its URLs).

    Every process that finishes tasks (the server with in-process workers, a worker process)
    calls this once at start-up. Calling it again re-binds the hooks to the new context rather
    than adding a second set. Returns a function that removes them.
    """
    uninstall_hooks()

    def finish_hook(session: Session, task: Task) -> None:
        on_finish(ctx, session, task)

    def subtask_hook(session: Session, task: Task, index: int) -> None:
        on_subtask_change(ctx, session, task, index)

    _Installed.finish = finish_hook
    _Installed.subtask = subtask_hook
    leases.on_finish.append(finish_hook)
    leases.on_subtask_change.append(subtask_hook)
    return uninstall_hooks
