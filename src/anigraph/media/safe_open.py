"""Open untrusted media with FFmpeg restricted to local files and real containers.

FFmpeg's demuxers can follow references to other files or URLs (HLS playlists, ffconcat,
``concat:`` and ``subfile:`` protocols). We never let a user string reach FFmpeg as a URL:
the path is always passed as ``file:<absolute path>``, the only protocol allowed is ``file``,
and only demuxers for self-contained containers are allowed.
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import av.container

from anigraph.domain.errors import ErrCodeExt, TaskError

# Demuxers of self-contained media. Audio-only formats are here so that an audio file is
# recognised and refused as "no video" rather than as "unsupported".
ALLOWED_DEMUXERS = (
    "mov",
    "mp4",
    "matroska",
    "webm",
    "avi",
    "flv",
    "mpegts",
    "mpeg",
    "mpegvideo",
    "m4v",
    "h264",
    "hevc",
    "asf",
    "ogg",
    "mxf",
    "nut",
    "gif",
    "mp3",
    "wav",
    "aac",
    "flac",
    "w64",
)

# Playlists and indirection formats: each can make FFmpeg open other files or URLs.
_REFERENCING_MAGIC = (b"#EXTM3U", b"ffconcat", b"#EXT-X-", b"<?xml", b"[playlist]")

OPEN_OPTIONS = {
    "protocol_whitelist": "file",
    "format_whitelist": ",".join(ALLOWED_DEMUXERS),
    # Bounded probing: a hostile header cannot make probing read the whole file.
    "probesize": str(32 * 1024 * 1024),
    "analyzeduration": str(30 * 1_000_000),
}


def _sniff(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(64)


def open_media(path: str | os.PathLike[str]) -> av.container.InputContainer:
    """Open ``path`` for demuxing, or raise :class:`TaskError` with the right ``ErrCodeExt``."""
    source = Path(path).resolve()
    try:
        head = _sniff(source)
    except FileNotFoundError as exc:
        raise TaskError(ErrCodeExt.SOURCE_FILE_ERROR, "source file does not exist") from exc
    except OSError as exc:
        raise TaskError(ErrCodeExt.SOURCE_FILE_ERROR, f"cannot read source: {exc}") from exc
    if not head:
        raise TaskError(ErrCodeExt.CONTENT_MALFORMED, "source file is empty")
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(_REFERENCING_MAGIC):
        raise TaskError(
            ErrCodeExt.CONTENT_UNSUPPORTED,
            "playlists and files that reference other files are not accepted as media",
        )
    try:
        # "file:" makes the whole rest a path, so names like "concat:a|b" stay plain names.
        container = av.open(f"file:{source}", mode="r", options=dict(OPEN_OPTIONS))
    except av.error.InvalidDataError as exc:
        raise TaskError(ErrCodeExt.CONTENT_MALFORMED, _reason(exc)) from exc
    except av.error.ArgumentError as exc:
        # EINVAL at open: the content was recognised as a demuxer outside the whitelist (still
        # images: png_pipe, jpeg_pipe, bmp_pipe, image2). Older PyAV called it ValueError.
        # FFmpeg says only "invalid argument", which would read as our mistake.
        raise TaskError(
            ErrCodeExt.CONTENT_UNSUPPORTED,
            "not a supported video container (still images and other formats are refused)",
        ) from exc
    except av.error.FFmpegError as exc:
        raise TaskError(ErrCodeExt.CONTENT_MALFORMED, _reason(exc)) from exc
    return container


def _reason(exc: av.error.FFmpegError) -> str:
    strerror = getattr(exc, "strerror", None) or str(exc)
    return str(strerror).rstrip(".").lower().replace("'", "")
