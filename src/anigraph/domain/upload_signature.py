"""Limits of client upload signatures (spec 6.6, 7.5): pure values, shared by the verifier and
the command line (which must not pay for the service's imports to build its options)."""

from __future__ import annotations

from typing import Final

MAX_LIFETIME_SECONDS: Final = 7_776_000
"""``expireTime - currentTimeStamp`` may be at most 90 days (spec 7.5)."""

FUTURE_SKEW_SECONDS: Final = 300
"""How far ``currentTimeStamp`` may lie ahead of our clock: the app server's clock may run a little
fast, but a signature dated well into the future would outlive the 90-day cap."""

MAX_SIGNATURE_CHARS: Final = 16_384
"""Longest signature accepted; every legitimate one is far shorter (contexts are capped at 1,250
characters, URL-encoded at most three times longer, then base64 adds a third)."""

DIGEST_BYTES: Final = 20
SOURCE_CONTEXT_MAX: Final = 250
SESSION_CONTEXT_MAX: Final = 1000
PROCEDURE_MAX: Final = 64
STORAGE_REGION_MAX: Final = 64
TASK_PRIORITY_MIN: Final = -10
TASK_PRIORITY_MAX: Final = 10
TASK_NOTIFY_MODES: Final = ("Finish", "Change", "None")
