"""CommitUpload: the uploaded file becomes a media item, at most once per session.

The staged object is published under the key ApplyUpload promised and probed, then ONE
transaction closes the session, creates the media item, queues ``NewFileUpload`` and starts the
task flow ApplyUpload named. A commit claims its session first, so a repeated or concurrent
commit never makes two media items, and the COS endpoint stops taking writes meanwhile.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any, Final

from anigraph.context import Context
from anigraph.db.models_uploads import UploadSession
from anigraph.domain.errors import TaskError
from anigraph.notify import outbox
from anigraph.services import media, procedures
from anigraph.services.uploads.errors import Refusal, UploadError
from anigraph.services.uploads.objects import local_file, move
from anigraph.services.uploads.requests import COVER_TYPES
from anigraph.services.uploads.sessions import session_refused

log = logging.getLogger("anigraph.uploads")

COMMIT_CLAIM_TIMEOUT: Final = timedelta(minutes=30)
"""A commit holds its session this long at most (publishing a 5 GiB object to a remote store
takes minutes); after that the claim is presumed dead and another commit may take it."""
_IMAGE_MAGIC: Final = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/bmp": (b"BM",),
}


def _open_session(ctx: Context, sub_app_id: int, vod_session_key: str) -> UploadSession:
    """The session, if this sub-application may commit it now."""
    with ctx.db.session() as session:
        row = session.get(UploadSession, vod_session_key) if vod_session_key else None
    # Unknown and foreign sessions look the same: a key is no oracle for other tenants.
    if row is None or row.sub_app_id != sub_app_id:
        raise session_refused("The VodSessionKey does not exist.")
    if row.state == "committed":
        raise session_refused("The upload of this VodSessionKey has already been committed.")
    if row.expires_at <= ctx.now():
        raise session_refused("The VodSessionKey has expired; apply for a new upload.")
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
            raise session_refused(
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
            Refusal.COVER_NOT_IMAGE,
            f"The uploaded cover is not a {row.cover_type} image; it was discarded. "
            "Upload it again, then commit.",
        )
    return True


def _publish_media(ctx: Context, row: UploadSession) -> None:
    """Put the uploaded media under its final key (the staged upload wins over a copy left by an
    interrupted commit); raise ``ResourceNotFound`` when nothing was uploaded."""
    store = ctx.store
    if store.stat(row.media_staging_key) is not None and move(
        ctx, row.media_staging_key, row.media_key
    ):
        return
    if store.stat(row.media_key) is None:
        raise UploadError(
            Refusal.NOTHING_UPLOADED,
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
            Refusal.NOT_MEDIA,
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
                move(ctx, published, staging)
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
        if has_cover and not move(ctx, row.cover_staging_key, row.cover_key):
            has_cover = ctx.store.stat(row.cover_key) is not None
        cover_url = ctx.file_url(row.cover_key) if has_cover else ""
        stored = ctx.store.stat(row.media_key)
        if stored is None:
            raise UploadError(Refusal.VANISHED, "The published media vanished; retry.")
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
            raise session_refused("The upload of this VodSessionKey was committed meanwhile.")
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
                    Refusal.PROCEDURE,
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
