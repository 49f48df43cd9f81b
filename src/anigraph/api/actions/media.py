"""DescribeMediaInfos and DeleteMedia (spec 2.6)."""

from __future__ import annotations

from typing import Any

from anigraph.api.errors import ApiError, Code, invalid_parameter_value
from anigraph.api.params import INT64, STRING, Array, Field, Object
from anigraph.api.registry import Caller, action
from anigraph.services import media
from anigraph.services.context import Context

FILTERS = frozenset(
    {
        "basicInfo",
        "metaData",
        "transcodeInfo",
        "animatedGraphicsInfo",
        "imageSpriteInfo",
        "snapshotByTimeOffsetInfo",
        "sampleSnapshotInfo",
        "keyFrameDescInfo",
        "adaptiveDynamicStreamingInfo",
        "miniProgramReviewInfo",
        "subtitleInfo",
        "reviewInfo",
        "mpsAiMediaInfo",
        "knowledgeBasesInfo",
    }
)

DESCRIBE_MEDIA_INFOS = Object(
    {
        "FileIds": Field(Array(STRING), required=True, code=Code.INVALID_PARAMETER_VALUE_FILE_IDS),
        "Filters": Field(Array(STRING), choices=FILTERS),
    }
)


@action("DescribeMediaInfos", DESCRIBE_MEDIA_INFOS)
def describe_media_infos(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    file_ids: list[str] = params["FileIds"]
    if not file_ids:
        raise ApiError(Code.INVALID_PARAMETER_VALUE_FILE_IDS_EMPTY, "FileIds is empty.")
    if len(file_ids) > 20:
        raise ApiError(
            Code.INVALID_PARAMETER_VALUE_FILE_IDS_OVER_LIMIT, "At most 20 FileIds per request."
        )
    filters = params.get("Filters")
    found, missing = media.describe(
        ctx, caller.sub_app_id, file_ids, set(filters) if filters else None
    )
    return {"MediaInfoSet": found, "NotExistFileIdSet": missing}


DELETE_PART = Object({"Type": Field(STRING, required=True), "Definition": Field(INT64, default=0)})

DELETE_MEDIA = Object(
    {
        "FileId": Field(STRING, required=True, code=Code.INVALID_PARAMETER_VALUE_FILE_ID),
        "DeleteParts": Field(Array(DELETE_PART)),
    }
)


@action("DeleteMedia", DELETE_MEDIA)
def delete_media(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    parts = params.get("DeleteParts") or []
    for part in parts:
        if part["Type"] not in (
            "OriginalFiles",
            "TranscodeFiles",
            "AdaptiveDynamicStreamingFiles",
            "WechatPublishFiles",
            "WechatMiniProgramPublishFiles",
            "MpsAiMediaAiAnalysisFiles",
            "MpsAiMediaSmartEraseFiles",
            "MpsAiMediaSmartSubtitleFiles",
        ):
            raise invalid_parameter_value("DeleteParts.Type", f"unknown type {part['Type']!r}")
    try:
        media.delete(ctx, caller.sub_app_id, params["FileId"], parts or None)
    except media.MediaNotFound:
        raise ApiError(
            Code.RESOURCE_NOT_FOUND, f"The media {params['FileId']} does not exist."
        ) from None
    return {}
