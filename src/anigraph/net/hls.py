"""HLS downloaded by us, never by FFmpeg: playlist, variant and segments through the Fetcher.

FFmpeg's HLS demuxer opens whatever a playlist names (``file://`` segments, nested protocols,
``http://127.0.0.1`` when the format is forced; reliability guide 3.1), so a playlist is only
ever *parsed* here, as text, and every URI in it is fetched through the SSRF-safe
:class:`~anigraph.net.fetch.Fetcher`: same scheme, port and address rules for each segment,
relative URIs resolved against the playlist's final URL, one wall-time cap and one byte cap
for the whole download. The MPEG-TS segments are then concatenated into one ``.ts`` file
(byte concatenation is valid MPEG-TS: the timestamps continue across segments), which the
engine opens like any local file, with ``protocol_whitelist=file``.

Deliberately unsupported, each a :class:`~anigraph.net.Unsupported` error rather than a
half-right result: encryption (``EXT-X-KEY`` other than ``NONE``), byte ranges
(``EXT-X-BYTERANGE``), fMP4 (``EXT-X-MAP``, or segments that are not MPEG-TS), gaps, nested
master playlists. Alternative renditions (``EXT-X-MEDIA``, e.g. separate audio) are ignored:
an animated image needs the video only. A live playlist (no ``EXT-X-ENDLIST``) is taken as
the snapshot of segments it lists now.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import httpx

from anigraph.net import BadUrl, TooLarge, Unsupported
from anigraph.net.fetch import Fetcher, FetchSession

__all__ = [
    "HLS_CONTENT_TYPES",
    "MAX_SEGMENTS",
    "PLAYLIST_MAX_BYTES",
    "MediaPlaylist",
    "Variant",
    "download_hls",
    "fetch_hls",
    "is_hls",
    "is_master",
    "parse_attributes",
    "parse_master",
    "parse_media",
]

PLAYLIST_MAX_BYTES: Final = 1024 * 1024
"""A playlist larger than this is not a playlist we want to parse."""
MAX_SEGMENTS: Final = 20_000
"""About 11 hours of 2-second segments; more is a playlist built to exhaust us."""
HLS_CONTENT_TYPES: Final = frozenset(
    {
        "application/vnd.apple.mpegurl",
        "application/mpegurl",
        "application/x-mpegurl",
        "audio/mpegurl",
        "audio/x-mpegurl",
    }
)
TS_PACKET: Final = 188
TS_SYNC: Final = 0x47
MP4_BOXES: Final = frozenset({b"ftyp", b"styp", b"moof", b"sidx", b"moov", b"emsg"})

_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"\r\n]*"|[^",\s]*)')


@dataclass(frozen=True)
class Variant:
    """One ``EXT-X-STREAM-INF`` entry of a master playlist."""

    bandwidth: int
    uri: str


@dataclass(frozen=True)
class MediaPlaylist:
    """The segment URIs of a media playlist (as written, unresolved), and whether it ended."""

    segments: list[str]
    duration: float
    ended: bool


def parse_attributes(text: str) -> dict[str, str]:
    """An HLS attribute list (``A=1,B="x,y"``) as a dict, quotes removed."""
    return {name: value.strip('"') for name, value in _ATTRIBUTE.findall(text)}


def _lines(text: str) -> list[str]:
    lines = [line.strip() for line in text.lstrip("\ufeff").splitlines()]
    lines = [line for line in lines if line]
    if not lines or lines[0] != "#EXTM3U":
        raise Unsupported("not an HLS playlist (no #EXTM3U header)")
    return lines


def is_master(text: str) -> bool:
    """The playlist lists variants (``EXT-X-STREAM-INF``) rather than segments."""
    return any(line.strip().startswith("#EXT-X-STREAM-INF") for line in text.splitlines())


def _refuse_key(line: str) -> None:
    method = parse_attributes(line.split(":", 1)[-1]).get("METHOD", "")
    if method != "NONE":
        raise Unsupported(f"encrypted HLS (METHOD={method or '?'}) is not supported")


def parse_master(text: str) -> list[Variant]:
    """The variants of a master playlist, in playlist order."""
    variants: list[Variant] = []
    pending: int | None = None
    for line in _lines(text)[1:]:
        if line.startswith("#EXT-X-STREAM-INF:"):
            bandwidth = parse_attributes(line.split(":", 1)[1]).get("BANDWIDTH", "")
            if not bandwidth.isdigit():
                raise Unsupported("a variant has no valid BANDWIDTH")
            pending = int(bandwidth)
        elif line.startswith("#EXT-X-SESSION-KEY:"):
            _refuse_key(line)
        elif line.startswith("#EXTINF"):
            raise Unsupported("a playlist mixes variants and segments")
        elif not line.startswith("#"):
            if pending is None:
                raise Unsupported(f"a URI without EXT-X-STREAM-INF in a master playlist: {line}")
            variants.append(Variant(pending, line))
            pending = None
    if not variants:
        raise Unsupported("the master playlist lists no variant")
    return variants


def parse_media(text: str) -> MediaPlaylist:
    """The segments of a media playlist; :class:`Unsupported` for the forms we refuse."""
    segments: list[str] = []
    duration = 0.0
    ended = False
    for line in _lines(text)[1:]:
        if line.startswith("#EXT-X-KEY:"):
            _refuse_key(line)
        elif line.startswith("#EXT-X-BYTERANGE"):
            raise Unsupported("HLS byte ranges (EXT-X-BYTERANGE) are not supported")
        elif line.startswith("#EXT-X-MAP"):
            raise Unsupported("fMP4 HLS (EXT-X-MAP) is not supported")
        elif line.startswith("#EXT-X-GAP"):
            raise Unsupported("HLS gaps (EXT-X-GAP) are not supported")
        elif line.startswith("#EXT-X-STREAM-INF"):
            raise Unsupported("a playlist mixes variants and segments")
        elif line.startswith("#EXTINF:"):
            value = line.split(":", 1)[1].split(",", 1)[0].strip()
            try:
                duration += max(float(value), 0.0)
            except ValueError:
                raise Unsupported(f"bad EXTINF duration {value!r}") from None
        elif line.startswith("#EXT-X-ENDLIST"):
            ended = True
        elif not line.startswith("#"):
            segments.append(line)
            if len(segments) > MAX_SEGMENTS:
                raise Unsupported(f"more than {MAX_SEGMENTS} segments")
    if not segments:
        raise Unsupported("the playlist lists no segment")
    return MediaPlaylist(segments, duration, ended)


def is_hls(url: str, content_type: str, first_bytes: bytes) -> bool:
    """Whether a fetched body is an HLS playlist.

    The body decides when there is one (``#EXTM3U`` first, after a BOM or blank space): a
    server's type or a URL's extension can lie either way. Without bytes, the type
    (``application/vnd.apple.mpegurl`` and its aliases) or a ``.m3u8``/``.m3u`` path decides.
    """
    head = first_bytes.removeprefix(b"\xef\xbb\xbf").lstrip()
    if head:
        return head.startswith(b"#EXTM3U")
    if content_type.split(";", 1)[0].strip().lower() in HLS_CONTENT_TYPES:
        return True
    return urlsplit(url).path.lower().endswith((".m3u8", ".m3u"))


def _resolve(base: str, uri: str) -> str:
    try:
        return str(httpx.URL(base).join(uri))
    except (httpx.InvalidURL, ValueError) as exc:
        raise BadUrl(f"bad URI in playlist: {uri!r} ({exc})") from None


def _playlist(session: FetchSession, url: str) -> tuple[str, str]:
    """(final URL, text) of a playlist, capped at :data:`PLAYLIST_MAX_BYTES`."""
    fetched = session.fetch_bytes(url, PLAYLIST_MAX_BYTES)
    try:
        text = fetched.body.decode("utf-8")
    except UnicodeDecodeError:
        raise Unsupported("the playlist is not UTF-8 text") from None
    return fetched.url_final, text


def _check_segment(head: bytes, size: int, uri: str) -> None:
    """The segment just written starts like MPEG-TS (sync byte on the first two packets)."""
    if size == 0:
        raise Unsupported(f"empty HLS segment {uri}")
    if head[:1] == bytes([TS_SYNC]) and (size <= TS_PACKET or head[TS_PACKET] == TS_SYNC):
        return
    if head[4:8] in MP4_BOXES:
        raise Unsupported(f"fMP4 HLS segments are not supported ({uri})")
    if head[:3] == b"ID3":
        raise Unsupported(f"packed-audio HLS segments are not supported ({uri})")
    raise Unsupported(f"HLS segment is not MPEG-TS ({uri})")


def fetch_hls(
    fetcher: Fetcher,
    url: str,
    dest_dir: str | os.PathLike[str],
    *,
    max_bytes: int | None = None,
) -> Path:
    """Download an HLS stream into one MPEG-TS file in ``dest_dir`` and return its path.

    A master playlist is resolved to its highest-``BANDWIDTH`` variant. Every URI goes through
    ``fetcher``'s rules; the segments' total is capped at ``max_bytes`` (default: the
    fetcher's cap) and the whole download at the fetcher's wall time. On failure nothing is
    left in ``dest_dir``.
    """
    with fetcher.session() as session:
        return download_hls(session, url, dest_dir, max_bytes)


def download_hls(
    session: FetchSession,
    url: str,
    dest_dir: str | os.PathLike[str],
    max_bytes: int | None = None,
) -> Path:
    """:func:`fetch_hls` within an open session: its wall-time cap covers the playlists and
    segments together with whatever the session fetched before (the request that revealed a
    playlist, for one)."""
    cap = session.max_bytes if max_bytes is None else max_bytes
    folder = Path(dest_dir)
    name = uuid.uuid4().hex
    temp = folder / f".{name}.ts.part"
    target = folder / f"{name}.ts"
    base, text = _playlist(session, url)
    if is_master(text):
        variants = parse_master(text)
        best = max(variants, key=lambda variant: variant.bandwidth)
        base, text = _playlist(session, _resolve(base, best.uri))
        if is_master(text):
            raise Unsupported("a master playlist names another master playlist")
    playlist = parse_media(text)
    # Every segment URL is resolved and shape-checked before the first download, so a
    # playlist with one bad entry costs no traffic; addresses are checked at connect.
    segments = [session.check_url(_resolve(base, uri)) for uri in playlist.segments]
    total = 0
    try:
        with temp.open("xb+") as out:
            for segment in segments:
                start = out.tell()
                try:
                    written = session.fetch_into(segment, out, cap - total)
                except TooLarge:
                    raise TooLarge(f"the HLS segments exceed {cap} bytes") from None
                total += written
                out.seek(start)
                head = out.read(TS_PACKET + 1)
                out.seek(0, os.SEEK_END)
                _check_segment(head, written, str(segment))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target
