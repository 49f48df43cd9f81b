"""Media items: import a local file (probe, store), describe, delete with their outputs."""

from __future__ import annotations

import mimetypes
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from anigraph.context import URL_KEYS, Context
from anigraph.db.models import Media, MediaOutput
from anigraph.domain.wire import iso, new_file_id
from anigraph.notify import outbox

NEVER_EXPIRES = "9999-12-31T23:59:59Z"
PROBE_DEADLINE_SECONDS = 60.0
"""A probe reads headers and a few packets: past this the file is hostile or broken."""
_EXTENSION = re.compile(r"^[a-z0-9]{1,8}$")


class MediaNotFound(LookupError):
    pass


def probe_file(ctx: Context, path: Path) -> dict[str, Any]:
    """MetaData of a file as a wire dict; raises :class:`TaskError` for anything not media.

    FFmpeg reads the file in a child process with a deadline (``media.child.run_probe``): the
    file is untrusted and this runs in the API process for uploads.
    """
    from anigraph.media.child import run_probe
    from anigraph.media.types import Limits

    limits = Limits(max_source_pixels=ctx.settings.max_source_pixels)
    return run_probe(path, limits, time.monotonic() + PROBE_DEADLINE_SECONDS).to_dict()


def insert_media(
    session: Session,
    ctx: Context,
    sub_app_id: int,
    *,
    store_key: str,
    size: int,
    meta_data: dict[str, Any],
    name: str,
    media_type: str,
    source_type: str = "Upload",
    source_context: str = "",
    class_id: int = 0,
) -> Media:
    """Add a media row for an object already in the store, in the caller's transaction."""
    now = ctx.now()
    row = Media(
        file_id=new_file_id(),
        sub_app_id=sub_app_id,
        name=name,
        description="",
        media_type=media_type,
        store_key=store_key,
        size=size,
        source_type=source_type,
        source_context=source_context,
        class_id=class_id,
        meta_data=meta_data,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    return row


def media_name_from_url(url: str) -> str:
    """The last path segment without its extension, as a media name."""
    from urllib.parse import unquote, urlsplit

    segment = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    return Path(segment).stem[:256] or "media"


def media_type_of(path: Path | str) -> str:
    """A safe file extension (``mp4``) or ``""``."""
    extension = Path(path).suffix.lower().lstrip(".")
    return extension if _EXTENSION.match(extension) else ""


def import_file(
    ctx: Context,
    sub_app_id: int,
    path: Path,
    *,
    name: str | None = None,
    source_type: str = "Upload",
    source_context: str = "",
) -> str:
    """Probe ``path`` and store a copy as a new media item; returns its FileId.

    A file that is not media raises :class:`TaskError` (``SourceFileError.*``) and stores nothing.
    Importing is an upload: ``NewFileUpload`` is queued (when the sub-app's upload switch is ON)
    in the transaction that creates the item, as CommitUpload does.
    """

    meta = probe_file(ctx, path)
    extension = media_type_of(path)
    content_type = mimetypes.guess_type(f"x.{extension}")[0] if extension else None
    key = ctx.store.new_key(sub_app_id, "media", f".{extension}" if extension else "")
    stored = ctx.store.put_file(key, path, content_type or "application/octet-stream")
    try:
        with ctx.db.session() as session:
            row = insert_media(
                session,
                ctx,
                sub_app_id,
                store_key=key,
                size=stored.size,
                meta_data=meta,
                name=name if name is not None else path.stem,
                media_type=extension,
                source_type=source_type,
                source_context=source_context,
            )
            file_id = row.file_id
            announce_upload(session, ctx, row, meta)
    except BaseException:
        ctx.store.delete(key)
        raise
    return file_id


def announce_upload(
    session: Session, ctx: Context, row: Media, meta: dict[str, Any], procedure_task_id: str = ""
) -> None:
    """Queue ``NewFileUpload`` for a new media item in the caller's transaction (if the
    sub-app's upload switch is ON)."""
    outbox.emit(
        session,
        ctx,
        row.sub_app_id,
        "NewFileUpload",
        {
            "FileId": row.file_id,
            # Links marked, built when the event is sent or pulled.
            "MediaBasicInfo": basic_info(ctx, row),
            "ProcedureTaskId": procedure_task_id,
            "ReviewAudioVideoTaskId": "",
            "MetaData": meta,
        },
    )


def get(session: Session, sub_app_id: int, file_id: str) -> Media | None:
    row = session.get(Media, file_id)
    return row if row is not None and row.sub_app_id == sub_app_id else None


def basic_info(ctx: Context, row: Media) -> dict[str, Any]:
    """MediaBasicInfo (spec 3.9), links marked (it is also stored in results and events):
    answer it through ``ctx.render_urls``."""
    category = _category(row)
    links = ctx.linked(CoverUrl=row.cover_key, MediaUrl=row.store_key)
    return {
        "Name": row.name,
        "Description": row.description,
        "CreateTime": iso(row.created_at),
        "UpdateTime": iso(row.updated_at),
        "ExpireTime": NEVER_EXPIRES,
        "ClassId": row.class_id,
        "ClassName": "",
        "ClassPath": "",
        "CoverUrl": links["CoverUrl"],
        "Type": row.media_type,
        "MediaUrl": links["MediaUrl"],
        "SourceInfo": {
            "SourceType": row.source_type,
            "SourceContext": row.source_context,
            "LiveRecordInfo": None,
            "TrtcRecordInfo": None,
            "WebPageRecordInfo": None,
        },
        "StorageRegion": "local",
        "StoragePath": f"/{row.store_key}" if row.store_key else "",
        "TagSet": [],
        "Vid": "",
        "Category": category,
        "Status": "Normal",
        "StorageClass": "STANDARD",
        URL_KEYS: links[URL_KEYS],
    }


def output_item(ctx: Context, output: MediaOutput) -> dict[str, Any]:
    """MediaAnimatedGraphicsItem (spec 3.6) with its Url as of now."""
    return {"Url": ctx.file_url(output.store_key), **output.item}


def media_info(
    ctx: Context, session: Session, row: Media, parts: set[str] | None
) -> dict[str, Any]:
    """MediaInfo (spec 3.10); parts not asked for, and parts this service has not, are null."""

    def wanted(part: str) -> bool:
        return parts is None or part in parts

    animated = None
    if wanted("animatedGraphicsInfo"):
        outputs = session.scalars(
            select(MediaOutput).where(MediaOutput.file_id == row.file_id).order_by(MediaOutput.id)
        )
        animated = {"AnimatedGraphicsSet": [output_item(ctx, output) for output in outputs]}
    return {
        "FileId": row.file_id,
        "BasicInfo": ctx.render_urls(basic_info(ctx, row)) if wanted("basicInfo") else None,
        "MetaData": row.meta_data if wanted("metaData") else None,
        "AnimatedGraphicsInfo": animated,
        "TranscodeInfo": None,
        "SampleSnapshotInfo": None,
        "ImageSpriteInfo": None,
        "SnapshotByTimeOffsetInfo": None,
        "KeyFrameDescInfo": None,
        "AdaptiveDynamicStreamingInfo": None,
        "MiniProgramReviewInfo": None,
        "SubtitleInfo": None,
        "ReviewInfo": None,
    }


def describe(
    ctx: Context, sub_app_id: int, file_ids: list[str], parts: set[str] | None
) -> tuple[list[dict[str, Any]], list[str]]:
    found: list[dict[str, Any]] = []
    missing: list[str] = []
    with ctx.db.session() as session:
        for file_id in file_ids:
            row = get(session, sub_app_id, file_id)
            if row is None:
                missing.append(file_id)
            else:
                found.append(media_info(ctx, session, row, parts))
    return found, missing


def delete(ctx: Context, sub_app_id: int, file_id: str, parts: list[dict[str, Any]] | None) -> None:
    """Delete a media item: with no parts, everything (original and animated outputs).

    ``OriginalFiles`` alone removes the source but keeps the item and its outputs. The rows go
    first, in one transaction with the FileDeleted event (spec 5.2, gated by the sub-app's
    DeleteMediaCompleteEventSwitch); the blobs after, so a crash leaves orphan blobs, never
    dangling rows or an event for a deletion that did not happen.
    """
    from anigraph.notify.outbox import emit

    only_original = bool(parts) and all(p.get("Type") == "OriginalFiles" for p in parts or [])
    keys: list[str] = []
    with ctx.db.session() as session:
        row = get(session, sub_app_id, file_id)
        if row is None:
            raise MediaNotFound(file_id)
        if row.store_key:
            keys.append(row.store_key)
        if only_original:
            row.store_key = None
            row.updated_at = ctx.now()
        else:
            if row.cover_key:
                keys.append(row.cover_key)
            for output in session.scalars(
                select(MediaOutput).where(MediaOutput.file_id == file_id)
            ):
                keys.append(output.store_key)
                session.delete(output)
            session.flush()
            session.delete(row)
        delete_parts = [
            {"Type": str(p.get("Type", "")), "Definition": int(p.get("Definition") or 0)}
            for p in parts or []
        ]
        emit(
            session,
            ctx,
            sub_app_id,
            "FileDeleted",
            {
                "FileIdSet": [file_id],
                "FileDeleteResultInfo": [{"FileId": file_id, "DeleteParts": delete_parts}],
            },
        )
    for key in keys:
        ctx.store.delete(key)


@dataclass(frozen=True)
class MediaQuery:
    """SearchMedia's filters: OR within one list, AND across lists (spec 2.6)."""

    file_ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # fuzzy: substring, any case
    name_prefixes: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # Video / Audio
    media_types: list[str] = field(default_factory=list)
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # inclusive, as SearchMedia's TimeRange is
    newest_first: bool = True
    offset: int = 0
    limit: int = 10


SEARCH_CAP = 5000  # TotalCount and Offset+Limit are capped, as Tencent's are


def search(
    ctx: Context, sub_app_id: int, query: MediaQuery, parts: set[str] | None
) -> tuple[int, list[dict[str, Any]]]:
    """(TotalCount capped at 5000, one page of MediaInfo)."""
    statement = select(Media).where(Media.sub_app_id == sub_app_id)
    if query.file_ids:
        statement = statement.where(Media.file_id.in_(query.file_ids))
    if query.names:
        statement = statement.where(
            or_(*(Media.name.ilike(f"%{_like(name)}%", escape="\\") for name in query.names))
        )
    if query.name_prefixes:
        statement = statement.where(
            or_(*(Media.name.ilike(f"{_like(p)}%", escape="\\") for p in query.name_prefixes))
        )
    if query.media_types:
        statement = statement.where(Media.media_type.in_([t.lower() for t in query.media_types]))
    if query.created_after is not None:
        statement = statement.where(Media.created_at >= query.created_after)
    if query.created_before is not None:
        statement = statement.where(Media.created_at <= query.created_before)
    order = Media.created_at.desc() if query.newest_first else Media.created_at.asc()
    with ctx.db.session() as session:
        rows = list(session.scalars(statement.order_by(order, Media.file_id)))
        if query.categories:
            rows = [row for row in rows if _category(row) in query.categories]
        page = rows[query.offset : query.offset + query.limit]
        return min(len(rows), SEARCH_CAP), [media_info(ctx, session, row, parts) for row in page]


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _category(row: Media) -> str:
    return "Video" if (row.meta_data or {}).get("VideoStreamSet") else "Audio"
