"""Tencent's wire values (spec 7.2): ISO times, ids. Plain functions, no I/O."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

EMPTY_TIME = "0001-01-01T00:00:00Z"
"""A time not reached yet, as Tencent's answers carry it (spec 7.2): Go's zero time."""


def iso(moment: datetime | None) -> str:
    """``2026-11-25T09:35:34Z``; an unset time is :data:`EMPTY_TIME`."""
    if moment is None:
        return EMPTY_TIME
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wire_time(stored: str) -> str:
    """A stored ISO time on the wire: ``""`` (not reached yet) becomes :data:`EMPTY_TIME`."""
    return stored or EMPTY_TIME


def parse_iso(text: str) -> datetime:
    """An ISO 8601 time as sent in TimeRange; naive values are taken as UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def new_task_id(sub_app_id: int) -> str:
    return f"{sub_app_id}-procedurev2-{secrets.token_hex(16)}"


def new_pull_task_id(sub_app_id: int) -> str:
    return f"{sub_app_id}-pull-{secrets.token_hex(16)}"


def new_file_id() -> str:
    """A numeric string like Tencent's (19 digits), not guessable."""
    return str(5_000_000_000_000_000_000 + secrets.randbelow(4_000_000_000_000_000_000))
