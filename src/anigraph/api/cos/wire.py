"""The COS wire format: query strings, XML bodies and answers, CORS, request headers.

Failures are COS error XML (``<Error><Code/><Message/><Resource/><RequestId/><TraceId/></Error>``)
with a 4xx status (5xx only for internal errors, which the SDK retries); never a 3xx, since the
SDK does not follow redirects.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response

from anigraph.api.cos.auth import encode
from anigraph.api.cos.errors import STATUS, CosError
from anigraph.services.uploads.multipart import MAX_PART_NUMBER

XML_TYPE: Final = "application/xml"
_HEADER_CASE: Final = {
    b"etag": b"ETag",
    b"content-length": b"Content-Length",
    b"content-type": b"Content-Type",
}
_TOKEN_LIST: Final = re.compile(
    r"[A-Za-z0-9!#$%&'*+.^_`|~-]+(?:[ \t]*,[ \t]*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*"
)


@dataclass(frozen=True)
class Query:
    """The query string: raw decoded values by name, and the encoded form the signature uses."""

    values: dict[str, str]
    encoded: dict[str, str]

    def has(self, name: str) -> bool:
        return name in self.values

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)


def parse_query(raw: str) -> Query:
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, errors="strict", max_num_fields=64)
    except (UnicodeDecodeError, ValueError):
        raise CosError("InvalidArgument", "The query string is malformed.") from None
    values: dict[str, str] = {}
    encoded: dict[str, str] = {}
    for name, value in pairs:
        key = encode(name.encode()).lower()
        if name in values or key in encoded:
            raise CosError("InvalidArgument", f"The query parameter {name[:40]} is repeated.")
        values[name] = value
        encoded[key] = encode(value.encode())
    return Query(values, encoded)


def int_param(query: Query, name: str, default: int, low: int, high: int) -> int:
    text = query.get(name, "")
    if text == "":
        return default
    if not text.isdigit() or len(text) > 9 or not low <= int(text) <= high:
        raise CosError("InvalidArgument", f"{name} must be an integer in [{low}, {high}].")
    return int(text)


def element(name: str, value: object) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def xml_body(root: str, body: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>{body}</{root}>'.encode()


def cors(request: Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    if not origin:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": "ETag, Content-Length, x-cos-request-id",
        "Vary": "Origin",
    }


def preflight(request: Request) -> Response:
    """CORS preflight: no credential is ambient (no cookies), the signature is the credential,
    so any origin may ask."""
    headers = {
        **cors(request),
        "Access-Control-Allow-Methods": "GET, HEAD, PUT, POST, DELETE",
        "Access-Control-Max-Age": "600",
    }
    wanted = request.headers.get("access-control-request-headers", "")
    if wanted and _TOKEN_LIST.fullmatch(wanted):
        headers["Access-Control-Allow-Headers"] = wanted
    return Response(b"", status_code=200, headers=headers)


@dataclass(frozen=True)
class Call:
    """One COS request as the handlers see it."""

    request: Request
    request_id: str
    path: str
    query: Query

    def answer(
        self, status: int = 200, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Response:
        merged = {"x-cos-request-id": self.request_id, **cors(self.request), **(headers or {})}
        if body:
            merged["Content-Type"] = XML_TYPE
        response = Response(body, status_code=status, headers=merged)
        # Starlette lower-cases header names; COS answers ``ETag``, and the SDK hands users the
        # headers as a plain dict (``put_object(...)["ETag"]`` in its own examples).
        response.raw_headers = [
            (_HEADER_CASE.get(name, name), value) for name, value in response.raw_headers
        ]
        return response

    def error(self, code: str, message: str) -> Response:
        status = STATUS.get(code, 400)
        if self.request.method == "HEAD":
            return self.answer(status)
        body = xml_body(
            "Error",
            element("Code", code)
            + element("Message", message)
            + element("Resource", self.path)
            + element("RequestId", self.request_id)
            + element("TraceId", self.request_id),
        )
        return self.answer(status, body)


def content_length(request: Request) -> int | None:
    """The declared body length, if any. With ``Transfer-Encoding`` as well the request is
    refused: the chunked body would be read past the length it declares (up to the size cap),
    and two framings in one request are how requests get smuggled (RFC 9112 6.1)."""
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    if "transfer-encoding" in request.headers:
        raise CosError(
            "InvalidRequest",
            "A request may not have both Content-Length and Transfer-Encoding.",
        )
    if not declared.isdigit() or len(declared) > 18:
        raise CosError("InvalidArgument", "Content-Length is not a valid length.")
    return int(declared)


def content_md5(request: Request) -> bytes | None:
    given = request.headers.get("content-md5")
    if given is None:
        return None
    try:
        digest = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise CosError("InvalidDigest", "The Content-MD5 you specified is not valid.")
    return digest


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def part_list(root: ElementTree.Element) -> list[tuple[int, str]]:
    """``[(PartNumber, ETag)]`` from a CompleteMultipartUpload body."""
    if _local(root.tag) != "CompleteMultipartUpload":
        raise CosError("MalformedXML", "The root element must be CompleteMultipartUpload.")
    parts: list[tuple[int, str]] = []
    for item in root:
        if _local(item.tag) != "Part":
            continue
        number_text = etag = None
        for child in item:
            if _local(child.tag) == "PartNumber":
                number_text = (child.text or "").strip()
            elif _local(child.tag) == "ETag":
                etag = (child.text or "").strip()
        if not number_text or not number_text.isdigit() or len(number_text) > 5 or etag is None:
            raise CosError("MalformedXML", "Each Part needs a PartNumber and an ETag.")
        number = int(number_text)
        if not 1 <= number <= MAX_PART_NUMBER:
            raise CosError("InvalidArgument", "PartNumber must be in [1, 10000].")
        parts.append((number, etag))
        if len(parts) > MAX_PART_NUMBER:
            raise CosError("MalformedXML", "Too many parts.")
    return parts
