"""Upload sessions: ApplyUpload opens one, the browser flow's resume extends it.

The store chooses the object keys, a random temporary credential is minted, and everything
CommitUpload will need is stored with the session (see the package's docstring for the flow).
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any, Final

from anigraph.context import Context
from anigraph.db.models_uploads import UploadSession
from anigraph.services import procedures
from anigraph.services.uploads.errors import Refusal, UploadError
from anigraph.services.uploads.requests import UploadRequest, bad_value, check_request
from anigraph.services.uploads.sweep import SWEEP_BATCH, sweep

log = logging.getLogger("anigraph.uploads")

SESSION_SECONDS: Final = 6 * 3600
"""How long a session's temporary credential may write, and the session may be committed.
Generous enough for the largest upload (5 GiB) over a slow link; CommitUpload after that is
refused with ``InvalidParameterValue.VodSessionKey`` (reliability checklist M18)."""

MAX_SESSION_SECONDS: Final = 48 * 3600
"""``resume`` never extends a session past this age: an upload session is not a lasting key."""


BUCKET_PREFIX: Final = "anigraph"
"""Buckets are ``anigraph-<SubAppId>``: COS's ``name-appid`` shape, which cos-js-sdk insists on.
The bucket is informational only: with ``CosConfig(Domain=...)`` it never reaches the server."""


def bucket_of(sub_app_id: int) -> str:
    return f"{BUCKET_PREFIX}-{sub_app_id}"


def _new_secret_id() -> str:
    # Tencent's temporary SecretIds start with AKID too; the random part makes it unguessable.
    return "AKID" + secrets.token_hex(16)


def apply(ctx: Context, sub_app_id: int, request: UploadRequest) -> dict[str, Any]:
    """ApplyUpload: open an upload session; returns the ApplyUpload response fields."""
    checked = check_request(ctx, request)
    if checked.procedure:
        with ctx.db.session() as session:
            if procedures.find(session, sub_app_id, checked.procedure) is None:
                raise bad_value(
                    Refusal.PROCEDURE,
                    "Procedure",
                    f"no task flow named `{checked.procedure}` in this sub-application",
                )
    store = ctx.store
    suffix = f".{checked.media_type}"
    media_key = store.new_key(sub_app_id, "media", suffix)
    media_staging_key = store.new_key(sub_app_id, "upload", suffix)
    cover_key = cover_staging_key = ""
    if checked.cover_type:
        cover_suffix = f".{checked.cover_type}"
        cover_key = store.new_key(sub_app_id, "media", cover_suffix)
        cover_staging_key = store.new_key(sub_app_id, "upload", cover_suffix)
    now = ctx.now()
    expires_at = now + timedelta(seconds=SESSION_SECONDS)
    row = UploadSession(
        vod_session_key=secrets.token_urlsafe(32),
        sub_app_id=sub_app_id,
        state="open",
        bucket=bucket_of(sub_app_id),
        region=checked.storage_region,
        media_key=media_key,
        media_staging_key=media_staging_key,
        cover_key=cover_key,
        cover_staging_key=cover_staging_key,
        media_name=checked.media_name,
        media_type=checked.media_type,
        cover_type=checked.cover_type,
        procedure=checked.procedure,
        class_id=checked.class_id,
        source_context=checked.source_context,
        session_context=checked.session_context,
        tasks_priority=checked.tasks_priority,
        tasks_notify_mode=checked.tasks_notify_mode,
        expire_time=checked.expire_time,
        temp_secret_id=_new_secret_id(),
        temp_secret_key=secrets.token_urlsafe(30),
        temp_token=secrets.token_hex(32),
        expires_at=expires_at,
        file_id="",
        created_at=now,
        committed_at=None,
    )
    with ctx.db.session() as session:
        session.add(row)
    try:
        sweep(ctx, limit=SWEEP_BATCH)
    except Exception:  # housekeeping must never fail the request that triggered it
        log.exception("upload session sweep failed")
    return _apply_answer(row)


def resume(ctx: Context, sub_app_id: int, vod_session_key: str) -> dict[str, Any]:
    """ApplyUpload's answer again for an open session, its credential valid for longer.

    What the browser and mobile SDKs ask for when they resume an upload or renew credentials
    that are about to expire. The credential is kept, not rotated (parts in flight are signed
    with it), and its life is extended by ``SESSION_SECONDS`` from now, but never past
    ``MAX_SESSION_SECONDS`` after the session was opened.
    """
    now = ctx.now()
    with ctx.db.session() as session:
        row = session.get(UploadSession, vod_session_key) if vod_session_key else None
        if row is None or row.sub_app_id != sub_app_id:
            raise session_refused("The VodSessionKey does not exist.")
        if row.state != "open":
            raise session_refused(
                "The upload of this VodSessionKey is being committed, or has been committed."
            )
        if row.expires_at <= now:
            raise session_refused("The VodSessionKey has expired; apply for a new upload.")
        row.expires_at = max(
            row.expires_at,
            min(
                now + timedelta(seconds=SESSION_SECONDS),
                row.created_at + timedelta(seconds=MAX_SESSION_SECONDS),
            ),
        )
        return _apply_answer(row)


def _apply_answer(row: UploadSession) -> dict[str, Any]:
    return {
        "StorageBucket": row.bucket,
        "StorageRegion": row.region,
        "VodSessionKey": row.vod_session_key,
        "MediaStoragePath": f"/{row.media_key}",
        "CoverStoragePath": f"/{row.cover_key}" if row.cover_key else "",
        "TempCertificate": {
            "SecretId": row.temp_secret_id,
            "SecretKey": row.temp_secret_key,
            "Token": row.temp_token,
            "ExpiredTime": int(row.expires_at.timestamp()),
        },
    }


def session_refused(message: str) -> UploadError:
    return UploadError(Refusal.SESSION, message)
