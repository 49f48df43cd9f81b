"""Fetching a URL into a new media item, for PullUpload tasks and ProcessMedia with a Url.

FFmpeg never fetches anything: the SSRF-safe client downloads the file (or an HLS playlist and
its segments) to staging, the engine probes the local copy, and the store takes it by rename.
"""

from __future__ import annotations

import logging
import mimetypes
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from anigraph.context import Context
from anigraph.db.models import Task
from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.jobs import leases
from anigraph.jobs.runner import discard_pending
from anigraph.net import Unsupported, hls
from anigraph.net import fetch as net_fetch
from anigraph.notify.config import address_policy
from anigraph.services import media

log = logging.getLogger(__name__)


def fetcher_of(ctx: Context) -> net_fetch.Fetcher:
    return net_fetch.Fetcher(
        address_policy(ctx.settings),
        max_bytes=ctx.settings.max_fetch_bytes,
        timeout_seconds=ctx.settings.fetch_timeout_seconds,
    )


def _looks_like_hls(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(".m3u8")


def _fetch_error(error: net_fetch.FetchError) -> TaskError:
    if error.transient:
        return TaskError(ErrCodeExt.INTERNAL_ERROR, f"download failed, will retry: {error}")
    if isinstance(error, net_fetch.TooLarge | Unsupported):
        return TaskError(ErrCodeExt.CONTENT_UNSUPPORTED, f"download too large: {error}")
    return TaskError(ErrCodeExt.DOWNLOAD_NOT_ACCESSIBLE, f"download failed: {error}")


@dataclass(frozen=True)
class Downloaded:
    path: Path
    media_type: str  # file extension, e.g. "mp4"


def download(ctx: Context, url: str, staging: Path, media_type: str = "") -> Downloaded:
    """Fetch ``url`` into ``staging``; raises :class:`TaskError` (InternalError = transient)."""
    fetcher = fetcher_of(ctx)
    target = staging / f"{uuid.uuid4().hex}.download"
    try:
        if _looks_like_hls(url):
            return Downloaded(hls.fetch_hls(fetcher, url, staging), "m3u8")
        result = fetcher.fetch_to_file(url, target)
        with result.path.open("rb") as handle:
            head = handle.read(512)
        if hls.is_hls(result.url_final, result.content_type, head):
            result.path.unlink(missing_ok=True)
            return Downloaded(hls.fetch_hls(fetcher, url, staging), "m3u8")
        kind = media_type or media.media_type_of(urlsplit(result.url_final).path) or "mp4"
        return Downloaded(result.path, kind)
    except net_fetch.FetchError as error:
        target.unlink(missing_ok=True)
        raise _fetch_error(error) from error


def discard_unrecorded(ctx: Context, task: Task) -> None:
    """Delete the object a former owner of ``task`` stored under the payload's pending key but
    never recorded (it died in between): nothing refers to it."""
    discard_pending(ctx, dict(task.payload or {}), task.task_id)


def discard_unrecorded_quietly(ctx: Context, task: Task) -> None:
    """:func:`discard_unrecorded` where the task fails anyway: a store error is only logged."""
    try:
        discard_unrecorded(ctx, task)
    except Exception:
        log.exception("task %s: deleting an unrecorded media object failed", task.task_id)


def store_download(
    ctx: Context, task: Task, owner: str, downloaded: Downloaded
) -> tuple[str, int, dict[str, Any]] | None:
    """Probe the download and move it into the store: (store key, size, MetaData); None when
    ``owner`` lost the task. The key is recorded on the task before the object is stored."""
    try:
        meta = media.probe_file(ctx, downloaded.path)
    except TaskError:
        downloaded.path.unlink(missing_ok=True)
        raise
    suffix = f".{downloaded.media_type}" if downloaded.media_type != "m3u8" else ".ts"
    content_type = mimetypes.guess_type(f"x{suffix}")[0] or "application/octet-stream"
    key = ctx.store.new_key(task.sub_app_id, "media", suffix)
    try:
        discard_unrecorded(ctx, task)
        recorded = leases.record_pending_key(ctx, task.task_id, owner, key)
    except Exception as exc:  # the database or the store hiccuped: transient
        downloaded.path.unlink(missing_ok=True)
        raise TaskError(ErrCodeExt.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}") from exc
    if not recorded:
        downloaded.path.unlink(missing_ok=True)
        return None
    stored = ctx.store.put_file(key, downloaded.path, content_type, move=True)
    return key, stored.size, meta
