"""DescribeMediaInfos and DeleteMedia (spec 2.6)."""

from __future__ import annotations

from typing import Any

from anigraph.api.errors import ApiError, Code, invalid_parameter_value
from anigraph.api.params import INT64, STRING, Array, Field, Object
from anigraph.api.registry import Caller, action
from anigraph.context import Context
from anigraph.services import media

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


SEARCH_TIME_RANGE = Object({"After": Field(STRING), "Before": Field(STRING)})
_TEXT_LIST = Array(STRING)

SEARCH_MEDIA = Object(
    {
        "FileIds": Field(_TEXT_LIST, code=Code.INVALID_PARAMETER_VALUE_FILE_IDS, max_items=10),
        "Names": Field(
            _TEXT_LIST, code=Code.INVALID_PARAMETER_VALUE_NAMES, max_items=10, max_length=100
        ),
        "NamePrefixes": Field(_TEXT_LIST, max_items=10, max_length=100),
        "Categories": Field(_TEXT_LIST, choices=frozenset({"Video", "Audio", "Image"})),
        "MediaTypes": Field(_TEXT_LIST, max_items=10),
        "CreateTime": Field(SEARCH_TIME_RANGE),
        "Filters": Field(Array(STRING), choices=FILTERS),
        "Sort": Field(
            Object({"Field": Field(STRING, required=True), "Order": Field(STRING, required=True)}),
            code=Code.INVALID_PARAMETER_VALUE_SORT,
        ),
        "Offset": Field(INT64, default=0, code=Code.INVALID_PARAMETER_VALUE_OFFSET, minimum=0),
        "Limit": Field(INT64, default=10, code=Code.INVALID_PARAMETER_VALUE_LIMIT, minimum=1),
    },
    # SearchMedia has many filters this service has no data for (tags, streams, TRTC rooms…);
    # they are accepted and match nothing differently, rather than failing SDK callers.
    ignore_unknown=True,
)


@action("SearchMedia", SEARCH_MEDIA)
def search_media(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    from anigraph.domain.wire import parse_iso

    if params["Offset"] + params["Limit"] > media.SEARCH_CAP:
        raise invalid_parameter_value(
            "Offset", "Offset + Limit must be at most 5000", Code.INVALID_PARAMETER_VALUE_OFFSET
        )
    sort = params.get("Sort") or {"Field": "CreateTime", "Order": "Desc"}
    if sort["Field"] != "CreateTime" or sort["Order"].lower() not in ("asc", "desc"):
        raise invalid_parameter_value(
            "Sort", "Field is CreateTime and Order Asc or Desc", Code.INVALID_PARAMETER_VALUE_SORT
        )
    bounds = params.get("CreateTime") or {}
    try:
        after = parse_iso(bounds["After"]) if bounds.get("After") else None
        before = parse_iso(bounds["Before"]) if bounds.get("Before") else None
    except ValueError:
        raise invalid_parameter_value("CreateTime", "expected ISO 8601 times") from None
    query = media.MediaQuery(
        file_ids=params.get("FileIds") or [],
        names=params.get("Names") or [],
        name_prefixes=params.get("NamePrefixes") or [],
        categories=params.get("Categories") or [],
        media_types=params.get("MediaTypes") or [],
        created_after=after,
        created_before=before,
        newest_first=sort["Order"].lower() == "desc",
        offset=params["Offset"],
        limit=params["Limit"],
    )
    filters = params.get("Filters")
    total, found = media.search(ctx, caller.sub_app_id, query, set(filters) if filters else None)
    return {"TotalCount": total, "MediaInfoSet": found}
