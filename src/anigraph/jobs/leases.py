"""Leases on task rows: claim, heartbeat, fenced writes, finish, retry, release, reap.

The row is the truth. A worker owns a PROCESSING task while ``lease_owner`` is its id; the lease
(``lease_expires_at``) only says how long others must wait before taking the task over. Every
write a worker makes checks, in the same transaction, that it is still the owner and that the
task is still PROCESSING; a worker whose lease was taken over gets ``False`` and must stop.

Owner ids must be unique per claim (the pool mints a fresh one each time): the owner then is a
fencing token by itself, so a worker that stalled, lost its task and claimed the same task again
later cannot be confused with its former self.

Claims are race-free: on SQLite every session starts with ``BEGIN IMMEDIATE`` (one writer at a
time, so the ``SELECT`` and the ``UPDATE`` of a claim cannot interleave with another claim); on
other databases the candidate row is locked with ``FOR UPDATE SKIP LOCKED`` so concurrent
claimers take different rows instead of queueing behind each other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from anigraph.context import Context
from anigraph.db.models import Media, MediaOutput, Task
from anigraph.metrics import Metrics

log = logging.getLogger(__name__)

WAITING: Final = "WAITING"
PROCESSING: Final = "PROCESSING"
FINISH: Final = "FINISH"
ABORTED: Final = "ABORTED"
STATUSES: Final = (WAITING, PROCESSING, FINISH, ABORTED)

# Subtask states (MediaProcessTaskResult ``AnimatedGraphicTask.Status``).
SUB_PROCESSING: Final = "PROCESSING"
SUB_SUCCESS: Final = "SUCCESS"
SUB_FAIL: Final = "FAIL"

PENDING_KEY: Final = "_pending_key"
"""Member of a subtask entry (an output) or of a task's payload (a fetched source): the store
key the worker will write its object under, recorded (fenced) before it stores anything, so
that whoever takes the work over can delete an object its predecessor stored but never got to
record. Removed once the object is recorded."""

FinishHook = Callable[[Session, Task], None]

on_finish: list[FinishHook] = []
"""Called as ``hook(session, task)`` inside the transaction that marks a task FINISH.

The task row already carries its final state. A hook writes what must commit together with that
state (the outbox event); if it raises, the finish is rolled back and the task stays owned, to be
finished again by whoever holds it next.
"""

SubtaskHook = Callable[[Session, Task, int], None]

on_subtask_change: list[SubtaskHook] = []
"""Called as ``hook(session, task, index)`` inside :func:`record_subtask`'s transaction when
subtask ``index`` changes ``Status`` (progress-only writes do not call it).

The task row already carries the new subtask list. As with :data:`on_finish`, what the hook
writes commits with the change, and if it raises the change is rolled back.
"""


def subtask_result(entry: dict[str, Any]) -> dict[str, Any]:
    """The ``AnimatedGraphicTask`` member of a subtask entry (the part that changes)."""
    result: dict[str, Any] = entry["AnimatedGraphicTask"]
    return result


def subtask_ended(entry: dict[str, Any]) -> bool:
    return subtask_result(entry).get("Status") in (SUB_SUCCESS, SUB_FAIL)


def task_progress(subtasks: list[Any]) -> int:
    """Mean of the subtasks' progress, an ended subtask counting as 100."""
    if not subtasks:
        return 100
    total = 0
    for entry in subtasks:
        if subtask_ended(entry):
            total += 100
        else:
            total += int(subtask_result(entry).get("Progress") or 0)
    return min(100, total // len(subtasks))


def owned(ctx: Context, session: Session, task_id: str, owner: str) -> Task | None:
    """The task row if ``owner`` still holds it (PROCESSING, lease not taken over), else None."""
    return _owned(ctx, session, task_id, owner)


def _owned(ctx: Context, session: Session, task_id: str, owner: str) -> Task | None:
    """The task if ``owner`` holds it and it is still PROCESSING; locked for the transaction."""
    stmt = select(Task).where(
        Task.task_id == task_id, Task.lease_owner == owner, Task.status == PROCESSING
    )
    if not ctx.db.is_sqlite:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def _set_subtasks(task: Task, subtasks: list[Any]) -> None:
    # JSON columns do not track in-place changes: assign and flag explicitly.
    task.subtasks = subtasks
    flag_modified(task, "subtasks")


def _count_lost_attempt(task: Task) -> None:
    """Charge the subtask that was running when a lease expired with one attempt.

    Subtasks run one after the other, so the first unfinished one that has begun is the one the
    lost worker was working on. Counting it makes a file that kills the whole worker every time
    end FAIL after ``max_attempts`` (the runner checks) instead of looping forever.
    """
    subtasks = [dict(entry) for entry in task.subtasks]
    for entry in subtasks:
        result = subtask_result(entry)
        if result.get("Status") == SUB_PROCESSING and result.get("BeginProcessTime"):
            entry["_attempts"] = int(entry.get("_attempts") or 0) + 1
            _set_subtasks(task, subtasks)
            return


def claim_next(ctx: Context, owner: str, metrics: Metrics | None = None) -> str | None:
    """Claim the next task for ``owner``; its id, or ``None`` when nothing is claimable.

    Claimable: a WAITING task whose ``not_before`` is unset or past, or a PROCESSING task whose
    lease expired (its owner died or stalled: this claim is how expired leases are reaped in the
    embedded setup). Highest priority first, then oldest.
    """
    now = ctx.now()
    with ctx.db.session() as session:
        stmt = (
            select(Task)
            .where(
                or_(
                    and_(
                        Task.status == WAITING,
                        or_(Task.not_before.is_(None), Task.not_before <= now),
                    ),
                    and_(Task.status == PROCESSING, Task.lease_expires_at < now),
                )
            )
            .order_by(Task.priority.desc(), Task.created_at.asc(), Task.task_id.asc())
            .limit(1)
        )
        if not ctx.db.is_sqlite:
            stmt = stmt.with_for_update(skip_locked=True)
        task = session.scalars(stmt).first()
        if task is None:
            return None
        if task.status == PROCESSING:
            log.warning(
                "reclaiming task %s: lease of %s expired at %s",
                task.task_id,
                task.lease_owner,
                task.lease_expires_at,
            )
            _count_lost_attempt(task)
            if metrics is not None:
                metrics.lease_reclaims.inc()
        task.status = PROCESSING
        task.lease_owner = owner
        task.lease_expires_at = now + timedelta(seconds=ctx.settings.lease_seconds)
        task.attempt += 1
        task.not_before = None
        if task.begin_at is None:
            task.begin_at = now
        return task.task_id


def heartbeat(ctx: Context, task_id: str, owner: str) -> bool:
    """Extend the lease by ``lease_seconds`` from now; ``False`` if ``owner`` lost the task."""
    with ctx.db.session() as session:
        task = _owned(ctx, session, task_id, owner)
        if task is None:
            return False
        task.lease_expires_at = ctx.now() + timedelta(seconds=ctx.settings.lease_seconds)
        return True


class MediaGone(LookupError):
    """The media item an output belongs to was deleted while the subtask ran."""


def record_subtask(
    ctx: Context,
    task_id: str,
    owner: str,
    index: int,
    result: dict[str, Any],
    output_row: MediaOutput | None = None,
) -> bool:
    """Replace subtask ``index`` with ``result`` (a whole entry) if ``owner`` holds the task.

    ``output_row`` (a new, unsaved ``MediaOutput``) is inserted in the same
    transaction, so an output exists exactly when its subtask says SUCCESS. The task's progress
    is recomputed from the subtasks. Raises :class:`MediaGone` (and writes nothing) if the
    output's media item no longer exists.
    """
    with ctx.db.session() as session:
        task = _owned(ctx, session, task_id, owner)
        if task is None:
            return False
        subtasks = list(task.subtasks)
        if not 0 <= index < len(subtasks):
            raise IndexError(f"task {task_id} has no subtask {index}")
        changed = subtask_result(subtasks[index]).get("Status") != subtask_result(result).get(
            "Status"
        )
        subtasks[index] = result
        _set_subtasks(task, subtasks)
        task.progress = task_progress(subtasks)
        if output_row is not None:
            if session.get(Media, output_row.file_id) is None:
                raise MediaGone(output_row.file_id)
            session.add(output_row)
        if changed:
            session.flush()
            for hook in list(on_subtask_change):
                hook(session, task, index)
        return True


def record_pending_key(ctx: Context, task_id: str, owner: str, key: str) -> bool:
    """Note ``key`` as the task payload's :data:`PENDING_KEY` if ``owner`` holds the task."""
    with ctx.db.session() as session:
        task = _owned(ctx, session, task_id, owner)
        if task is None:
            return False
        task.payload = {**(task.payload or {}), PENDING_KEY: key}
        flag_modified(task, "payload")
        return True


def without_pending_key(payload: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of a task payload without its :data:`PENDING_KEY` (the object is recorded)."""
    return {name: value for name, value in (payload or {}).items() if name != PENDING_KEY}


def finish(ctx: Context, task_id: str, owner: str) -> bool:
    """PROCESSING → FINISH if ``owner`` holds the task; runs the :data:`on_finish` hooks.

    Every subtask must have ended (SUCCESS or FAIL): a task is FINISH only when all its work is.
    """
    with ctx.db.session() as session:
        task = _owned(ctx, session, task_id, owner)
        if task is None:
            return False
        pending = [i for i, entry in enumerate(task.subtasks) if not subtask_ended(entry)]
        if pending:
            raise ValueError(f"task {task_id}: subtasks {pending} have not ended")
        task.status = FINISH
        task.finish_at = ctx.now()
        task.progress = 100
        task.lease_owner = None
        task.lease_expires_at = None
        task.not_before = None
        session.flush()
        for hook in list(on_finish):
            hook(session, task)
        return True


def retry_later(ctx: Context, task_id: str, owner: str, delay: float) -> bool:
    """Hand the task back as WAITING, claimable again ``delay`` seconds from now."""
    with ctx.db.session() as session:
        task = _owned(ctx, session, task_id, owner)
        if task is None:
            return False
        task.status = WAITING
        task.not_before = ctx.now() + timedelta(seconds=max(0.0, delay))
        task.lease_owner = None
        task.lease_expires_at = None
        return True


def release(ctx: Context, task_id: str, owner: str) -> bool:
    """Hand the task back as WAITING, claimable at once (a worker shutting down).

    No attempt is charged: the work was interrupted on purpose, not by the input.
    """
    return retry_later(ctx, task_id, owner, 0.0)


def reap_expired(ctx: Context, metrics: Metrics | None = None) -> list[str]:
    """Return every PROCESSING task whose lease expired to WAITING; their ids.

    The in-process pool does not need this (its claim takes expired tasks directly); a queue
    transport calls it periodically and re-enqueues the ids, so a task whose worker died is not
    left waiting for a message that will never come.
    """
    now = ctx.now()
    reaped: list[str] = []
    with ctx.db.session() as session:
        stmt = select(Task).where(Task.status == PROCESSING, Task.lease_expires_at < now)
        if not ctx.db.is_sqlite:
            stmt = stmt.with_for_update(skip_locked=True)
        for task in session.scalars(stmt):
            log.warning("reaping task %s: lease of %s expired", task.task_id, task.lease_owner)
            _count_lost_attempt(task)
            task.status = WAITING
            task.lease_owner = None
            task.lease_expires_at = None
            task.not_before = None
            reaped.append(task.task_id)
            if metrics is not None:
                metrics.lease_reclaims.inc()
    return reaped


def counts(ctx: Context) -> dict[str, int]:
    """Number of tasks by status (every status present, zero when none)."""
    with ctx.db.session() as session:
        rows = session.execute(select(Task.status, func.count()).group_by(Task.status)).all()
    result = dict.fromkeys(STATUSES, 0)
    for status, count in rows:
        result[str(status)] = int(count)
    return result
