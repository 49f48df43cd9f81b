"""Dead letters: PUSH events whose retry budget ran out. Listed and replayed by operators.

An event is never dropped silently (reliability guide E1): it stays ``dead`` with its last
error until replayed, which makes it pending again with a fresh retry budget.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from anigraph.context import Context
from anigraph.db.models_events import OutboxEvent
from anigraph.domain.wire import iso
from anigraph.notify import outbox


class NotDead(LookupError):
    """The event does not exist or is not a dead letter."""


def describe(event: OutboxEvent) -> dict[str, Any]:
    """A dead letter as the CLI prints it."""
    return {
        "EventId": event.id,
        "SubAppId": event.sub_app_id,
        "EventType": event.event_type,
        "CreateTime": iso(event.created_at),
        "Attempts": event.attempts,
        "FirstAttemptTime": iso(event.first_attempt_at),
        "LastError": event.last_error,
    }


def list_dead(ctx: Context, sub_app_id: int | None = None) -> list[dict[str, Any]]:
    """Dead letters, oldest first (of one sub-app, or all)."""
    stmt = select(OutboxEvent).where(OutboxEvent.state == outbox.DEAD)
    if sub_app_id is not None:
        stmt = stmt.where(OutboxEvent.sub_app_id == sub_app_id)
    with ctx.db.session() as session:
        return [describe(event) for event in session.scalars(stmt.order_by(OutboxEvent.id))]


def _revive(event: OutboxEvent, ctx: Context) -> None:
    event.state = outbox.PENDING
    event.attempts = 0
    event.first_attempt_at = None
    event.next_attempt_at = ctx.now()
    event.lease_owner = None
    event.lease_until = None


def replay(ctx: Context, event_id: int) -> None:
    """Make dead letter ``event_id`` pending again; raises :class:`NotDead`."""
    with ctx.db.session() as session:
        event = session.get(OutboxEvent, event_id)
        if event is None or event.state != outbox.DEAD:
            raise NotDead(event_id)
        _revive(event, ctx)
    outbox.notify_listeners(outbox.PUSH)  # only PUSH events die


def replay_all(ctx: Context, sub_app_id: int | None = None) -> int:
    """Make every dead letter (of one sub-app, or all) pending again; how many."""
    stmt = select(OutboxEvent).where(OutboxEvent.state == outbox.DEAD)
    if sub_app_id is not None:
        stmt = stmt.where(OutboxEvent.sub_app_id == sub_app_id)
    with ctx.db.session() as session:
        events = list(session.scalars(stmt))
        for event in events:
            _revive(event, ctx)
    if events:
        outbox.notify_listeners(outbox.PUSH)  # only PUSH events die
    return len(events)
