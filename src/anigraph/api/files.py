"""``GET``/``HEAD /files/{key}``: serve stored objects with validators and byte ranges.

Output URLs handed to API clients point here, unless ``files_url`` names a CDN or presigned
URLs (the endpoint keeps serving every key either way). The body is streamed from
``Store.open`` (not ``FileResponse``) so the same endpoint serves any store, local or remote.
Keys are never reused, so responses are marked immutable and conditional requests only ever
need the ETag.

HTTP semantics follow RFC 9110: one byte range is honoured (``a-b``, ``a-``, ``-n``); several
ranges or a malformed ``Range`` are ignored and the whole object is sent (section 14.2 allows
both); ``Range`` applies to GET only, so HEAD always describes the full representation;
``If-None-Match`` wins over ``If-Modified-Since``; ``If-Range`` needs a strong ETag match or
the exact ``Last-Modified`` date.
"""

from __future__ import annotations

import logging
import re
from email.utils import formatdate, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from anigraph.storage.base import Store, StoredObject
from anigraph.storage.keys import InvalidKey

log = logging.getLogger("anigraph.api.files")

CACHE_FOREVER = "public, max-age=31536000, immutable"

_RANGE_SPEC = re.compile(r"(\d*)[ \t]*-[ \t]*(\d*)", re.ASCII)
_MAX_RANGE_HEADER = 256  # longer is not one sane range; ignoring it also bounds int() work


class _Unsatisfiable:
    """Marker: the request had one syntactically valid range that lies outside the object."""


UNSATISFIABLE = _Unsatisfiable()


def parse_range(header: str | None, size: int) -> tuple[int, int] | _Unsatisfiable | None:
    """The inclusive byte range ``(first, last)`` to send, ``UNSATISFIABLE``, or ``None``.

    ``None`` means "send the whole object": no header, another unit, several ranges or a
    malformed header, all of which RFC 9110 lets a server ignore.
    """
    if header is None or len(header) > _MAX_RANGE_HEADER:
        return None
    unit, sep, spec_list = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [spec.strip() for spec in spec_list.split(",") if spec.strip()]
    if len(specs) != 1:
        return None
    match = _RANGE_SPEC.fullmatch(specs[0])
    if match is None:
        return None
    first_text, last_text = match.groups()
    if first_text:
        first = int(first_text)
        last = int(last_text) if last_text else None
        if last is not None and last < first:
            return None  # invalid range-spec, not an unsatisfiable one
        if first >= size:
            return UNSATISFIABLE
        return first, size - 1 if last is None else min(last, size - 1)
    if not last_text:
        return None  # "bytes=-"
    suffix_length = int(last_text)
    if suffix_length == 0 or size == 0:
        return UNSATISFIABLE
    return max(size - suffix_length, 0), size - 1


def _http_date(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)


def _parse_http_date(value: str) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _etag_in(header: str, etag: str) -> bool:
    """Weak comparison against an ``If-None-Match`` list (RFC 9110 13.1.2)."""
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _not_modified(request: Request, obj: StoredObject) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return _etag_in(if_none_match, obj.etag)
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since is not None:
        since = _parse_http_date(if_modified_since)
        return since is not None and int(obj.modified) <= since
    return False


def _range_allowed(request: Request, obj: StoredObject) -> bool:
    """``If-Range``: serve the range only if the client's copy is still this object."""
    if_range = request.headers.get("if-range")
    if if_range is None:
        return True
    if_range = if_range.strip()
    if if_range.startswith(('"', "W/")):
        return if_range == obj.etag  # strong comparison: a weak tag never matches
    since = _parse_http_date(if_range)
    return since is not None and since == int(obj.modified)


def _not_found() -> Response:
    # Same small body for missing, malformed and escaping keys: nothing to learn by probing.
    return PlainTextResponse("Not Found", status_code=404, headers={"Cache-Control": "no-store"})


def files_route(store: Store) -> Route:
    """The ``/files/{key:path}`` route serving ``store``'s objects (GET and HEAD)."""

    def serve(request: Request) -> Response:
        key: str = request.path_params["key"]
        try:
            obj = store.stat(key)
        except InvalidKey:
            obj = None
        if obj is None:
            return _not_found()

        validators = {
            "ETag": obj.etag,
            "Last-Modified": _http_date(obj.modified),
            "Cache-Control": CACHE_FOREVER,
        }
        if _not_modified(request, obj):
            return Response(status_code=304, headers=validators)

        headers = {
            **validators,
            "Content-Type": obj.content_type,
            "Accept-Ranges": "bytes",
            # Stored content types are ours, but never let a browser second-guess them, and
            # never run anything it might render: an upload is still someone else's bytes.
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
        }
        status = 200
        first, last = 0, obj.size - 1
        if request.method == "GET" and _range_allowed(request, obj):
            wanted = parse_range(request.headers.get("range"), obj.size)
            if isinstance(wanted, _Unsatisfiable):
                return PlainTextResponse(
                    "Range Not Satisfiable",
                    status_code=416,
                    headers={"Content-Range": f"bytes */{obj.size}", "Accept-Ranges": "bytes"},
                )
            if wanted is not None:
                status = 206
                first, last = wanted
                headers["Content-Range"] = f"bytes {first}-{last}/{obj.size}"
        headers["Content-Length"] = str(last - first + 1)

        if request.method == "HEAD" or obj.size == 0:
            return Response(b"", status_code=status, headers=headers)
        try:
            chunks = store.open(key, first, last)
        except FileNotFoundError:
            return _not_found()  # deleted between stat and open
        return StreamingResponse(chunks, status_code=status, headers=headers)

    return Route("/files/{key:path}", serve, methods=["GET", "HEAD"])
