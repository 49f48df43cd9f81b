"""ProcessMedia: one Procedure task per request, one subtask per AnimatedGraphicTaskSet item.

Definitions and offsets are not checked here: like Tencent, a bad one fails its own subtask
(``InvalidInput.DefinitionNotExist`` / ``InvalidInput.InvalidTimeOffset``) and not the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from anigraph.context import Context
from anigraph.db.models import Dedupe, Task
from anigraph.domain.wire import new_task_id
from anigraph.services import media

DEDUPE_WINDOWS = {
    "ProcessMedia": timedelta(days=3),
    "PullUpload": timedelta(days=3),
    "ProcessMediaByProcedure": timedelta(days=7),
}


class DuplicateSession(RuntimeError):
    """The SessionId was used within the dedupe window; the request is refused."""


class FileNotFound(LookupError):
    pass


@dataclass(frozen=True)
class TaskRequest:
    file_id: str
    items: list[dict[str, Any]]  # AnimatedGraphicTaskInput: Definition, Start/EndTimeOffset
    priority: int = 0
    notify_mode: str = "Finish"
    session_context: str = ""
    session_id: str = ""
    url: str = ""  # ProcessMedia with Url: fetched into a new media item before processing


def new_subtask(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "AnimatedGraphics",
        "AnimatedGraphicTask": {
            "Status": "PROCESSING",
            "ErrCodeExt": "",
            "ErrCode": 0,
            "Message": "",
            "Input": {
                "Definition": item["Definition"],
                "StartTimeOffset": float(item.get("StartTimeOffset", 0.0)),
                "EndTimeOffset": float(item.get("EndTimeOffset", 0.0)),
            },
            "Output": None,
            "Progress": 0,
            "BeginProcessTime": "",
            "FinishTime": "",
        },
        "_attempts": 0,
    }


def claim_session_id(
    session: Session, ctx: Context, sub_app_id: int, action: str, session_id: str, task_id: str
) -> None:
    """Record a SessionId inside the caller's transaction; a live duplicate raises.

    The unique index on (sub_app, action, SessionId) is what makes two concurrent requests with
    one SessionId create one task: the second insert fails, whatever the timing.
    """
    now = ctx.now()
    session.execute(
        delete(Dedupe).where(
            Dedupe.sub_app_id == sub_app_id,
            Dedupe.action == action,
            Dedupe.session_id == session_id,
            Dedupe.created_at < now - DEDUPE_WINDOWS[action],
        )
    )
    try:
        with session.begin_nested():
            session.add(
                Dedupe(
                    sub_app_id=sub_app_id,
                    action=action,
                    session_id=session_id,
                    task_id=task_id,
                    created_at=now,
                )
            )
    except IntegrityError:
        raise DuplicateSession(session_id) from None


def waiting_task(
    ctx: Context,
    task_id: str,
    sub_app_id: int,
    *,
    task_type: str,
    file_id: str,
    priority: int,
    notify_mode: str,
    session_context: str,
    session_id: str,
    subtasks: list[dict[str, Any]],
    payload: dict[str, Any] | None,
) -> Task:
    """A new task row, WAITING, with no lease and no attempt yet."""
    return Task(
        task_id=task_id,
        sub_app_id=sub_app_id,
        task_type=task_type,
        status="WAITING",
        file_id=file_id,
        priority=priority,
        notify_mode=notify_mode,
        session_context=session_context,
        session_id=session_id,
        subtasks=subtasks,
        payload=payload,
        progress=0,
        created_at=ctx.now(),
        begin_at=None,
        finish_at=None,
        lease_owner=None,
        lease_expires_at=None,
        attempt=0,
        not_before=None,
    )


def insert_task(
    session: Session,
    ctx: Context,
    sub_app_id: int,
    request: TaskRequest,
    action: str = "ProcessMedia",
) -> str:
    """Add a WAITING Procedure task in the caller's transaction; returns its TaskId.

    The caller commits, then calls ``ctx.wake_workers()``. Raises :class:`FileNotFound` and
    :class:`DuplicateSession`.
    """
    task_id = new_task_id(sub_app_id)
    if not request.url and media.get(session, sub_app_id, request.file_id) is None:
        raise FileNotFound(request.file_id)
    if request.session_id:
        claim_session_id(session, ctx, sub_app_id, action, request.session_id, task_id)
    session.add(
        waiting_task(
            ctx,
            task_id,
            sub_app_id,
            task_type="Procedure",
            file_id=request.file_id,
            priority=request.priority,
            notify_mode=request.notify_mode,
            session_context=request.session_context,
            session_id=request.session_id,
            subtasks=[new_subtask(item) for item in request.items],
            payload={"Url": request.url} if request.url else None,
        )
    )
    return task_id


def create_task(
    ctx: Context, sub_app_id: int, request: TaskRequest, action: str = "ProcessMedia"
) -> str:
    with ctx.db.session() as session:
        task_id = insert_task(session, ctx, sub_app_id, request, action)
    ctx.wake_workers()
    return task_id
