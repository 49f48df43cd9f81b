"""Sub-applications and their API key pairs."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select

from anigraph.context import Context
from anigraph.db.models import ApiKey, SubApp

DEFAULT_SUB_APP_ID = 1500000001


@dataclass(frozen=True)
class KeyPair:
    secret_id: str
    secret_key: str
    sub_app_id: int

    def to_dict(self) -> dict[str, object]:
        return {
            "SecretId": self.secret_id,
            "SecretKey": self.secret_key,
            "SubAppId": self.sub_app_id,
        }


def ensure_sub_app(ctx: Context, sub_app_id: int) -> None:
    with ctx.db.session() as session:
        if session.get(SubApp, sub_app_id) is None:
            session.add(SubApp(id=sub_app_id, name="", created_at=ctx.now()))


def create_key(ctx: Context, sub_app_id: int = DEFAULT_SUB_APP_ID) -> KeyPair:
    ensure_sub_app(ctx, sub_app_id)
    pair = KeyPair(
        secret_id="AKID" + secrets.token_urlsafe(24).replace("-", "A").replace("_", "B")[:32],
        secret_key=secrets.token_urlsafe(24).replace("-", "a").replace("_", "b")[:32],
        sub_app_id=sub_app_id,
    )
    with ctx.db.session() as session:
        session.add(
            ApiKey(
                secret_id=pair.secret_id,
                secret_key=pair.secret_key,
                sub_app_id=sub_app_id,
                created_at=ctx.now(),
                revoked_at=None,
            )
        )
    return pair


def list_keys(ctx: Context) -> list[dict[str, object]]:
    with ctx.db.session() as session:
        rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at)).all()
        return [
            {
                "SecretId": row.secret_id,
                "SubAppId": row.sub_app_id,
                "CreateTime": row.created_at.isoformat(),
                "Revoked": row.revoked_at is not None,
            }
            for row in rows
        ]


def revoke_key(ctx: Context, secret_id: str) -> bool:
    with ctx.db.session() as session:
        row = session.get(ApiKey, secret_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = ctx.now()
        return True


def lookup(ctx: Context, secret_id: str) -> tuple[str, int] | None:
    """(SecretKey, SubAppId) of a live key, or None."""
    with ctx.db.session() as session:
        row = session.get(ApiKey, secret_id)
        if row is None or row.revoked_at is not None:
            return None
        return row.secret_key, row.sub_app_id


def has_any_key(ctx: Context) -> bool:
    with ctx.db.session() as session:
        return session.scalars(select(ApiKey.secret_id).limit(1)).first() is not None
