"""The multipart object protocol's state: uploads and their parts.

The COS endpoint (``api/cos``) streams each part into the store under a fresh key and records
it here; completing joins the listed parts into the session's staging object
(:mod:`.joining`). Sizes are
checked against ``max_upload_bytes`` before a part is streamed and again under a lock when it
is recorded, so parts sent concurrently cannot pass the cap together.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from anigraph.context import Context
from anigraph.db.models_uploads import MultipartUpload, UploadPart
from anigraph.services.uploads.errors import ObjectError, ObjectRefusal, too_large
from anigraph.services.uploads.grants import Grant

MAX_PART_NUMBER: Final = 10_000
"""COS part numbers run from 1 to 10000."""
MIN_PART_SIZE: Final = 1024 * 1024
"""Every part but the last must be at least 1 MiB (COS's rule; the SDK's default part size)."""
MAX_OPEN_MULTIPART: Final = 16
"""Open multipart uploads per session: each holds staged parts, so the count is bounded."""
MAX_LIST: Final = 1000
"""Most uploads or parts in one listing (COS's ``max-uploads`` / ``max-parts`` ceiling)."""
OVERSIZED: Final = "oversized"
"""The state of an upload ended because a part would have passed the size cap (besides "open"
and "completing"): its parts are gone, it takes nothing more, and only the client's abort
(which then succeeds) or the session's sweep removes it."""


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


def no_such_upload() -> ObjectError:
    return ObjectError(
        ObjectRefusal.NO_SUCH_UPLOAD,
        "The specified multipart upload does not exist: it was never initiated, or it was "
        "completed or aborted.",
    )


def locked_upload(
    session: Session,
    grant: Grant,
    object_key: str,
    upload_id: str,
    states: tuple[str, ...] = ("open",),
) -> MultipartUpload:
    """The upload ``upload_id`` of this grant's object, in one of ``states`` (open unless told),
    locked for the transaction."""
    row = session.get(MultipartUpload, upload_id, with_for_update=True) if upload_id else None
    if (
        row is None
        or row.vod_session_key != grant.session_key
        or row.object_key != object_key
        or row.state not in states
    ):
        raise no_such_upload()
    return row


def _info(row: MultipartUpload) -> MultipartInfo:
    return MultipartInfo(row.upload_id, row.object_key, row.created_at)


def initiate_multipart(ctx: Context, grant: Grant, object_key: str) -> MultipartInfo:
    """Start a multipart upload of one of the grant's objects."""
    with ctx.db.session() as session:
        count = session.scalar(
            select(func.count())
            .select_from(MultipartUpload)
            .where(
                MultipartUpload.vod_session_key == grant.session_key,
                MultipartUpload.state != OVERSIZED,
            )
        )
        if (count or 0) >= MAX_OPEN_MULTIPART:
            raise ObjectError(
                ObjectRefusal.TOO_MANY_UPLOADS,
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
        locked_upload(session, grant, object_key, upload_id)
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
        locked_upload(session, grant, object_key, upload_id)
        others = session.scalar(
            select(func.coalesce(func.sum(UploadPart.size), 0)).where(
                UploadPart.upload_id == upload_id, UploadPart.part_number != number
            )
        )
    return max(ctx.settings.max_upload_bytes - int(others or 0), 0)


def new_part_key(ctx: Context, grant: Grant) -> str:
    return ctx.store.new_key(grant.sub_app_id, "upload", "")


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
            locked_upload(session, grant, object_key, upload_id)
            others = session.scalar(
                select(func.coalesce(func.sum(UploadPart.size), 0)).where(
                    UploadPart.upload_id == upload_id, UploadPart.part_number != number
                )
            )
            if int(others or 0) + size > ctx.settings.max_upload_bytes:
                raise _Oversized
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
    except _Oversized:
        ctx.store.delete(store_key)
        raise oversized(ctx, grant, object_key, upload_id) from None
    except BaseException:
        ctx.store.delete(store_key)
        raise
    if replaced and replaced != store_key:
        ctx.store.delete(replaced)


class _Oversized(Exception):
    """Raised inside ``record_part``'s transaction to roll it back."""


def oversized(ctx: Context, grant: Grant, object_key: str, upload_id: str) -> ObjectError:
    """End a multipart upload one of whose parts would pass the size cap; the error to answer.

    The object is too large whatever the client sends next, so the parts are deleted now rather
    than left for the session's sweep (a half upload holds store space and one of the session's
    ``MAX_OPEN_MULTIPART``); parts still arriving find the upload gone.
    """
    keys: list[str] = []
    with ctx.db.session() as session:
        row = session.get(MultipartUpload, upload_id, with_for_update=True) if upload_id else None
        if (
            row is not None
            and row.vod_session_key == grant.session_key
            and row.object_key == object_key
            and row.state == "open"
        ):
            keys = list(
                session.scalars(
                    select(UploadPart.store_key).where(UploadPart.upload_id == upload_id)
                )
            )
            session.execute(delete(UploadPart).where(UploadPart.upload_id == upload_id))
            row.state = OVERSIZED
    for key in keys:
        ctx.store.delete(key)
    refused = too_large(ctx.settings.max_upload_bytes)
    return ObjectError(
        refused.reason,
        f"{refused.message} The multipart upload was ended and its parts discarded.",
    )


def abort_multipart(ctx: Context, grant: Grant, object_key: str, upload_id: str) -> None:
    """Drop a multipart upload and its parts (also one ended as oversized)."""
    with ctx.db.session() as session:
        locked_upload(session, grant, object_key, upload_id, ("open", OVERSIZED))
        keys = list(
            session.scalars(select(UploadPart.store_key).where(UploadPart.upload_id == upload_id))
        )
        session.execute(delete(UploadPart).where(UploadPart.upload_id == upload_id))
        session.execute(delete(MultipartUpload).where(MultipartUpload.upload_id == upload_id))
    for key in keys:
        ctx.store.delete(key)
