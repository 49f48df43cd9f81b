"""Running a PullUpload task: download, probe, store, then (in one fenced transaction) the media
row, the PullUploadTask result, the PullComplete event and the task flow's task."""

from __future__ import annotations

import copy
import logging
from typing import Any

from sqlalchemy.orm import Session

from anigraph.context import Context
from anigraph.db.models import Task
from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.domain.wire import iso
from anigraph.jobs import leases
from anigraph.jobs.ingest import discard_unrecorded_quietly, download, store_download
from anigraph.jobs.runner import Outcome, retry_task_later, staging_dir
from anigraph.metrics import Metrics
from anigraph.notify.outbox import emit
from anigraph.services import media

log = logging.getLogger(__name__)


def _finish(
    ctx: Context,
    task_id: str,
    owner: str,
    fill: Any,
) -> Task | None:
    """Apply ``fill(session, task, result)`` and finish the task, only while ``owner`` holds it."""
    with ctx.db.session() as session:
        task = leases.owned(ctx, session, task_id, owner)
        if task is None:
            return None
        payload = copy.deepcopy(leases.without_pending_key(task.payload))
        result: dict[str, Any] = payload.setdefault("Result", {})
        fill(session, task, result)
        result["Status"] = "FINISH"
        result["Progress"] = 100
        task.payload = payload
        task.status = leases.FINISH
        task.finish_at = ctx.now()
        task.progress = 100
        task.lease_owner = None
        task.lease_expires_at = None
        task.not_before = None
        emit(session, ctx, task.sub_app_id, "PullComplete", result)
        return task


def _fail(ctx: Context, task: Task, owner: str, error: TaskError) -> Outcome:
    discard_unrecorded_quietly(ctx, task)

    def fill(_session: Session, _task: Task, result: dict[str, Any]) -> None:
        result["ErrCode"] = error.code.legacy_code
        result["Message"] = f"{error.code.value}: {error.message}"

    return Outcome.FINISHED if _finish(ctx, task.task_id, owner, fill) else Outcome.LOST


def run_pull(ctx: Context, task: Task, owner: str, metrics: Metrics) -> Outcome:
    request: dict[str, Any] = (task.payload or {}).get("Request", {})
    task_id, sub_app_id = task.task_id, task.sub_app_id
    try:
        downloaded = download(ctx, request["media_url"], staging_dir(ctx), request["media_type"])
        stored = store_download(ctx, task, owner, downloaded)
    except TaskError as error:
        return retry_task_later(ctx, task, owner, metrics, error) or _fail(ctx, task, owner, error)
    if stored is None:
        return Outcome.LOST
    key, size, meta = stored

    started: list[str] = []

    def fill(session: Session, task_row: Task, result: dict[str, Any]) -> None:
        name = request["media_name"] or media.media_name_from_url(request["media_url"])
        row = media.insert_media(
            session,
            ctx,
            sub_app_id,
            store_key=key,
            size=size,
            meta_data=meta,
            name=name,
            media_type=downloaded.media_type,
            source_type="Upload",
            source_context=request.get("source_context", ""),
            class_id=request.get("class_id", 0),
        )
        session.flush()
        task_row.file_id = row.file_id
        result.update(
            FileId=row.file_id,
            MediaBasicInfo=media.basic_info(ctx, row),
            MetaData=meta,
            **ctx.linked(FileUrl=key),  # answered through render_urls: links as of reading
            ErrCode=0,
            Message="SUCCESS",
        )
        if request.get("procedure"):
            from anigraph.services.procedures import start_procedure

            procedure_task = start_procedure(
                session,
                ctx,
                sub_app_id,
                request["procedure"],
                row.file_id,
                priority=request.get("tasks_priority", 0),
                session_context=request.get("session_context", ""),
            )
            result["ProcedureTaskId"] = procedure_task
            started.append(procedure_task)

    if _finish(ctx, task_id, owner, fill) is None:
        ctx.store.delete(key)  # another worker owns the task now and makes its own copy
        return Outcome.LOST
    if started:
        ctx.wake_workers()
    log.info("pull %s stored %s", task_id, key)
    return Outcome.FINISHED


def ingest_url(ctx: Context, task: Task, owner: str) -> str | None:
    """ProcessMedia with a Url: fetch it into a new media item and attach the task to it.

    Returns the new FileId, or None when ownership was lost. Raises :class:`TaskError`.
    """
    url = str((task.payload or {}).get("Url", ""))
    downloaded = download(ctx, url, staging_dir(ctx))
    stored = store_download(ctx, task, owner, downloaded)
    if stored is None:
        return None
    key, size, meta = stored
    with ctx.db.session() as session:
        owned = leases.owned(ctx, session, task.task_id, owner)
        if owned is None:
            ctx.store.delete(key)
            return None
        owned.payload = leases.without_pending_key(owned.payload)
        row = media.insert_media(
            session,
            ctx,
            task.sub_app_id,
            store_key=key,
            size=size,
            meta_data=meta,
            name=media.media_name_from_url(url),
            media_type=downloaded.media_type,
        )
        session.flush()
        owned.file_id = row.file_id
        return row.file_id


def fail_all_subtasks(ctx: Context, task: Task, owner: str, error: TaskError) -> Outcome:
    """The source could not be had: every subtask fails with the same code, the task ends."""
    discard_unrecorded_quietly(ctx, task)
    now = iso(ctx.now())
    for index, entry in enumerate(task.subtasks):
        updated = copy.deepcopy(entry)
        result = leases.subtask_result(updated)
        result.update(
            Status=leases.SUB_FAIL,
            ErrCodeExt=error.code.value,
            ErrCode=error.code.legacy_code,
            Message=error.message,
            BeginProcessTime=result.get("BeginProcessTime") or now,
            FinishTime=now,
        )
        if not leases.record_subtask(ctx, task.task_id, owner, index, updated):
            return Outcome.LOST
    if not leases.finish(ctx, task.task_id, owner):
        return Outcome.LOST
    if error.code is ErrCodeExt.INTERNAL_ERROR:
        log.warning("task %s: source download kept failing: %s", task.task_id, error)
    return Outcome.FINISHED
