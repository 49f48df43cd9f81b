"""A COS-compatible object endpoint, just enough for uploads (spec 6.2-6.5).

``CosS3Client`` with ``CosConfig(Domain="<host:port>", Scheme="http")`` talks to the API's own
listener: the URL is ``http://<host:port>/<key>`` and the bucket appears nowhere on the wire,
so the object key alone says which upload session a request is for. What is served, exactly as
``cos-python-sdk-v5`` sends it:

- ``PUT /<key>``: simple upload (``put_object``, and ``upload_file`` for files up to a part);
- ``GET /?uploads&prefix=<key>``: list multipart uploads (``upload_file`` looks for one to
  resume), and ``GET /<key>?uploadId=``: list its parts;
- ``POST /<key>?uploads``: initiate, ``PUT /<key>?partNumber=N&uploadId=``: a part (any order,
  concurrently), ``POST /<key>?uploadId=``: complete, ``DELETE /<key>?uploadId=``: abort;
- ``HEAD /<key>``: the staged object's size and ETag;
- ``OPTIONS``: CORS preflight, for the browser SDK (cos-js-sdk-v5) of the client-upload flow.

Every request is signed with a session's temporary credential (``Authorization:
q-sign-algorithm=sha1&q-ak=...``, verified like ``cos_auth.CosS3Auth`` computes it, compared in
constant time) and carries its ``x-cos-security-token``. That credential may write only its
session's media and cover keys, only while the session is open and unexpired. Bodies stream to
the store (bounded memory, a size cap enforced while reading, not trusted from
``Content-Length``), under staging keys: nothing is visible in ``/files`` or in media before
CommitUpload.

Failures are COS error XML (``<Error><Code/><Message/><Resource/><RequestId/><TraceId/></Error>``)
with a 4xx status (5xx only for internal errors, which the SDK retries); never a 3xx, since the
SDK does not follow redirects.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import logging
import re
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, quote, urlsplit
from xml.sax.saxutils import escape

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from anigraph.services import uploads
from anigraph.services.context import Context
from anigraph.services.uploads import Grant, ObjectError

log = logging.getLogger("anigraph.api.cos")

XML_TYPE: Final = "application/xml"
COS_METHODS: Final = ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"]

CLOCK_SKEW_SECONDS: Final = 300
"""How far a signature's start time may lie ahead of our clock."""
MAX_SIGN_WINDOW_SECONDS: Final = 10_060
"""Longest accepted ``q-sign-time`` span: the SDK signs ``[now - 60, now + 10000]`` (spec 7.5)."""
WRITE_BUFFER: Final = 1024 * 1024
"""Body bytes gathered before one write to the store (one thread hop per MiB, not per chunk)."""
MAX_XML_BODY: Final = 4 * 1024 * 1024
"""Largest CompleteMultipartUpload body: 10000 parts take about 0.8 MB."""

SIGNED_OPERATION_PARAMS: Final = frozenset({"uploads", "uploadid", "partnumber"})
"""Query parameters that choose the operation: they must be covered by the signature, so that a
captured signature of one operation cannot be replayed as another."""

_STATUS: Final = {
    "AccessDenied": 403,
    "SignatureDoesNotMatch": 403,
    "InvalidAccessKeyId": 403,
    "RequestTimeTooSkewed": 403,
    "NoSuchUpload": 404,
    "NoSuchKey": 404,
    "MethodNotAllowed": 405,
    "EntityTooLarge": 400,
    "EntityTooSmall": 400,
    "IncompleteBody": 400,
    "InvalidArgument": 400,
    "InvalidDigest": 400,
    "BadDigest": 400,
    "InvalidPart": 400,
    "InvalidPartOrder": 400,
    "InvalidRequest": 400,
    "MalformedXML": 400,
    "InternalError": 500,
}
_HEADER_CASE: Final = {
    b"etag": b"ETag",
    b"content-length": b"Content-Length",
    b"content-type": b"Content-Type",
}
_OBJECT_PATH: Final = re.compile(r"/[0-9]+(?:/|$)")
"""Digits-first paths, also ``/<digits>`` alone: left unclaimed, Starlette would answer it with a
307 to ``/<digits>/`` (redirect_slashes), and the SDK does not follow redirects."""
_HEX40: Final = re.compile(r"[0-9a-f]{40}")
_HEADER_NAME: Final = re.compile(r"[a-z0-9-]+")
_TOKEN_LIST: Final = re.compile(
    r"[A-Za-z0-9!#$%&'*+.^_`|~-]+(?:[ \t]*,[ \t]*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*"
)


class CosError(Exception):
    """A COS error answer: ``code`` decides the HTTP status (``_STATUS``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return _STATUS.get(self.code, 400)


# --- signature ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Authorization:
    """The parsed ``Authorization`` header of a COS request (spec 6.3)."""

    secret_id: str
    sign_time: str
    key_time: str
    header_list: tuple[str, ...]
    param_list: tuple[str, ...]
    signature: str


def _window(text: str) -> tuple[int, int]:
    start, sep, end = text.partition(";")
    if not sep or not start.isdigit() or not end.isdigit() or len(start) > 12 or len(end) > 12:
        raise CosError("AccessDenied", "The Authorization header has a malformed time window.")
    return int(start), int(end)


def parse_authorization(value: str) -> Authorization:
    """Split ``q-sign-algorithm=sha1&q-ak=...&q-signature=...``; AccessDenied when malformed."""
    fields: dict[str, str] = {}
    for item in value.strip().split("&"):
        name, _, text = item.partition("=")
        if name in fields:
            raise CosError("AccessDenied", f"The Authorization header repeats {name}.")
        fields[name] = text
    required = ("q-sign-algorithm", "q-ak", "q-sign-time", "q-key-time", "q-signature")
    missing = [name for name in required if name not in fields]
    if missing:
        raise CosError(
            "AccessDenied",
            f"The Authorization header is not a COS signature (missing {', '.join(missing)}).",
        )
    if fields["q-sign-algorithm"] != "sha1":
        raise CosError("AccessDenied", "Only q-sign-algorithm=sha1 is supported.")
    signature = fields["q-signature"].lower()
    if not _HEX40.fullmatch(signature):
        raise CosError("AccessDenied", "q-signature must be 40 hex digits.")
    _window(fields["q-sign-time"])
    _window(fields["q-key-time"])
    headers = tuple(name for name in fields.get("q-header-list", "").split(";") if name)
    params = tuple(name for name in fields.get("q-url-param-list", "").split(";") if name)
    return Authorization(
        secret_id=fields["q-ak"],
        sign_time=fields["q-sign-time"],
        key_time=fields["q-key-time"],
        header_list=headers,
        param_list=params,
        signature=signature,
    )


def encode(value: bytes) -> str:
    """The SDK's percent-encoding of signed names and values (safe set ``-_.~``)."""
    return quote(value, safe="-_.~")


def string_to_sign(
    method: str, path: str, params: Mapping[str, str], headers: Mapping[str, str], sign_time: str
) -> str:
    """``sha1\\n<q-sign-time>\\n<sha1 of FormatString>\\n`` from already-encoded params/headers."""
    joined_params = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    joined_headers = "&".join(f"{k}={v}" for k, v in sorted(headers.items()))
    format_string = f"{method.lower()}\n{path}\n{joined_params}\n{joined_headers}\n"
    digest = hashlib.sha1(format_string.encode("utf-8"), usedforsecurity=False).hexdigest()
    return f"sha1\n{sign_time}\n{digest}\n"


def sign(secret_key: str, key_time: str, to_sign: str) -> str:
    """``HMAC-SHA1(hex(HMAC-SHA1(SecretKey, q-key-time)), StringToSign)`` as hex."""
    sign_key = hmac.new(secret_key.encode(), key_time.encode(), hashlib.sha1).hexdigest()
    return hmac.new(sign_key.encode(), to_sign.encode(), hashlib.sha1).hexdigest()


def _host_candidates(host: str) -> list[str]:
    """The SDK signs the URL's hostname without the port unless it set ``Host`` itself (IP
    mode), so both forms are tried."""
    candidates = [host]
    try:
        hostname = urlsplit(f"//{host}").hostname
    except ValueError:
        hostname = None
    if hostname and hostname != host:
        candidates.insert(0, hostname)
    return candidates


def verify_signature(
    auth: Authorization,
    secret_key: str,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
) -> None:
    """Recompute the signature over what the request says it signed; raise on a mismatch.

    ``query`` maps encoded, lower-cased parameter names to encoded values; ``headers`` is the
    request's headers (case-insensitive lookup by lower-case name).
    """
    params: dict[str, str] = {}
    for name in auth.param_list:
        if name not in query:
            raise CosError("SignatureDoesNotMatch", f"The signed parameter {name} is absent.")
        params[name] = query[name]
    signed_headers: dict[str, str] = {}
    host_options = [""]
    for name in auth.header_list:
        if not _HEADER_NAME.fullmatch(name):
            raise CosError("SignatureDoesNotMatch", "q-header-list has a malformed name.")
        if name == "host":
            host_options = _host_candidates(headers.get("host", ""))
            continue
        value = headers.get(name)
        if value is None:
            raise CosError("SignatureDoesNotMatch", f"The signed header {name} is absent.")
        signed_headers[name] = encode(value.encode("latin-1"))
    for host in host_options:
        candidate = dict(signed_headers)
        if "host" in auth.header_list:
            candidate["host"] = encode(host.encode("latin-1"))
        expected = sign(
            secret_key,
            auth.key_time,
            string_to_sign(method, path, params, candidate, auth.sign_time),
        )
        if hmac.compare_digest(expected, auth.signature):
            return
    raise CosError(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided; "
        "check the temporary SecretKey and the signing method.",
    )


def check_time(auth: Authorization, now: float) -> None:
    """Both windows must hold ``now`` (with clock skew) and be no longer than the SDK's."""
    for start, end in (_window(auth.sign_time), _window(auth.key_time)):
        if start > now + CLOCK_SKEW_SECONDS:
            raise CosError(
                "RequestTimeTooSkewed",
                "The signature's start time is too far ahead of the server's clock.",
            )
        if end < now:
            raise CosError("AccessDenied", "Request has expired: the signature's time is over.")
        if end - start > MAX_SIGN_WINDOW_SECONDS:
            raise CosError(
                "AccessDenied",
                f"The signature's validity window exceeds {MAX_SIGN_WINDOW_SECONDS} seconds.",
            )


# --- request helpers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Query:
    """The query string: raw decoded values by name, and the encoded form the signature uses."""

    values: dict[str, str]
    encoded: dict[str, str]

    def has(self, name: str) -> bool:
        return name in self.values

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)


def _query(raw: str) -> _Query:
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
    return _Query(values, encoded)


def _int_param(query: _Query, name: str, default: int, low: int, high: int) -> int:
    text = query.get(name, "")
    if text == "":
        return default
    if not text.isdigit() or len(text) > 9 or not low <= int(text) <= high:
        raise CosError("InvalidArgument", f"{name} must be an integer in [{low}, {high}].")
    return int(text)


def _element(name: str, value: object) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def _xml(root: str, body: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>{body}</{root}>'.encode()


def _cors(request: Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    if not origin:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": "ETag, Content-Length, x-cos-request-id",
        "Vary": "Origin",
    }


def _preflight(request: Request) -> Response:
    """CORS preflight: no credential is ambient (no cookies), the signature is the credential,
    so any origin may ask."""
    headers = {
        **_cors(request),
        "Access-Control-Allow-Methods": "GET, HEAD, PUT, POST, DELETE",
        "Access-Control-Max-Age": "600",
    }
    wanted = request.headers.get("access-control-request-headers", "")
    if wanted and _TOKEN_LIST.fullmatch(wanted):
        headers["Access-Control-Allow-Headers"] = wanted
    return Response(b"", status_code=200, headers=headers)


@dataclass(frozen=True)
class _Call:
    """One COS request as the handlers see it."""

    request: Request
    request_id: str
    path: str
    query: _Query

    def answer(
        self, status: int = 200, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Response:
        merged = {"x-cos-request-id": self.request_id, **_cors(self.request), **(headers or {})}
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
        status = _STATUS.get(code, 400)
        if self.request.method == "HEAD":
            return self.answer(status)
        body = _xml(
            "Error",
            _element("Code", code)
            + _element("Message", message)
            + _element("Resource", self.path)
            + _element("RequestId", self.request_id)
            + _element("TraceId", self.request_id),
        )
        return self.answer(status, body)


def _content_length(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    if not declared.isdigit() or len(declared) > 18:
        raise CosError("InvalidArgument", "Content-Length is not a valid length.")
    return int(declared)


def _content_md5(request: Request) -> bytes | None:
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


# --- the endpoint --------------------------------------------------------------------------------


class CosEndpoint:
    """The handlers; one instance per app, holding the context."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- authorisation --

    async def authorize(self, call: _Call) -> Grant:
        """The session grant behind a correctly signed, current request with its token."""
        request = call.request
        header = request.headers.get("authorization")
        if not header:
            raise CosError(
                "AccessDenied",
                "Anonymous access is not allowed: sign the request with the TempCertificate "
                "that ApplyUpload returned.",
            )
        auth = parse_authorization(header)
        grant = await run_in_threadpool(uploads.grant_for, self.ctx, auth.secret_id)
        if grant is None:
            raise CosError(
                "InvalidAccessKeyId", "The SecretId you provided does not exist in our records."
            )
        now = self.ctx.now().timestamp()
        check_time(auth, now)
        for name in SIGNED_OPERATION_PARAMS:
            if name in call.query.encoded and name not in auth.param_list:
                raise CosError(
                    "AccessDenied", f"The query parameter {name} must be covered by the signature."
                )
        verify_signature(
            auth,
            grant.secret_key,
            request.method,
            call.path,
            call.query.encoded,
            {name.lower(): value for name, value in request.headers.items()},
        )
        if not grant.token_matches(request.headers.get("x-cos-security-token")):
            raise CosError(
                "AccessDenied",
                "The x-cos-security-token header is missing or does not belong to this key.",
            )
        if grant.expires_at.timestamp() <= now:
            raise CosError("AccessDenied", "The temporary credential has expired.")
        if not grant.is_open:
            raise CosError(
                "AccessDenied",
                "The upload session of this credential has been committed (or is being "
                "committed); its objects can no longer change.",
            )
        return grant

    @staticmethod
    def staging_key(grant: Grant, key: str) -> str:
        staging = grant.staging_key(key)
        if staging is None:
            raise CosError(
                "AccessDenied",
                "This temporary credential may only write the MediaStoragePath and "
                "CoverStoragePath of its own upload session.",
            )
        return staging

    # -- bodies --

    async def receive(self, request: Request, key: str, content_type: str, limit: int) -> str:
        """Stream the body into the store under ``key``; returns its MD5 (hex).

        Nothing is published unless the whole body arrived within ``limit`` bytes, matched its
        ``Content-Length`` and its ``Content-MD5``.
        """
        declared = _content_length(request)
        if declared is not None and declared > limit:
            raise CosError(*_too_large(self.ctx))
        expected_md5 = _content_md5(request)
        manager = self.ctx.store.writer(key, content_type)
        handle = await run_in_threadpool(manager.__enter__)
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        buffer = bytearray()
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise CosError(*_too_large(self.ctx))
                digest.update(chunk)
                buffer += chunk
                if len(buffer) >= WRITE_BUFFER:
                    data = bytes(buffer)
                    buffer.clear()
                    await run_in_threadpool(handle.write, data)
            if buffer:
                await run_in_threadpool(handle.write, bytes(buffer))
            if declared is not None and size != declared:
                raise CosError(
                    "IncompleteBody",
                    "You did not provide the number of bytes specified by Content-Length.",
                )
            if expected_md5 is not None and not hmac.compare_digest(expected_md5, digest.digest()):
                raise CosError(
                    "BadDigest", "The Content-MD5 you specified did not match what we received."
                )
        except BaseException as exc:
            # Inline, not in a thread: on cancellation (client gone) an await would not run.
            # Aborting only closes and unlinks the temporary file.
            manager.__exit__(type(exc), exc, exc.__traceback__)
            raise
        await run_in_threadpool(manager.__exit__, None, None, None)
        return digest.hexdigest()

    @staticmethod
    async def read_xml(request: Request) -> ElementTree.Element:
        declared = _content_length(request)
        if declared is not None and declared > MAX_XML_BODY:
            raise CosError("MalformedXML", f"The XML body exceeds {MAX_XML_BODY} bytes.")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_XML_BODY:
                raise CosError("MalformedXML", f"The XML body exceeds {MAX_XML_BODY} bytes.")
            chunks.append(chunk)
        body = b"".join(chunks)
        # No DTDs at all: entity expansion is the classic XML bomb.
        if b"<!" in body.replace(b"<![CDATA[", b""):
            raise CosError("MalformedXML", "DOCTYPE and ENTITY declarations are not allowed.")
        try:
            return ElementTree.fromstring(body)
        except ElementTree.ParseError:
            raise CosError("MalformedXML", "The XML you provided was not well-formed.") from None

    # -- operations --

    async def put_object(self, call: _Call, grant: Grant, key: str) -> Response:
        staging = self.staging_key(grant, key)
        md5 = await self.receive(
            call.request, staging, uploads.content_type_of(key), self.ctx.settings.max_upload_bytes
        )
        if not await run_in_threadpool(uploads.session_is_open, self.ctx, grant.session_key):
            await run_in_threadpool(self.ctx.store.delete, staging)
            raise CosError("AccessDenied", "The upload session was committed during the upload.")
        return call.answer(200, headers={"ETag": f'"{md5}"'})

    async def upload_part(self, call: _Call, grant: Grant, key: str) -> Response:
        self.staging_key(grant, key)
        number = _int_param(call.query, "partNumber", 0, 1, uploads.MAX_PART_NUMBER)
        upload_id = call.query.get("uploadId")
        budget = await run_in_threadpool(
            uploads.part_budget, self.ctx, grant, key, upload_id, number
        )
        part_key = uploads.new_part_key(self.ctx, grant)
        md5 = await self.receive(call.request, part_key, "application/octet-stream", budget)
        size = await run_in_threadpool(self._size_of, part_key)
        await run_in_threadpool(
            functools.partial(
                uploads.record_part,
                self.ctx,
                grant,
                key,
                upload_id,
                number,
                md5=md5,
                size=size,
                store_key=part_key,
            )
        )
        return call.answer(200, headers={"ETag": f'"{md5}"'})

    def _size_of(self, key: str) -> int:
        stored = self.ctx.store.stat(key)
        if stored is None:
            raise CosError("InternalError", "The part vanished after it was written.")
        return stored.size

    async def initiate(self, call: _Call, grant: Grant, key: str) -> Response:
        self.staging_key(grant, key)
        info = await run_in_threadpool(uploads.initiate_multipart, self.ctx, grant, key)
        body = _element("Bucket", grant.bucket) + _element("Key", key)
        return call.answer(
            200,
            _xml("InitiateMultipartUploadResult", body + _element("UploadId", info.upload_id)),
        )

    async def complete(self, call: _Call, grant: Grant, key: str) -> Response:
        self.staging_key(grant, key)
        root = await self.read_xml(call.request)
        wanted = _part_list(root)
        upload_id = call.query.get("uploadId")
        etag = await run_in_threadpool(
            uploads.complete_multipart, self.ctx, grant, key, upload_id, wanted
        )
        host = call.request.headers.get("host", "")
        body = (
            _element("Location", f"{host}/{key}")
            + _element("Bucket", grant.bucket)
            + _element("Key", key)
            + _element("ETag", etag)
        )
        return call.answer(200, _xml("CompleteMultipartUploadResult", body))

    async def abort(self, call: _Call, grant: Grant, key: str) -> Response:
        self.staging_key(grant, key)
        upload_id = call.query.get("uploadId")
        await run_in_threadpool(uploads.abort_multipart, self.ctx, grant, key, upload_id)
        return call.answer(204)

    async def list_parts(self, call: _Call, grant: Grant, key: str) -> Response:
        self.staging_key(grant, key)
        upload_id = call.query.get("uploadId")
        marker = _int_param(call.query, "part-number-marker", 0, 0, uploads.MAX_PART_NUMBER)
        limit = _int_param(call.query, "max-parts", uploads.MAX_LIST, 1, uploads.MAX_LIST)
        url_encoded = call.query.get("encoding-type") == "url"
        parts, truncated = await run_in_threadpool(
            uploads.list_parts, self.ctx, grant, key, upload_id, marker, limit
        )
        body = (
            _element("Bucket", grant.bucket)
            + (_element("Encoding-type", "url") if url_encoded else "")
            + _element("Key", quote(key, safe="/") if url_encoded else key)
            + _element("UploadId", upload_id)
            + _element("StorageClass", "STANDARD")
            + _element("PartNumberMarker", marker)
            + _element("NextPartNumberMarker", parts[-1].number if parts else marker)
            + _element("MaxParts", limit)
            + _element("IsTruncated", "true" if truncated else "false")
        )
        for part in parts:
            body += (
                "<Part>"
                + (
                    _element("PartNumber", part.number)
                    + _element("LastModified", _iso(part.updated_at.timestamp()))
                    + _element("ETag", part.etag)
                    + _element("Size", part.size)
                )
                + "</Part>"
            )
        return call.answer(200, _xml("ListPartsResult", body))

    async def list_uploads(self, call: _Call, grant: Grant) -> Response:
        prefix = call.query.get("prefix")
        url_encoded = call.query.get("encoding-type") == "url"
        found = await run_in_threadpool(uploads.list_multipart, self.ctx, grant, prefix)

        def text(value: str) -> str:
            return quote(value, safe="/") if url_encoded else value

        body = (
            _element("Bucket", grant.bucket)
            + (_element("Encoding-Type", "url") if url_encoded else "")
            + _element("Prefix", text(prefix))
            + _element("MaxUploads", uploads.MAX_LIST)
            + _element("IsTruncated", "false")
        )
        for info in found:
            body += (
                "<Upload>"
                + (
                    _element("Key", text(info.object_key))
                    + _element("UploadId", info.upload_id)
                    + _element("StorageClass", "STANDARD")
                    + _element("Initiated", _iso(info.created_at.timestamp()))
                )
                + "</Upload>"
            )
        return call.answer(200, _xml("ListMultipartUploadsResult", body))

    async def head(self, call: _Call, grant: Grant, key: str) -> Response:
        staging = self.staging_key(grant, key)
        stored = await run_in_threadpool(self.ctx.store.stat, staging)
        if stored is None:
            return call.answer(404)
        return call.answer(200, headers={"ETag": stored.etag, "Content-Length": str(stored.size)})

    # -- dispatch --

    async def object_request(self, request: Request) -> Response:
        return await self._run(request, self._object)

    async def bucket_request(self, request: Request) -> Response:
        return await self._run(request, self._bucket)

    async def _object(self, call: _Call) -> Response:
        key = call.path[1:]
        method = call.request.method
        grant = await self.authorize(call)
        query = call.query
        if method == "PUT":
            if query.has("partNumber") or query.has("uploadId"):
                return await self.upload_part(call, grant, key)
            return await self.put_object(call, grant, key)
        if method == "POST" and query.has("uploads"):
            return await self.initiate(call, grant, key)
        if method == "POST" and query.has("uploadId"):
            return await self.complete(call, grant, key)
        if method == "DELETE" and query.has("uploadId"):
            return await self.abort(call, grant, key)
        if method == "GET" and query.has("uploadId"):
            return await self.list_parts(call, grant, key)
        if method == "HEAD":
            return await self.head(call, grant, key)
        raise CosError(
            "AccessDenied", "A temporary upload credential may only write its session's objects."
        )

    async def _bucket(self, call: _Call) -> Response:
        grant = await self.authorize(call)
        return await self.list_uploads(call, grant)

    async def _run(
        self, request: Request, handler: Callable[[_Call], Awaitable[Response]]
    ) -> Response:
        request_id = uuid.uuid4().hex
        path: str = request.scope["path"]
        call = _Call(request, request_id, path, _Query({}, {}))
        try:
            if request.method == "OPTIONS":
                return _preflight(request)
            call = _Call(
                request, request_id, path, _query(request.scope["query_string"].decode("latin-1"))
            )
            response = await handler(call)
        except CosError as error:
            log.info("cos %s %s refused: %s: %s", request.method, path, error.code, error.message)
            return call.error(error.code, error.message)
        except ObjectError as error:
            log.info("cos %s %s refused: %s: %s", request.method, path, error.code, error.message)
            return call.error(error.code, error.message)
        except Exception:
            log.exception("cos %s %s failed", request.method, path)
            return call.error("InternalError", "We encountered an internal error; retry later.")
        log.debug("cos %s %s -> %s", request.method, path, response.status_code)
        return response


def _too_large(ctx: Context) -> tuple[str, str]:
    return (
        "EntityTooLarge",
        f"Your proposed upload exceeds the maximum allowed object size of "
        f"{ctx.settings.max_upload_bytes} bytes.",
    )


def _iso(timestamp: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _part_list(root: ElementTree.Element) -> list[tuple[int, str]]:
    """``[(PartNumber, ETag)]`` from a CompleteMultipartUpload body."""
    if _local(root.tag) != "CompleteMultipartUpload":
        raise CosError("MalformedXML", "The root element must be CompleteMultipartUpload.")
    parts: list[tuple[int, str]] = []
    for element in root:
        if _local(element.tag) != "Part":
            continue
        number_text = etag = None
        for child in element:
            if _local(child.tag) == "PartNumber":
                number_text = (child.text or "").strip()
            elif _local(child.tag) == "ETag":
                etag = (child.text or "").strip()
        if not number_text or not number_text.isdigit() or len(number_text) > 5 or etag is None:
            raise CosError("MalformedXML", "Each Part needs a PartNumber and an ETag.")
        number = int(number_text)
        if not 1 <= number <= uploads.MAX_PART_NUMBER:
            raise CosError("InvalidArgument", "PartNumber must be in [1, 10000].")
        parts.append((number, etag))
        if len(parts) > uploads.MAX_PART_NUMBER:
            raise CosError("MalformedXML", "Too many parts.")
    return parts


class _CosRoute(Route):
    """A route that claims a request only when ``accept(scope)`` says it is a COS request, so
    it can share paths with the API (``/``) and leave every other request to the other routes.
    """

    def __init__(
        self,
        path: str,
        endpoint: Callable[[Request], Awaitable[Response]],
        accept: Callable[[Scope], bool],
    ) -> None:
        super().__init__(path, endpoint, methods=COS_METHODS)
        self._accept = accept

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.NONE or not self._accept(scope):
            return Match.NONE, {}
        return match, child


def _is_object_request(scope: Scope) -> bool:
    # Store keys start with the sub-application id (``Store.new_key``); nothing else served on
    # this listener does, so digits-first paths are COS object requests whatever the method.
    return _OBJECT_PATH.match(str(scope.get("path", ""))) is not None


def _is_bucket_request(scope: Scope) -> bool:
    # ``GET /?uploads...`` (ListMultipartUploads); the API at ``/`` never has that parameter.
    if scope.get("method") not in ("GET", "HEAD", "OPTIONS"):
        return False
    query = bytes(scope.get("query_string", b""))
    if b"uploads" not in query:  # the common case, API calls: no parsing
        return False
    raw = query.decode("latin-1")
    return any(name == "uploads" for name, _ in parse_qsl(raw, keep_blank_values=True))


def cos_routes(ctx: Context) -> list[Route]:
    """The COS endpoint's routes; put them before the API's ``/`` route."""
    endpoint = CosEndpoint(ctx)
    return [
        _CosRoute("/", endpoint.bucket_request, _is_bucket_request),
        _CosRoute("/{key:path}", endpoint.object_request, _is_object_request),
    ]
