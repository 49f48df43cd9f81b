"""Which columns hold store keys, and the keys the rows point at.

The object copy works from the store's own listing, so it needs no list of columns to be
complete. The columns matter for checking: an object a row needs must be in the target when
the copy ends. Every column whose name ends in ``_key`` is classified below, one way or the
other; a test fails when a new one appears unclassified, so the check cannot silently miss it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import Connection, Table, select

NEEDED: frozenset[tuple[str, str]] = frozenset(
    {
        ("media", "store_key"),
        ("media", "cover_key"),
        ("media_outputs", "store_key"),
        ("cos_upload_parts", "store_key"),
    }
)
"""Store keys whose object exists for as long as the row does."""

PROVISIONAL: frozenset[tuple[str, str]] = frozenset(
    {
        ("upload_sessions", "media_key"),
        ("upload_sessions", "cover_key"),
        ("upload_sessions", "media_staging_key"),
        ("upload_sessions", "cover_staging_key"),
        ("cos_multipart_uploads", "object_key"),
    }
)
"""Store keys reserved ahead of their object (an upload not yet made or committed, a media
item since deleted): copied when present, never expected."""

NOT_STORE_KEYS: frozenset[tuple[str, str]] = frozenset(
    {
        ("api_keys", "secret_key"),
        ("event_configs", "sign_key"),
        ("upload_sessions", "vod_session_key"),
        ("upload_sessions", "temp_secret_key"),
        ("cos_multipart_uploads", "vod_session_key"),
    }
)
"""Columns named ``*_key`` that hold secrets or identifiers, not store keys."""


def key_like_columns(tables: Sequence[Table]) -> set[tuple[str, str]]:
    return {
        (table.name, column.name)
        for table in tables
        for column in table.columns
        if column.name.endswith("_key")
    }


def needed_keys(connection: Connection, tables: Sequence[Table]) -> Iterator[str]:
    """Every non-empty key in a ``NEEDED`` column (duplicates possible)."""
    for table in tables:
        for column in table.columns:
            if (table.name, column.name) not in NEEDED:
                continue
            query = select(column).where(column.is_not(None), column != "")
            yield from connection.scalars(query)
