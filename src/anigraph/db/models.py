"""The tables. A task row is the truth about a task: its status, its lease and its results.

Times are stored as UTC-aware datetimes; JSON columns hold wire-shaped payloads (MetaData,
subtask inputs and results) that are read back as they were written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A datetime stored as UTC and always read back timezone-aware in UTC.

    Binding converts to UTC: SQLite's DATETIME keeps the wall time and drops the offset, so an
    aware non-UTC value would otherwise be stored as the wrong instant. Reading attaches UTC
    where the zone was lost (SQLite) and converts where the server applied its own session zone
    (PostgreSQL returns ``timestamptz`` in the server's ``TimeZone``).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: UtcDateTime,
    }


class SubApp(Base):
    __tablename__ = "sub_apps"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime]


class ApiKey(Base):
    __tablename__ = "api_keys"

    secret_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_key: Mapped[str] = mapped_column(String(64))
    sub_app_id: Mapped[int] = mapped_column(ForeignKey("sub_apps.id"), index=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Template(Base):
    """A custom animated-graphics template; presets live in code (domain.templates)."""

    __tablename__ = "animated_graphics_templates"

    definition: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sub_app_id: Mapped[int] = mapped_column(ForeignKey("sub_apps.id"), index=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    comment: Mapped[str] = mapped_column(String(256), default="")
    format: Mapped[str] = mapped_column(String(8))
    width: Mapped[int]
    height: Mapped[int]
    resolution_adaptive: Mapped[str] = mapped_column(String(8))
    fps: Mapped[int]
    quality: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Extension fields (docs/api.md); the server defaults are Tencent's behaviour.
    max_size: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    quality_target: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    segment_mode: Mapped[str] = mapped_column(String(16), default="Fixed", server_default="Fixed")
    duration: Mapped[float] = mapped_column(Float, default=3.0, server_default="3")
    loop_mode: Mapped[str] = mapped_column(String(16), default="None", server_default="None")


class TemplateCounter(Base):
    """The highest template Definition ever given out, in one row (``id`` 1).

    Definitions are never given twice, even after a deletion: outputs on media items and task
    results keep naming the template that made them.
    """

    __tablename__ = "template_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_definition: Mapped[int] = mapped_column(BigInteger)


class Media(Base):
    __tablename__ = "media"

    file_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sub_app_id: Mapped[int] = mapped_column(ForeignKey("sub_apps.id"), index=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    media_type: Mapped[str] = mapped_column(String(16), default="")
    store_key: Mapped[str | None] = mapped_column(String(256))
    cover_key: Mapped[str | None] = mapped_column(String(256), default=None)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    source_type: Mapped[str] = mapped_column(String(32), default="Upload")
    source_context: Mapped[str] = mapped_column(String(256), default="")
    class_id: Mapped[int] = mapped_column(default=0)
    meta_data: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MediaOutput(Base):
    """One animated image made from a media item (an entry of AnimatedGraphicsSet)."""

    __tablename__ = "media_outputs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("media.file_id"), index=True)
    task_id: Mapped[str] = mapped_column(String(96))
    subtask: Mapped[int]
    store_key: Mapped[str] = mapped_column(String(256))
    item: Mapped[dict[str, Any]]  # MediaAnimatedGraphicsItem without Url (Url is built on read)
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("task_id", "subtask", name="uq_output_per_subtask"),)


class Task(Base):
    """A Procedure task. ``subtasks`` holds one MediaProcessTaskResult-shaped dict per item.

    Lease columns: a worker owns a PROCESSING task while ``lease_owner`` is its id and
    ``lease_expires_at`` is in the future; an expired lease can be claimed by anyone.
    """

    __tablename__ = "tasks"

    task_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    sub_app_id: Mapped[int] = mapped_column(ForeignKey("sub_apps.id"))
    task_type: Mapped[str] = mapped_column(String(32), default="Procedure")
    status: Mapped[str] = mapped_column(String(16))
    file_id: Mapped[str] = mapped_column(String(32), default="")
    priority: Mapped[int] = mapped_column(default=0)
    notify_mode: Mapped[str] = mapped_column(String(16), default="Finish")
    session_context: Mapped[str] = mapped_column(Text, default="")
    session_id: Mapped[str] = mapped_column(String(64), default="")
    subtasks: Mapped[list[Any]]
    # Task-type specifics: a PullUpload's request and PullUploadTask result, or the Url (and
    # Procedure) of a ProcessMedia that starts from a URL.
    payload: Mapped[dict[str, Any] | None]
    progress: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    begin_at: Mapped[datetime | None]
    finish_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(96))
    lease_expires_at: Mapped[datetime | None]
    attempt: Mapped[int] = mapped_column(default=0)
    not_before: Mapped[datetime | None]  # retry backoff: not claimable before this time

    __table_args__ = (
        Index("ix_tasks_claim", "status", "priority", "created_at"),
        Index("ix_tasks_sub_app_created", "sub_app_id", "created_at"),
    )


class Dedupe(Base):
    """SessionId deduplication: the unique key makes concurrent duplicates collide."""

    __tablename__ = "dedupe"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sub_app_id: Mapped[int]
    action: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[str] = mapped_column(String(96))
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("sub_app_id", "action", "session_id", name="uq_dedupe_session"),
    )
