"""COS request signatures (spec 6.3): parse the ``Authorization`` header, recompute, compare.

Verified like ``cos_auth.CosS3Auth`` (cos-python-sdk-v5) computes it, compared in constant time;
both time windows must hold the server's clock and be no longer than the SDK's.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlsplit

from anigraph.api.cos.errors import CosError

CLOCK_SKEW_SECONDS: Final = 300
"""How far a signature's start time may lie ahead of our clock."""
MAX_SIGN_WINDOW_SECONDS: Final = 10_060
"""Longest accepted ``q-sign-time`` span: the SDK signs ``[now - 60, now + 10000]`` (spec 7.5)."""

SIGNED_OPERATION_PARAMS: Final = frozenset({"uploads", "uploadid", "partnumber"})
"""Query parameters that choose the operation: they must be covered by the signature, so that a
captured signature of one operation cannot be replayed as another."""
_HEX40: Final = re.compile(r"[0-9a-f]{40}")
_HEADER_NAME: Final = re.compile(r"[a-z0-9-]+")


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
