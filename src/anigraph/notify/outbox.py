"""Writing events. Callers pass their own session so the event commits with the state change
that caused it (or not at all): nothing is lost across a crash between the two.

Consumers (the PUSH dispatcher, PullEvents long polls) find new events by reading the table.
Within one process they are also woken when a transaction that wrote an event commits, so they
need not poll fast; across processes their periodic poll is what finds the event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from anigraph.context import Context
from anigraph.db.models_events import EventConfig, OutboxEvent

log = logging.getLogger(__name__)

PUSH: Final = "PUSH"
PULL: Final = "PULL"
MODES: Final = (PUSH, PULL)

PENDING: Final = "pending"
DELIVERED: Final = "delivered"  # PUSH: a 2xx answer
DEAD: Final = "dead"  # PUSH: the retry budget ran out; replayable
CONFIRMED: Final = "confirmed"  # PULL: ConfirmEvents

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


# -- in-process wake-ups -----------------------------------------------------------------------

_listeners: dict[str, list[Callable[[], None]]] = {PUSH: [], PULL: []}
"""Per mode: a commit of PULL events wakes the PullEvents waiters, not the PUSH dispatcher
(whose look at the table would find nothing to send), and the other way round."""
_listeners_lock = threading.Lock()
_PENDING_KEY: Final = "anigraph.outbox.pending"
_HOOKED_KEY: Final = "anigraph.outbox.hooked"


def add_listener(listener: Callable[[], None], mode: str) -> None:
    """Call ``listener()`` after every commit that wrote an event of ``mode`` (in this process)."""
    with _listeners_lock:
        _listeners[mode].append(listener)


def remove_listener(listener: Callable[[], None], mode: str) -> None:
    with _listeners_lock:
        if listener in _listeners[mode]:
            _listeners[mode].remove(listener)


def notify_listeners(mode: str) -> None:
    """Wake the consumers of ``mode``: new events, or events made due again (replay)."""
    with _listeners_lock:
        listeners = list(_listeners[mode])
    for listener in listeners:
        try:
            listener()
        except Exception:  # a consumer's wake-up must never fail the writer's commit
            log.exception("outbox listener failed")


def _after_commit(session: Session) -> None:
    for mode in sorted(session.info.pop(_PENDING_KEY, ())):
        notify_listeners(mode)


def _notify_after_commit(session: Session, mode: str) -> None:
    # Waking before the commit would let a consumer look before the row is visible.
    session.info.setdefault(_PENDING_KEY, set()).add(mode)
    if not session.info.get(_HOOKED_KEY):
        session.info[_HOOKED_KEY] = True
        sa_event.listen(session, "after_commit", _after_commit)


# -- writing -----------------------------------------------------------------------------------


def wanted(session: Session, sub_app_id: int, event_type: str) -> bool:
    """Whether :func:`emit` would write an event of this type for this sub-app: its switch is
    ON (types that have one), and PUSH mode has a NotificationUrl. Lets a caller skip building
    a payload nobody will receive."""
    config = config_of(session, sub_app_id)
    switch = SWITCHES[event_type]
    if switch is not None and (config is None or getattr(config, switch) != "ON"):
        return False
    mode = config.mode if config is not None else PUSH
    return not (mode == PUSH and (config is None or not config.notification_url))


def emit(
    session: Session, ctx: Context, sub_app_id: int, event_type: str, payload: dict[str, Any]
) -> OutboxEvent | None:
    """Queue one event (``payload`` is the member object, e.g. a ProcedureTask).

    Returns None, writing nothing, when the sub-app's switch for this type is OFF, or when PUSH
    mode has no NotificationUrl (there is nowhere to send it).
    """
    if not wanted(session, sub_app_id, event_type):
        return None
    config = config_of(session, sub_app_id)  # the session's identity map has it by now
    mode = config.mode if config is not None else PUSH
    now = ctx.now()
    event = OutboxEvent(
        sub_app_id=sub_app_id,
        event_type=event_type,
        content={"EventType": event_type, PAYLOAD_MEMBERS[event_type]: payload},
        mode=mode,
        state=PENDING,
        created_at=now,
        attempts=0,
        next_attempt_at=now,
        first_attempt_at=None,
        lease_owner=None,
        lease_until=None,
        last_error="",
        invisible_until=None,
        handle=None,
        delivered_at=None,
    )
    session.add(event)
    _notify_after_commit(session, mode)
    return event
