"""What a temporary credential may do: write its session's objects, while the session is open."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from anigraph.context import Context
from anigraph.db.models_uploads import UploadSession


@dataclass(frozen=True)
class Grant:
    """What one temporary credential may do: write its session's objects until it expires."""

    session_key: str
    sub_app_id: int
    bucket: str
    secret_key: str
    token: str
    expires_at: datetime
    is_open: bool
    objects: dict[str, str]
    """COS object key -> the staging store key its bytes go to."""

    def staging_key(self, object_key: str) -> str | None:
        return self.objects.get(object_key)

    def token_matches(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.token.encode())


def grant_for(ctx: Context, secret_id: str) -> Grant | None:
    """The grant of a temporary SecretId, or None for an unknown one."""
    if not secret_id or len(secret_id) > 64:
        return None
    with ctx.db.session() as session:
        row = session.scalars(
            select(UploadSession).where(UploadSession.temp_secret_id == secret_id)
        ).first()
    if row is None:
        return None
    objects = {row.media_key: row.media_staging_key}
    if row.cover_key:
        objects[row.cover_key] = row.cover_staging_key
    return Grant(
        session_key=row.vod_session_key,
        sub_app_id=row.sub_app_id,
        bucket=row.bucket,
        secret_key=row.temp_secret_key,
        token=row.temp_token,
        expires_at=row.expires_at,
        is_open=row.state == "open",
        objects=objects,
    )


def session_is_open(ctx: Context, session_key: str) -> bool:
    """Re-checked after a write: an object written after the commit must not linger."""
    with ctx.db.session() as session:
        row = session.get(UploadSession, session_key)
        return row is not None and row.state == "open" and row.expires_at > ctx.now()
