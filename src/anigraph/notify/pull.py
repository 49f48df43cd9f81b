"""The PULL queue ("reliable callback", spec 2.7): PullEvents, ConfirmEvents, DescribeEventsState.

An event written in PULL mode stays ``pending`` until confirmed. Each pull gives it a fresh
handle and hides it for :data:`VISIBILITY` (30 s); a consumer that dies before confirming gets
it again after that, with a new handle (at-least-once). Events are kept :data:`RETENTION`
(4 days) and then dropped, pulled or not.

The long poll never holds a database transaction while it waits: each look is one short
transaction, and between looks the thread sleeps on a condition that an in-process commit of a
new event wakes (events written by another process are found by the next look, at most
:data:`POLL_SECONDS` later).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import and_, delete, func, or_, select

from anigraph.context import Context
from anigraph.db.models_events import OutboxEvent
from anigraph.notify import outbox

log = logging.getLogger(__name__)

VISIBILITY: Final = timedelta(seconds=30)
"""How long a pulled event stays hidden, and how long its handle can confirm it."""
RETENTION: Final = timedelta(days=4)
"""Events older than this are never pulled again and are purged."""
MAX_EVENTS: Final = 16
"""Most events per PullEvents, and most handles per ConfirmEvents."""
MAX_WAIT_SECONDS: Final = 5.0
"""How long PullEvents holds a request when nothing is queued."""
POLL_SECONDS: Final = 0.2
"""How often a waiting PullEvents looks at the table (events from other processes)."""

# In-scope EventContent members, null in PullEvents when not the event's own (spec 1.6: unset
# nested objects are null on the wire; push callbacks leave them out instead, spec 5.1).
MEMBERS: Final = tuple(outbox.PAYLOAD_MEMBERS.values())


class HandleError(ValueError):
    """A ConfirmEvents handle that cannot confirm anything; ``str()`` says why."""

    def __init__(self, handle: str, reason: str) -> None:
        super().__init__(f"{reason}: {handle[:100]}")
        self.handle = handle
        self.reason = reason


class _Signal:
    """A generation counter under a condition: waiters wake when it moves (a commit of events)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0

    def bump(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def generation(self) -> int:
        with self._condition:
            return self._generation

    def wait(self, since: int, timeout: float) -> None:
        with self._condition:
            self._condition.wait_for(lambda: self._generation != since, timeout=max(0.0, timeout))


_signal = _Signal()
outbox.add_listener(_signal.bump, outbox.PULL)


def _pullable(sub_app_id: int, now: datetime) -> Any:
    return and_(
        OutboxEvent.sub_app_id == sub_app_id,
        OutboxEvent.mode == outbox.PULL,
        OutboxEvent.state == outbox.PENDING,
        OutboxEvent.created_at >= now - RETENTION,
        or_(OutboxEvent.invisible_until.is_(None), OutboxEvent.invisible_until <= now),
    )


def wire_event(event: OutboxEvent, handle: str) -> dict[str, Any]:
    """EventContent as PullEvents returns it: the handle first, other in-scope members null."""
    content: dict[str, Any] = {"EventHandle": handle, **event.content}
    for member in MEMBERS:
        content.setdefault(member, None)
    return content


def take(ctx: Context, sub_app_id: int, limit: int = MAX_EVENTS) -> list[dict[str, Any]]:
    """Pull up to ``limit`` events now (oldest first), each with a fresh handle; no waiting."""
    now = ctx.now()
    with ctx.db.session() as session:
        stmt = (
            select(OutboxEvent)
            .where(_pullable(sub_app_id, now))
            .order_by(OutboxEvent.id)
            .limit(max(0, min(limit, MAX_EVENTS)))
        )
        if not ctx.db.is_sqlite:
            stmt = stmt.with_for_update(skip_locked=True)
        pulled: list[dict[str, Any]] = []
        for event in session.scalars(stmt):
            event.handle = secrets.token_urlsafe(24)
            event.invisible_until = now + VISIBILITY
            event.attempts += 1
            pulled.append(ctx.render_urls(wire_event(event, event.handle)))  # links as of now
        return pulled


def pull(
    ctx: Context,
    sub_app_id: int,
    *,
    wait_seconds: float = MAX_WAIT_SECONDS,
    poll_seconds: float = POLL_SECONDS,
) -> list[dict[str, Any]]:
    """PullEvents: the queued events at once, or wait up to ``wait_seconds`` for some."""
    deadline = time.monotonic() + min(wait_seconds, MAX_WAIT_SECONDS)
    while True:
        since = _signal.generation()
        events = take(ctx, sub_app_id)
        remaining = deadline - time.monotonic()
        if events or remaining <= 0:
            return events
        _signal.wait(since, min(poll_seconds, remaining))


def confirm(ctx: Context, sub_app_id: int, handles: list[str]) -> None:
    """ConfirmEvents: all handles or none (one transaction); raises :class:`HandleError`.

    A handle confirms its event while the event is hidden by that pull (30 s). Confirming an
    already confirmed event again with the same handle succeeds (a retried request). A handle
    another sub-app's pull issued is unknown here.
    """
    now = ctx.now()
    with ctx.db.session() as session:
        for handle in dict.fromkeys(handles):
            event = session.scalars(
                select(OutboxEvent).where(
                    OutboxEvent.handle == handle,
                    OutboxEvent.sub_app_id == sub_app_id,
                    OutboxEvent.mode == outbox.PULL,
                )
            ).first()
            if event is None:
                raise HandleError(handle, "unknown event handle")
            if event.state == outbox.CONFIRMED:
                continue
            if event.invisible_until is None or event.invisible_until < now:
                raise HandleError(
                    handle,
                    f"the event handle expired ({int(VISIBILITY.total_seconds())} s after "
                    "PullEvents); pull the event again",
                )
            event.state = outbox.CONFIRMED
            event.delivered_at = now


def count_to_pull(ctx: Context, sub_app_id: int) -> int:
    """DescribeEventsState: events queued and not yet confirmed, pulled or not."""
    now = ctx.now()
    with ctx.db.session() as session:
        count = session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(
                OutboxEvent.sub_app_id == sub_app_id,
                OutboxEvent.mode == outbox.PULL,
                OutboxEvent.state == outbox.PENDING,
                OutboxEvent.created_at >= now - RETENTION,
            )
        )
    return int(count or 0)


def purge(ctx: Context) -> int:
    """Delete events past :data:`RETENTION` that are done with (or never will be): PULL events
    (confirmed or not: nobody can pull them any more) and delivered PUSH events. Dead letters
    stay until an operator replays them. Returns how many rows went."""
    cutoff = ctx.now() - RETENTION
    with ctx.db.session() as session:
        dropped = session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(
                OutboxEvent.mode == outbox.PULL,
                OutboxEvent.state == outbox.PENDING,
                OutboxEvent.created_at < cutoff,
            )
        )
        if dropped:
            log.warning("dropping %d unconfirmed PULL events older than %s", dropped, RETENTION)
        removed = session.execute(
            delete(OutboxEvent).where(
                OutboxEvent.created_at < cutoff,
                or_(
                    OutboxEvent.mode == outbox.PULL,
                    OutboxEvent.state == outbox.DELIVERED,
                ),
            )
        ).rowcount  # type: ignore[attr-defined]
    return int(removed or 0)
