"""Server-side uploads: ApplyUpload, the COS-compatible object writes, CommitUpload.

The flow, as Tencent's SDKs drive it (spec 2.5, 6.1):

1. ``apply`` opens an upload session: the store chooses the object keys, a random temporary
   credential is minted, and everything CommitUpload will need is stored with the session.
2. The client writes the object with the COS protocol (``api/cos.py``), signing with the
   temporary credential, which may write only this session's media and cover keys, only until
   it expires. The bytes land under a staging key the client never learns, so nothing is
   visible in ``/files`` or in media before the commit.
3. ``commit`` publishes the staged object under the key ApplyUpload promised, probes it, then in
   ONE transaction: closes the session, creates the media item, queues ``NewFileUpload`` and
   starts the task flow ApplyUpload named. A session commits at most once, so a repeated or
   concurrent commit never makes two media items.

Errors are :class:`UploadError` (an :class:`ApiError`, so it carries a Tencent ``Code``): the
interface is shared by the API actions and the browser/mobile upload endpoint (``api/ugc.py``),
and both answer in Tencent's terms. The COS endpoint's own failures are :class:`ObjectError`
with COS error codes (``NoSuchUpload``, ``InvalidPart``...), which ``api/cos.py`` renders as COS
XML.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import mimetypes
import re
import secrets
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from anigraph.api.errors import ApiError, Code
from anigraph.db.models_uploads import MultipartUpload, UploadPart, UploadSession
from anigraph.domain.errors import TaskError
from anigraph.notify import outbox
from anigraph.services import media, procedures
from anigraph.services.context import Context
from anigraph.services.wire import parse_iso

log = logging.getLogger("anigraph.uploads")

SESSION_SECONDS: Final = 6 * 3600
"""How long a session's temporary credential may write, and the session may be committed.
Generous enough for the largest upload (5 GiB) over a slow link; CommitUpload after that is
refused with ``InvalidParameterValue.VodSessionKey`` (reliability checklist M18)."""

MAX_SESSION_SECONDS: Final = 48 * 3600
"""``resume`` never extends a session past this age: an upload session is not a lasting key."""

REGION: Final = "local"
"""The one storage region; the same name MediaBasicInfo.StorageRegion reports."""

BUCKET_PREFIX: Final = "anigraph"
"""Buckets are ``anigraph-<SubAppId>``: COS's ``name-appid`` shape, which cos-js-sdk insists on.
The bucket is informational only: with ``CosConfig(Domain=...)`` it never reaches the server."""

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

MAX_PART_NUMBER: Final = 10_000
"""COS part numbers run from 1 to 10000."""
MIN_PART_SIZE: Final = 1024 * 1024
"""Every part but the last must be at least 1 MiB (COS's rule; the SDK's default part size)."""
MAX_OPEN_MULTIPART: Final = 16
"""Open multipart uploads per session: each holds staged parts, so the count is bounded."""
MAX_LIST: Final = 1000
"""Most uploads or parts in one listing (COS's ``max-uploads`` / ``max-parts`` ceiling)."""

COMMIT_CLAIM_TIMEOUT: Final = timedelta(minutes=30)
"""A commit holds its session this long at most (publishing a 5 GiB object to a remote store
takes minutes); after that the claim is presumed dead and another commit may take it."""
SWEEP_GRACE: Final = timedelta(hours=1)
"""An open session is swept this long after its credential expired (a write that began just
before expiry may still be streaming)."""
COMMITTED_RETENTION: Final = timedelta(days=7)
"""Committed sessions are kept this long so a late repeated commit gets a clear error."""
SWEEP_BATCH: Final = 20

_MEDIA_TYPE_TEXT: Final = re.compile(r"[a-z0-9]{1,8}")
_IMAGE_MAGIC: Final = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/bmp": (b"BM",),
}


class UploadError(ApiError):
    """A refused ApplyUpload or CommitUpload, with its Tencent code (spec 2.5, 7.4)."""


class ObjectError(Exception):
    """A refused COS object operation; ``code`` is a COS error code such as ``NoSuchUpload``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


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


# --- ApplyUpload ---------------------------------------------------------------------------


def _bad(code: str, name: str, message: str) -> UploadError:
    return UploadError(code, f"Invalid value for parameter `{name}`: {message}")


def _extension(value: str) -> str:
    return value.strip().lower().removeprefix(".")


def _check_media_type(value: str) -> str:
    media_type = _extension(value)
    if media_type in MANIFEST_TYPES:
        raise _bad(
            Code.INVALID_PARAMETER_VALUE_MEDIA_TYPE,
            "MediaType",
            "HLS/DASH manifests cannot be uploaded here; upload a single media file.",
        )
    if not _MEDIA_TYPE_TEXT.fullmatch(media_type) or media_type not in MEDIA_TYPES:
        raise _bad(
            Code.INVALID_PARAMETER_VALUE_MEDIA_TYPE,
            "MediaType",
            f"expected a media file extension such as mp4 or mov, got `{value[:16]}`",
        )
    return media_type


def _check_cover_type(value: str) -> str:
    if not value:
        return ""
    cover_type = _extension(value)
    if cover_type not in COVER_TYPES:
        raise _bad(
            Code.INVALID_PARAMETER_VALUE_COVER_TYPE,
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
        raise _bad(
            Code.INVALID_PARAMETER_VALUE_EXPIRE_TIME, "ExpireTime", "expected an ISO 8601 time"
        ) from None
    if moment <= ctx.now():
        raise _bad(Code.INVALID_PARAMETER_VALUE_EXPIRE_TIME, "ExpireTime", "it is in the past")
    return value.strip()


def _check_request(ctx: Context, request: UploadRequest) -> UploadRequest:
    """The request with its values normalised; raises :class:`UploadError` for a bad one."""
    if len(request.media_name) > MEDIA_NAME_MAX:
        raise _bad(
            Code.INVALID_PARAMETER_VALUE, "MediaName", f"at most {MEDIA_NAME_MAX} characters"
        )
    if len(request.source_context) > SOURCE_CONTEXT_MAX:
        raise _bad(
            Code.INVALID_PARAMETER_VALUE,
            "SourceContext",
            f"at most {SOURCE_CONTEXT_MAX} characters",
        )
    if len(request.session_context) > SESSION_CONTEXT_MAX:
        raise _bad(
            Code.INVALID_PARAMETER_VALUE_SESSION_CONTEXT_TOO_LONG,
            "SessionContext",
            f"at most {SESSION_CONTEXT_MAX} characters",
        )
    if len(request.procedure) > PROCEDURE_MAX:
        raise _bad(Code.INVALID_PARAMETER_VALUE_PROCEDURE, "Procedure", "the name is too long")
    if request.class_id < 0:
        raise _bad(Code.INVALID_PARAMETER_VALUE_CLASS_ID, "ClassId", "must not be negative")
    if not PRIORITY_MIN <= request.tasks_priority <= PRIORITY_MAX:
        raise _bad(
            Code.INVALID_PARAMETER_VALUE,
            "TasksPriority",
            f"must be in [{PRIORITY_MIN}, {PRIORITY_MAX}]",
        )
    notify_mode = request.tasks_notify_mode or "Finish"
    if notify_mode not in NOTIFY_MODES:
        raise _bad(
            Code.INVALID_PARAMETER_VALUE, "TasksNotifyMode", "must be Finish, Change or None"
        )
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


def bucket_of(sub_app_id: int) -> str:
    return f"{BUCKET_PREFIX}-{sub_app_id}"


def _new_secret_id() -> str:
    # Tencent's temporary SecretIds start with AKID too; the random part makes it unguessable.
    return "AKID" + secrets.token_hex(16)


def apply(ctx: Context, sub_app_id: int, request: UploadRequest) -> dict[str, Any]:
    """ApplyUpload: open an upload session; returns the ApplyUpload response fields."""
    checked = _check_request(ctx, request)
    if checked.procedure:
        with ctx.db.session() as session:
            if procedures.find(session, sub_app_id, checked.procedure) is None:
                raise _bad(
                    Code.INVALID_PARAMETER_VALUE_PROCEDURE,
                    "Procedure",
                    f"no task flow named `{checked.procedure}` in this sub-application",
                )
    store = ctx.store
    suffix = f".{checked.media_type}"
    media_key = store.new_key(sub_app_id, "media", suffix)
    media_staging_key = store.new_key(sub_app_id, "upload", suffix)
    cover_key = cover_staging_key = ""
    if checked.cover_type:
        cover_suffix = f".{checked.cover_type}"
        cover_key = store.new_key(sub_app_id, "media", cover_suffix)
        cover_staging_key = store.new_key(sub_app_id, "upload", cover_suffix)
    now = ctx.now()
    expires_at = now + timedelta(seconds=SESSION_SECONDS)
    row = UploadSession(
        vod_session_key=secrets.token_urlsafe(32),
        sub_app_id=sub_app_id,
        state="open",
        bucket=bucket_of(sub_app_id),
        region=checked.storage_region,
        media_key=media_key,
        media_staging_key=media_staging_key,
        cover_key=cover_key,
        cover_staging_key=cover_staging_key,
        media_name=checked.media_name,
        media_type=checked.media_type,
        cover_type=checked.cover_type,
        procedure=checked.procedure,
        class_id=checked.class_id,
        source_context=checked.source_context,
        session_context=checked.session_context,
        tasks_priority=checked.tasks_priority,
        tasks_notify_mode=checked.tasks_notify_mode,
        expire_time=checked.expire_time,
        temp_secret_id=_new_secret_id(),
        temp_secret_key=secrets.token_urlsafe(30),
        temp_token=secrets.token_hex(32),
        expires_at=expires_at,
        file_id="",
        created_at=now,
        committed_at=None,
    )
    with ctx.db.session() as session:
        session.add(row)
    try:
        sweep(ctx, limit=SWEEP_BATCH)
    except Exception:  # housekeeping must never fail the request that triggered it
        log.exception("upload session sweep failed")
    return _apply_answer(row)


def resume(ctx: Context, sub_app_id: int, vod_session_key: str) -> dict[str, Any]:
    """ApplyUpload's answer again for an open session, its credential valid for longer.

    What the browser and mobile SDKs ask for when they resume an upload or renew credentials
    that are about to expire. The credential is kept, not rotated (parts in flight are signed
    with it), and its life is extended by ``SESSION_SECONDS`` from now, but never past
    ``MAX_SESSION_SECONDS`` after the session was opened.
    """
    now = ctx.now()
    with ctx.db.session() as session:
        row = session.get(UploadSession, vod_session_key) if vod_session_key else None
        if row is None or row.sub_app_id != sub_app_id:
            raise _session_refused("The VodSessionKey does not exist.")
        if row.state != "open":
            raise _session_refused(
                "The upload of this VodSessionKey is being committed, or has been committed."
            )
        if row.expires_at <= now:
            raise _session_refused("The VodSessionKey has expired; apply for a new upload.")
        row.expires_at = max(
            row.expires_at,
            min(
                now + timedelta(seconds=SESSION_SECONDS),
                row.created_at + timedelta(seconds=MAX_SESSION_SECONDS),
            ),
        )
        return _apply_answer(row)


def _apply_answer(row: UploadSession) -> dict[str, Any]:
    return {
        "StorageBucket": row.bucket,
        "StorageRegion": row.region,
        "VodSessionKey": row.vod_session_key,
        "MediaStoragePath": f"/{row.media_key}",
        "CoverStoragePath": f"/{row.cover_key}" if row.cover_key else "",
        "TempCertificate": {
            "SecretId": row.temp_secret_id,
            "SecretKey": row.temp_secret_key,
            "Token": row.temp_token,
            "ExpiredTime": int(row.expires_at.timestamp()),
        },
    }


# --- CommitUpload --------------------------------------------------------------------------


def _session_refused(message: str) -> UploadError:
    return UploadError(Code.INVALID_PARAMETER_VALUE_VOD_SESSION_KEY, message)


def _open_session(ctx: Context, sub_app_id: int, vod_session_key: str) -> UploadSession:
    """The session, if this sub-application may commit it now."""
    with ctx.db.session() as session:
        row = session.get(UploadSession, vod_session_key) if vod_session_key else None
    # Unknown and foreign sessions look the same: a key is no oracle for other tenants.
    if row is None or row.sub_app_id != sub_app_id:
        raise _session_refused("The VodSessionKey does not exist.")
    if row.state == "committed":
        raise _session_refused("The upload of this VodSessionKey has already been committed.")
    if row.expires_at <= ctx.now():
        raise _session_refused("The VodSessionKey has expired; apply for a new upload.")
    return row


def _claim(ctx: Context, session_key: str) -> str:
    """Take the session for one commit (state ``committing``); returns the claim token.

    One commit at a time is what makes the steps outside the final transaction (publishing,
    probing) safe: no second commit moves or deletes the object under the first, and the COS
    endpoint stops taking writes. A claim older than ``COMMIT_CLAIM_TIMEOUT`` is from a commit
    that died and may be taken over.
    """
    now = ctx.now()
    with ctx.db.session() as session:
        row = session.get(UploadSession, session_key, with_for_update=True)
        stale = (
            row is not None
            and row.state == "committing"
            and (
                row.commit_started_at is None or row.commit_started_at < now - COMMIT_CLAIM_TIMEOUT
            )
        )
        if row is None or not (row.state == "open" or stale):
            raise _session_refused(
                "The upload of this VodSessionKey is being committed, or has been committed."
            )
        token = secrets.token_hex(16)
        row.state, row.commit_claim, row.commit_started_at = "committing", token, now
        return token


def _release(ctx: Context, session_key: str, token: str) -> None:
    """Give a failed commit's claim back: the session is open again for another try."""
    try:
        with ctx.db.session() as session:
            row = session.get(UploadSession, session_key, with_for_update=True)
            if row is not None and row.state == "committing" and row.commit_claim == token:
                row.state, row.commit_claim, row.commit_started_at = "open", "", None
    except Exception:  # the claim times out on its own; the original error matters more
        log.exception("cannot release the commit claim of an upload session")


def content_type_of(key: str) -> str:
    """The content type an object is stored with, from its key's extension."""
    suffix = Path(key).suffix.lower()
    known = COVER_TYPES.get(suffix.removeprefix("."))
    if known:
        return known
    return mimetypes.guess_type(f"x{suffix}")[0] or "application/octet-stream"


def _move(ctx: Context, source: str, target: str) -> bool:
    """Publish ``source``'s content under ``target`` and remove ``source``; False if it is gone.

    A rename where the store has real files; a streamed copy otherwise.
    """
    store = ctx.store
    path = store.local_path(source)
    try:
        if path is not None:
            store.put_file(target, path, content_type_of(target), move=True)
        else:
            with store.writer(target, content_type_of(target)) as out:
                for chunk in store.open(source):
                    out.write(chunk)
    except FileNotFoundError:
        return False  # nothing (left) to move
    store.delete(source)  # the copy's original, or (after a rename) the metadata left behind
    return True


@contextmanager
def local_file(ctx: Context, key: str) -> Iterator[Path]:
    """A real file with the object's content, for the probe: the store's own file when it has
    one, else a temporary download (deleted afterwards)."""
    path = ctx.store.local_path(key)
    if path is not None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="anigraph-upload-") as folder:
        target = Path(folder) / f"object{Path(key).suffix}"
        with target.open("wb") as out:
            for chunk in ctx.store.open(key):
                out.write(chunk)
        yield target


def _check_cover(ctx: Context, row: UploadSession) -> bool:
    """Whether a cover was uploaded; raises ``FailedOperation.CoverType`` for a non-image."""
    if not row.cover_staging_key or ctx.store.stat(row.cover_staging_key) is None:
        return False
    expected = COVER_TYPES[row.cover_type]
    try:
        head = b"".join(ctx.store.open(row.cover_staging_key, 0, 15))
    except FileNotFoundError:
        return False
    magic = _IMAGE_MAGIC.get(expected)
    ok = (
        head[:4] == b"RIFF" and head[8:12] == b"WEBP"
        if expected == "image/webp"
        else magic is not None and head.startswith(magic)
    )
    if not ok:
        ctx.store.delete(row.cover_staging_key)
        raise UploadError(
            Code.FAILED_OPERATION_COVER_TYPE,
            f"The uploaded cover is not a {row.cover_type} image; it was discarded. "
            "Upload it again, then commit.",
        )
    return True


def _publish_media(ctx: Context, row: UploadSession) -> None:
    """Put the uploaded media under its final key (the staged upload wins over a copy left by an
    interrupted commit); raise ``ResourceNotFound`` when nothing was uploaded."""
    store = ctx.store
    if store.stat(row.media_staging_key) is not None and _move(
        ctx, row.media_staging_key, row.media_key
    ):
        return
    if store.stat(row.media_key) is None:
        raise UploadError(
            Code.RESOURCE_NOT_FOUND,
            f"No file has been uploaded to MediaStoragePath /{row.media_key}; upload the media, "
            "then commit.",
        )


def _probe(ctx: Context, row: UploadSession) -> dict[str, Any]:
    """MetaData of the published media; a non-media file is removed and refused."""
    try:
        with local_file(ctx, row.media_key) as path:
            return media.probe_file(ctx, path)
    except TaskError as error:
        ctx.store.delete(row.media_key)
        raise UploadError(
            Code.FAILED_OPERATION,
            f"The uploaded file is not usable media ({error.code.value}: {error.message}); it "
            "was discarded. Upload a media file with the same credentials, then commit.",
        ) from None


def _unpublish(ctx: Context, row: UploadSession, cover: bool) -> None:
    """Undo the publication after a failed commit: back to staging, invisible again, and the
    next commit of this session starts from there."""
    pairs = [(row.media_key, row.media_staging_key)]
    if cover:
        pairs.append((row.cover_key, row.cover_staging_key))
    for published, staging in pairs:
        try:
            if ctx.store.stat(published) is not None:
                _move(ctx, published, staging)
        except Exception:
            log.exception("cannot move %s back to staging", published)


def commit(ctx: Context, sub_app_id: int, vod_session_key: str) -> dict[str, Any]:
    """CommitUpload: the uploaded file becomes a media item; returns FileId, MediaUrl, CoverUrl
    and ProcedureTaskId (``""`` when ApplyUpload named no task flow).

    A failure at any step leaves no half state: the published object goes back to staging (or,
    when it is not media, is deleted), the claim is released, and the session can be committed
    again.
    """
    row = _open_session(ctx, sub_app_id, vod_session_key)
    token = _claim(ctx, row.vod_session_key)
    published = has_cover = False
    try:
        has_cover = _check_cover(ctx, row)
        _publish_media(ctx, row)
        published = True
        meta = _probe(ctx, row)
        if has_cover and not _move(ctx, row.cover_staging_key, row.cover_key):
            has_cover = ctx.store.stat(row.cover_key) is not None
        cover_url = ctx.file_url(row.cover_key) if has_cover else ""
        stored = ctx.store.stat(row.media_key)
        if stored is None:
            raise UploadError(Code.INTERNAL_ERROR, "The published media vanished; retry.")
        file_id, task_id = _record(ctx, row, token, stored.size, meta, cover_url)
    except BaseException:
        if published:
            _unpublish(ctx, row, has_cover)
        _release(ctx, row.vod_session_key, token)
        raise
    if task_id:
        ctx.wake_workers()
    return {
        "FileId": file_id,
        "MediaUrl": ctx.file_url(row.media_key),
        "CoverUrl": cover_url,
        "ProcedureTaskId": task_id,
    }


def _record(
    ctx: Context,
    staged: UploadSession,
    token: str,
    size: int,
    meta: dict[str, Any],
    cover_url: str,
) -> tuple[str, str]:
    """The commit transaction: session closed, media row, NewFileUpload, task flow started."""
    with ctx.db.session() as session:
        row = session.get(UploadSession, staged.vod_session_key, with_for_update=True)
        if row is None or row.state != "committing" or row.commit_claim != token:
            # Only if this commit stalled past the claim timeout and another took over.
            raise _session_refused("The upload of this VodSessionKey was committed meanwhile.")
        item = media.insert_media(
            session,
            ctx,
            row.sub_app_id,
            store_key=row.media_key,
            size=size,
            meta_data=meta,
            name=row.media_name,
            media_type=row.media_type,
            source_type="Upload",
            source_context=row.source_context,
            class_id=row.class_id,
        )
        if cover_url:
            item.cover_key = row.cover_key
        session.flush()
        task_id = ""
        if row.procedure:
            try:
                task_id = procedures.start_procedure(
                    session,
                    ctx,
                    row.sub_app_id,
                    row.procedure,
                    item.file_id,
                    priority=row.tasks_priority,
                    notify_mode=row.tasks_notify_mode,
                    session_context=row.session_context,
                    action="ProcessMediaByProcedure",
                )
            except procedures.ProcedureNotFound:
                raise UploadError(
                    Code.INVALID_PARAMETER_VALUE_PROCEDURE,
                    f"The task flow `{row.procedure}` named at ApplyUpload no longer exists; "
                    "create it again, then commit.",
                ) from None
        outbox.emit(
            session,
            ctx,
            row.sub_app_id,
            "NewFileUpload",
            {
                "FileId": item.file_id,
                # Links marked, built when the event is sent or pulled.
                "MediaBasicInfo": media.basic_info(ctx, item),
                "ProcedureTaskId": task_id,
                "ReviewAudioVideoTaskId": "",
                "MetaData": meta,
            },
        )
        row.state, row.commit_claim = "committed", ""
        row.file_id = item.file_id
        row.committed_at = ctx.now()
        return item.file_id, task_id


# --- the COS endpoint's state -----------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """What one temporary credential may do: write its session's objects until it expires."""

    session_key: str
    sub_app_id: int
    bucket: str
    secret_key: str
    token: str
    expires_at: datetime
    is_open: bool
    objects: dict[str, str]
    """COS object key -> the staging store key its bytes go to."""

    def staging_key(self, object_key: str) -> str | None:
        return self.objects.get(object_key)

    def token_matches(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.token.encode())


def grant_for(ctx: Context, secret_id: str) -> Grant | None:
    """The grant of a temporary SecretId, or None for an unknown one."""
    if not secret_id or len(secret_id) > 64:
        return None
    with ctx.db.session() as session:
        row = session.scalars(
            select(UploadSession).where(UploadSession.temp_secret_id == secret_id)
        ).first()
    if row is None:
        return None
    objects = {row.media_key: row.media_staging_key}
    if row.cover_key:
        objects[row.cover_key] = row.cover_staging_key
    return Grant(
        session_key=row.vod_session_key,
        sub_app_id=row.sub_app_id,
        bucket=row.bucket,
        secret_key=row.temp_secret_key,
        token=row.temp_token,
        expires_at=row.expires_at,
        is_open=row.state == "open",
        objects=objects,
    )


def session_is_open(ctx: Context, session_key: str) -> bool:
    """Re-checked after a write: an object written after the commit must not linger."""
    with ctx.db.session() as session:
        row = session.get(UploadSession, session_key)
        return row is not None and row.state == "open" and row.expires_at > ctx.now()


@dataclass(frozen=True)
class MultipartInfo:
    upload_id: str
    object_key: str
    created_at: datetime


@dataclass(frozen=True)
class PartInfo:
    number: int
    md5: str
    size: int
    updated_at: datetime

    @property
    def etag(self) -> str:
        return f'"{self.md5}"'


def _no_such_upload() -> ObjectError:
    return ObjectError(
        "NoSuchUpload",
        "The specified multipart upload does not exist: it was never initiated, or it was "
        "completed or aborted.",
    )


def _locked_upload(
    session: Session, grant: Grant, object_key: str, upload_id: str
) -> MultipartUpload:
    """The open upload ``upload_id`` of this grant's object, locked for the transaction."""
    row = session.get(MultipartUpload, upload_id, with_for_update=True) if upload_id else None
    if (
        row is None
        or row.vod_session_key != grant.session_key
        or row.object_key != object_key
        or row.state != "open"
    ):
        raise _no_such_upload()
    return row


def _info(row: MultipartUpload) -> MultipartInfo:
    return MultipartInfo(row.upload_id, row.object_key, row.created_at)


def initiate_multipart(ctx: Context, grant: Grant, object_key: str) -> MultipartInfo:
    """Start a multipart upload of one of the grant's objects."""
    with ctx.db.session() as session:
        count = session.scalar(
            select(func.count())
            .select_from(MultipartUpload)
            .where(MultipartUpload.vod_session_key == grant.session_key)
        )
        if (count or 0) >= MAX_OPEN_MULTIPART:
            raise ObjectError(
                "InvalidRequest",
                f"This upload session already has {MAX_OPEN_MULTIPART} multipart uploads in "
                "progress; complete or abort one first.",
            )
        row = MultipartUpload(
            upload_id=secrets.token_hex(20),
            vod_session_key=grant.session_key,
            object_key=object_key,
            state="open",
            created_at=ctx.now(),
        )
        session.add(row)
        return _info(row)


def list_multipart(ctx: Context, grant: Grant, prefix: str) -> list[MultipartInfo]:
    """The grant's open multipart uploads whose key starts with ``prefix``, oldest first (the
    SDK resumes the last one listed for its key)."""
    with ctx.db.session() as session:
        rows = session.scalars(
            select(MultipartUpload)
            .where(
                MultipartUpload.vod_session_key == grant.session_key,
                MultipartUpload.state == "open",
            )
            .order_by(MultipartUpload.object_key, MultipartUpload.created_at)
            .limit(MAX_LIST)
        ).all()
        return [_info(row) for row in rows if row.object_key.startswith(prefix)]


def list_parts(
    ctx: Context, grant: Grant, object_key: str, upload_id: str, marker: int, limit: int
) -> tuple[list[PartInfo], bool]:
    """Parts numbered above ``marker``, at most ``limit``; and whether more follow."""
    with ctx.db.session() as session:
        _locked_upload(session, grant, object_key, upload_id)
        rows = session.scalars(
            select(UploadPart)
            .where(UploadPart.upload_id == upload_id, UploadPart.part_number > marker)
            .order_by(UploadPart.part_number)
            .limit(limit + 1)
        ).all()
    parts = [PartInfo(r.part_number, r.md5, r.size, r.updated_at) for r in rows]
    return parts[:limit], len(parts) > limit


def part_budget(ctx: Context, grant: Grant, object_key: str, upload_id: str, number: int) -> int:
    """How many bytes part ``number`` may hold without the whole object passing the size cap;
    checked before streaming so an oversized part is cut off early (``record_part`` re-checks
    under a lock)."""
    with ctx.db.session() as session:
        _locked_upload(session, grant, object_key, upload_id)
        others = session.scalar(
            select(func.coalesce(func.sum(UploadPart.size), 0)).where(
                UploadPart.upload_id == upload_id, UploadPart.part_number != number
            )
        )
    return max(ctx.settings.max_upload_bytes - int(others or 0), 0)


def new_part_key(ctx: Context, grant: Grant) -> str:
    return ctx.store.new_key(grant.sub_app_id, "upload", "")


def _too_large(ctx: Context) -> ObjectError:
    return ObjectError(
        "EntityTooLarge",
        f"Your proposed upload exceeds the maximum allowed object size of "
        f"{ctx.settings.max_upload_bytes} bytes.",
    )


def record_part(
    ctx: Context,
    grant: Grant,
    object_key: str,
    upload_id: str,
    number: int,
    *,
    md5: str,
    size: int,
    store_key: str,
) -> None:
    """Register a received part (already stored under ``store_key``), replacing an earlier part
    of the same number. On refusal the new part's object is deleted, so nothing is left over."""
    replaced = ""
    try:
        with ctx.db.session() as session:
            _locked_upload(session, grant, object_key, upload_id)
            others = session.scalar(
                select(func.coalesce(func.sum(UploadPart.size), 0)).where(
                    UploadPart.upload_id == upload_id, UploadPart.part_number != number
                )
            )
            if int(others or 0) + size > ctx.settings.max_upload_bytes:
                raise _too_large(ctx)
            part = session.get(UploadPart, (upload_id, number))
            if part is None:
                session.add(
                    UploadPart(
                        upload_id=upload_id,
                        part_number=number,
                        md5=md5,
                        size=size,
                        store_key=store_key,
                        updated_at=ctx.now(),
                    )
                )
            else:
                replaced = part.store_key
                part.md5, part.size, part.store_key = md5, size, store_key
                part.updated_at = ctx.now()
    except BaseException:
        ctx.store.delete(store_key)
        raise
    if replaced and replaced != store_key:
        ctx.store.delete(replaced)


def _check_part_list(
    ctx: Context, wanted: Sequence[tuple[int, str]], have: dict[int, UploadPart]
) -> list[UploadPart]:
    if not wanted:
        raise ObjectError("MalformedXML", "The part list is empty.")
    numbers = [number for number, _ in wanted]
    if any(b <= a for a, b in itertools.pairwise(numbers)):
        raise ObjectError(
            "InvalidPartOrder", "The list of parts was not in ascending order of part number."
        )
    chosen: list[UploadPart] = []
    for number, etag in wanted:
        part = have.get(number)
        if part is None or etag.strip().strip('"').lower() != part.md5:
            raise ObjectError(
                "InvalidPart",
                f"Part {number} has not been uploaded, or its ETag does not match.",
            )
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < MIN_PART_SIZE:
            raise ObjectError(
                "EntityTooSmall",
                f"Part {part.part_number} is smaller than {MIN_PART_SIZE} bytes; only the last "
                "part may be smaller.",
            )
    if sum(part.size for part in chosen) > ctx.settings.max_upload_bytes:
        raise _too_large(ctx)
    return chosen


def _set_upload_state(ctx: Context, upload_id: str, state: str) -> None:
    with ctx.db.session() as session:
        row = session.get(MultipartUpload, upload_id)
        if row is not None:
            row.state = state


def complete_multipart(
    ctx: Context,
    grant: Grant,
    object_key: str,
    upload_id: str,
    wanted: Sequence[tuple[int, str]],
) -> str:
    """Join the listed parts into the object; returns its ETag, ``"<md5 of part md5s>-<n>"``.

    The upload is claimed first (state ``completing``), so a concurrent complete, part or abort
    sees ``NoSuchUpload`` instead of racing the join; a failed join releases the claim.
    """
    staging_key = grant.staging_key(object_key)
    if staging_key is None:
        raise _no_such_upload()
    with ctx.db.session() as session:
        _locked_upload(session, grant, object_key, upload_id)
        have = {
            part.part_number: part
            for part in session.scalars(select(UploadPart).where(UploadPart.upload_id == upload_id))
        }
        chosen = [(part.store_key, part.md5) for part in _check_part_list(ctx, wanted, have)]
        all_keys = [part.store_key for part in have.values()]
        session.get_one(MultipartUpload, upload_id).state = "completing"
    try:
        with ctx.store.writer(staging_key, content_type_of(object_key)) as out:
            for part_key, _ in chosen:
                for chunk in ctx.store.open(part_key):
                    out.write(chunk)
    except BaseException:
        _set_upload_state(ctx, upload_id, "open")
        raise
    with ctx.db.session() as session:
        session.execute(delete(UploadPart).where(UploadPart.upload_id == upload_id))
        session.execute(delete(MultipartUpload).where(MultipartUpload.upload_id == upload_id))
    for key in all_keys:
        ctx.store.delete(key)
    if not session_is_open(ctx, grant.session_key):
        ctx.store.delete(staging_key)
        raise ObjectError("AccessDenied", "The upload session was committed or has expired.")
    digest = hashlib.md5(usedforsecurity=False)
    for _, md5 in chosen:
        digest.update(bytes.fromhex(md5))
    return f'"{digest.hexdigest()}-{len(chosen)}"'


def abort_multipart(ctx: Context, grant: Grant, object_key: str, upload_id: str) -> None:
    """Drop a multipart upload and its parts."""
    with ctx.db.session() as session:
        _locked_upload(session, grant, object_key, upload_id)
        keys = list(
            session.scalars(select(UploadPart.store_key).where(UploadPart.upload_id == upload_id))
        )
        session.execute(delete(UploadPart).where(UploadPart.upload_id == upload_id))
        session.execute(delete(MultipartUpload).where(MultipartUpload.upload_id == upload_id))
    for key in keys:
        ctx.store.delete(key)


# --- housekeeping -------------------------------------------------------------------------------


def sweep(ctx: Context, *, limit: int = 100) -> int:
    """Remove up to ``limit`` finished sessions with everything they left in the store.

    Open sessions go one grace period after their credential expired (staged objects, parts,
    and a copy published by an interrupted commit); committed ones after a retention period
    (only their rows, and any object written after the commit). Blobs first, rows last: a crash
    in between leaves rows that the next sweep finds again, never an untracked blob.
    """
    now = ctx.now()
    with ctx.db.session() as session:
        rows = session.scalars(
            select(UploadSession)
            .where(
                (
                    (UploadSession.state != "committed")
                    & (UploadSession.expires_at < now - SWEEP_GRACE)
                )
                | (
                    (UploadSession.state == "committed")
                    & (UploadSession.committed_at < now - COMMITTED_RETENTION)
                )
            )
            .limit(limit)
        ).all()
        work: list[tuple[str, list[str], list[str]]] = []
        for row in rows:
            upload_ids = list(
                session.scalars(
                    select(MultipartUpload.upload_id).where(
                        MultipartUpload.vod_session_key == row.vod_session_key
                    )
                )
            )
            keys = [row.media_staging_key, row.cover_staging_key]
            if row.state != "committed":
                keys += [row.media_key, row.cover_key]
            if upload_ids:
                keys += session.scalars(
                    select(UploadPart.store_key).where(UploadPart.upload_id.in_(upload_ids))
                )
            work.append((row.vod_session_key, upload_ids, [key for key in keys if key]))
    for session_key, upload_ids, keys in work:
        for key in keys:
            with suppress(FileNotFoundError):
                ctx.store.delete(key)
        with ctx.db.session() as session:
            if upload_ids:
                session.execute(delete(UploadPart).where(UploadPart.upload_id.in_(upload_ids)))
                session.execute(
                    delete(MultipartUpload).where(MultipartUpload.upload_id.in_(upload_ids))
                )
            session.execute(
                delete(UploadSession).where(UploadSession.vod_session_key == session_key)
            )
    return len(work)
