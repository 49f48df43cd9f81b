"""PUSH delivery ("normal callback", spec 5.1): POST each due event to the sub-app's URL.

The outbox row is the truth. A dispatcher claims due events with a lease in the database, as
workers claim tasks, sends them, and records the outcome only while it still holds the lease:

- two dispatchers (threads or processes) never send an event twice within a lease;
- a crash between sending and recording leaves the lease to run out, and the event is sent
  again (at-least-once: receivers dedupe on EventType + TaskId/FileId);
- any 2xx is delivered; anything else (another status, a redirect, a timeout, a refused or
  SSRF-blocked address) is a failed attempt, retried with exponential backoff until the
  :class:`RetrySchedule`'s budget runs out, when the event becomes a dead letter that the CLI
  lists and replays.

Events of one sub-app claimed together are sent in creation order by one thread; sub-apps are
served in parallel. A failed event does not hold back the ones after it (no head-of-line
blocking), so order holds when the receiver is healthy, which is where it is cheap.

The body is the stored EventContent (no EventHandle, null members left out) plus, when the
sub-app has a SignKey, ``T`` (now + 10 min) and ``Sign`` = md5(SignKey + str(T)) (spec 5.3).
The URL and SignKey are read at send time, so a corrected configuration heals pending events.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import func, or_, select, update

from anigraph.context import Context
from anigraph.db.models_events import OutboxEvent
from anigraph.metrics import Metrics
from anigraph.notify import outbox
from anigraph.notify.config import address_policy
from anigraph.settings import Settings

log = logging.getLogger(__name__)

Sender = Callable[[str, bytes, dict[str, str]], tuple[int, bytes]]
"""``sender(url, body, headers) -> (status, body prefix)``; raises on a failed connection."""

SIGN_TTL_SECONDS: Final = 600
"""``T`` is this far in the future (Tencent's default expiry of a callback signature)."""
RESPONSE_BYTES: Final = 64 * 1024
"""Most of a receiver's answer read (only its status matters)."""
LEASE_MARGIN_SECONDS: Final = 15.0
"""Lease beyond the send timeout: room for recording the outcome."""
CLAIM_SCAN: Final = 64
"""Due rows looked at per claim."""
PER_GROUP: Final = 16
"""Most events of one sub-app one thread takes at a time."""
PURGE_EVERY_SECONDS: Final = 60.0
MIN_WAIT_SECONDS: Final = 0.05
"""The loop never looks again sooner than this (no spinning on a clock edge)."""


def _aware(moment: datetime) -> datetime:
    # SQLite aggregates bypass the column type and come back without the zone.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RetrySchedule:
    """When to try a failed callback again, and when to give up.

    Attempt n (1-based) failing waits ``first_delay * 2**(n-1)`` seconds, at most ``max_delay``;
    the last attempt is made ``give_up_after`` seconds after the first one, and if it fails too
    the event is dead.
    """

    first_delay: float = 5.0
    max_delay: float = 600.0
    give_up_after: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetrySchedule:
        first = settings.event_retry_seconds
        give_up = settings.event_give_up_seconds
        return cls(first_delay=first, max_delay=max(first, cls.max_delay), give_up_after=give_up)

    def delay(self, attempts: int) -> float:
        exponent = min(max(attempts - 1, 0), 32)
        return float(min(self.first_delay * 2**exponent, self.max_delay))


@dataclass(frozen=True)
class _Job:
    event_id: int
    url: str
    body: bytes


def sign(sign_key: str, now: datetime) -> dict[str, Any]:
    """The ``T`` and ``Sign`` fields of a callback (spec 5.3)."""
    expires = int(now.timestamp()) + SIGN_TTL_SECONDS
    return {
        "T": expires,
        "Sign": hashlib.md5((sign_key + str(expires)).encode(), usedforsecurity=False).hexdigest(),
    }


def callback_body(content: dict[str, Any], sign_key: str, now: datetime) -> bytes:
    """The POST body: EventContent without EventHandle or null members, signed if keyed."""
    body = {key: value for key, value in content.items() if value is not None}
    body.pop("EventHandle", None)
    if sign_key:
        body.update(sign(sign_key, now))
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


_COUNTERS: WeakKeyDictionary[CollectorRegistry, Counter] = WeakKeyDictionary()
_COUNTERS_LOCK = threading.Lock()


def _attempt_counter(metrics: Metrics | None) -> Counter | None:
    """``anigraph_event_callbacks{outcome}`` on the service's registry (one per registry)."""
    if metrics is None:
        return None
    with _COUNTERS_LOCK:
        counter = _COUNTERS.get(metrics.registry)
        if counter is None:
            counter = Counter(
                "anigraph_event_callbacks",
                "PUSH callback attempts by outcome (delivered, failed, dead).",
                ["outcome"],
                registry=metrics.registry,
            )
            _COUNTERS[metrics.registry] = counter
        return counter


class EventDispatcher:
    """A thread that delivers due PUSH events; see the module docstring.

    ``schedule`` and ``timeout_seconds`` default to the settings ``event_retry_seconds``,
    ``event_give_up_seconds`` and ``event_timeout_seconds``. ``sender`` replaces the SSRF-safe
    HTTP client (tests). ``concurrency`` is how many sub-apps are served at once.
    """

    def __init__(
        self,
        ctx: Context,
        metrics: Metrics | None = None,
        *,
        schedule: RetrySchedule | None = None,
        timeout_seconds: float | None = None,
        sender: Sender | None = None,
        concurrency: int = 4,
        poll_seconds: float = 1.0,
    ) -> None:
        self.ctx = ctx
        self.schedule = schedule or RetrySchedule.from_settings(ctx.settings)
        self.timeout_seconds = (
            timeout_seconds if timeout_seconds is not None else ctx.settings.event_timeout_seconds
        )
        self.concurrency = max(1, concurrency)
        self.poll_seconds = poll_seconds
        self._sender = sender
        self._sender_lock = threading.Lock()
        self._counter = _attempt_counter(metrics)
        self._name = f"dispatch-{uuid.uuid4().hex[:12]}"
        self._claims = itertools.count(1)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._busy: set[int] = set()
        self._busy_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._last_purge: float | None = None

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering in the background; wakes on every in-process event commit."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="callback")
        outbox.add_listener(self.wake, outbox.PUSH)
        self._thread = threading.Thread(target=self._loop, name="event-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming; let sends in flight end (each bounded by the timeout), hand back the
        rest of their claims so that the next start sends them at once."""
        outbox.remove_listener(self.wake, outbox.PUSH)
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def wake(self) -> None:
        """Look for due events now (new events, replayed dead letters)."""
        self._wake.set()

    def run_once(self) -> int:
        """Claim every due event and deliver it in this thread; how many were attempted.

        For tests and tools: the same claim, send and record as the background thread.
        """
        attempted = 0
        for owner, _sub_app, ids in self._claim(max_groups=1_000_000):
            attempted += self._run_group(owner, ids)
        return attempted

    # -- the loop --------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            wait = self.poll_seconds
            try:
                now_mono = time.monotonic()
                if self._last_purge is None or now_mono - self._last_purge > PURGE_EVERY_SECONDS:
                    self._last_purge = now_mono
                    self._purge()
                with self._busy_lock:
                    free = self.concurrency - len(self._busy)
                if free > 0:
                    groups = self._claim(free)
                    for owner, sub_app_id, ids in groups:
                        self._submit(owner, sub_app_id, ids)
                    if groups and len(groups) == free:
                        continue  # maybe more due: look again when a slot frees (or now)
                    wait = min(wait, self._seconds_to_next_due())
            except Exception:  # a busy or restarting database: try again shortly
                log.exception("event dispatcher: claiming failed")
            self._wake.wait(max(MIN_WAIT_SECONDS, wait))

    def _submit(self, owner: str, sub_app_id: int, ids: list[int]) -> None:
        assert self._executor is not None
        with self._busy_lock:
            self._busy.add(sub_app_id)

        def done(_future: Future[int]) -> None:
            with self._busy_lock:
                self._busy.discard(sub_app_id)
            self._wake.set()

        future = self._executor.submit(self._run_group_safely, owner, ids)
        future.add_done_callback(done)

    def _run_group_safely(self, owner: str, ids: list[int]) -> int:
        try:
            return self._run_group(owner, ids)
        except Exception:  # recorded nothing: the leases run out and the events come back
            log.exception("event dispatcher: delivering %s failed", ids)
            return 0

    def _purge(self) -> None:
        from anigraph.notify.pull import purge

        removed = purge(self.ctx)
        if removed:
            log.info("purged %d events past retention", removed)

    # -- claim, send, record ---------------------------------------------------------------

    def _lease(self) -> timedelta:
        return timedelta(seconds=self.timeout_seconds + LEASE_MARGIN_SECONDS)

    def _due(self, now: datetime) -> Any:
        return (
            (OutboxEvent.state == outbox.PENDING)
            & (OutboxEvent.mode == outbox.PUSH)
            & (OutboxEvent.next_attempt_at <= now)
            & or_(OutboxEvent.lease_until.is_(None), OutboxEvent.lease_until < now)
        )

    def _claim(self, max_groups: int) -> list[tuple[str, int, list[int]]]:
        """Lease due events, at most ``PER_GROUP`` of each of at most ``max_groups`` sub-apps
        not already being served; ``[(owner, sub_app_id, ids in creation order)]``."""
        now = self.ctx.now()
        with self._busy_lock:
            busy = set(self._busy)
        with self.ctx.db.session() as session:
            stmt = select(OutboxEvent).where(self._due(now))
            if busy:
                stmt = stmt.where(OutboxEvent.sub_app_id.not_in(busy))
            stmt = stmt.order_by(OutboxEvent.id).limit(CLAIM_SCAN)
            if not self.ctx.db.is_sqlite:
                stmt = stmt.with_for_update(skip_locked=True)
            groups: dict[int, list[OutboxEvent]] = {}
            for event in session.scalars(stmt):
                group = groups.get(event.sub_app_id)
                if group is None:
                    if len(groups) >= max_groups:
                        continue
                    group = groups[event.sub_app_id] = []
                if len(group) < PER_GROUP:
                    group.append(event)
            claimed: list[tuple[str, int, list[int]]] = []
            for sub_app_id, events in groups.items():
                owner = f"{self._name}-{next(self._claims)}"
                for event in events:
                    event.lease_owner = owner
                    event.lease_until = now + self._lease()
                    if event.first_attempt_at is None:
                        event.first_attempt_at = now
                claimed.append((owner, sub_app_id, [event.id for event in events]))
            return claimed

    def _seconds_to_next_due(self) -> float:
        """Seconds until an event we could claim becomes due (its retry time, or the end of
        another dispatcher's lease), at most ``poll_seconds``; sub-apps being served by this
        dispatcher are left out (their threads wake the loop when done)."""
        now = self.ctx.now()
        with self._busy_lock:
            busy = set(self._busy)
        free = or_(OutboxEvent.lease_until.is_(None), OutboxEvent.lease_until < now)
        with self.ctx.db.session() as session:
            base = select(func.min(OutboxEvent.next_attempt_at)).where(
                OutboxEvent.state == outbox.PENDING, OutboxEvent.mode == outbox.PUSH, free
            )
            leased = select(func.min(OutboxEvent.lease_until)).where(
                OutboxEvent.state == outbox.PENDING,
                OutboxEvent.mode == outbox.PUSH,
                OutboxEvent.lease_until >= now,
            )
            if busy:
                base = base.where(OutboxEvent.sub_app_id.not_in(busy))
                leased = leased.where(OutboxEvent.sub_app_id.not_in(busy))
            moments = [session.scalar(base), session.scalar(leased)]
        wait = self.poll_seconds
        for moment in moments:
            if moment is not None:
                wait = min(wait, (_aware(moment) - now).total_seconds())
        return max(MIN_WAIT_SECONDS, wait)

    def _run_group(self, owner: str, ids: list[int]) -> int:
        attempted = 0
        for position, event_id in enumerate(ids):
            if self._stopping.is_set():
                self._release(owner, ids[position:])
                break
            job = self._prepare(event_id, owner)
            if job is None:
                continue
            error = self._send(job)
            self._record(event_id, owner, error)
            attempted += 1
        return attempted

    def _prepare(self, event_id: int, owner: str) -> _Job | None:
        """Renew the lease for one send and build it; ``None`` if the claim was lost."""
        now = self.ctx.now()
        with self.ctx.db.session() as session:
            event = session.scalars(
                select(OutboxEvent).where(
                    OutboxEvent.id == event_id,
                    OutboxEvent.lease_owner == owner,
                    OutboxEvent.state == outbox.PENDING,
                )
            ).first()
            if event is None:
                return None
            event.lease_until = now + self._lease()
            config = outbox.config_of(session, event.sub_app_id)
            url = config.notification_url if config is not None else ""
            sign_key = config.sign_key if config is not None else ""
            content = self.ctx.render_urls(event.content)  # links as of sending
            return _Job(event_id, url, callback_body(content, sign_key, now))

    def _send(self, job: _Job) -> str:
        """POST the event; ``""`` when delivered, else why the attempt failed."""
        if not job.url:
            return "no NotificationUrl is configured"
        try:
            status, _ = self._get_sender()(job.url, job.body, {"Content-Type": "application/json"})
        except Exception as exc:  # refused, timed out, blocked by the SSRF policy, …
            return f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= status < 300:
            return ""
        return f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")

    def _record(self, event_id: int, owner: str, error: str) -> None:
        now = self.ctx.now()
        with self.ctx.db.session() as session:
            event = session.scalars(
                select(OutboxEvent).where(
                    OutboxEvent.id == event_id,
                    OutboxEvent.lease_owner == owner,
                    OutboxEvent.state == outbox.PENDING,
                )
            ).first()
            if event is None:
                log.warning("event %d: lease lost before its outcome was recorded", event_id)
                return
            event.attempts += 1
            event.lease_owner = None
            event.lease_until = None
            if not error:
                event.state = outbox.DELIVERED
                event.delivered_at = now
                event.next_attempt_at = None
                event.last_error = ""
                outcome = "delivered"
            else:
                event.last_error = error
                first = event.first_attempt_at or now
                give_up_at = first + timedelta(seconds=self.schedule.give_up_after)
                if now >= give_up_at:
                    event.state = outbox.DEAD
                    event.next_attempt_at = None
                    outcome = "dead"
                    log.warning(
                        "event %d (%s, sub-app %d) is a dead letter after %d attempts: %s",
                        event.id,
                        event.event_type,
                        event.sub_app_id,
                        event.attempts,
                        error,
                    )
                else:
                    retry_at = now + timedelta(seconds=self.schedule.delay(event.attempts))
                    event.next_attempt_at = min(retry_at, give_up_at)
                    outcome = "failed"
                    log.info(
                        "event %d: callback attempt %d failed (%s); next at %s",
                        event.id,
                        event.attempts,
                        error,
                        event.next_attempt_at.isoformat(),
                    )
        if self._counter is not None:
            self._counter.labels(outcome).inc()

    def _release(self, owner: str, ids: list[int]) -> None:
        """Hand back claims not sent (stopping): due again at once, for whoever runs next."""
        try:
            with self.ctx.db.session() as session:
                session.execute(
                    update(OutboxEvent)
                    .where(OutboxEvent.id.in_(ids), OutboxEvent.lease_owner == owner)
                    .values(lease_owner=None, lease_until=None)
                )
        except Exception:  # the leases run out by themselves
            log.exception("event dispatcher: releasing %s failed", ids)

    def _get_sender(self) -> Sender:
        with self._sender_lock:
            if self._sender is None:
                from anigraph.net.fetch import Fetcher

                fetcher = Fetcher(
                    address_policy(self.ctx.settings),
                    max_bytes=RESPONSE_BYTES,
                    timeout_seconds=self.timeout_seconds,
                    connect_timeout=self.timeout_seconds,
                    read_timeout=self.timeout_seconds,
                    user_agent="anigraph-callback",
                )
                self._sender = fetcher.post_json
            return self._sender
