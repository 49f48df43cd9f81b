"""Server-side verification of Tencent Cloud API signatures (spec 1.2-1.4).

Two schemes arrive from the SDKs:

- TC3-HMAC-SHA256 (the default): an ``Authorization`` header; the action and timestamp travel in
  ``X-TC-*`` headers; parameters are a JSON body (POST) or a flattened query (GET).
- Legacy v1 (``HmacSHA1`` / ``HmacSHA256``): a ``Signature`` parameter among flattened parameters
  in a form body (POST) or the query (GET), next to the public parameters ``Action``,
  ``Timestamp``, ``Nonce``, ``SecretId``...

``verify_request`` picks the scheme, checks freshness (±300 s), the SecretId and the signature
(constant-time), and only then decodes the action parameters. The caller passes the request as
received: the method, the raw query text after ``?`` (not decoded, not re-encoded: TC3 signs it
verbatim), the headers, the raw body bytes, a SecretId -> SecretKey lookup and the current time.
The request path is assumed to be ``/``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, NoReturn
from urllib.parse import parse_qsl

from anigraph.api.errors import (
    ApiError,
    Code,
    invalid_authorization,
    invalid_parameter,
    invalid_parameter_value,
    missing_parameter,
    no_such_version,
    quote,
    secret_id_not_found,
    signature_expire,
    signature_failure,
    unsupported_protocol,
)
from anigraph.api.params import unflatten

API_VERSION: Final = "2018-07-17"
SERVICE: Final = "vod"
"""The credential scope's service as most SDKs sign it. Any signed value is accepted: Tencent's
Node.js SDK names the endpoint's first DNS label (``127`` for ``127.0.0.1:8080``), and the value
is part of the string to sign and of the signing key, so only a holder of the key can choose it."""
TC3_ALGORITHM: Final = "TC3-HMAC-SHA256"
MAX_SKEW_SECONDS: Final = 300
"""Largest accepted difference between a request's timestamp and server time (spec 1.3, 7.5)."""
MAX_FIELDS: Final = 10_000
"""Most ``key=value`` pairs accepted in a query or form body."""

V1_PUBLIC_PARAMS: Final = frozenset(
    {
        "Action",
        "Version",
        "Timestamp",
        "Nonce",
        "SecretId",
        "SignatureMethod",
        "Signature",
        "Region",
        "Token",
        "RequestClient",
        "Language",
    }
)
"""Legacy v1 public parameters: removed from the action parameters (spec 1.4)."""

SecretLookup = Callable[[str], str | None]
"""SecretId -> SecretKey, or None when the SecretId is unknown."""

_FORM: Final = "application/x-www-form-urlencoded"
_JSON: Final = "application/json"
_UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
_V1_DIGESTS: Final = {"HmacSHA1": hashlib.sha1, "HmacSHA256": hashlib.sha256}
_TIMESTAMP_TEXT: Final = re.compile(r"[0-9]{1,15}")
_DATE_TEXT: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HEADER_NAME: Final = re.compile(r"[a-z0-9-]+")
_HEX_SIGNATURE: Final = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True, slots=True)
class Verified:
    """An authenticated request: who sent it, which action, and its parameters.

    ``params`` is the parsed JSON object when ``flattened`` is false (TC3 POST), otherwise the
    rebuilt query or form parameters with string leaves (TC3 GET, v1); pass ``flattened`` on to
    ``params.parse``. ``token`` is the temporary-credential token, not yet checked.
    """

    secret_id: str
    action: str
    token: str | None
    params: dict[str, Any]
    sign_method: str
    flattened: bool
    region: str | None = None
    language: str | None = None


def verify_request(
    method: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
    lookup_secret: SecretLookup,
    now: float,
) -> Verified:
    """Authenticate a request by whichever scheme it uses; raise ``ApiError`` if it fails.

    TC3 when ``Authorization`` starts with ``TC3-HMAC-SHA256``; legacy v1 when the query (GET) or
    form body (POST) has a ``Signature``. Any other ``Authorization`` scheme gives
    ``AuthFailure.InvalidAuthorization``; no signature at all gives
    ``AuthFailure.SignatureFailure``. Methods other than GET and POST give ``UnsupportedProtocol``.
    """
    _check_method(method)
    lowered = _lower_keys(headers)
    authorization = lowered.get("authorization", "").strip()
    if authorization.startswith(TC3_ALGORITHM):
        return _verify_tc3(method, raw_query, lowered, body, lookup_secret, now)
    pairs = _v1_pairs(method, raw_query, lowered, body)
    if any(key == "Signature" for key, _ in pairs):
        return _verify_v1(method, pairs, lowered, lookup_secret, now)
    if authorization:
        raise invalid_authorization(
            f"The Authorization scheme is not supported; use {TC3_ALGORITHM}."
        )
    raise signature_failure(
        "The request is not signed: it has neither a TC3-HMAC-SHA256 Authorization header "
        "nor a Signature parameter."
    )


def verify_tc3(
    method: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
    lookup_secret: SecretLookup,
    now: float,
) -> Verified:
    """Authenticate a TC3-HMAC-SHA256 request (spec 1.2, 1.3)."""
    _check_method(method)
    return _verify_tc3(method, raw_query, _lower_keys(headers), body, lookup_secret, now)


def verify_v1(
    method: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
    lookup_secret: SecretLookup,
    now: float,
) -> Verified:
    """Authenticate a legacy v1 (HmacSHA1 / HmacSHA256) request (spec 1.4)."""
    _check_method(method)
    lowered = _lower_keys(headers)
    return _verify_v1(
        method, _v1_pairs(method, raw_query, lowered, body), lowered, lookup_secret, now
    )


# ---------------------------------------------------------------------------------------------
# TC3-HMAC-SHA256


@dataclass(frozen=True, slots=True)
class _Tc3Authorization:
    secret_id: str
    date: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def _parse_authorization(value: str) -> _Tc3Authorization:
    def bad(reason: str) -> NoReturn:
        raise invalid_authorization(f"The Authorization header is malformed: {reason}.")

    scheme, _, rest = value.strip().partition(" ")
    if scheme != TC3_ALGORITHM:
        bad(f"the scheme must be {TC3_ALGORITHM}")
    items: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, item = part.strip().partition("=")
        if not sep or name not in ("Credential", "SignedHeaders", "Signature"):
            bad("expected Credential=..., SignedHeaders=..., Signature=...")
        if name in items:
            bad(f"{name} is given twice")
        items[name] = item.strip()
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not items.get(name):
            bad(f"{name} is missing")

    scope = items["Credential"].rsplit("/", 3)
    if len(scope) != 4 or not scope[0] or scope[3] != "tc3_request":
        bad("Credential must be <SecretId>/<YYYY-MM-DD>/<service>/tc3_request")
    secret_id, date, service, _ = scope
    if not _DATE_TEXT.fullmatch(date):
        bad("the Credential date must be YYYY-MM-DD")

    signed = tuple(items["SignedHeaders"].split(";"))
    if not all(_HEADER_NAME.fullmatch(name) for name in signed):
        bad("SignedHeaders must be lower-case header names separated by ';'")
    if len(set(signed)) != len(signed):
        bad("SignedHeaders lists a header twice")
    if "content-type" not in signed or "host" not in signed:
        bad("SignedHeaders must include content-type and host")

    if not _HEX_SIGNATURE.fullmatch(items["Signature"]):
        bad("Signature must be 64 hexadecimal digits")
    return _Tc3Authorization(secret_id, date, service, signed, items["Signature"].lower())


def _verify_tc3(
    method: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
    lookup_secret: SecretLookup,
    now: float,
) -> Verified:
    auth = _parse_authorization(headers.get("authorization", ""))
    action = headers.get("x-tc-action", "").strip()
    if not action:
        raise missing_parameter("X-TC-Action")
    _check_version(headers.get("x-tc-version"))
    timestamp_text = headers.get("x-tc-timestamp", "").strip()
    timestamp = _check_timestamp(timestamp_text, "X-TC-Timestamp", now)
    if auth.date != _utc_date(timestamp):
        raise signature_failure(
            f"The Credential date {auth.date} is not the UTC date of X-TC-Timestamp "
            f"({_utc_date(timestamp)})."
        )
    secret_key = lookup_secret(auth.secret_id)
    if secret_key is None:
        raise secret_id_not_found(auth.secret_id)

    values: list[str] = []
    for name in auth.signed_headers:
        value = headers.get(name)
        if value is None:
            raise invalid_authorization(f"The signed header {quote(name)} is not in the request.")
        values.append(value.strip())
    # Accept each canonical form a client produces: header values as sent (the Python SDK) or
    # lower-cased (Tencent's documentation: "x-tc-action:describeinstances"), and the Host
    # with or without its port (the Node.js SDK signs it without).
    blocks: set[str] = set()
    for host in _signed_host_forms(headers.get("host", "").strip()):
        block = "".join(
            f"{name}:{host if name == 'host' else value}\n"
            for name, value in zip(auth.signed_headers, values, strict=True)
        )
        blocks |= {block, block.lower()}

    if headers.get("x-tc-content-sha256", "").strip() == _UNSIGNED_PAYLOAD:
        payload = _UNSIGNED_PAYLOAD.encode()
    else:
        payload = b"" if method == "GET" else body
    payload_hash = hashlib.sha256(payload).hexdigest()
    canonical_query = raw_query if method == "GET" else ""
    scope = f"{auth.date}/{auth.service}/tc3_request"
    key = _tc3_signing_key(secret_key, auth.date, auth.service)
    matched = False
    for candidate in sorted(blocks):
        canonical_request = "\n".join(
            (method, "/", canonical_query, candidate, ";".join(auth.signed_headers), payload_hash)
        )
        string_to_sign = "\n".join(
            (TC3_ALGORITHM, timestamp_text, scope, _sha256_hex(canonical_request))
        )
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        matched |= hmac.compare_digest(expected.encode(), auth.signature.encode())
    if not matched:
        raise signature_failure()

    if method == "GET":
        params, flattened = unflatten(_parse_pairs(raw_query)), True
    else:
        params, flattened = _post_params(headers, body)
    return Verified(
        secret_id=auth.secret_id,
        action=action,
        token=headers.get("x-tc-token") or None,
        params=params,
        sign_method=TC3_ALGORITHM,
        flattened=flattened,
        region=headers.get("x-tc-region") or None,
        language=headers.get("x-tc-language") or None,
    )


def _signed_host_forms(host: str) -> tuple[str, ...]:
    """The Host values a client may have signed: as sent, and without its port.

    Tencent's Node.js SDK signs ``URL.hostname`` while sending ``URL.host``. The port is not
    secret and the host name is still signed, so accepting both loses no security.
    """
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and name:
        return (host, name)
    return (host,)


def _tc3_signing_key(secret_key: str, date: str, service: str) -> bytes:
    k_date = hmac.new(f"TC3{secret_key}".encode(), date.encode(), hashlib.sha256).digest()
    k_service = hmac.new(k_date, service.encode(), hashlib.sha256).digest()
    return hmac.new(k_service, b"tc3_request", hashlib.sha256).digest()


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _post_params(headers: Mapping[str, str], body: bytes) -> tuple[dict[str, Any], bool]:
    media_type = _media_type(headers)
    if media_type == _JSON:
        return _json_object(body), False
    if media_type == _FORM:
        return unflatten(_parse_pairs(_decode_form(body))), True
    raise invalid_parameter(
        f"The Content-Type {quote(media_type)} is not supported; send {_JSON} or {_FORM}."
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body, parse_constant=_reject_constant, object_pairs_hook=_unique_object)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        raise invalid_parameter(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise invalid_parameter("The request body must be a JSON object.")
    return value


# ---------------------------------------------------------------------------------------------
# Legacy v1


def _v1_pairs(
    method: str, raw_query: str, headers: Mapping[str, str], body: bytes
) -> list[tuple[str, str]]:
    """The flattened parameters a v1 request would carry: the query (GET) or a form body (POST)."""
    if method == "GET":
        return _parse_pairs(raw_query)
    if _media_type(headers) == _FORM:
        return _parse_pairs(_decode_form(body))
    return []


def _verify_v1(
    method: str,
    pairs: list[tuple[str, str]],
    headers: Mapping[str, str],
    lookup_secret: SecretLookup,
    now: float,
) -> Verified:
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise invalid_parameter(f"The parameter {quote(key)} is given more than once.")
        params[key] = value
    for name in ("Signature", "Action", "SecretId", "Timestamp", "Nonce"):
        if not params.get(name):
            raise missing_parameter(name)
    sign_method = params.get("SignatureMethod", "HmacSHA1")
    digest = _V1_DIGESTS.get(sign_method)
    if digest is None:
        raise invalid_parameter_value("SignatureMethod", "use HmacSHA1 or HmacSHA256")
    _check_version(params.get("Version"))
    _check_timestamp(params["Timestamp"], "Timestamp", now)
    secret_key = lookup_secret(params["SecretId"])
    if secret_key is None:
        raise secret_id_not_found(params["SecretId"])

    # The SDK replaces '_' by '.' in keys, sorts, and joins the raw (decoded) values.
    signed: dict[str, str] = {}
    for key, value in params.items():
        if key != "Signature":
            signed[key.replace("_", ".")] = value
    if len(signed) != len(params) - 1:
        raise invalid_parameter("Two parameter names differ only in '_' versus '.'.")
    query = "&".join(f"{key}={signed[key]}" for key in sorted(signed))
    string_to_sign = f"{method}{headers.get('host', '').strip()}/?{query}"
    mac = hmac.new(secret_key.encode(), string_to_sign.encode(), digest).digest()
    expected = base64.b64encode(mac)
    # A '+' left unescaped by a careless client decodes as a space.
    provided = params["Signature"].replace(" ", "+").encode()
    if not hmac.compare_digest(expected, provided):
        raise signature_failure()

    return Verified(
        secret_id=params["SecretId"],
        action=params["Action"],
        token=params.get("Token") or None,
        params=unflatten((k, v) for k, v in pairs if k not in V1_PUBLIC_PARAMS),
        sign_method=sign_method,
        flattened=True,
        region=params.get("Region") or None,
        language=params.get("Language") or None,
    )


# ---------------------------------------------------------------------------------------------
# shared


def _check_method(method: str) -> None:
    if method not in ("GET", "POST"):
        raise unsupported_protocol(method)


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _check_version(version: str | None) -> None:
    if version is not None and version.strip() != API_VERSION:
        raise no_such_version(version)


def _check_timestamp(text: str, name: str, now: float) -> int:
    if not text:
        raise missing_parameter(name)
    if not _TIMESTAMP_TEXT.fullmatch(text):
        raise invalid_parameter(f"The parameter {quote(name)} must be Unix time in seconds.")
    timestamp = int(text)
    if abs(now - timestamp) > MAX_SKEW_SECONDS:
        raise signature_expire(
            f"The signature has expired: {quote(name)} is more than {MAX_SKEW_SECONDS} seconds "
            "away from server time."
        )
    return timestamp


def _utc_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d")


def _decode_form(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_parameter("The form body is not valid UTF-8.") from None


def _parse_pairs(text: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(
            text,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise invalid_parameter("A parameter is not valid percent-encoded UTF-8.") from None
    except ValueError:  # more than MAX_FIELDS fields
        raise ApiError(
            Code.REQUEST_SIZE_LIMIT_EXCEEDED, f"The request has more than {MAX_FIELDS} parameters."
        ) from None
