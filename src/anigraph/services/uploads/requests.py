"""ApplyUpload's request: what may be uploaded, and the checks that normalise a request.

Shared by the API action and the browser/mobile flow (``api/ugc.py``), whose signature carries
the same options; a bad value is an :class:`UploadError` naming the parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from anigraph.context import Context
from anigraph.domain.wire import parse_iso
from anigraph.services.uploads.errors import Refusal, UploadError

REGION: Final = "local"
"""The one storage region; the same name MediaBasicInfo.StorageRegion reports."""

MEDIA_TYPES: Final = frozenset(
    {
        # video containers
        *("mp4", "m4v", "mov", "qt", "mkv", "webm", "avi", "flv", "f4v", "ts", "mts", "m2ts"),
        *("mpg", "mpeg", "mpe", "vob", "3gp", "3g2", "wmv", "asf", "ogv", "ogg", "mxf", "dv"),
        *("rm", "rmvb"),
        # audio (stored and described; animating them fails with SourceFileError.NoVideoMedia)
        *("mp3", "m4a", "aac", "wav", "flac", "opus", "wma", "amr"),
    }
)
"""Extensions ApplyUpload accepts as MediaType; the probe at commit decides what is really media."""

MANIFEST_TYPES: Final = frozenset({"m3u8", "mpd"})
"""Streaming manifests: vod-python-sdk uploads their segments as extra objects, which a session
with one media key cannot hold; refused at ApplyUpload with a clear message."""

COVER_TYPES: Final = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
}

NOTIFY_MODES: Final = frozenset({"Finish", "Change", "None"})
MEDIA_NAME_MAX: Final = 256
SOURCE_CONTEXT_MAX: Final = 250
SESSION_CONTEXT_MAX: Final = 1000
PROCEDURE_MAX: Final = 64
PRIORITY_MIN: Final = -10
PRIORITY_MAX: Final = 10

_MEDIA_TYPE_TEXT: Final = re.compile(r"[a-z0-9]{1,8}")


@dataclass(frozen=True)
class UploadRequest:
    """ApplyUpload's arguments (for the browser flow, those carried by the client signature)."""

    media_type: str
    media_name: str = ""
    cover_type: str = ""
    procedure: str = ""
    class_id: int = 0
    source_context: str = ""
    session_context: str = ""
    tasks_priority: int = 0
    tasks_notify_mode: str = "Finish"
    expire_time: str = ""
    storage_region: str = ""


def bad_value(reason: Refusal, name: str, message: str) -> UploadError:
    return UploadError(reason, f"Invalid value for parameter `{name}`: {message}")


def _extension(value: str) -> str:
    return value.strip().lower().removeprefix(".")


def _check_media_type(value: str) -> str:
    media_type = _extension(value)
    if media_type in MANIFEST_TYPES:
        raise bad_value(
            Refusal.MEDIA_TYPE,
            "MediaType",
            "HLS/DASH manifests cannot be uploaded here; upload a single media file.",
        )
    if not _MEDIA_TYPE_TEXT.fullmatch(media_type) or media_type not in MEDIA_TYPES:
        raise bad_value(
            Refusal.MEDIA_TYPE,
            "MediaType",
            f"expected a media file extension such as mp4 or mov, got `{value[:16]}`",
        )
    return media_type


def _check_cover_type(value: str) -> str:
    if not value:
        return ""
    cover_type = _extension(value)
    if cover_type not in COVER_TYPES:
        raise bad_value(
            Refusal.COVER_TYPE,
            "CoverType",
            f"expected one of {', '.join(sorted(COVER_TYPES))}, got `{value[:16]}`",
        )
    return cover_type


def _check_expire_time(ctx: Context, value: str) -> str:
    if not value:
        return ""
    try:
        moment = parse_iso(value)
    except ValueError:
        raise bad_value(Refusal.EXPIRE_TIME, "ExpireTime", "expected an ISO 8601 time") from None
    if moment <= ctx.now():
        raise bad_value(Refusal.EXPIRE_TIME, "ExpireTime", "it is in the past")
    return value.strip()


def check_request(ctx: Context, request: UploadRequest) -> UploadRequest:
    """The request with its values normalised; raises :class:`UploadError` for a bad one."""
    if len(request.media_name) > MEDIA_NAME_MAX:
        raise bad_value(Refusal.BAD_VALUE, "MediaName", f"at most {MEDIA_NAME_MAX} characters")
    if len(request.source_context) > SOURCE_CONTEXT_MAX:
        raise bad_value(
            Refusal.BAD_VALUE,
            "SourceContext",
            f"at most {SOURCE_CONTEXT_MAX} characters",
        )
    if len(request.session_context) > SESSION_CONTEXT_MAX:
        raise bad_value(
            Refusal.SESSION_CONTEXT,
            "SessionContext",
            f"at most {SESSION_CONTEXT_MAX} characters",
        )
    if len(request.procedure) > PROCEDURE_MAX:
        raise bad_value(Refusal.PROCEDURE, "Procedure", "the name is too long")
    if request.class_id < 0:
        raise bad_value(Refusal.CLASS_ID, "ClassId", "must not be negative")
    if not PRIORITY_MIN <= request.tasks_priority <= PRIORITY_MAX:
        raise bad_value(
            Refusal.BAD_VALUE,
            "TasksPriority",
            f"must be in [{PRIORITY_MIN}, {PRIORITY_MAX}]",
        )
    notify_mode = request.tasks_notify_mode or "Finish"
    if notify_mode not in NOTIFY_MODES:
        raise bad_value(Refusal.BAD_VALUE, "TasksNotifyMode", "must be Finish, Change or None")
    return UploadRequest(
        media_type=_check_media_type(request.media_type),
        media_name=request.media_name,
        cover_type=_check_cover_type(request.cover_type),
        procedure=request.procedure,
        class_id=request.class_id,
        source_context=request.source_context,
        session_context=request.session_context,
        tasks_priority=request.tasks_priority,
        tasks_notify_mode=notify_mode,
        expire_time=_check_expire_time(ctx, request.expire_time),
        # One region only: a requested region is accepted and answered with ours, so code
        # written for Tencent (which always names a region) works unchanged.
        storage_region=REGION,
    )
