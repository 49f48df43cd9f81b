"""ApplyUpload and CommitUpload (spec 2.5): server-side uploads through the COS-style endpoint.

The use cases live in ``services.uploads``; this module only checks parameters against the
SDK's request models and shapes the responses to its response models.
"""

from __future__ import annotations

from typing import Any

from anigraph.api.errors import Code, invalid_parameter_value
from anigraph.api.params import INT64, STRING, Field, Object
from anigraph.api.registry import Caller, action
from anigraph.context import Context
from anigraph.services import uploads

# Members of tencentcloud.vod.v20180717.models.ApplyUploadRequest.
APPLY_UPLOAD = Object(
    {
        "MediaType": Field(
            STRING, required=True, code=Code.INVALID_PARAMETER_VALUE_MEDIA_TYPE, max_length=16
        ),
        "MediaName": Field(STRING, default="", max_length=uploads.MEDIA_NAME_MAX),
        "CoverType": Field(
            STRING, default="", code=Code.INVALID_PARAMETER_VALUE_COVER_TYPE, max_length=16
        ),
        "Procedure": Field(
            STRING,
            default="",
            code=Code.INVALID_PARAMETER_VALUE_PROCEDURE,
            max_length=uploads.PROCEDURE_MAX,
        ),
        "ExpireTime": Field(
            STRING, default="", code=Code.INVALID_PARAMETER_VALUE_EXPIRE_TIME, max_length=64
        ),
        "StorageRegion": Field(
            STRING, default="", code=Code.INVALID_PARAMETER_VALUE_STORAGE_REGION, max_length=64
        ),
        "ClassId": Field(INT64, default=0, code=Code.INVALID_PARAMETER_VALUE_CLASS_ID, minimum=0),
        "SourceContext": Field(STRING, default="", max_length=uploads.SOURCE_CONTEXT_MAX),
        "SessionContext": Field(
            STRING,
            default="",
            code=Code.INVALID_PARAMETER_VALUE_SESSION_CONTEXT_TOO_LONG,
            max_length=uploads.SESSION_CONTEXT_MAX,
        ),
        "ExtInfo": Field(STRING),
        "MediaStoragePath": Field(STRING, code=Code.INVALID_PARAMETER_VALUE_MEDIA_STORAGE_PATH),
    }
)

# Members of CommitUploadRequest.
COMMIT_UPLOAD = Object(
    {
        "VodSessionKey": Field(
            STRING, required=True, code=Code.INVALID_PARAMETER_VALUE_VOD_SESSION_KEY, max_length=96
        ),
    }
)


@action("ApplyUpload", APPLY_UPLOAD)
def apply_upload(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("MediaStoragePath"):
        # Path mode is a per-sub-application choice at Tencent; anigraph's store picks keys.
        raise invalid_parameter_value(
            "MediaStoragePath",
            "this sub-application uses FileId mode: the storage path is chosen by the service",
            Code.INVALID_PARAMETER_VALUE_MEDIA_STORAGE_PATH,
        )
    request = uploads.UploadRequest(
        media_type=params["MediaType"],
        media_name=params["MediaName"],
        cover_type=params["CoverType"],
        procedure=params["Procedure"],
        class_id=params["ClassId"],
        source_context=params["SourceContext"],
        session_context=params["SessionContext"],
        expire_time=params["ExpireTime"],
        storage_region=params["StorageRegion"],
    )
    return uploads.apply(ctx, caller.sub_app_id, request)


@action("CommitUpload", COMMIT_UPLOAD)
def commit_upload(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    result = uploads.commit(ctx, caller.sub_app_id, params["VodSessionKey"])
    # CommitUploadResponse has exactly these members; the task flow's id is found with
    # DescribeTasks(FileId=...) or in the NewFileUpload event (FileUploadTask.ProcedureTaskId).
    return {
        "FileId": result["FileId"],
        "MediaUrl": result["MediaUrl"],
        "CoverUrl": result["CoverUrl"],
    }
