"""Client upload signatures (spec 6.6): what an app server hands a browser or phone so that it can
upload one video without ever holding the API key.

The app server signs a URL query string (``secretId``, ``currentTimeStamp``, ``expireTime``,
``random`` and optional upload options such as ``procedure``) with its SecretKey::

    signature = base64(HMAC-SHA1(SecretKey, plaintext) || plaintext)

The plaintext travels inside the signature, so the options it carries are authenticated: the
client can read them but cannot change them. That is why the upload options that matter (the
task flow to run, its priority, the contexts echoed in callbacks, the sub-application) are taken
from the signature and never from the client's request body.

``verify`` checks a signature completely except for one-time use, which needs a database write:
``record_one_time_use`` performs it inside the caller's transaction, and ``one_time_claim`` is
the variant for callers whose write happens in a transaction they do not control (such as
``uploads.apply``, which opens its own). A client that resumes an upload session with its
``vodSessionKey`` is answered by ``uploads.resume``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import IntEnum
from typing import Final
from urllib.parse import parse_qsl, quote, urlencode

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from anigraph.context import Context
from anigraph.db.models_upload_signatures import UploadSignatureUse
from anigraph.domain.upload_signature import (
    DIGEST_BYTES,
    FUTURE_SKEW_SECONDS,
    MAX_LIFETIME_SECONDS,
    MAX_SIGNATURE_CHARS,
    PROCEDURE_MAX,
    SESSION_CONTEXT_MAX,
    SOURCE_CONTEXT_MAX,
    STORAGE_REGION_MAX,
    TASK_NOTIFY_MODES,
    TASK_PRIORITY_MAX,
    TASK_PRIORITY_MIN,
)
from anigraph.services import keys

RANDOM_MAX: Final = 2**32
"""``random`` is documented as an unsigned 32-bit number, but Tencent's own Node sample computes
``Math.round(Math.random() * 2**32)``, which can reach 2**32 itself; that value is accepted."""

_INTEGER = re.compile(r"-?[0-9]{1,19}")
_REGION = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


class UgcCode(IntEnum):
    """Numeric ``code`` values of the UGC upload API for signature failures (31xxx).

    Tencent does not publish the codes of its ``/v3/index.php`` API, so these are anigraph's own;
    they are stable and documented, and the web SDK only compares ``code`` with 0 (any other
    value except 500, which makes it switch hosts, is an error it retries and then reports).
    """

    SIGNATURE_MALFORMED = 31001
    SIGNATURE_MISMATCH = 31002
    SECRET_ID_UNKNOWN = 31003
    SIGNATURE_EXPIRED = 31004
    TIMESTAMP_IN_FUTURE = 31005
    LIFETIME_INVALID = 31006
    ONE_TIME_USED = 31007
    SUB_APP_MISMATCH = 31008
    FIELD_INVALID = 31009


class UploadSignatureError(Exception):
    """A refused signature: a stable numeric ``code`` (``UgcCode``) and a message for humans."""

    def __init__(self, code: UgcCode, message: str) -> None:
        super().__init__(f"{int(code)} {code.name}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SignedUpload:
    """What a verified signature authorises. Absent options carry their documented defaults."""

    secret_id: str
    sub_app_id: int
    current_time_stamp: int
    expire_time: int
    random: int
    procedure: str = ""
    class_id: int = 0
    task_priority: int = 0
    task_notify_mode: str = "Finish"
    source_context: str = ""
    session_context: str = ""
    one_time: bool = False
    storage_region: str = ""
    fingerprint: str = ""
    """SHA-256 hex of the decoded signature bytes: the key for one-time use."""

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expire_time, UTC)


def _unix(now: int | float | datetime | None) -> int:
    if now is None:
        return int(datetime.now(UTC).timestamp())
    if isinstance(now, datetime):
        return int(now.timestamp())
    return int(now)


def sign(
    secret_id: str,
    secret_key: str,
    *,
    expire_seconds: int,
    procedure: str = "",
    one_time: bool = False,
    sub_app_id: int | None = None,
    class_id: int | None = None,
    task_priority: int | None = None,
    task_notify_mode: str | None = None,
    source_context: str | None = None,
    session_context: str | None = None,
    storage_region: str | None = None,
    now: int | float | datetime | None = None,
    random: int | None = None,
) -> str:
    """A client upload signature valid for ``expire_seconds`` from ``now``, as an app server makes
    one. Values are percent-encoded the way Node's ``querystring`` does (space as ``%20``), which
    every documented decoder reads back unchanged."""
    if not 1 <= expire_seconds <= MAX_LIFETIME_SECONDS:
        raise ValueError(f"expire_seconds must be between 1 and {MAX_LIFETIME_SECONDS}")
    current = _unix(now)
    fields: list[tuple[str, str]] = [
        ("secretId", secret_id),
        ("currentTimeStamp", str(current)),
        ("expireTime", str(current + expire_seconds)),
        ("random", str(secrets.randbelow(RANDOM_MAX) if random is None else random)),
    ]
    optional: list[tuple[str, object | None]] = [
        ("procedure", procedure or None),
        ("classId", class_id),
        ("taskPriority", task_priority),
        ("taskNotifyMode", task_notify_mode),
        ("sourceContext", source_context),
        ("sessionContext", session_context),
        ("oneTimeValid", 1 if one_time else None),
        ("vodSubAppId", sub_app_id),
        ("storageRegion", storage_region),
    ]
    fields += [(name, str(value)) for name, value in optional if value is not None]
    plaintext = urlencode(fields, quote_via=quote).encode("utf-8")
    digest = hmac.new(secret_key.encode("utf-8"), plaintext, hashlib.sha1).digest()
    return base64.b64encode(digest + plaintext).decode("ascii")


def _decode(signature: str) -> bytes:
    if not signature:
        raise UploadSignatureError(UgcCode.SIGNATURE_MALFORMED, "The signature is empty.")
    if len(signature) > MAX_SIGNATURE_CHARS:
        raise UploadSignatureError(
            UgcCode.SIGNATURE_MALFORMED,
            f"The signature is longer than {MAX_SIGNATURE_CHARS} characters.",
        )
    # Line breaks and spaces creep in when a signature is copied through shells and templates.
    compact = "".join(signature.split())
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise UploadSignatureError(
            UgcCode.SIGNATURE_MALFORMED, "The signature is not valid base64."
        ) from None
    if len(raw) <= DIGEST_BYTES:
        raise UploadSignatureError(
            UgcCode.SIGNATURE_MALFORMED, "The signature is too short to hold a digest and fields."
        )
    return raw


def _parse_fields(plaintext: bytes) -> dict[str, str]:
    try:
        text = plaintext.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=True, encoding="utf-8", errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        raise UploadSignatureError(
            UgcCode.SIGNATURE_MALFORMED, "The signed fields are not a URL query string."
        ) from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            # Two values for one option leave what was meant open to interpretation.
            raise UploadSignatureError(
                UgcCode.SIGNATURE_MALFORMED, f"The signed field {name} appears more than once."
            )
        fields[name] = value
    return fields


def _integer(fields: dict[str, str], name: str, code: UgcCode) -> int | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if not _INTEGER.fullmatch(value):
        raise UploadSignatureError(code, f"The signed field {name} is not an integer.")
    return int(value)


def _required_integer(fields: dict[str, str], name: str) -> int:
    value = _integer(fields, name, UgcCode.SIGNATURE_MALFORMED)
    if value is None or value < 0:
        raise UploadSignatureError(
            UgcCode.SIGNATURE_MALFORMED,
            f"The signed field {name} is required and must be a non-negative integer.",
        )
    return value


def _check_times(current: int, expire: int, now: int) -> None:
    if current > now + FUTURE_SKEW_SECONDS:
        raise UploadSignatureError(
            UgcCode.TIMESTAMP_IN_FUTURE,
            f"currentTimeStamp {current} is more than {FUTURE_SKEW_SECONDS} s ahead of the "
            f"server's clock ({now}).",
        )
    if expire <= now:
        raise UploadSignatureError(
            UgcCode.SIGNATURE_EXPIRED, f"The signature expired at {expire} (now {now})."
        )
    if expire <= current or expire - current > MAX_LIFETIME_SECONDS:
        raise UploadSignatureError(
            UgcCode.LIFETIME_INVALID,
            "expireTime must be after currentTimeStamp and at most "
            f"{MAX_LIFETIME_SECONDS} s (90 days) later.",
        )


def _field_error(message: str) -> UploadSignatureError:
    return UploadSignatureError(UgcCode.FIELD_INVALID, message)


def _with_options(base: SignedUpload, fields: dict[str, str]) -> SignedUpload:
    """``base`` plus the optional upload options, checked against the API's limits (spec 6.6
    and 7.5); a value out of range is refused rather than clamped, as Tencent's API does."""
    procedure = fields.get("procedure", "")
    if len(procedure) > PROCEDURE_MAX:
        raise _field_error(f"procedure is longer than {PROCEDURE_MAX} characters.")
    class_id = _integer(fields, "classId", UgcCode.FIELD_INVALID) or 0
    if class_id < 0:
        raise _field_error("classId must not be negative.")
    priority = _integer(fields, "taskPriority", UgcCode.FIELD_INVALID) or 0
    if not TASK_PRIORITY_MIN <= priority <= TASK_PRIORITY_MAX:
        raise _field_error(
            f"taskPriority must be between {TASK_PRIORITY_MIN} and {TASK_PRIORITY_MAX}."
        )
    notify_mode = fields.get("taskNotifyMode") or "Finish"
    if notify_mode not in TASK_NOTIFY_MODES:
        raise _field_error(f"taskNotifyMode must be one of {', '.join(TASK_NOTIFY_MODES)}.")
    source_context = fields.get("sourceContext", "")
    if len(source_context) > SOURCE_CONTEXT_MAX:
        raise _field_error(f"sourceContext is longer than {SOURCE_CONTEXT_MAX} characters.")
    session_context = fields.get("sessionContext", "")
    if len(session_context) > SESSION_CONTEXT_MAX:
        raise _field_error(f"sessionContext is longer than {SESSION_CONTEXT_MAX} characters.")
    one_time = fields.get("oneTimeValid") or "0"
    if one_time not in ("0", "1"):
        raise _field_error("oneTimeValid must be 0 or 1.")
    region = fields.get("storageRegion", "")
    if region and (len(region) > STORAGE_REGION_MAX or not _REGION.fullmatch(region)):
        raise _field_error("storageRegion is not a region name.")
    return replace(
        base,
        procedure=procedure,
        class_id=class_id,
        task_priority=priority,
        task_notify_mode=notify_mode,
        source_context=source_context,
        session_context=session_context,
        one_time=one_time == "1",
        storage_region=region,
    )


def verify(ctx: Context, signature: str) -> SignedUpload:
    """The upload a signature authorises, or ``UploadSignatureError``.

    The HMAC is checked (in constant time) before any time or option rule, so a caller without
    the key learns only that the signature is bad. One-time use is *not* enforced here: that
    needs a write, which belongs in the same transaction as the upload it authorises (see
    ``record_one_time_use``).
    """
    raw = _decode(signature)
    digest, plaintext = raw[:DIGEST_BYTES], raw[DIGEST_BYTES:]
    fields = _parse_fields(plaintext)
    secret_id = fields.get("secretId", "")
    if not secret_id:
        raise UploadSignatureError(
            UgcCode.SIGNATURE_MALFORMED, "The signed field secretId is missing."
        )
    found = keys.lookup(ctx, secret_id)
    if found is None:
        raise UploadSignatureError(
            UgcCode.SECRET_ID_UNKNOWN, "The signature's secretId is unknown or revoked."
        )
    secret_key, key_sub_app = found
    expected = hmac.new(secret_key.encode("utf-8"), plaintext, hashlib.sha1).digest()
    if not hmac.compare_digest(expected, digest):
        raise UploadSignatureError(
            UgcCode.SIGNATURE_MISMATCH, "The signature does not match its fields."
        )
    current = _required_integer(fields, "currentTimeStamp")
    expire = _required_integer(fields, "expireTime")
    random_value = _required_integer(fields, "random")
    if random_value > RANDOM_MAX:
        raise UploadSignatureError(
            UgcCode.SIGNATURE_MALFORMED, "The signed field random is not a 32-bit number."
        )
    _check_times(current, expire, int(ctx.now().timestamp()))
    asked_sub_app = _integer(fields, "vodSubAppId", UgcCode.FIELD_INVALID) or 0
    if asked_sub_app not in (0, key_sub_app):
        raise UploadSignatureError(
            UgcCode.SUB_APP_MISMATCH,
            f"The signing key belongs to SubAppId {key_sub_app}, not {asked_sub_app}.",
        )
    base = SignedUpload(
        secret_id=secret_id,
        sub_app_id=key_sub_app,
        current_time_stamp=current,
        expire_time=expire,
        random=random_value,
        fingerprint=hashlib.sha256(raw).hexdigest(),
    )
    return _with_options(base, fields)


def _one_time_used() -> UploadSignatureError:
    return UploadSignatureError(
        UgcCode.ONE_TIME_USED, "This one-time signature has already been used."
    )


def record_one_time_use(session: Session, signed: SignedUpload, now: datetime) -> None:
    """Spend a one-time signature inside the caller's transaction (no-op for reusable ones).

    The insert hits the fingerprint's unique index if the signature was spent before, or while
    another transaction holding it is still open (that one wins: on SQLite the write lock
    serialises the two, on PostgreSQL the second insert waits and then fails). Expired rows are
    purged on the way, so the table stays as small as the set of live one-time signatures.
    """
    if not signed.one_time:
        return
    session.execute(delete(UploadSignatureUse).where(UploadSignatureUse.expires_at < now))
    session.add(
        UploadSignatureUse(
            fingerprint=signed.fingerprint,
            secret_id=signed.secret_id,
            sub_app_id=signed.sub_app_id,
            used_at=now,
            expires_at=signed.expires_at,
        )
    )
    try:
        session.flush()
    except IntegrityError:
        raise _one_time_used() from None


@contextmanager
def one_time_claim(ctx: Context, signed: SignedUpload) -> Iterator[None]:
    """Spend a one-time signature around work done in a transaction of its own.

    The claim commits before the body runs, so concurrent users of the same signature are
    refused at once; if the body fails, the claim is withdrawn so that the client's retry with the
    same signature can still succeed. A crash between the two leaves the signature spent, never
    used twice.
    """
    if not signed.one_time:
        yield
        return
    with ctx.db.session() as session:
        record_one_time_use(session, signed, ctx.now())
    try:
        yield
    except BaseException:
        with ctx.db.session() as session:
            session.execute(
                delete(UploadSignatureUse).where(
                    UploadSignatureUse.fingerprint == signed.fingerprint
                )
            )
        raise
