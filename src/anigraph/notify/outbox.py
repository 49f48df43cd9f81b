"""Writing events. Callers pass their own session so the event commits with the state change
that caused it (or not at all): nothing is lost across a crash between the two."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from anigraph.db.models_events import EventConfig, OutboxEvent
from anigraph.services.context import Context

# EventType -> the EventConfig switch that gates it (None: always, subject to TasksNotifyMode).
SWITCHES: dict[str, str | None] = {
    "NewFileUpload": "upload_switch",
    "PullComplete": "upload_switch",
    "FileDeleted": "delete_switch",
    "ProcedureStateChanged": None,
}
PAYLOAD_MEMBERS = {
    "NewFileUpload": "FileUploadEvent",
    "ProcedureStateChanged": "ProcedureStateChangeEvent",
    "FileDeleted": "FileDeleteEvent",
    "PullComplete": "PullCompleteEvent",
}


def config_of(session: Session, sub_app_id: int) -> EventConfig | None:
    return session.get(EventConfig, sub_app_id)


def emit(
    session: Session, ctx: Context, sub_app_id: int, event_type: str, payload: dict[str, Any]
) -> OutboxEvent | None:
    """Queue one event (``payload`` is the member object, e.g. a ProcedureTask).

    Returns None, writing nothing, when the sub-app's switch for this type is OFF, or when PUSH
    mode has no NotificationUrl (there is nowhere to send it).
    """
    config = config_of(session, sub_app_id)
    switch = SWITCHES[event_type]
    if switch is not None and (config is None or getattr(config, switch) != "ON"):
        return None
    mode = config.mode if config is not None else "PUSH"
    if mode == "PUSH" and (config is None or not config.notification_url):
        return None
    event = OutboxEvent(
        sub_app_id=sub_app_id,
        event_type=event_type,
        content={"EventType": event_type, PAYLOAD_MEMBERS[event_type]: payload},
        mode=mode,
        state="pending",
        created_at=ctx.now(),
        attempts=0,
        next_attempt_at=ctx.now(),
        last_error="",
        invisible_until=None,
        handle=None,
        delivered_at=None,
    )
    session.add(event)
    return event
