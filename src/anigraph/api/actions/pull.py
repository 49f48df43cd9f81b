"""PullUpload (spec 2.5): fetch a URL into a new media item, as a task."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from anigraph.api.actions.processing import SESSION_CONTEXT, SESSION_ID, TASKS_PRIORITY
from anigraph.api.errors import ApiError, Code, invalid_parameter_value
from anigraph.api.params import INT64, STRING, Field, Object
from anigraph.api.registry import Caller, action
from anigraph.context import Context
from anigraph.services import processing, pull

MAX_URL = 2048


def check_url(name: str, url: str, code: str) -> str:
    """Shape only (http/https, a host, no credentials); the address is checked at fetch time,
    when it is resolved, so that DNS answers cannot change between check and use."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid_parameter_value(name, "an http or https URL is needed", code)
    if parts.username or parts.password:
        raise invalid_parameter_value(name, "credentials in the URL are not allowed", code)
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise invalid_parameter_value(name, "the port is not valid", code) from None
    return url.strip()


def check_procedure(ctx: Context, sub_app_id: int, name: str) -> None:
    """An unknown task-flow name is refused at request time, not after the download."""
    if not name:
        return
    from anigraph.services import procedures

    with ctx.db.session() as session:
        if procedures.find(session, sub_app_id, name) is None:
            raise invalid_parameter_value(
                "Procedure", f"no task flow named {name!r}", Code.INVALID_PARAMETER_VALUE_PROCEDURE
            )


PULL_UPLOAD = Object(
    {
        "MediaUrl": Field(
            STRING, required=True, code=Code.INVALID_PARAMETER_VALUE_MEDIA_URL, max_length=MAX_URL
        ),
        "MediaType": Field(STRING, default="", code=Code.INVALID_PARAMETER_VALUE_MEDIA_TYPE),
        "MediaName": Field(STRING, default="", max_length=256),
        "CoverUrl": Field(STRING, code=Code.INVALID_PARAMETER_VALUE_COVER_URL),
        "Procedure": Field(STRING, default="", code=Code.INVALID_PARAMETER_VALUE_PROCEDURE),
        "ExpireTime": Field(STRING, code=Code.INVALID_PARAMETER_VALUE_EXPIRE_TIME),
        "StorageRegion": Field(STRING, code=Code.INVALID_PARAMETER_VALUE_STORAGE_REGION),
        "ClassId": Field(INT64, default=0, code=Code.INVALID_PARAMETER_VALUE_CLASS_ID),
        "TasksPriority": TASKS_PRIORITY,
        "SessionContext": SESSION_CONTEXT,
        "SessionId": SESSION_ID,
        "ExtInfo": Field(STRING),
        "SourceContext": Field(STRING, default="", max_length=250),
        "MediaStoragePath": Field(STRING, code=Code.INVALID_PARAMETER_VALUE_MEDIA_STORAGE_PATH),
    }
)


@action("PullUpload", PULL_UPLOAD)
def pull_upload(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    url = check_url("MediaUrl", params["MediaUrl"], Code.INVALID_PARAMETER_VALUE_MEDIA_URL)
    if params.get("CoverUrl"):
        raise invalid_parameter_value(
            "CoverUrl", "covers are not supported", Code.INVALID_PARAMETER_VALUE_COVER_URL
        )
    if params.get("MediaStoragePath"):
        raise invalid_parameter_value(
            "MediaStoragePath",
            "this sub-application uses FileId mode",
            Code.INVALID_PARAMETER_VALUE_MEDIA_STORAGE_PATH,
        )
    check_procedure(ctx, caller.sub_app_id, params["Procedure"])
    request = pull.PullRequest(
        media_url=url,
        media_type=params["MediaType"].lower().lstrip("."),
        media_name=params["MediaName"],
        procedure=params["Procedure"],
        class_id=params["ClassId"],
        tasks_priority=params["TasksPriority"],
        session_context=params["SessionContext"],
        session_id=params["SessionId"],
        source_context=params["SourceContext"],
    )
    try:
        task_id = pull.create_pull_task(ctx, caller.sub_app_id, request)
    except processing.DuplicateSession:
        raise ApiError(
            Code.INVALID_PARAMETER_VALUE_SESSION_ID,
            "A pull with this SessionId was submitted within the last 3 days; the request is "
            "deduplicated.",
        ) from None
    return {"TaskId": task_id}
