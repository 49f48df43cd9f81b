"""Housekeeping: finished upload sessions are removed with everything they left in the store."""

from __future__ import annotations

from contextlib import suppress
from datetime import timedelta
from typing import Final

from sqlalchemy import delete, select

from anigraph.context import Context
from anigraph.db.models_uploads import MultipartUpload, UploadPart, UploadSession

SWEEP_GRACE: Final = timedelta(hours=1)
"""An open session is swept this long after its credential expired (a write that began just
before expiry may still be streaming)."""
COMMITTED_RETENTION: Final = timedelta(days=7)
"""Committed sessions are kept this long so a late repeated commit gets a clear error."""
SWEEP_BATCH: Final = 20


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
