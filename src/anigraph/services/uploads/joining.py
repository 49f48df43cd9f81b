"""CompleteMultipartUpload: the listed parts, checked, joined into the session's staging object.

The upload is claimed first (state ``completing``), so a concurrent complete, part or abort
sees ``NoSuchUpload`` instead of racing the join; a failed join releases the claim.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

from sqlalchemy import delete, select

from anigraph.context import Context
from anigraph.db.models_uploads import MultipartUpload, UploadPart
from anigraph.services.uploads.errors import ObjectError, ObjectRefusal, too_large
from anigraph.services.uploads.grants import Grant, session_is_open
from anigraph.services.uploads.multipart import MIN_PART_SIZE, locked_upload, no_such_upload
from anigraph.services.uploads.objects import content_type_of


def _check_part_list(
    ctx: Context, wanted: Sequence[tuple[int, str]], have: dict[int, UploadPart]
) -> list[UploadPart]:
    if not wanted:
        raise ObjectError(ObjectRefusal.EMPTY_PART_LIST, "The part list is empty.")
    numbers = [number for number, _ in wanted]
    if any(b <= a for a, b in itertools.pairwise(numbers)):
        raise ObjectError(
            ObjectRefusal.PART_ORDER, "The list of parts was not in ascending order of part number."
        )
    chosen: list[UploadPart] = []
    for number, etag in wanted:
        part = have.get(number)
        if part is None or etag.strip().strip('"').lower() != part.md5:
            raise ObjectError(
                ObjectRefusal.INVALID_PART,
                f"Part {number} has not been uploaded, or its ETag does not match.",
            )
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < MIN_PART_SIZE:
            raise ObjectError(
                ObjectRefusal.PART_TOO_SMALL,
                f"Part {part.part_number} is smaller than {MIN_PART_SIZE} bytes; only the last "
                "part may be smaller.",
            )
    if sum(part.size for part in chosen) > ctx.settings.max_upload_bytes:
        raise too_large(ctx.settings.max_upload_bytes)
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
        raise no_such_upload()
    with ctx.db.session() as session:
        locked_upload(session, grant, object_key, upload_id)
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
        raise ObjectError(
            ObjectRefusal.SESSION_CLOSED, "The upload session was committed or has expired."
        )
    digest = hashlib.md5(usedforsecurity=False)
    for _, md5 in chosen:
        digest.update(bytes.fromhex(md5))
    return f'"{digest.hexdigest()}-{len(chosen)}"'
