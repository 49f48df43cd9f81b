"""``/v3/index.php``: the upload API of Tencent's web and mobile upload SDKs (the "UGC" API).

A browser or phone holding only a client upload signature (spec 6.6, ``upload_signature``)
uploads a video in three steps, exactly as ``vod-js-sdk-v6``'s ``uploader.ts`` drives them:

1. ``POST /v3/index.php?Action=ApplyUploadUGC`` with ``{signature, videoName, videoType,
   videoSize, coverName?, coverType?, coverSize?, uploadFromWeb, ExpireTime?, storageRegion?}``,
   or ``{signature, vodSessionKey}`` to resume (also how the SDK renews expiring COS credentials).
   The answer tells it where to put the object and with which temporary COS credentials.
2. The object goes to the COS-compatible endpoint with cos-js-sdk-v5 (``api/cos.py``), into
   bucket ``storageBucket + "-" + storageAppId``, region ``storageRegionV5``, key
   ``video.storagePath`` (the SDK strips the leading ``/``).
3. ``POST /v3/index.php?Action=CommitUploadUGC`` with ``{signature, vodSessionKey}``: the media
   item is created and the signed task flow starts.

``PrepareUploadUGC`` (the SDK's optional region race) is answered with no regions to race, which
makes the SDK go straight to step 1.

Answers are ``{"code": 0, "message": "", "data": {...}}``; failures are HTTP 200 with a non-zero
``code``, ``data: null`` and ``codeDesc`` naming the failure, because the SDK reads ``code`` from
the body and treats a failed HTTP exchange as a network error (code 500, which makes it switch to
its backup host). Codes: 31xxx for the signature (``UgcCode``), 32xxx for the request
(``RequestCode``).

The options that decide what happens after the upload (task flow, priority, contexts, class,
sub-application) come from the signature only, never from the body: the body is written by the
client, the signature by the app server that holds the key.

The browser calls this cross-origin, so every answer carries CORS headers for the request's
``Origin``; no cookies are involved (the SDK sets ``withCredentials: false``), the signature in
the body is the only credential.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from anigraph.api.bodies import read_capped
from anigraph.api.errors import ApiError
from anigraph.context import Context
from anigraph.domain.upload_signature import MAX_SIGNATURE_CHARS
from anigraph.services import upload_signature, uploads
from anigraph.services.upload_signature import SignedUpload, UploadSignatureError

log = logging.getLogger("anigraph.api.ugc")

PATH: Final = "/v3/index.php"
MAX_BODY_BYTES: Final = 64 * 1024
"""Largest request body: a signature is at most 16 KiB, and nothing else in a body is large."""

NAME_MAX: Final = 256
TYPE_MAX: Final = 16
CORS_MAX_AGE: Final = "600"
CREDENTIAL_WINDOW_SECONDS: Final = 7200
"""Longest COS credential lifetime announced to the SDK. cos-js-sdk signs every request for the
whole ``timestamp;expiredTime`` span, and the COS endpoint accepts spans no longer than the
Python SDK's (about 10,000 s), so a 6-hour session is announced in 2-hour slices; at 90 % of a
slice the SDK renews with a resume (``{signature, vodSessionKey}``) and gets the next one."""
_HEADER_LIST = re.compile(
    r"[A-Za-z0-9!#$%&'*+.^_`|~-]+(?:[ \t]*,[ \t]*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*"
)
_APP_ID_SUFFIX = re.compile(r"(?P<name>[a-z0-9][a-z0-9-]*)-(?P<app>[0-9]+)")


class RequestCode(IntEnum):
    """Numeric ``code`` values for failures that are not about the signature itself."""

    REQUEST_MALFORMED = 32001
    REQUEST_TOO_LARGE = 32002
    ACTION_UNKNOWN = 32003
    SESSION_INVALID = 32004
    PARAMETER_INVALID = 32005
    UNSUPPORTED_OPERATION = 32006
    OPERATION_FAILED = 32007
    INTERNAL_ERROR = 39999


class UgcError(Exception):
    """A failure rendered as ``{"code": code, "message": message, "codeDesc": desc}``."""

    def __init__(self, code: int, desc: str, message: str) -> None:
        super().__init__(f"{code} {desc}: {message}")
        self.code = code
        self.desc = desc
        self.message = message


def _request_error(code: RequestCode, message: str) -> UgcError:
    return UgcError(int(code), code.name, message)


def _from_signature(error: UploadSignatureError) -> UgcError:
    return UgcError(int(error.code), error.code.name, error.message)


def _from_api(error: ApiError) -> UgcError:
    """A service's Tencent-coded refusal, in the UGC API's numeric terms; the Tencent code stays
    visible in ``codeDesc`` so a developer can look it up in the API reference."""
    tencent = error.code
    if tencent.endswith(".VodSessionKey") or tencent.startswith(
        ("UnauthorizedOperation", "AuthFailure")
    ):
        code = RequestCode.SESSION_INVALID
    elif tencent.startswith(("InvalidParameter", "MissingParameter")):
        code = RequestCode.PARAMETER_INVALID
    elif tencent.startswith("UnsupportedOperation"):
        code = RequestCode.UNSUPPORTED_OPERATION
    elif tencent.startswith("InternalError"):
        code = RequestCode.INTERNAL_ERROR
    else:
        # FailedOperation.* (not media, not an image), ResourceNotFound (nothing uploaded yet).
        code = RequestCode.OPERATION_FAILED
    return UgcError(int(code), tencent, error.message)


# --- request body ---------------------------------------------------------------------------


def _text(body: Mapping[str, Any], name: str, limit: int, *, required: bool = False) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise _request_error(RequestCode.REQUEST_MALFORMED, f"{name} is required.")
        return ""
    if not isinstance(value, str):
        raise _request_error(RequestCode.REQUEST_MALFORMED, f"{name} must be a string.")
    if len(value) > limit:
        raise _request_error(
            RequestCode.REQUEST_MALFORMED, f"{name} is longer than {limit} characters."
        )
    return value


def _size(body: Mapping[str, Any], name: str) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _request_error(
            RequestCode.REQUEST_MALFORMED, f"{name} must be a non-negative number."
        )


def _parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except (UnicodeDecodeError, ValueError):
        raise _request_error(RequestCode.REQUEST_MALFORMED, "The body is not JSON.") from None
    if not isinstance(body, dict):
        raise _request_error(RequestCode.REQUEST_MALFORMED, "The body is not a JSON object.")
    return body


def _verified(ctx: Context, body: Mapping[str, Any]) -> SignedUpload:
    signature = _text(body, "signature", MAX_SIGNATURE_CHARS + 1024, required=True)
    try:
        return upload_signature.verify(ctx, signature)
    except UploadSignatureError as error:
        raise _from_signature(error) from None


# --- answers --------------------------------------------------------------------------------


def _bucket_and_app_id(bucket: str, sub_app_id: int) -> tuple[str, int]:
    """Split a COS bucket ``name-appid`` the way the SDK joins it back (``storageBucket + "-" +
    storageAppId``); cos-js-sdk refuses any bucket not shaped ``[a-z0-9-]+-[0-9]+``."""
    match = _APP_ID_SUFFIX.fullmatch(bucket)
    if match is None:
        return bucket, sub_app_id
    return match["name"], int(match["app"])


def _apply_data(
    ctx: Context, signed: SignedUpload, result: Mapping[str, Any], host: str
) -> dict[str, Any]:
    """ApplyUploadUGC's ``data``: every field uploader.ts (and the Android SDK) reads."""
    bucket, app_id = _bucket_and_app_id(str(result["StorageBucket"]), signed.sub_app_id)
    region = str(result["StorageRegion"])
    certificate = result.get("TempCertificate") or {}
    now = int(ctx.now().timestamp())
    expires = min(int(certificate.get("ExpiredTime", 0)), now + CREDENTIAL_WINDOW_SECONDS)
    data: dict[str, Any] = {
        "video": {"storageSignature": "", "storagePath": str(result["MediaStoragePath"])},
        "storageAppId": app_id,
        "storageBucket": bucket,
        "storageRegion": region,
        "storageRegionV5": region,
        "StorageRegionV5": region,
        "domain": host,
        "vodSessionKey": str(result["VodSessionKey"]),
        "tempCertificate": {
            "secretId": str(certificate.get("SecretId", "")),
            "secretKey": str(certificate.get("SecretKey", "")),
            "token": str(certificate.get("Token", "")),
            "expiredTime": expires,
        },
        "appId": signed.sub_app_id,
        # The SDK signs COS requests from this time on; our clock, not the client's.
        "timestamp": now,
    }
    cover_path = str(result.get("CoverStoragePath") or "")
    if cover_path:
        data["cover"] = {"storageSignature": "", "storagePath": cover_path}
    return data


def _commit_data(result: Mapping[str, Any]) -> dict[str, Any]:
    """CommitUploadUGC's ``data``: what ``uploader.done()`` resolves to (fileId, video.url,
    cover.url), plus the task flow's id, which the SDK passes through untouched."""
    data: dict[str, Any] = {
        "fileId": str(result["FileId"]),
        "video": {"url": str(result.get("MediaUrl") or ""), "verify_content": ""},
        "procedureTaskId": str(result.get("ProcedureTaskId") or ""),
    }
    if result.get("CoverUrl"):
        data["cover"] = {"url": str(result["CoverUrl"]), "verify_content": ""}
    return data


# --- actions --------------------------------------------------------------------------------


def _apply(ctx: Context, body: dict[str, Any], host: str) -> dict[str, Any]:
    signed = _verified(ctx, body)
    session_key = _text(body, "vodSessionKey", 256)
    if session_key:
        return _resume(ctx, signed, session_key, host)
    media_type = _text(body, "videoType", TYPE_MAX)
    if not media_type:
        if body.get("fileId"):
            raise _request_error(
                RequestCode.UNSUPPORTED_OPERATION,
                "Replacing the cover of an existing file is not supported; upload a video.",
            )
        raise _request_error(RequestCode.REQUEST_MALFORMED, "videoType is required.")
    for name in ("videoSize", "coverSize"):
        _size(body, name)
    request = uploads.UploadRequest(
        media_type=media_type,
        media_name=_text(body, "videoName", NAME_MAX),
        cover_type=_text(body, "coverType", TYPE_MAX),
        procedure=signed.procedure,
        class_id=signed.class_id,
        source_context=signed.source_context,
        session_context=signed.session_context,
        tasks_priority=signed.task_priority,
        tasks_notify_mode=signed.task_notify_mode,
        expire_time=_text(body, "ExpireTime", 64),
        # The app server's choice wins; otherwise the region the SDK's race picked.
        storage_region=signed.storage_region or _text(body, "storageRegion", 64),
    )
    try:
        with upload_signature.one_time_claim(ctx, signed):
            result = uploads.apply(ctx, signed.sub_app_id, request)
    except UploadSignatureError as error:
        raise _from_signature(error) from None
    except ApiError as error:
        raise _from_api(error) from None
    return _apply_data(ctx, signed, result, host)


def _resume(ctx: Context, signed: SignedUpload, session_key: str, host: str) -> dict[str, Any]:
    """The SDK's resume (a page reload with the session in localStorage) and its credential
    renewal: the same session, keys and credential again, so cos-js-sdk finds its unfinished
    multipart upload and continues from the parts already sent. A one-time signature is spent by
    a resume as by any ApplyUploadUGC."""
    try:
        with upload_signature.one_time_claim(ctx, signed):
            result = uploads.resume(ctx, signed.sub_app_id, session_key)
    except UploadSignatureError as error:
        raise _from_signature(error) from None
    except ApiError as error:
        raise _from_api(error) from None
    return _apply_data(ctx, signed, result, host)


def _commit(ctx: Context, body: dict[str, Any], _host: str) -> dict[str, Any]:
    signed = _verified(ctx, body)
    session_key = _text(body, "vodSessionKey", 256, required=True)
    try:
        result = uploads.commit(ctx, signed.sub_app_id, session_key)
    except ApiError as error:
        raise _from_api(error) from None
    return _commit_data(result)


def _prepare(ctx: Context, body: dict[str, Any], _host: str) -> dict[str, Any]:
    """The SDK's region race: one storage region here, so there is nothing to race."""
    signed = _verified(ctx, body)
    return {"appId": signed.sub_app_id, "cosRegionList": []}


ACTIONS: Final[dict[str, Callable[[Context, dict[str, Any], str], dict[str, Any]]]] = {
    "ApplyUploadUGC": _apply,
    "CommitUploadUGC": _commit,
    "PrepareUploadUGC": _prepare,
}


@dataclass(frozen=True)
class _Outcome:
    body: bytes
    code: int


def _render(request_id: str, code: int, message: str, data: Any, desc: str = "") -> bytes:
    answer: dict[str, Any] = {"code": code, "message": message, "data": data}
    if desc:
        answer["codeDesc"] = desc
    answer["requestId"] = request_id
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def handle(ctx: Context, action: str, raw: bytes | None, host: str, request_id: str) -> _Outcome:
    """One request from its action name and body bytes (``None``: too large) to the answer."""
    try:
        if raw is None:
            raise _request_error(
                RequestCode.REQUEST_TOO_LARGE, f"The body exceeds {MAX_BODY_BYTES} bytes."
            )
        handler = ACTIONS.get(action)
        if handler is None:
            raise _request_error(
                RequestCode.ACTION_UNKNOWN,
                f"Unknown Action {action[:64]!r}; this endpoint "
                "serves ApplyUploadUGC, CommitUploadUGC and PrepareUploadUGC.",
            )
        data = handler(ctx, _parse_body(raw), host)
    except UgcError as error:
        log.info("ugc %r refused: %s %s", action[:64], error.code, error.desc)
        return _Outcome(
            _render(request_id, error.code, error.message, None, error.desc), error.code
        )
    except Exception:
        log.exception("ugc %r internal error", action[:64])
        code = RequestCode.INTERNAL_ERROR
        message = "An internal error occurred; retry later."
        return _Outcome(_render(request_id, int(code), message, None, code.name), int(code))
    log.info("ugc %s ok", action)
    return _Outcome(_render(request_id, 0, "", data), 0)


# --- HTTP -----------------------------------------------------------------------------------


def _cors_headers(request: Request) -> dict[str, str]:
    """Allow the calling page's origin. Safe for any origin: no cookie or other ambient
    credential is involved, a request is only as good as the signature inside it."""
    origin = request.headers.get("origin")
    if not origin:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _preflight(request: Request) -> Response:
    headers = _cors_headers(request)
    asked = request.headers.get("access-control-request-headers", "").strip()
    headers.update(
        {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            # Echo what the page asks for (axios sends Content-Type, pages may add their own);
            # anything that is not a plain header-name list gets the minimum instead.
            "Access-Control-Allow-Headers": asked
            if asked and len(asked) <= 1024 and _HEADER_LIST.fullmatch(asked)
            else "Content-Type",
            "Access-Control-Max-Age": CORS_MAX_AGE,
        }
    )
    if "Vary" in headers:
        headers["Vary"] = "Origin, Access-Control-Request-Headers"
    return Response(status_code=204, headers=headers)


def ugc_routes(ctx: Context) -> list[Route]:
    """The routes to mount on the API listener (``create_app``)."""

    async def endpoint(request: Request) -> Response:
        if request.method == "OPTIONS":
            return _preflight(request)
        action = request.query_params.get("Action", "")
        raw = await read_capped(request, MAX_BODY_BYTES)
        host = request.headers.get("host", "")
        outcome = await run_in_threadpool(handle, ctx, action, raw, host, str(uuid.uuid4()))
        return Response(
            outcome.body,
            status_code=200,
            headers={"Content-Type": "application/json", **_cors_headers(request)},
        )

    return [Route(PATH, endpoint, methods=["POST", "OPTIONS"])]
