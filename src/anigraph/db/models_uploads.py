"""Upload sessions (ApplyUpload -> COS-style object writes -> CommitUpload) and the
COS-compatible endpoint's multipart state.

An ``UploadSession`` is created by ApplyUpload and holds everything CommitUpload needs, so that
commit depends only on the session key: the ApplyUpload arguments, the object keys (chosen by
the store, never by the client) and the temporary COS credential that may write them.

Two keys per object:

- ``media_key`` / ``cover_key``: the final store key. It is also the COS object key handed to
  the client (``MediaStoragePath`` without its leading ``/``), so the media's ``StoragePath``
  equals what ApplyUpload promised. Nothing exists under it until CommitUpload publishes.
- ``media_staging_key`` / ``cover_staging_key``: where the uploaded bytes actually land (an
  ``upload`` kind key the client never learns). Keeping uploads here is what keeps them out of
  ``/files`` and out of media until the commit.

Multipart state is two small tables: one row per initiated upload, one row per received part.
Each part is its own store object, so parts may arrive in any order and on any API machine; the
complete step concatenates them into the staging key.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from anigraph.db.models import Base


class UploadSession(Base):
    """One ApplyUpload: its arguments, its object keys and its temporary credential."""

    __tablename__ = "upload_sessions"

    vod_session_key: Mapped[str] = mapped_column(String(96), primary_key=True)
    sub_app_id: Mapped[int] = mapped_column(ForeignKey("sub_apps.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))  # "open" | "committing" | "committed"
    bucket: Mapped[str] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(64))
    media_key: Mapped[str] = mapped_column(String(256))
    media_staging_key: Mapped[str] = mapped_column(String(256))
    cover_key: Mapped[str] = mapped_column(String(256), default="")
    cover_staging_key: Mapped[str] = mapped_column(String(256), default="")
    # ApplyUpload arguments, applied at CommitUpload.
    media_name: Mapped[str] = mapped_column(String(256), default="")
    media_type: Mapped[str] = mapped_column(String(16))
    cover_type: Mapped[str] = mapped_column(String(16), default="")
    procedure: Mapped[str] = mapped_column(String(64), default="")
    class_id: Mapped[int] = mapped_column(BigInteger, default=0)
    source_context: Mapped[str] = mapped_column(String(256), default="")
    session_context: Mapped[str] = mapped_column(Text, default="")
    tasks_priority: Mapped[int] = mapped_column(Integer, default=0)
    tasks_notify_mode: Mapped[str] = mapped_column(String(16), default="Finish")
    expire_time: Mapped[str] = mapped_column(String(64), default="")
    # The temporary COS credential (TempCertificate); the SecretKey is needed to check HMACs.
    temp_secret_id: Mapped[str] = mapped_column(String(64), unique=True)
    temp_secret_key: Mapped[str] = mapped_column(String(64))
    temp_token: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]
    # CommitUpload: the claim of the commit in progress (one at a time), then its result.
    commit_claim: Mapped[str] = mapped_column(String(32), default="")
    commit_started_at: Mapped[datetime | None]
    file_id: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime]
    committed_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_upload_sessions_state_expires", "state", "expires_at"),)


class MultipartUpload(Base):
    """An initiated COS multipart upload of one of a session's objects."""

    __tablename__ = "cos_multipart_uploads"

    upload_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    vod_session_key: Mapped[str] = mapped_column(
        ForeignKey("upload_sessions.vod_session_key"), index=True
    )
    object_key: Mapped[str] = mapped_column(String(256))
    state: Mapped[str] = mapped_column(String(16))  # "open" | "completing" | "oversized"
    created_at: Mapped[datetime]


class UploadPart(Base):
    """One received part: its own store object, its MD5 (the part ETag) and size."""

    __tablename__ = "cos_upload_parts"

    upload_id: Mapped[str] = mapped_column(
        ForeignKey("cos_multipart_uploads.upload_id"), primary_key=True
    )
    part_number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    md5: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    store_key: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime]
