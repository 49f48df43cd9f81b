"""Event tables: per-sub-app configuration and the outbox every event is written to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from anigraph.db.models import Base


class EventConfig(Base):
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

    ``mode`` is the sub-app's mode when the event was made: PUSH events are delivered by the
    dispatcher (``state`` pending → delivered | dead), PULL events wait for PullEvents
    (``invisible_until`` is the 30 s lease after each pull; ``state`` pending → confirmed).
    """

    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sub_app_id: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict[str, Any]]  # EventContent without EventHandle, null members omitted
    mode: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    invisible_until: Mapped[datetime | None]
    handle: Mapped[str | None] = mapped_column(String(96))
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_outbox_due", "state", "mode", "next_attempt_at"),
        Index("ix_outbox_pull", "sub_app_id", "state", "invisible_until"),
        Index("ix_outbox_handle", "handle"),
    )
