"""The distributed job transport: task wake-ups through Celery (over Redis).

The database row is the truth about a task; a Celery message carries only a task id, to wake a
worker sooner than its idle poll would. Messages are an accelerator, never required:

- A message is acted on only if the row says the task is claimable (WAITING and due, or
  PROCESSING with an expired lease); the claim is the same lease claim the in-process pool makes
  (:func:`claim_task`), so a duplicated or redelivered message finds the task owned or finished
  and is acked and ignored, and a message for an unknown task is acked and ignored too.
- A lost message (Redis restarted, a publish failed after the commit, a worker died after the
  ack) changes nothing either: the :class:`~anigraph.jobs.pool.WorkerPool` idle claim loop
  (``anigraph worker``/``serve`` slots look every second) finds WAITING rows and expired leases
  by itself. Keep at least one such pool running beside Celery workers: it is the periodic
  safety net.

Delivery settings follow from that: ``acks_late`` with ``reject_on_worker_lost`` (a worker that
dies mid-task lets the message come back; the lease decides who runs it), prefetch 1 (a busy
worker does not sit on wake-ups others could serve), JSON only, and a broker visibility timeout
well above the job deadline, so Redis does not redeliver a message whose task is still running
(a copy that comes anyway finds the lease held and is skipped). A task whose worker died keeps
its lease until expiry and is then taken over; finished subtasks are kept, so the work resumes
where it stopped.

Tasks run in Celery's ``threads`` pool (or ``solo``), like the slots of ``anigraph worker``: the
isolation a process pool would buy is already there, since each media job runs in a child
process of its own with its own deadline (``media.child``). The ``prefork`` pool cannot run jobs
at all: billiard installs its daemonic pool-process object as the standard library's current
process, and ``multiprocessing`` refuses children to a daemonic process (celery/celery#1709) and
cannot pickle billiard's authentication key for a forkserver either. The hard time limit set
below the visibility timeout is therefore only a backstop Celery would enforce in ``prefork``;
what bounds a run here is the job deadline.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from datetime import timedelta
from typing import Final, Protocol

from celery import Celery
from sqlalchemy import and_, or_, select

from anigraph.context import Context
from anigraph.db.models import Task
from anigraph.jobs import leases
from anigraph.jobs.pool import new_owner
from anigraph.jobs.runner import run_claimed
from anigraph.logs import bound
from anigraph.metrics import Metrics
from anigraph.settings import Settings

log = logging.getLogger(__name__)

TASK_NAME: Final = "anigraph.run_task"
MAX_PENDING_WAKES: Final = 10_000
"""Wake-ups a process keeps while the broker is slow to take them (a few bytes each)."""
PUBLISHER_IDLE_SECONDS: Final = 5.0
BROKER_CONNECT_TIMEOUT_SECONDS: Final = 5.0
BROKER_SOCKET_TIMEOUT_SECONDS: Final = 15.0
"""Past this a broker that stopped answering counts as gone (reconnect), instead of holding a
publisher or an ack forever; above the 1 s BRPOP a waiting worker issues."""
VISIBILITY_MARGIN_SECONDS: Final = 600.0
TIME_LIMIT_MARGIN_SECONDS: Final = 300.0

# Outcomes returned by the Celery task (results are not stored; tests call it directly).
SKIPPED: Final = "skipped"
"""The message's task was not claimable (unknown, finished, owned, not yet due): acked, ignored."""


def claim_task(ctx: Context, task_id: str, owner: str, metrics: Metrics | None = None) -> bool:
    """Claim task ``task_id`` for ``owner`` if it is claimable; ``True`` when claimed.

    The rules of :func:`leases.claim_next`, for one id: a WAITING task whose ``not_before`` is
    unset or past, or a PROCESSING task whose lease expired (charged one lost attempt).
    """
    now = ctx.now()
    with ctx.db.session() as session:
        stmt = select(Task).where(
            Task.task_id == task_id,
            or_(
                and_(
                    Task.status == leases.WAITING,
                    or_(Task.not_before.is_(None), Task.not_before <= now),
                ),
                and_(
                    Task.status == leases.PROCESSING,
                    Task.lease_expires_at < now,
                ),
            ),
        )
        if not ctx.db.is_sqlite:
            stmt = stmt.with_for_update(skip_locked=True)
        task = session.scalars(stmt).first()
        if task is None:
            return False
        if task.status == leases.PROCESSING:
            log.warning(
                "reclaiming task %s: lease of %s expired at %s",
                task.task_id,
                task.lease_owner,
                task.lease_expires_at,
            )
            leases._count_lost_attempt(task)
            if metrics is not None:
                metrics.lease_reclaims.inc()
        task.status = leases.PROCESSING
        task.lease_owner = owner
        task.lease_expires_at = now + timedelta(seconds=ctx.settings.lease_seconds)
        task.attempt += 1
        task.not_before = None
        if task.begin_at is None:
            task.begin_at = now
        return True


class Runtime(Protocol):
    """What a task run needs from the process: its context and its metrics.

    The composition root's ``anigraph.server.Service`` is one; whoever gives it to
    :func:`make_celery` has installed the ProcedureStateChanged hooks on its context (without
    them a task this process finishes would commit FINISH with no event, lost for good).
    """

    @property
    def ctx(self) -> Context: ...

    @property
    def metrics(self) -> Metrics: ...


def make_celery(
    settings: Settings, broker_url: str | None = None, *, service: Runtime | None = None
) -> Celery:
    """A Celery app for ``settings`` with the ``anigraph.run_task`` task registered.

    ``broker_url`` defaults to the ``queue`` setting (``redis://host:port/0``). ``service`` is
    what the task runs with (``anigraph celery-worker`` passes the one it built); an app made
    without one only publishes wake-ups, and refuses to run a task.
    """
    url = broker_url or settings.queue
    if not url:
        raise ValueError("the Celery transport needs a broker URL (--queue redis://…)")
    app = Celery("anigraph", broker=url, set_as_current=False)
    deadline = float(settings.task_deadline_seconds)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=int(deadline + TIME_LIMIT_MARGIN_SECONDS),
        broker_transport_options={
            "visibility_timeout": int(deadline + VISIBILITY_MARGIN_SECONDS),
            "socket_connect_timeout": BROKER_CONNECT_TIMEOUT_SECONDS,
            "socket_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
        },
        broker_connection_timeout=BROKER_CONNECT_TIMEOUT_SECONDS,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_default_queue="anigraph",
        broker_connection_retry_on_startup=True,
        # A run keeps going when the broker connection drops (Redis restarting): its lease, not
        # the message, says who runs the task, and cancelling it would only waste the work.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        enable_utc=True,
    )

    def run_task(task_id: str | None = None) -> str:
        """Claim ``task_id`` (or, without an id, any claimable task) and run it.

        Returns the run's outcome, or ``skipped`` when there was nothing to claim.
        """
        if service is None:
            raise RuntimeError("this Celery app only publishes wake-ups: make_celery(service=…)")
        current = service
        owner = new_owner(0)
        if task_id is None:
            claimed = leases.claim_next(current.ctx, owner, current.metrics)
        else:
            claimed = task_id if claim_task(current.ctx, task_id, owner, current.metrics) else None
        if claimed is None:
            log.debug("wake-up for %s: nothing to claim", task_id or "any task")
            return SKIPPED
        with bound(task_id=claimed):
            outcome = run_claimed(current.ctx, claimed, owner, current.metrics)
        log.info("celery worker: task %s %s", claimed, outcome.value)
        return outcome.value

    app.task(name=TASK_NAME, ignore_result=True, shared=False)(run_task)
    return app


def publish_wake(app: Celery, task_id: str | None = None) -> bool:
    """Send a wake-up for ``task_id`` (``None``: for any claimable task); ``True`` if sent.

    Called after the task row committed. A failed publish is logged, never raised: the message
    is only an accelerator and the pools' claim loop finds the task anyway.
    """
    try:
        app.send_task(
            TASK_NAME,
            args=[task_id],
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0.1, "interval_step": 0.2},
        )
    except Exception:
        log.warning("could not publish a wake-up for task %s", task_id, exc_info=True)
        return False
    return True


class CeleryWaker:
    """Suitable for ``ctx.wake_workers``: calling it publishes a wake-up for any task.

    Publishing happens on a thread of its own, in order: the request that created the task
    answers at once whatever Redis does. Down or restarting costs a failed connect, but a Redis
    that accepts connections and never answers (frozen, or behind a network that drops packets)
    would otherwise hold the request until the client gives up, and a client without a
    SessionId then retries into a second task. Up to ``max_pending`` wake-ups wait their turn;
    beyond that they are dropped with a warning (the claim loop finds their tasks).
    """

    def __init__(self, app: Celery, *, max_pending: int = MAX_PENDING_WAKES) -> None:
        self.app = app
        self._pending: queue.Queue[str | None] = queue.Queue(max_pending)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._dropping = False

    def __call__(self) -> None:
        self._submit(None)

    def notify(self, task_id: str) -> None:
        """Wake a worker for one task (a message that names the task)."""
        self._submit(task_id)

    def _submit(self, task_id: str | None) -> None:
        with self._lock:
            try:
                self._pending.put_nowait(task_id)
            except queue.Full:
                if not self._dropping:
                    self._dropping = True
                    log.warning(
                        "%d wake-ups wait for the broker: dropping new ones until it catches up",
                        self._pending.maxsize,
                    )
                return
            # Started when there is work, in the process that publishes (a forked child has the
            # object but not the thread); it ends when idle, so a dropped waker leaves nothing.
            if self._thread is None or self._pid != os.getpid():
                self._thread = threading.Thread(
                    target=self._publish, name="anigraph-wake-publisher", daemon=True
                )
                self._pid = os.getpid()
                self._thread.start()

    def _publish(self) -> None:
        while True:
            try:
                task_id = self._pending.get(timeout=PUBLISHER_IDLE_SECONDS)
            except queue.Empty:
                with self._lock:  # _submit puts and checks the thread under this lock too
                    if self._pending.empty():
                        self._thread = None
                        self._dropping = False
                        return
                continue
            try:
                publish_wake(self.app, task_id)
            finally:
                self._pending.task_done()


def worker_argv(
    settings: Settings, *, pool: str = "threads", loglevel: str | None = None
) -> list[str]:
    """Arguments for ``app.worker_main`` running ``settings.worker_slots`` tasks at a time.

    ``pool`` is ``threads`` or ``solo``: ``prefork`` cannot start the media children (see the
    module docstring); ``anigraph celery-worker`` offers only those two.
    """
    return [
        "worker",
        f"--concurrency={max(1, settings.worker_slots)}",
        f"--pool={pool}",
        f"--loglevel={(loglevel or settings.log_level).upper()}",
        "--queues=anigraph",
        "--without-gossip",
        "--without-mingle",
    ]


__all__ = [
    "SKIPPED",
    "TASK_NAME",
    "CeleryWaker",
    "Runtime",
    "claim_task",
    "make_celery",
    "publish_wake",
    "worker_argv",
]
