"""The Celery transport against a real redis-server: messages wake workers, the row decides."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

from anigraph.jobs import celery_transport, leases
from anigraph.jobs.celery_transport import (
    SKIPPED,
    TASK_NAME,
    CeleryWaker,
    claim_task,
    make_celery,
    publish_wake,
)
from anigraph.jobs.pool import WorkerPool
from anigraph.metrics import Metrics
from anigraph.server import Service
from anigraph.services.context import Context
from jobs_fixtures import add_media, add_task, entry, load_task, make_ctx, outputs, wait_for
from media_factory import make_clip

pytest_plugins = ["redis_fixtures"]


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(
        tmp_path_factory.mktemp("celery") / "small.mp4", seconds=2.0, fps=10, width=160, height=96
    )


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return make_ctx(tmp_path)


@pytest.fixture
def app(ctx: Context, redis_url: str) -> Iterator[Celery]:
    celery_app = make_celery(ctx.settings, redis_url, service=Service(ctx, Metrics()))
    # A fresh database per test, a shared Redis: start each test with an empty queue.
    with celery_app.connection_for_write() as connection:
        connection.default_channel.client.flushdb()
    yield celery_app
    celery_app.close()


def _worker(app: Celery) -> object:
    return start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30.0)


def test_configuration(ctx: Context, redis_url: str) -> None:
    app = make_celery(ctx.settings, redis_url)
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    deadline = ctx.settings.task_deadline_seconds
    assert conf.task_time_limit == deadline + 300
    assert conf.broker_transport_options["visibility_timeout"] == deadline + 600
    assert conf.task_time_limit < conf.broker_transport_options["visibility_timeout"]
    assert TASK_NAME in app.tasks
    with pytest.raises(ValueError, match="broker"):
        make_celery(ctx.settings)


def test_published_task_runs_in_a_celery_worker(
    ctx: Context, app: Celery, small_clip: Path
) -> None:
    task_id = add_task(ctx, add_media(ctx, small_clip), [entry(20000, 0.0, 1.0)])
    with _worker(app):  # type: ignore[attr-defined]
        assert publish_wake(app, task_id)
        wait_for(lambda: load_task(ctx, task_id).status == leases.FINISH, what="task FINISH")
    task = load_task(ctx, task_id)
    assert task.attempt == 1
    assert task.subtasks[0]["AnimatedGraphicTask"]["Status"] == "SUCCESS"
    assert len(outputs(ctx, task_id)) == 1


def test_duplicated_message_runs_the_task_once(ctx: Context, app: Celery, small_clip: Path) -> None:
    task_id = add_task(ctx, add_media(ctx, small_clip), [entry(20000, 0.0, 1.0)])
    marker = add_task(ctx, add_media(ctx, small_clip), [entry(20000, 0.0, 0.5)])
    waker = CeleryWaker(app)
    waker.notify(task_id)
    waker.notify(task_id)
    waker.notify(marker)  # FIFO: when it is done, both duplicates have been consumed
    with _worker(app):  # type: ignore[attr-defined]
        wait_for(lambda: load_task(ctx, marker).status == leases.FINISH, what="marker FINISH")
    task = load_task(ctx, task_id)
    assert task.status == leases.FINISH
    assert task.attempt == 1
    assert len(outputs(ctx, task_id)) == 1


def test_duplicate_claim_while_running_is_refused(ctx: Context, small_clip: Path) -> None:
    task_id = add_task(ctx, add_media(ctx, small_clip))
    assert claim_task(ctx, task_id, "worker-a")
    assert not claim_task(ctx, task_id, "worker-b")  # lease alive: the second message is a no-op
    assert load_task(ctx, task_id).lease_owner == "worker-a"


def test_unknown_and_finished_tasks_are_ignored(
    ctx: Context, app: Celery, small_clip: Path
) -> None:
    done = add_task(ctx, add_media(ctx, small_clip), [entry(20000, 0.0, 0.5)])
    run = app.tasks[TASK_NAME]
    assert run(done) == "finished"
    before = load_task(ctx, done)
    # Called directly: the outcome says nothing was claimed.
    assert run("1500000001-procedurev2-doesnotexist") == SKIPPED
    assert run(done) == SKIPPED
    # Through Redis: acked and ignored, the row untouched.
    marker = add_task(ctx, add_media(ctx, small_clip), [entry(20000, 0.0, 0.5)])
    publish_wake(app, "1500000001-procedurev2-doesnotexist")
    publish_wake(app, done)
    publish_wake(app, marker)
    with _worker(app):  # type: ignore[attr-defined]
        wait_for(lambda: load_task(ctx, marker).status == leases.FINISH, what="marker FINISH")
    after = load_task(ctx, done)
    assert (after.status, after.attempt, after.finish_at) == (
        before.status,
        before.attempt,
        before.finish_at,
    )
    assert len(outputs(ctx, done)) == 1
    with app.connection_for_write() as connection:
        assert connection.default_channel.client.llen("anigraph") == 0  # all acked


def test_dropped_message_is_recovered_by_the_pool_claim_loop(
    ctx: Context, app: Celery, small_clip: Path
) -> None:
    task_id = add_task(ctx, add_media(ctx, small_clip), [entry(20000, 0.0, 0.5)])
    # No message is ever published; a Celery worker alone does not see the task...
    with _worker(app):  # type: ignore[attr-defined]
        time.sleep(0.5)
    assert load_task(ctx, task_id).status == leases.WAITING
    # ...but the pool's idle claim loop does, without being woken.
    pool = WorkerPool(ctx, Metrics(), 1, idle_wait=0.2)
    pool.start()
    try:
        wait_for(lambda: load_task(ctx, task_id).status == leases.FINISH, what="task FINISH")
    finally:
        assert pool.stop(drain=True, timeout=30)
    assert len(outputs(ctx, task_id)) == 1


def test_wake_without_id_claims_any_task(ctx: Context, app: Celery, small_clip: Path) -> None:
    task_id = add_task(ctx, add_media(ctx, small_clip), [entry(20000, 0.0, 0.5)])
    ctx.wake_workers = CeleryWaker(app)
    with _worker(app):  # type: ignore[attr-defined]
        ctx.wake_workers()
        wait_for(lambda: load_task(ctx, task_id).status == leases.FINISH, what="task FINISH")
    assert len(outputs(ctx, task_id)) == 1


def test_publish_failure_is_not_raised(ctx: Context) -> None:
    with socket.socket() as sock:  # a port nobody listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = make_celery(ctx.settings, f"redis://127.0.0.1:{port}/0")
    dead.conf.broker_connection_timeout = 0.5
    assert publish_wake(dead, "any") is False
    assert celery_transport.SKIPPED == "skipped"
