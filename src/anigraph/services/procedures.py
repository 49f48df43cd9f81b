"""Task-flow (procedure) templates per sub-application, and starting a flow on a media item.

A flow stores the AnimatedGraphicTaskSet to run; starting it snapshots those items into a new
Procedure task (``processing.insert_task``), so resetting or deleting the flow later never
changes a task already started. Definitions and offsets inside a flow are not checked here, for
the same reason ProcessMedia does not check them: a template may be created or deleted after the
flow, and Tencent reports a bad one as a failed subtask at run time, not as an API error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from anigraph.context import Context
from anigraph.db.models import SubApp
from anigraph.db.models_procedures import ProcedureTemplate
from anigraph.services import processing

MAX_PROCEDURES: Final = 50
"""Custom task flows per sub-application (spec 7.5)."""

NAME_MAX: Final = 20
COMMENT_MAX: Final = 256


class ProcedureNotFound(LookupError):
    """No flow of that name in this sub-application."""


class ProcedureExists(ValueError):
    """The sub-application already has a flow of that name."""


class TooManyProcedures(RuntimeError):
    """The sub-application already has ``MAX_PROCEDURES`` flows."""


@dataclass(frozen=True)
class ProcedureSpec:
    """A stored flow as the API describes it; ``items`` are normalised AnimatedGraphicTaskInputs."""

    name: str
    type: str
    comment: str
    items: list[dict[str, Any]]
    create_time: datetime
    update_time: datetime


def normalise_items(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """AnimatedGraphicTaskInputs with every member present and typed, as a run will echo them."""
    return [
        {
            "Definition": int(item["Definition"]),
            "StartTimeOffset": float(item.get("StartTimeOffset") or 0.0),
            "EndTimeOffset": float(item.get("EndTimeOffset") or 0.0),
        }
        for item in items
    ]


def _spec(row: ProcedureTemplate) -> ProcedureSpec:
    items = list(row.media_process_task.get("AnimatedGraphicTaskSet") or [])
    return ProcedureSpec(
        name=row.name,
        type=row.type,
        comment=row.comment,
        items=normalise_items(items),
        create_time=row.created_at,
        update_time=row.updated_at,
    )


def _row(session: Session, sub_app_id: int, name: str) -> ProcedureTemplate | None:
    return session.scalars(
        select(ProcedureTemplate).where(
            ProcedureTemplate.sub_app_id == sub_app_id, ProcedureTemplate.name == name
        )
    ).first()


def find(session: Session, sub_app_id: int, name: str) -> ProcedureSpec | None:
    """The flow ``name`` of this sub-application only, read in the caller's transaction."""
    row = _row(session, sub_app_id, name)
    return None if row is None else _spec(row)


def create(
    ctx: Context, sub_app_id: int, name: str, comment: str, items: Sequence[dict[str, Any]]
) -> None:
    """Store a new flow. Raises :class:`ProcedureExists` and :class:`TooManyProcedures`.

    The sub-application row is locked first (``FOR UPDATE`` on PostgreSQL; SQLite transactions
    already start with ``BEGIN IMMEDIATE``) so that concurrent creates can neither both pass the
    count check nor both take one name; the unique key is the last line of defence.
    """
    now = ctx.now()
    with ctx.db.session() as session:
        session.execute(select(SubApp.id).where(SubApp.id == sub_app_id).with_for_update())
        if _row(session, sub_app_id, name) is not None:
            raise ProcedureExists(name)
        count = session.scalar(
            select(func.count())
            .select_from(ProcedureTemplate)
            .where(ProcedureTemplate.sub_app_id == sub_app_id)
        )
        if (count or 0) >= MAX_PROCEDURES:
            raise TooManyProcedures(MAX_PROCEDURES)
        try:
            with session.begin_nested():
                session.add(
                    ProcedureTemplate(
                        sub_app_id=sub_app_id,
                        name=name,
                        type="Custom",
                        comment=comment,
                        media_process_task={"AnimatedGraphicTaskSet": normalise_items(items)},
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            raise ProcedureExists(name) from None


def reset(
    ctx: Context, sub_app_id: int, name: str, comment: str, items: Sequence[dict[str, Any]]
) -> None:
    """Replace the whole content of a flow, as if it were created anew (CreateTime is kept).

    "Reset" is a full replacement: a member the request leaves out is cleared, not kept (spec
    open question 5, settled this way so the stored flow is exactly what the last call said).
    Raises :class:`ProcedureNotFound`.
    """
    with ctx.db.session() as session:
        row = _row(session, sub_app_id, name)
        if row is None:
            raise ProcedureNotFound(name)
        row.comment = comment
        row.media_process_task = {"AnimatedGraphicTaskSet": normalise_items(items)}
        row.updated_at = ctx.now()


def delete(ctx: Context, sub_app_id: int, name: str) -> None:
    """Remove a flow; tasks it already started are unaffected. Raises :class:`ProcedureNotFound`."""
    with ctx.db.session() as session:
        row = _row(session, sub_app_id, name)
        if row is None:
            raise ProcedureNotFound(name)
        session.delete(row)


def describe(
    ctx: Context,
    sub_app_id: int,
    names: Sequence[str] | None,
    kind: str | None,
    offset: int,
    limit: int,
    *,
    newest_first: bool = False,
) -> tuple[int, list[ProcedureSpec]]:
    """(TotalCount, one page) of this sub-application's flows, by creation time.

    There are no preset flows, so ``kind == "Preset"`` matches nothing. An empty ``names`` list
    means no name filter, as an absent one does.
    """
    if kind == "Preset":
        return 0, []
    conditions = [ProcedureTemplate.sub_app_id == sub_app_id]
    if names:
        conditions.append(ProcedureTemplate.name.in_(set(names)))
    order = (
        (ProcedureTemplate.created_at.desc(), ProcedureTemplate.id.desc())
        if newest_first
        else (ProcedureTemplate.created_at.asc(), ProcedureTemplate.id.asc())
    )
    with ctx.db.session() as session:
        total = session.scalar(
            select(func.count()).select_from(ProcedureTemplate).where(*conditions)
        )
        rows = session.scalars(
            select(ProcedureTemplate)
            .where(*conditions)
            .order_by(*order)
            .offset(offset)
            .limit(limit)
        )
        return total or 0, [_spec(row) for row in rows]


def start_procedure(
    session: Session,
    ctx: Context,
    sub_app_id: int,
    name: str,
    file_id: str,
    *,
    priority: int = 0,
    notify_mode: str = "Finish",
    session_context: str = "",
    session_id: str = "",
    action: str = "ProcessMediaByProcedure",
) -> str:
    """Start the flow ``name`` on ``file_id`` in the caller's transaction; returns the TaskId.

    Used by ProcessMediaByProcedure and by the upload paths, which create the media item and
    start its flow in one transaction so that neither exists without the other. The caller
    commits, then calls ``ctx.wake_workers()``.

    A non-empty ``session_id`` is claimed for dedupe under ``action`` (which must be a key of
    ``processing.DEDUPE_WINDOWS``). Raises :class:`ProcedureNotFound`, and from
    ``processing.insert_task`` :class:`processing.FileNotFound` and
    :class:`processing.DuplicateSession`.
    """
    flow = find(session, sub_app_id, name)
    if flow is None:
        raise ProcedureNotFound(name)
    request = processing.TaskRequest(
        file_id=file_id,
        items=flow.items,
        priority=priority,
        notify_mode=notify_mode or "Finish",
        session_context=session_context,
        session_id=session_id,
    )
    return processing.insert_task(session, ctx, sub_app_id, request, action)


def run_procedure(
    ctx: Context,
    sub_app_id: int,
    name: str,
    file_id: str,
    *,
    priority: int = 0,
    notify_mode: str = "Finish",
    session_context: str = "",
    session_id: str = "",
) -> str:
    """ProcessMediaByProcedure: :func:`start_procedure` in a transaction of its own, then wake
    the workers once the task is committed (a worker woken earlier could not see it)."""
    with ctx.db.session() as session:
        task_id = start_procedure(
            session,
            ctx,
            sub_app_id,
            name,
            file_id,
            priority=priority,
            notify_mode=notify_mode,
            session_context=session_context,
            session_id=session_id,
        )
    ctx.wake_workers()
    return task_id
