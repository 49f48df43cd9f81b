"""The job-transport contract, run against every transport: what a created task can count on.

A transport carries wake-ups; the task row is the truth. Each transport is driven through a small
adapter (start, announce a task, wake, stop), so one test body holds both to the same promises:

- ``in-process``: a :class:`WorkerPool` in this process, woken by ``wake()``.
- ``celery``: Celery over a real redis-server (a ``solo`` worker started in this process) and,
  as ``docs/deployment.md`` prescribes for that setup, one :class:`WorkerPool` beside it whose
  claim loop is the safety net for lost messages. Announcements go to Redis only, never to the
  pool, so a task that runs promptly after an announcement was run by the Celery worker (the
  pool's idle poll is a minute unless a test shortens it).

``announce(task_id)`` is a message naming the task (Celery: ``CeleryWaker.notify``, also what a
redelivery looks like; the pool has no ids and just wakes); ``wake()`` is what
``ctx.wake_workers`` sends in production after a commit (a wake-up for any task).
Celery-specific configuration and direct calls stay in ``test_celery_transport.py``.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from sqlalchemy import update

from anigraph.context import Context
from anigraph.db.models import Task
from anigraph.domain.wire import iso
from anigraph.jobs import celery_transport, leases
from anigraph.jobs.celery_transport import CeleryWaker, make_celery
from anigraph.jobs.pool import WorkerPool
from anigraph.jobs.runner import run_claimed
from anigraph.media.child import JobFunction, animate_job
from anigraph.metrics import Metrics
from anigraph.server import Service
from jobs_fixtures import (
    add_media,
    add_task,
    entry,
    load_task,
    make_ctx,
    outputs,
    slow_animate,
    sub,
    wait_for,
)
from media_factory import make_clip

pytest_plugins = ["redis_fixtures"]

NEVER = 60.0
"""An idle poll so long that only an announcement can start a task within a test."""
QUICK = 0.2
"""An idle poll short enough to test the claim loop."""
DONE_WITHIN = 30.0
UNKNOWN_TASK = "1500000001-procedurev2-0123456789abcdef0123456789abcdef"


class ClaimCounter:
    """Wraps ``leases.claim_next`` to count finished calls: a pool slot that has made its first
    claim is about to sleep, so a task added after that waits for a wake-up or the idle poll."""

    def __init__(self, real: Callable[..., str | None]) -> None:
        self.real = real
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> str | None:
        try:
            return self.real(*args, **kwargs)
        finally:
            with self._lock:
                self.calls += 1


class Transport(Protocol):
    name: str
    hands_back_on_stop: bool
    """``stop(release=True)`` returns a running task as WAITING (else it lets it finish)."""

    def start(self, *, idle_poll: float = NEVER, job: JobFunction = animate_job) -> None: ...

    def announce(self, task_id: str) -> None: ...

    def wake(self) -> None: ...

    def stop(self, *, release: bool = False) -> None: ...


class _SafetyNet:
    """A one-slot pool, started and then left idle (see :class:`ClaimCounter`)."""

    def __init__(self, ctx: Context, counter: ClaimCounter) -> None:
        self.ctx = ctx
        self.counter = counter
        self.pool: WorkerPool | None = None

    def start(self, idle_poll: float, job: JobFunction) -> WorkerPool:
        before = self.counter.calls
        self.pool = WorkerPool(self.ctx, Metrics(), 1, job=job, idle_wait=idle_poll)
        self.pool.start()
        wait_for(lambda: self.counter.calls > before, 10, "the pool's first claim")
        return self.pool

    def stop(self, release: bool) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            assert pool.stop(drain=not release, timeout=DONE_WITHIN)


class InProcess:
    name = "in-process"
    hands_back_on_stop = True

    def __init__(self, ctx: Context, counter: ClaimCounter) -> None:
        self.net = _SafetyNet(ctx, counter)
        self.pool: WorkerPool | None = None

    def start(self, *, idle_poll: float = NEVER, job: JobFunction = animate_job) -> None:
        self.pool = self.net.start(idle_poll, job)

    def announce(self, task_id: str) -> None:
        del task_id  # the pool's wake-ups name no task
        self.wake()

    def wake(self) -> None:
        assert self.pool is not None
        self.pool.wake()

    def stop(self, *, release: bool = False) -> None:
        self.net.stop(release)


class OverCelery:
    name = "celery"
    # Celery's warm shutdown waits for the running task; there is no hand-back: a worker killed
    # instead leaves its lease to expire, and the task is taken over (see the lease test).
    hands_back_on_stop = False

    def __init__(
        self, ctx: Context, counter: ClaimCounter, redis_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.ctx = ctx
        self.redis_url = redis_url
        self.monkeypatch = monkeypatch
        self.net = _SafetyNet(ctx, counter)
        self.app: Celery | None = None
        self.worker: AbstractContextManager[Any] | None = None

    def start(self, *, idle_poll: float = NEVER, job: JobFunction = animate_job) -> None:
        # The Celery task calls run_claimed with the engine; a test's job replaces it there, as
        # the pool's ``job`` argument does.
        self.monkeypatch.setattr(
            celery_transport, "run_claimed", functools.partial(run_claimed, job=job)
        )
        app = make_celery(self.ctx.settings, self.redis_url, service=Service(self.ctx, Metrics()))
        with app.connection_for_write() as connection:
            connection.default_channel.client.flushdb()  # one Redis for all tests: no leftovers
        self.app = app
        self.worker = start_worker(
            app, pool="solo", perform_ping_check=False, shutdown_timeout=DONE_WITHIN
        )
        self.worker.__enter__()
        self.net.start(idle_poll, job)

    def announce(self, task_id: str) -> None:
        assert self.app is not None
        CeleryWaker(self.app).notify(task_id)

    def wake(self) -> None:
        assert self.app is not None
        CeleryWaker(self.app)()

    def stop(self, *, release: bool = False) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.__exit__(None, None, None)
        self.net.stop(release)
        if self.app is not None:
            with self.app.connection_for_write() as connection:
                queued = connection.default_channel.client.llen("anigraph")
            self.app.close()
            self.app = None
            assert queued == 0, "every message was acked, including the ignored ones"


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(
        tmp_path_factory.mktemp("transport") / "small.mp4", seconds=1.0, fps=10, width=96, height=64
    )


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return make_ctx(tmp_path, workers=1)


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> ClaimCounter:
    wrapped = ClaimCounter(leases.claim_next)
    monkeypatch.setattr(leases, "claim_next", wrapped)
    return wrapped


@pytest.fixture(params=["in-process", "celery"])
def transport(
    request: pytest.FixtureRequest,
    ctx: Context,
    counter: ClaimCounter,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Transport]:
    adapter: Transport
    if request.param == "in-process":
        adapter = InProcess(ctx, counter)
    else:
        adapter = OverCelery(ctx, counter, request.getfixturevalue("redis_url"), monkeypatch)
    try:
        yield adapter
    finally:
        adapter.stop()


def new_task(ctx: Context, clip: Path, **options: Any) -> str:
    return add_task(ctx, add_media(ctx, clip), [entry(20000, 0.0, 0.5)], **options)


def send(transport: Transport, how: str, task_id: str) -> None:
    if how == "announce":
        transport.announce(task_id)
    else:
        transport.wake()


def finished(ctx: Context, task_id: str) -> Callable[[], bool]:
    return lambda: load_task(ctx, task_id).status == leases.FINISH


def assert_ran_once(ctx: Context, task_id: str, attempts: int = 1) -> None:
    task = load_task(ctx, task_id)
    assert (task.status, task.lease_owner, task.attempt) == (leases.FINISH, None, attempts)
    assert sub(ctx, task_id)["Status"] == "SUCCESS"
    assert len(outputs(ctx, task_id)) == 1


@pytest.mark.parametrize("how", ["announce", "wake"])
def test_an_announced_task_runs_once_to_finish(
    transport: Transport, ctx: Context, small_clip: Path, how: str
) -> None:
    transport.start()
    task_id = new_task(ctx, small_clip)
    send(transport, how, task_id)
    wait_for(finished(ctx, task_id), DONE_WITHIN, "the announced task")
    assert_ran_once(ctx, task_id)


@pytest.mark.parametrize("how", ["announce", "wake"])
def test_announcing_a_task_twice_runs_it_once(
    transport: Transport, ctx: Context, small_clip: Path, how: str
) -> None:
    transport.start()
    task_id = new_task(ctx, small_clip)
    marker = new_task(ctx, small_clip)
    for _ in range(2):
        send(transport, how, task_id)
    # In order, last: once it is done, both copies for the first task have been handled.
    send(transport, how, marker)
    wait_for(finished(ctx, marker), DONE_WITHIN, "the marker task")
    wait_for(finished(ctx, task_id), DONE_WITHIN, "the announced task")
    transport.stop()
    assert_ran_once(ctx, task_id)
    assert_ran_once(ctx, marker)


def test_announcing_unknown_or_finished_tasks_is_harmless(
    transport: Transport, ctx: Context, small_clip: Path
) -> None:
    transport.start()
    done = new_task(ctx, small_clip)
    transport.announce(done)
    wait_for(finished(ctx, done), DONE_WITHIN, "the first task")
    before = load_task(ctx, done)
    transport.announce(UNKNOWN_TASK)
    transport.announce(done)
    marker = new_task(ctx, small_clip)
    transport.announce(marker)  # the transport still serves what comes next
    wait_for(finished(ctx, marker), DONE_WITHIN, "the marker task")
    transport.stop()
    after = load_task(ctx, done)
    assert (after.status, after.attempt, after.finish_at) == (
        before.status,
        before.attempt,
        before.finish_at,
    )
    assert len(outputs(ctx, done)) == 1
    assert_ran_once(ctx, marker)


def test_a_task_never_announced_runs_within_the_idle_poll(
    transport: Transport, ctx: Context, small_clip: Path
) -> None:
    transport.start(idle_poll=QUICK)
    task_id = new_task(ctx, small_clip)  # committed, but its message was lost
    wait_for(finished(ctx, task_id), DONE_WITHIN, "the unannounced task")
    assert_ran_once(ctx, task_id)


def test_a_task_whose_worker_died_is_taken_over(
    transport: Transport, ctx: Context, small_clip: Path
) -> None:
    task_id = new_task(ctx, small_clip)
    assert leases.claim_next(ctx, "dead-worker") == task_id
    # The dead worker had begun the subtask, so its lost run counts as an attempt.
    subtask = dict(load_task(ctx, task_id).subtasks[0])
    subtask["AnimatedGraphicTask"] = {**sub(ctx, task_id), "BeginProcessTime": iso(ctx.now())}
    row = update(Task).where(Task.task_id == task_id)
    with ctx.db.session() as session:
        session.execute(row.values(subtasks=[subtask]))
    transport.start()
    # A message while the lease is alive (a duplicate, an early redelivery) is ignored...
    transport.announce(task_id)
    marker = new_task(ctx, small_clip)
    transport.announce(marker)
    wait_for(finished(ctx, marker), DONE_WITHIN, "the marker task")
    held = load_task(ctx, task_id)
    assert (held.status, held.lease_owner) == (leases.PROCESSING, "dead-worker")
    # ...and once the lease has expired, the next one takes the task over.
    with ctx.db.session() as session:
        session.execute(row.values(lease_expires_at=ctx.now() - timedelta(seconds=1)))
    transport.announce(task_id)
    wait_for(finished(ctx, task_id), DONE_WITHIN, "the taken-over task")
    assert_ran_once(ctx, task_id, attempts=2)
    assert load_task(ctx, task_id).subtasks[0]["_attempts"] == 1  # the lost run was charged


def test_wake_ups_run_higher_priority_first(
    transport: Transport, ctx: Context, small_clip: Path
) -> None:
    transport.start()
    low = new_task(ctx, small_clip, priority=0)
    high = new_task(ctx, small_clip, priority=5)
    mid = new_task(ctx, small_clip, priority=2)
    for _ in range(3):
        transport.wake()
    for task_id in (low, high, mid):
        wait_for(finished(ctx, task_id), DONE_WITHIN, "every task")
    began = sorted((load_task(ctx, t).begin_at, t) for t in (low, high, mid))
    assert [task_id for _, task_id in began] == [high, mid, low]


def test_stopping_never_leaves_a_running_task_owned(
    transport: Transport, ctx: Context, small_clip: Path
) -> None:
    transport.start(job=slow_animate)
    task_id = new_task(ctx, small_clip)
    transport.announce(task_id)
    wait_for(lambda: sub(ctx, task_id)["Progress"] == 10, DONE_WITHIN, "the job to run")
    began = time.monotonic()
    transport.stop(release=True)
    assert time.monotonic() - began < DONE_WITHIN
    task = load_task(ctx, task_id)
    if transport.hands_back_on_stop:
        assert (task.status, task.lease_owner, task.lease_expires_at) == (
            leases.WAITING,
            None,
            None,
        )
        assert task.subtasks[0]["_attempts"] == 0  # interrupted on purpose: not charged
        assert outputs(ctx, task_id) == []
        # Handed back, it is anyone's: the next start runs it.
        transport.start()
        transport.announce(task_id)
        wait_for(finished(ctx, task_id), DONE_WITHIN, "the handed-back task")
        assert_ran_once(ctx, task_id, attempts=2)
    else:
        assert_ran_once(ctx, task_id)
