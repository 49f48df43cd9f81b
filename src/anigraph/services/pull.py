"""PullUpload: a task that fetches a URL into a new media item, then may start a task flow.

The request is stored on the task row (``payload``); a worker does the fetch, so the API answers
at once and a crash mid-download only costs a retry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from anigraph.context import Context
from anigraph.domain.wire import new_pull_task_id
from anigraph.services.processing import claim_session_id, waiting_task


@dataclass(frozen=True)
class PullRequest:
    media_url: str
    media_type: str = ""
    media_name: str = ""
    procedure: str = ""
    class_id: int = 0
    tasks_priority: int = 0
    session_context: str = ""
    session_id: str = ""
    source_context: str = ""


def pull_task_result(request: PullRequest) -> dict[str, Any]:
    """PullUploadTask (spec 3.12) before anything happened."""
    return {
        "TaskId": "",
        "Status": "PROCESSING",
        "ErrCode": 0,
        "Message": "",
        "FileId": "",
        "MediaBasicInfo": None,
        "MetaData": None,
        "FileUrl": "",
        "ProcedureTaskId": "",
        "ReviewAudioVideoTaskId": "",
        "SessionContext": request.session_context,
        "SessionId": request.session_id,
        "Progress": 0,
    }


def create_pull_task(ctx: Context, sub_app_id: int, request: PullRequest) -> str:
    task_id = new_pull_task_id(sub_app_id)
    result = {**pull_task_result(request), "TaskId": task_id}
    with ctx.db.session() as session:
        if request.session_id:
            claim_session_id(session, ctx, sub_app_id, "PullUpload", request.session_id, task_id)
        session.add(
            waiting_task(
                ctx,
                task_id,
                sub_app_id,
                task_type="PullUpload",
                file_id="",
                priority=request.tasks_priority,
                notify_mode="None",
                session_context=request.session_context,
                session_id=request.session_id,
                subtasks=[],
                payload={"Request": asdict(request), "Result": result},
            )
        )
    ctx.wake_workers()
    return task_id
