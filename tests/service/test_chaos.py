"""Faults under a scaled-out cluster (``scaled_harness``): an API-only server and two worker
processes on PostgreSQL, S3 and Redis, driven by the official SDK.

- A worker killed with -9 in the middle of a task: the other one takes the task over when the
  lease expires and finishes it; subtasks finished before the kill are kept.
- Redis frozen, then stopped and started again mid-run: tasks submitted before, during and after
  all finish; the API keeps accepting tasks at once while Redis hangs or is down; the Celery
  worker reconnects.
- PostgreSQL stopped and started again mid-run: the API answers errors while it is down and
  recovers; every task finishes.
- Messages lost: one purged from Redis before any worker saw it, and one taken by a Celery
  worker that was then killed; the claim loop of ``anigraph worker`` runs both tasks.

After every fault the same promise is checked (``check_done_exactly_once``): each task FINISH,
exactly one output row per subtask and one S3 object per row (no orphan objects), and exactly
one ProcedureStateChanged FINISH event per task, as PullEvents delivers it and in the outbox.
Leases last 2 s, so a takeover costs seconds, not the default 30 s.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from scaled_harness import (
    CELERY_WORKER,
    LEASE_SECONDS,
    WORKER,
    Cluster,
    animate,
    check_done_exactly_once,
    wait_until,
)
from service_harness import Vod, error_code

from anigraph.domain.wire import EMPTY_TIME as NOT_YET
from media_factory import make_clip

if TYPE_CHECKING:
    from pg_fixtures import RestartablePostgres
    from redis_fixtures import RedisServer
    from storage_fixtures import S3Server

pytest_plugins = ["storage_fixtures", "redis_fixtures"]

_redis_databases = itertools.cycle(range(2, 16))
"""Logical Redis databases for the clusters of this module (the SDK module uses 1)."""


@pytest.fixture(scope="module")
def postgres() -> Iterator[RestartablePostgres]:
    """A PostgreSQL server of this module's own: one test stops and starts it."""
    from pg_fixtures import restartable_postgres

    with restartable_postgres() as running:
        yield running


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough that a subtask takes about a second: a fault lands inside one."""
    return make_clip(
        tmp_path_factory.mktemp("chaos") / "long.mp4", seconds=20.0, fps=25, width=320, height=180
    )


@pytest.fixture
def make_cluster(
    tmp_path: Path, postgres: RestartablePostgres, s3_server: S3Server, redis_server: RedisServer
) -> Iterator[Callable[[], Cluster]]:
    """A new cluster on a fresh database of the module's server, closed after the test."""
    from pg_fixtures import fresh_database

    with ExitStack() as stack:
        made: list[Cluster] = []

        def make() -> Cluster:
            cluster = Cluster(
                tmp_path / f"cluster{len(made)}",
                db_url=stack.enter_context(fresh_database(postgres.server)),
                s3=s3_server,
                queue_url=redis_server.database_url(next(_redis_databases)),
            )
            made.append(cluster)
            stack.callback(cluster.close)
            return cluster

        try:
            yield make
        finally:
            # Before the clusters close and their databases go: a test that failed with a
            # server down must not leave it down for its teardown or the next test.
            postgres.start()
            if not redis_server.running:
                redis_server.start()


def heavy_template(vod: Vod) -> int:
    """Full-length WebP at 25 fps: about a second per subtask on the 20 s clip."""
    created = vod("CreateAnimatedGraphicsTemplate", {"Fps": 25, "Width": 320, "Format": "webp"})
    return int(created["Definition"])


def heavy_task(vod: Vod, file_id: str, definition: int, subtasks: int = 2) -> str:
    return animate(vod, file_id, *[{"Definition": definition}] * subtasks)


def light_task(vod: Vod, file_id: str) -> str:
    """One GIF of a second at the preset's 2 fps: done in a blink."""
    return animate(vod, file_id, {"Definition": 20000, "EndTimeOffset": 1.0})


def subtasks(vod: Vod, task_id: str) -> list[dict[str, Any]]:
    detail = vod("DescribeTaskDetail", {"TaskId": task_id})
    return [r["AnimatedGraphicTask"] for r in detail["ProcedureTask"]["MediaProcessResultSet"]]


def inside_second_subtask(vod: Vod, task_ids: list[str]) -> Callable[[], str | None]:
    """A probe: the id of a task whose first subtask is done and whose second has begun and is
    at most half done (progress is written every half second, so "begun" must count too). A
    fault then lands in the engine's work, not in the short step that stores its output."""

    def probe() -> str | None:
        for task_id in task_ids:
            first, second, *_ = subtasks(vod, task_id)
            began = second["BeginProcessTime"] != NOT_YET and second["Status"] == "PROCESSING"
            if first["Status"] == "SUCCESS" and began and (second["Progress"] or 0) <= 50:
                return task_id
        return None

    return probe


def outputs_of(vod: Vod, task_id: str) -> list[str | None]:
    """The output URL of each subtask (``None`` while it has none)."""
    return [(graphic.get("Output") or {}).get("Url") for graphic in subtasks(vod, task_id)]


# -- kill -9 ----------------------------------------------------------------------------------


def test_worker_killed_mid_task_the_other_finishes_it_once(
    make_cluster: Callable[[], Cluster], long_clip: Path
) -> None:
    cluster = make_cluster()
    cluster.start([WORKER, WORKER], media=long_clip)
    vod = cluster.vod
    file_id = cluster.file_id
    definition = heavy_template(vod)
    task_ids = [heavy_task(vod, file_id, definition) for _ in range(2)]

    # Each worker holds one task; the victim is chosen before the moment comes, so that nothing
    # stands between seeing the second subtask encode and the kill.
    wait_until(lambda: all(cluster.owner_of(t) for t in task_ids), "both tasks to be claimed")
    owners = {task_id: cluster.owner_of(task_id) for task_id in task_ids}
    assert len(set(map(id, owners.values()))) == 2, "one worker took both tasks"
    victim_task = wait_until(inside_second_subtask(vod, task_ids), "a task in its second subtask")
    victim = owners[victim_task]
    assert victim is not None
    victim.crash()
    kept = outputs_of(vod, victim_task)[0]
    (survivor,) = [worker for worker in cluster.workers if worker is not victim]

    check_done_exactly_once(cluster, task_ids)
    assert survivor.alive
    # The takeover redid the interrupted subtask only: the first one's output is the same.
    assert kept is not None and outputs_of(vod, victim_task)[0] == kept
    assert cluster.task(victim_task).attempt == 2
    assert f"reclaiming task {victim_task}" in survivor.log()
    assert set(survivor.finished()) == set(task_ids)


def test_output_stored_by_a_killed_worker_is_not_left_behind(
    make_cluster: Callable[[], Cluster], long_clip: Path
) -> None:
    """A worker killed after it stored a subtask's output in S3 and before the row that records
    it committed: the worker that takes the task over must not leave that object behind.

    The window is made wide on purpose: the test holds a lock that blocks inserts into
    ``media_outputs`` (reads go on), so the worker's recording transaction waits inside it.
    """
    from sqlalchemy import text

    cluster = make_cluster()
    cluster.start([WORKER, WORKER], media=long_clip)
    vod = cluster.vod
    with cluster.engine.connect() as blocker:
        blocker.execute(text("LOCK TABLE media_outputs IN EXCLUSIVE MODE"))
        task_id = light_task(vod, cluster.file_id)
        stranded = wait_until(
            lambda: cluster.objects("output") - {row.store_key for row in cluster.outputs()},
            "the output object to be stored, its row not yet",
        )
        # Its recording transaction waits on the lock and holds the task row: the lease runs
        # out, but nobody can take the task over until the worker is gone.
        victim = cluster.owner_of(task_id)
        assert victim is not None
        victim.crash()
        blocker.rollback()
    (survivor,) = [worker for worker in cluster.workers if worker is not victim]
    check_done_exactly_once(cluster, [task_id])
    assert not stranded & cluster.objects("output")
    assert cluster.task(task_id).attempt == 2 and task_id in survivor.finished()


# -- Redis ------------------------------------------------------------------------------------


def test_redis_restart_mid_run(
    make_cluster: Callable[[], Cluster], long_clip: Path, redis_server: RedisServer
) -> None:
    cluster = make_cluster()
    claim_loop, celery = cluster.start([WORKER, CELERY_WORKER], media=long_clip)
    vod = cluster.vod
    file_id = cluster.file_id
    definition = heavy_template(vod)
    before = [heavy_task(vod, file_id, definition) for _ in range(2)]
    wait_until(
        lambda: any(cluster.task(t).status == "PROCESSING" for t in before), "a task to start"
    )

    # A Redis that hangs (accepts, never answers): the API still answers at once.
    with redis_server.frozen():
        started = time.monotonic()
        hung = light_task(vod, file_id)
        assert time.monotonic() - started < 5.0

    redis_server.stop()
    during: list[str] = []
    for _ in range(2):
        started = time.monotonic()
        during.append(light_task(vod, file_id))
        # The wake-up cannot be published; the task is accepted all the same, promptly.
        assert time.monotonic() - started < 5.0
    assert httpx.get(f"{cluster.api.url}/healthz").status_code == 200
    redis_server.start()
    after = [light_task(vod, file_id) for _ in range(2)]

    check_done_exactly_once(cluster, [*before, hung, *during, *after], timeout=120)
    assert claim_loop.alive and celery.alive and cluster.api.process is not None
    assert cluster.api.process.poll() is None
    # Both ends of the queue reconnected: a task that only a wake-up message can start (the
    # claim loop frozen) is run by the Celery worker.
    with claim_loop.paused():
        woken = light_task(vod, file_id)
        check_done_exactly_once(cluster, [woken], timeout=60)
    assert woken in celery.finished()


# -- PostgreSQL -------------------------------------------------------------------------------


def test_postgres_restart_mid_run(
    make_cluster: Callable[[], Cluster], long_clip: Path, postgres: RestartablePostgres
) -> None:
    cluster = make_cluster()
    cluster.start([WORKER, CELERY_WORKER], media=long_clip)
    vod = cluster.vod
    file_id = cluster.file_id
    definition = heavy_template(vod)
    task_ids = [heavy_task(vod, file_id, definition) for _ in range(2)]
    running = wait_until(inside_second_subtask(vod, task_ids), "a task in its second subtask")

    postgres.stop()
    down_since = time.monotonic()
    # The API stays up and says what it can: errors with a code, a failing health check.
    assert error_code(lambda: vod("DescribeTaskDetail", {"TaskId": running})) == "InternalError"
    assert error_code(lambda: animate(vod, file_id, {"Definition": 20000})) == "InternalError"
    assert httpx.get(f"{cluster.api.url}/healthz").status_code == 503
    # Down for longer than a lease: heartbeats fail, and the takeover rules are exercised.
    time.sleep(max(0.0, LEASE_SECONDS + 1.0 - (time.monotonic() - down_since)))
    postgres.start()

    wait_until(
        lambda: httpx.get(f"{cluster.api.url}/healthz").status_code == 200, "the API to recover"
    )
    task_ids.append(light_task(vod, file_id))
    check_done_exactly_once(cluster, task_ids, timeout=120)
    assert all(worker.alive for worker in cluster.workers)
    assert cluster.api.process is not None and cluster.api.process.poll() is None


# -- lost messages ----------------------------------------------------------------------------


def test_lost_messages_are_recovered_by_the_claim_loop(
    make_cluster: Callable[[], Cluster], long_clip: Path
) -> None:
    cluster = make_cluster()
    (celery,) = cluster.start([CELERY_WORKER], media=long_clip)
    vod = cluster.vod
    file_id = cluster.file_id
    definition = heavy_template(vod)

    # 1. A Celery worker takes a task on its message and dies (-9) in the middle of it. The
    #    message is taken and never acked: Redis would give it back only after the visibility
    #    timeout (the job deadline plus ten minutes).
    held = heavy_task(vod, file_id, definition)
    wait_until(inside_second_subtask(vod, [held]), "the Celery worker to be inside the task")
    assert cluster.owner_of(held) is celery
    celery.crash()
    assert cluster.queued_messages() == 0

    # 2. A task whose message is published while no worker runs, then purged with the rest.
    orphan = light_task(vod, file_id)
    # ProcessMedia answers before its wake-up is published (a hung Redis must not hold it).
    wait_until(lambda: cluster.queued_messages() == 1, "the orphan's message to be queued", 10)
    cluster.drop_messages()
    assert cluster.queued_messages() == 0
    assert cluster.task(orphan).status == "WAITING"

    # The claim loop needs no message: it takes the WAITING task and the expired lease.
    rescuer = cluster.add_worker(WORKER)
    check_done_exactly_once(cluster, [held, orphan])
    assert sorted(rescuer.finished()) == sorted([held, orphan])
    assert f"reclaiming task {held}" in rescuer.log()
    assert cluster.task(held).attempt == 2 and cluster.task(orphan).attempt == 1
