"""ProcessMedia (spec 2.2) with MediaProcessTask.AnimatedGraphicTaskSet."""

from __future__ import annotations

from typing import Any

from anigraph.api.errors import ApiError, Code, invalid_parameter, invalid_parameter_value
from anigraph.api.params import FLOAT, INT64, STRING, UINT64, Array, Field, Object
from anigraph.api.registry import Caller, action
from anigraph.context import Context
from anigraph.services import processing

ANIMATED_GRAPHIC_TASK_INPUT = Object(
    {
        "Definition": Field(UINT64, required=True, code=Code.INVALID_PARAMETER_VALUE_DEFINITION),
        "StartTimeOffset": Field(
            FLOAT, default=0.0, code=Code.INVALID_PARAMETER_VALUE_START_TIME_OFFSET
        ),
        "EndTimeOffset": Field(
            FLOAT, default=0.0, code=Code.INVALID_PARAMETER_VALUE_END_TIME_OFFSET
        ),
    }
)

# Processing kinds anigraph does not do: accepted when empty, refused with a clear message when not.
OTHER_TASK_SETS = (
    "TranscodeTaskSet",
    "SnapshotByTimeOffsetTaskSet",
    "SampleSnapshotTaskSet",
    "ImageSpriteTaskSet",
    "CoverBySnapshotTaskSet",
    "AdaptiveDynamicStreamingTaskSet",
)
_ANY_OBJECT = Object({}, ignore_unknown=True)

MEDIA_PROCESS_TASK = Object(
    {
        "AnimatedGraphicTaskSet": Field(Array(ANIMATED_GRAPHIC_TASK_INPUT), max_items=100),
        **{name: Field(Array(_ANY_OBJECT)) for name in OTHER_TASK_SETS},
    }
)

# Shared by every action that starts a task (ProcessMedia, PullUpload).
TASKS_PRIORITY = Field(INT64, default=0, minimum=-10, maximum=10)
SESSION_CONTEXT = Field(
    STRING, default="", code=Code.INVALID_PARAMETER_VALUE_SESSION_CONTEXT_TOO_LONG, max_length=1000
)
SESSION_ID = Field(
    STRING, default="", code=Code.INVALID_PARAMETER_VALUE_SESSION_ID_TOO_LONG, max_length=50
)

NOTIFY_MODES = frozenset({"Finish", "Change", "None", ""})

PROCESS_MEDIA = Object(
    {
        "FileId": Field(STRING, code=Code.INVALID_PARAMETER_VALUE_FILE_ID, max_length=64),
        "MediaStoragePath": Field(STRING, code=Code.INVALID_PARAMETER_VALUE_MEDIA_STORAGE_PATH),
        "MediaProcessTask": Field(MEDIA_PROCESS_TASK),
        # Strict empty objects: any member is UnknownParameter, so AI work is never dropped
        # silently ({} is accepted, like an absent task).
        "AiContentReviewTask": Field(Object({})),
        "AiAnalysisTask": Field(Object({})),
        "AiRecognitionTask": Field(Object({})),
        "TasksPriority": TASKS_PRIORITY,
        "TasksNotifyMode": Field(STRING, default="Finish", choices=NOTIFY_MODES),
        "SessionContext": SESSION_CONTEXT,
        "SessionId": SESSION_ID,
        "ExtInfo": Field(STRING),
        "Url": Field(STRING, code=Code.INVALID_PARAMETER_VALUE_MEDIA_URL),
        "OutputAsIndependentMedia": Field(STRING, choices=frozenset({"ON", "OFF"})),
    }
)


def animated_items(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The AnimatedGraphicTaskSet of a MediaProcessTask; other kinds of processing refused."""
    task = params.get("MediaProcessTask") or {}
    for name in OTHER_TASK_SETS:
        if task.get(name):
            raise invalid_parameter(
                f"MediaProcessTask.{name} is not supported: anigraph makes animated images only "
                "(AnimatedGraphicTaskSet)."
            )
    for name in ("AiContentReviewTask", "AiAnalysisTask", "AiRecognitionTask"):
        if params.get(name):
            raise invalid_parameter(f"{name} is not supported by anigraph.")
    items: list[dict[str, Any]] = task.get("AnimatedGraphicTaskSet") or []
    if not items:
        raise invalid_parameter_value(
            "MediaProcessTask.AnimatedGraphicTaskSet",
            "at least one animated-graphics task is needed",
        )
    return items


def source_of(params: dict[str, Any]) -> tuple[str, str]:
    """(FileId, Url): the media to process, or the URL to fetch into a new media item."""
    if params.get("FileId"):
        return str(params["FileId"]), ""
    if params.get("MediaStoragePath"):
        raise invalid_parameter_value(
            "MediaStoragePath",
            "this sub-application uses FileId mode; give FileId",
            Code.INVALID_PARAMETER_VALUE_MEDIA_STORAGE_PATH,
        )
    if params.get("Url"):
        from anigraph.api.actions.pull import check_url

        return "", check_url("Url", params["Url"], Code.INVALID_PARAMETER_VALUE_MEDIA_URL)
    raise invalid_parameter_value(
        "FileId", "FileId (or Url) is required", Code.INVALID_PARAMETER_VALUE_FILE_ID
    )


@action("ProcessMedia", PROCESS_MEDIA)
def process_media(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    file_id, url = source_of(params)
    request = processing.TaskRequest(
        file_id=file_id,
        url=url,
        items=animated_items(params),
        priority=params["TasksPriority"],
        notify_mode=params["TasksNotifyMode"] or "Finish",
        session_context=params["SessionContext"],
        session_id=params["SessionId"],
    )
    try:
        task_id = processing.create_task(ctx, caller.sub_app_id, request)
    except processing.FileNotFound:
        raise invalid_parameter_value(
            "FileId",
            f"no media {file_id} in this sub-application",
            Code.INVALID_PARAMETER_VALUE_FILE_ID,
        ) from None
    except processing.DuplicateSession:
        raise ApiError(
            Code.INVALID_PARAMETER_VALUE_SESSION_ID,
            "A task with this SessionId was submitted within the last 3 days; the request is "
            "deduplicated.",
        ) from None
    return {"TaskId": task_id}
