"""Task query and management: DescribeTaskDetail, DescribeTasks, ManageTask (spec 2.4)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update

from anigraph.context import URL_KEYS, Context
from anigraph.db.models import Media, Task
from anigraph.domain.wire import iso, parse_iso, wire_time

VISIBILITY = timedelta(days=3)


class TaskNotFound(LookupError):
    pass


class NotWaiting(RuntimeError):
    pass


class BadScrollToken(ValueError):
    pass


OUTPUT_KEY = "_output_key"
"""Hidden member of a stored subtask: the store key of its output (set when it succeeds)."""


def public_subtask(subtask: dict[str, Any]) -> dict[str, Any]:
    """A stored subtask as MediaProcessTaskResult: internal keys dropped, other members null.

    The output's ``Url`` is marked with its key (``URL_KEYS``) for ``Context.render_urls``.
    Times not reached yet are stored as ``""`` (the workers test them for emptiness) and
    answered as Tencent does (``wire_time``).
    """
    result = {key: value for key, value in subtask.items() if not key.startswith("_")}
    key = subtask.get(OUTPUT_KEY)
    graphic = result.get("AnimatedGraphicTask")
    if isinstance(graphic, dict):
        graphic = {
            **graphic,
            "BeginProcessTime": wire_time(graphic.get("BeginProcessTime") or ""),
            "FinishTime": wire_time(graphic.get("FinishTime") or ""),
        }
        if key and isinstance(graphic.get("Output"), dict):
            graphic["Output"] = {**graphic["Output"], URL_KEYS: {"Url": key}}
        result["AnimatedGraphicTask"] = graphic
    for member in (
        "TranscodeTask",
        "SnapshotByTimeOffsetTask",
        "SampleSnapshotTask",
        "ImageSpriteTask",
        "CoverBySnapshotTask",
        "AdaptiveDynamicStreamingTask",
    ):
        result.setdefault(member, None)
    return result


def procedure_status(status: str) -> str:
    # ProcedureTask knows only PROCESSING and FINISH (spec 7.1).
    return "FINISH" if status in ("FINISH", "ABORTED") else "PROCESSING"


def procedure_task(ctx: Context, task: Task, source: Media | None) -> dict[str, Any]:
    """ProcedureTask (spec 3.7): also the payload of ProcedureStateChanged events.

    Links are marked, not final: pass the result through ``ctx.render_urls`` to answer it.
    """
    return {
        "TaskId": task.task_id,
        "Status": procedure_status(task.status),
        "ErrCode": 0,
        "Message": "",
        "FileId": task.file_id,
        "FileName": source.name if source else "",
        **ctx.linked(FileUrl=source.store_key if source else None),
        "MetaData": source.meta_data if source else None,
        "MediaProcessResultSet": [public_subtask(s) for s in task.subtasks],
        "AiContentReviewResultSet": [],
        "AiAnalysisResultSet": [],
        "AiRecognitionResultSet": [],
        "TasksPriority": task.priority,
        "TasksNotifyMode": task.notify_mode,
        "SessionContext": task.session_context,
        "SessionId": task.session_id,
        "Operator": "",
        "OperationType": "",
    }


def pull_upload_task(task: Task) -> dict[str, Any]:
    """PullUploadTask (spec 3.12) as the worker last wrote it (links marked, not final)."""
    result = dict((task.payload or {}).get("Result") or {})
    result["TaskId"] = task.task_id
    if task.status in ("FINISH", "ABORTED"):
        result["Status"] = "FINISH"
    return result


def _visible(ctx: Context, sub_app_id: int) -> Any:
    return and_(Task.sub_app_id == sub_app_id, Task.created_at >= ctx.now() - VISIBILITY)


def detail(ctx: Context, sub_app_id: int, task_id: str) -> dict[str, Any]:
    with ctx.db.session() as session:
        task = session.scalars(
            select(Task).where(Task.task_id == task_id, _visible(ctx, sub_app_id))
        ).first()
        if task is None:
            raise TaskNotFound(task_id)
        source = session.get(Media, task.file_id) if task.file_id else None
        detail: dict[str, Any] = {
            "TaskType": task.task_type,
            "Status": task.status,
            "CreateTime": iso(task.created_at),
            "BeginProcessTime": iso(task.begin_at),
            "FinishTime": iso(task.finish_at),
            "ProcedureTask": procedure_task(ctx, task, source)
            if task.task_type == "Procedure"
            else None,
            "PullUploadTask": pull_upload_task(task) if task.task_type == "PullUpload" else None,
        }
        return ctx.render_urls(detail)


def simple_info(task: Task) -> dict[str, Any]:
    return {
        "TaskId": task.task_id,
        "Status": task.status,
        "FileId": task.file_id,
        "TaskType": task.task_type,
        "CreateTime": iso(task.created_at),
        "BeginProcessTime": iso(task.begin_at),
        "FinishTime": iso(task.finish_at),
        "SessionId": task.session_id,
        "SessionContext": task.session_context,
    }


def _encode_token(moment: datetime | None, task_id: str) -> str:
    raw = json.dumps([moment.isoformat() if moment else None, task_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[datetime | None, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        moment, task_id = json.loads(raw)
        return (datetime.fromisoformat(moment) if moment else None), str(task_id)
    except (ValueError, TypeError) as exc:
        raise BadScrollToken(token) from exc


def search(
    ctx: Context,
    sub_app_id: int,
    *,
    status: str | None = None,
    file_id: str | None = None,
    create_range: dict[str, str] | None = None,
    finish_range: dict[str, str] | None = None,
    sort_field: str = "CreateTime",
    descending: bool = True,
    limit: int = 10,
    scroll_token: str | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """One page of TaskSimpleInfo and the ScrollToken of the next page ("" when none).

    Keyset paging on (sort time, TaskId), so pages stay stable while tasks are added.
    """
    column = Task.finish_at if sort_field == "FinishTime" else Task.created_at
    query = select(Task).where(_visible(ctx, sub_app_id))
    if status:
        query = query.where(Task.status == status)
    if file_id:
        query = query.where(Task.file_id == file_id)
    for col, bounds in ((Task.created_at, create_range), (Task.finish_at, finish_range)):
        if bounds and bounds.get("After"):
            query = query.where(col >= parse_iso(bounds["After"]))
        if bounds and bounds.get("Before"):
            query = query.where(col < parse_iso(bounds["Before"]))
    if sort_field == "FinishTime":
        query = query.where(Task.finish_at.is_not(None))
    if scroll_token:
        moment, last_id = _decode_token(scroll_token)
        if moment is None:
            raise BadScrollToken(scroll_token)
        if descending:
            query = query.where(
                or_(column < moment, and_(column == moment, Task.task_id < last_id))
            )
        else:
            query = query.where(
                or_(column > moment, and_(column == moment, Task.task_id > last_id))
            )
    order = (
        (column.desc(), Task.task_id.desc()) if descending else (column.asc(), Task.task_id.asc())
    )
    with ctx.db.session() as session:
        rows = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    token = ""
    if more and rows:
        last = rows[-1]
        token = _encode_token(
            last.finish_at if sort_field == "FinishTime" else last.created_at, last.task_id
        )
    return [simple_info(row) for row in rows], token


def abort(ctx: Context, sub_app_id: int, task_id: str) -> None:
    """WAITING → ABORTED in one guarded UPDATE: a worker can never claim it afterwards."""
    with ctx.db.session() as session:
        exists = session.scalars(
            select(Task.task_id).where(Task.task_id == task_id, _visible(ctx, sub_app_id))
        ).first()
        if exists is None:
            raise TaskNotFound(task_id)
        changed = session.execute(
            update(Task)
            .where(Task.task_id == task_id, Task.status == "WAITING")
            .values(status="ABORTED", finish_at=ctx.now())
        ).rowcount  # type: ignore[attr-defined]
        if not changed:
            raise NotWaiting(task_id)
