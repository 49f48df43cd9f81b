"""Event tables: per-sub-app configuration and the outbox every event is written to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from anigraph.db.models import Base


class EventConfig(Base):
    """ModifyEventConfig's settings of one sub-app; no row means the defaults (PUSH, no URL)."""

    __tablename__ = "event_configs"

    sub_app_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    mode: Mapped[str] = mapped_column(String(8), default="PUSH")
    notification_url: Mapped[str] = mapped_column(Text, default="")
    upload_switch: Mapped[str] = mapped_column(String(3), default="OFF")
    delete_switch: Mapped[str] = mapped_column(String(3), default="OFF")
    persistence_switch: Mapped[str] = mapped_column(String(3), default="OFF")
    sign_key: Mapped[str] = mapped_column(String(32), default="")
    updated_at: Mapped[datetime]


class OutboxEvent(Base):
    """One event, written in the same transaction as the change that caused it.

    ``content`` is the EventContent without EventHandle, null members left out. ``mode`` is the
    sub-app's mode when the event was made, and stays: switching modes does not move queued
    events from one channel to the other.

    PUSH events (``state`` pending → delivered | dead): the dispatcher claims a due event by
    setting ``lease_owner``/``lease_until``; only the owner may record the outcome, so two
    dispatchers never send it twice within a lease, and a crash between sending and recording
    only costs a retry once the lease runs out. ``first_attempt_at`` starts the retry budget;
    ``next_attempt_at`` is when the next attempt is due.

    PULL events (``state`` pending → confirmed): each PullEvents gives the event a fresh
    ``handle`` and hides it until ``invisible_until`` (30 s); ConfirmEvents with that handle
    before then confirms it, otherwise it becomes pullable again.
    """

    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sub_app_id: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict[str, Any]]
    mode: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    first_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(96))
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    invisible_until: Mapped[datetime | None]
    handle: Mapped[str | None] = mapped_column(String(96))
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_outbox_due", "state", "mode", "next_attempt_at"),
        Index("ix_outbox_pull", "sub_app_id", "state", "mode", "id"),
        Index("ix_outbox_handle", "handle"),
    )
