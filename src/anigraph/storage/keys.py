"""Object keys: the store chooses them, and every store method checks them.

Keys become file paths (local store) and URL paths (``/files/<key>``), so a key that a client
can influence is a path-traversal hole. Two rules close it: callers never build keys (they ask
``new_key``), and every method of every store passes the key through ``validate_key`` before it
touches anything. The syntax is deliberately narrower than what a filesystem or S3 accepts:
ASCII letters, digits, ``.``, ``_``, ``-`` and ``/`` between non-empty segments, no segment that
starts with a dot (that rules out ``.`` and ``..`` and keeps the store's own hidden temp files
out of reach) and no final segment ending in the metadata sidecar suffix.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

KINDS = frozenset({"media", "output", "upload"})
"""What an object is for: a source video, a produced animation, an upload in progress."""

MAX_KEY_LENGTH = 256
"""The database column that holds keys is VARCHAR(256)."""

MAX_SEGMENT_LENGTH = 200
"""Below NAME_MAX (255) with room for the temp-file and sidecar decorations the store adds."""

META_SUFFIX = ".meta.json"
"""The local store keeps an object's metadata in ``<file>.meta.json``; never a key itself."""

_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", re.ASCII)
_SUFFIX = re.compile(r"\.[a-z0-9]{1,8}", re.ASCII)


class InvalidKey(ValueError):
    """A key that no store will ever hold: refused before any I/O.

    The message names the rule, never a filesystem path, so it is safe to log but should not be
    echoed to clients either (the files endpoint answers 404 without it).
    """


def validate_key(key: object) -> str:
    """Return ``key`` unchanged if it is well-formed, else raise ``InvalidKey``."""
    if not isinstance(key, str):
        raise InvalidKey("key must be a string")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"key must be 1-{MAX_KEY_LENGTH} characters")
    segments = key.split("/")
    for segment in segments:
        if len(segment) > MAX_SEGMENT_LENGTH or _SEGMENT.fullmatch(segment) is None:
            # Covers "", ".", "..", ".hidden", "\\", NUL, "%", spaces and non-ASCII.
            raise InvalidKey("key segments must match [A-Za-z0-9_-][A-Za-z0-9._-]*")
    if segments[-1].endswith(META_SUFFIX):
        raise InvalidKey(f"key must not end with {META_SUFFIX}")
    return key


def validate_suffix(suffix: str) -> str:
    """Return ``suffix`` if it is ``""`` or a short lowercase extension such as ``.gif``."""
    if suffix != "" and _SUFFIX.fullmatch(suffix) is None:
        raise ValueError(r"suffix must be empty or match ^\.[a-z0-9]{1,8}$")
    return suffix


def new_key(sub_app_id: int, kind: str, suffix: str, *, now: datetime | None = None) -> str:
    """A fresh, unguessable key: ``<sub_app_id>/<kind>/<yyyymmdd>/<32 hex><suffix>``.

    The sub-application and kind make the store browsable by an operator and let a retention job
    drop whole prefixes; the UTC day keeps directories small; 128 random bits make keys
    unguessable, so a file URL is a capability and keys are never reused (which is what lets the
    files endpoint mark responses immutable).
    """
    if isinstance(sub_app_id, bool) or not isinstance(sub_app_id, int) or sub_app_id < 0:
        raise ValueError("sub_app_id must be a non-negative integer")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}")
    validate_suffix(suffix)
    day = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d")
    return validate_key(f"{sub_app_id}/{kind}/{day}/{secrets.token_hex(16)}{suffix}")
