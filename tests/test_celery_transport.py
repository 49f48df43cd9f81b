"""What only the Celery transport has: its configuration, its task's outcomes, publish failures.

The promises every transport keeps (announced tasks run once, duplicates and unknown ids are
harmless, lost messages are covered by the claim loop, expired leases are taken over, priority,
stopping) are checked for Celery over a real redis-server in ``test_transport_contract.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from anigraph.context import Context
from anigraph.jobs import leases
from anigraph.jobs.celery_transport import SKIPPED, TASK_NAME, make_celery, publish_wake
from anigraph.metrics import Metrics
from anigraph.server import Service
from jobs_fixtures import add_media, add_task, entry, load_task, make_ctx, outputs
from media_factory import make_clip
from redis_fixtures import free_port

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
    yield celery_app
    celery_app.close()


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


def test_the_task_reports_its_outcome_and_skips_what_it_cannot_claim(
    ctx: Context, app: Celery, small_clip: Path
) -> None:
    done = add_task(ctx, add_media(ctx, small_clip), [entry(20000, 0.0, 0.5)])
    run = app.tasks[TASK_NAME]  # called directly: no broker, the outcome is the return value
    assert run(done) == "finished"
    before = load_task(ctx, done)
    assert run("1500000001-procedurev2-doesnotexist") == SKIPPED
    assert run(done) == SKIPPED
    assert run() == SKIPPED  # a wake-up for any task, with none waiting
    after = load_task(ctx, done)
    assert (after.status, after.attempt, after.finish_at) == (
        leases.FINISH,
        before.attempt,
        before.finish_at,
    )
    assert len(outputs(ctx, done)) == 1


def test_publish_failure_is_not_raised(ctx: Context) -> None:
    dead = make_celery(ctx.settings, f"redis://127.0.0.1:{free_port()}/0")
    dead.conf.broker_connection_timeout = 0.5
    assert publish_wake(dead, "any") is False
