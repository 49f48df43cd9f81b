"""Task-flow templates (spec 2.3) and ProcessMediaByProcedure (spec 2.2).

Field names follow the SDK's request and response models (``tencentcloud.vod.v20180717.models``).
A flow holds animated-graphics work only: the other kinds of task a Tencent flow can carry (AI
review/analysis/recognition, audio-video review, media-knowledge import, mini-program publishing,
transcoding, snapshots, …) are accepted when empty, as SDK-built requests may send them, and
refused with a clear ``InvalidParameter`` otherwise, so a flow never silently does less than asked.
"""

from __future__ import annotations

from typing import Any, Final

from anigraph.api.actions.processing import (
    MEDIA_PROCESS_TASK,
    PROCESS_MEDIA,
    animated_items,
)
from anigraph.api.errors import ApiError, Code, invalid_parameter, invalid_parameter_value, quote
from anigraph.api.params import STRING, UINT64, Array, Field, Object
from anigraph.api.registry import Caller, action
from anigraph.context import Context
from anigraph.domain.wire import iso
from anigraph.services import procedures, processing

# The SDK's input models of the task kinds a flow cannot run. They are declared member by member
# (not as "any object") because the schema keeps only declared members: an undeclared one would
# vanish and a non-empty task would pass as empty. A member no model has is UnknownParameter.
_DEFINITION = Field(UINT64)
_DEFINITION_ONLY: Final = Object({"Definition": _DEFINITION})
_REVIEW_AUDIO_VIDEO: Final = Object(
    {"Definition": _DEFINITION, "ReviewContents": Field(Array(STRING))}
)
_IMPORT_KNOWLEDGE: Final = Object(
    {"Definition": _DEFINITION, "KnowledgeBaseIds": Field(Array(STRING))}
)
_MINI_PROGRAM_PUBLISH: Final = Object({"SourceDefinition": Field(UINT64)})

# Flow members anigraph does not run, beyond those ``animated_items`` already refuses
# (AiContentReviewTask, AiAnalysisTask, AiRecognitionTask and MediaProcessTask's other sets).
_UNSUPPORTED_MEMBERS: Final = (
    "AiRecognitionTaskSet",
    "ReviewAudioVideoTask",
    "ImportMediaKnowledgeTaskSet",
    "MiniProgramPublishTask",
)

# MediaProcessTaskInput's members in the SDK model's order; all are returned (spec 3.3).
_MEDIA_PROCESS_SETS: Final = (
    "TranscodeTaskSet",
    "AnimatedGraphicTaskSet",
    "SnapshotByTimeOffsetTaskSet",
    "SampleSnapshotTaskSet",
    "ImageSpriteTaskSet",
    "CoverBySnapshotTaskSet",
    "AdaptiveDynamicStreamingTaskSet",
)

_COMMENT: Final = Field(
    STRING, default="", code=Code.INVALID_PARAMETER, max_length=procedures.COMMENT_MAX
)

_FLOW_CONTENT: Final[dict[str, Field]] = {
    "Comment": _COMMENT,
    "MediaProcessTask": Field(MEDIA_PROCESS_TASK),
    "AiContentReviewTask": Field(_DEFINITION_ONLY),
    "AiAnalysisTask": Field(_DEFINITION_ONLY),
    "AiRecognitionTaskSet": Field(Array(_DEFINITION_ONLY)),
    "AiRecognitionTask": Field(_DEFINITION_ONLY),
    "ReviewAudioVideoTask": Field(_REVIEW_AUDIO_VIDEO),
    "ImportMediaKnowledgeTaskSet": Field(Array(_IMPORT_KNOWLEDGE)),
    # Not in the SDK's request models (only in ProcedureTemplate), accepted for symmetry.
    "MiniProgramPublishTask": Field(_MINI_PROGRAM_PUBLISH),
}


def _flow_items(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The AnimatedGraphicTaskSet of a Create/Reset request; other kinds of task refused.

    An empty set is an API error now, not later: a flow that does nothing would otherwise only
    show up when an upload starts it, as a task with no subtasks.
    """
    for name in _UNSUPPORTED_MEMBERS:
        if params.get(name):
            raise invalid_parameter(
                f"{name} is not supported by anigraph: a task flow can hold "
                "MediaProcessTask.AnimatedGraphicTaskSet only."
            )
    return animated_items(params)


def _name(params: dict[str, Any]) -> str:
    name = str(params["Name"])
    if not name:
        raise invalid_parameter("The task flow Name must not be empty.")
    return name


def wire(spec: procedures.ProcedureSpec) -> dict[str, Any]:
    """ProcedureTemplate (spec 3.13): every member present, unused sets ``[]``, objects null."""
    media_process_task: dict[str, Any] = {
        name: [dict(item) for item in spec.items] if name == "AnimatedGraphicTaskSet" else []
        for name in _MEDIA_PROCESS_SETS
    }
    return {
        "Name": spec.name,
        "Type": spec.type,
        "Comment": spec.comment,
        "MediaProcessTask": media_process_task,
        "AiContentReviewTask": None,
        "AiAnalysisTask": None,
        "AiRecognitionTaskSet": [],
        "AiRecognitionTask": None,
        "MiniProgramPublishTask": None,
        "ReviewAudioVideoTask": None,
        "ImportMediaKnowledgeTaskSet": [],
        "CreateTime": iso(spec.create_time),
        "UpdateTime": iso(spec.update_time),
    }


def _name_not_exist(name: str) -> ApiError:
    return ApiError(
        Code.INVALID_PARAMETER_PROCEDURE_NAME_NOT_EXIST,
        f"The task flow {quote(name)} does not exist.",
    )


CREATE: Final = Object(
    {
        "Name": Field(
            STRING, required=True, code=Code.INVALID_PARAMETER, max_length=procedures.NAME_MAX
        ),
        **_FLOW_CONTENT,
    }
)


@action("CreateProcedureTemplate", CREATE)
def create(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    name = _name(params)
    items = _flow_items(params)
    try:
        procedures.create(ctx, caller.sub_app_id, name, params["Comment"], items)
    except procedures.ProcedureExists:
        raise ApiError(
            Code.INVALID_PARAMETER_EXISTED_PROCEDURE_NAME,
            f"A task flow named {quote(name)} already exists.",
        ) from None
    except procedures.TooManyProcedures as error:
        raise ApiError(
            Code.LIMIT_EXCEEDED,
            f"At most {error.args[0]} task flows are allowed per sub-application; delete one "
            "first.",
        ) from None
    return {}


RESET: Final = Object({"Name": Field(STRING, required=True), **_FLOW_CONTENT})


@action("ResetProcedureTemplate", RESET)
def reset(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    name = str(params["Name"])
    items = _flow_items(params)
    try:
        procedures.reset(ctx, caller.sub_app_id, name, params["Comment"], items)
    except procedures.ProcedureNotFound:
        raise _name_not_exist(name) from None
    return {}


DELETE: Final = Object({"Name": Field(STRING, required=True)})


@action("DeleteProcedureTemplate", DELETE)
def delete(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    name = str(params["Name"])
    try:
        procedures.delete(ctx, caller.sub_app_id, name)
    except procedures.ProcedureNotFound:
        raise _name_not_exist(name) from None
    return {}


SORT_BY: Final = Object(
    {
        "Field": Field(STRING, required=True, code=Code.INVALID_PARAMETER_VALUE_SORT),
        "Order": Field(STRING, default="Asc", code=Code.INVALID_PARAMETER_VALUE_SORT),
    }
)

DESCRIBE: Final = Object(
    {
        "Names": Field(Array(STRING), code=Code.INVALID_PARAMETER_VALUE_NAMES, max_items=100),
        "Type": Field(
            STRING, code=Code.INVALID_PARAMETER_VALUE_TYPE, choices=frozenset({"Preset", "Custom"})
        ),
        "Offset": Field(UINT64, default=0, code=Code.INVALID_PARAMETER_VALUE_OFFSET),
        "Limit": Field(
            UINT64, default=10, code=Code.INVALID_PARAMETER_VALUE_LIMIT, minimum=1, maximum=100
        ),
        "SortBy": Field(Array(SORT_BY), code=Code.INVALID_PARAMETER_VALUE_SORT, max_items=10),
    }
)

# Tencent's own example sends ``create_time``; match any case, with or without the underscore.
_SORT_FIELDS: Final = frozenset({"createtime", "create_time"})


def _newest_first(sort_by: list[dict[str, Any]] | None) -> bool:
    """Whether SortBy asks for descending CreateTime; only CreateTime may be sorted on."""
    newest_first = False
    for index, entry in enumerate(sort_by or []):
        if str(entry["Field"]).lower() not in _SORT_FIELDS:
            raise invalid_parameter_value(
                f"SortBy.{index}.Field",
                "only CreateTime can be sorted on",
                Code.INVALID_PARAMETER_VALUE_SORT,
            )
        order = str(entry["Order"]).lower()
        if order not in ("asc", "desc"):
            raise invalid_parameter_value(
                f"SortBy.{index}.Order", "must be Asc or Desc", Code.INVALID_PARAMETER_VALUE_SORT
            )
        newest_first = order == "desc"
    return newest_first


@action("DescribeProcedureTemplates", DESCRIBE)
def describe(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    total, page = procedures.describe(
        ctx,
        caller.sub_app_id,
        params.get("Names"),
        params.get("Type"),
        params["Offset"],
        params["Limit"],
        newest_first=_newest_first(params.get("SortBy")),
    )
    return {"TotalCount": total, "ProcedureTemplateSet": [wire(spec) for spec in page]}


PROCESS_MEDIA_BY_PROCEDURE: Final = Object(
    {
        "ProcedureName": Field(
            STRING, required=True, code=Code.INVALID_PARAMETER_VALUE_PROCEDURE_NAME
        ),
        **{
            name: PROCESS_MEDIA.fields[name]
            for name in (
                "FileId",
                "MediaStoragePath",
                "TasksPriority",
                "TasksNotifyMode",
                "SessionContext",
                "SessionId",
                "ExtInfo",
            )
        },
    }
)


def _file_id(params: dict[str, Any]) -> str:
    """The FileId to run the flow on; path-mode addressing is not offered by anigraph."""
    if params.get("FileId"):
        return str(params["FileId"])
    if params.get("MediaStoragePath"):
        raise invalid_parameter_value(
            "MediaStoragePath",
            "this sub-application uses FileId mode; give FileId",
            Code.INVALID_PARAMETER_VALUE_MEDIA_STORAGE_PATH,
        )
    raise invalid_parameter_value(
        "FileId", "FileId is required", Code.INVALID_PARAMETER_VALUE_FILE_ID
    )


@action("ProcessMediaByProcedure", PROCESS_MEDIA_BY_PROCEDURE)
def process_media_by_procedure(
    ctx: Context, caller: Caller, params: dict[str, Any]
) -> dict[str, Any]:
    name = str(params["ProcedureName"])
    file_id = _file_id(params)
    try:
        task_id = procedures.run_procedure(
            ctx,
            caller.sub_app_id,
            name,
            file_id,
            priority=params["TasksPriority"],
            notify_mode=params["TasksNotifyMode"] or "Finish",
            session_context=params["SessionContext"],
            session_id=params["SessionId"],
        )
    except procedures.ProcedureNotFound:
        raise invalid_parameter_value(
            "ProcedureName",
            f"no task flow {quote(name)} in this sub-application",
            Code.INVALID_PARAMETER_VALUE_PROCEDURE_NAME,
        ) from None
    except processing.FileNotFound:
        raise invalid_parameter_value(
            "FileId",
            f"no media {quote(file_id)} in this sub-application",
            Code.INVALID_PARAMETER_VALUE_FILE_ID,
        ) from None
    except processing.DuplicateSession:
        raise ApiError(
            Code.INVALID_PARAMETER_VALUE_SESSION_ID,
            "A task with this SessionId was submitted within the last 7 days; the request is "
            "deduplicated.",
        ) from None
    # The SDK's response model has all three; the flow never holds review or knowledge tasks.
    return {"TaskId": task_id, "ReviewAudioVideoTaskId": "", "ImportMediaKnowledgeTaskIdSet": []}
