"""The worker layer: leases, the media child, the runner and the in-process pool.

Everything runs for real: SQLite in a temp folder, the LocalStore, forkserver children and the
engine on a synthesized clip. Faults are injected as job functions that crash or hang inside the
child (``jobs_fixtures``), and lease expiry is driven by a settable clock.
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update

from anigraph.context import Context
from anigraph.db.models import Media, Task
from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.jobs import leases, pull
from anigraph.jobs.pool import WorkerPool, new_owner
from anigraph.jobs.runner import Outcome, run_claimed, staging_dir, sweep_staging
from anigraph.media import child
from anigraph.media.types import AnimateParams, Limits, OutputFormat
from anigraph.metrics import Metrics
from anigraph.services.pull import PullRequest, create_pull_task
from anigraph.storage.local import LocalStore
from jobs_fixtures import (
    OTHER_SUB_APP,
    OUTPUT_KEYS,
    SUB_APP,
    T0,
    Clock,
    add_media,
    add_task,
    add_template,
    crash_exception,
    crash_exit,
    crash_probe,
    crash_sigkill,
    entry,
    hang,
    hang_probe,
    load_task,
    lower_retire_cap,
    make_ctx,
    outputs,
    refuse_with_pid,
    report_pid,
    slow_animate,
    sub,
    wait_for,
)
from media_factory import decode_animation, make_clip


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s, 10 fps, 160x96: frame i shows its index (see media_factory)."""
    return make_clip(
        tmp_path_factory.mktemp("jobs") / "small.mp4", seconds=2.0, fps=10, width=160, height=96
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def staging_leftovers(ctx: Context) -> list[str]:
    return sorted(path.name for path in staging_dir(ctx).iterdir())


def claim(ctx: Context, metrics: Metrics | None = None) -> tuple[str, str]:
    owner = new_owner(0)
    task_id = leases.claim_next(ctx, owner, metrics)
    assert task_id is not None
    return task_id, owner


# -- leases -------------------------------------------------------------------------------------


def test_claim_order_is_priority_then_age_and_respects_not_before(
    tmp_path: Path, clock: Clock
) -> None:
    ctx = make_ctx(tmp_path, clock)
    old_low = add_task(ctx, priority=0, created_at=T0 - timedelta(seconds=30))
    new_high = add_task(ctx, priority=5, created_at=T0 - timedelta(seconds=10))
    old_high = add_task(ctx, priority=5, created_at=T0 - timedelta(seconds=20))
    oldest_negative = add_task(ctx, priority=-1, created_at=T0 - timedelta(seconds=100))
    backing_off = add_task(
        ctx,
        priority=10,
        created_at=T0 - timedelta(seconds=5),
        not_before=T0 + timedelta(seconds=60),
    )
    claims = [leases.claim_next(ctx, f"owner-{i}") for i in range(5)]
    assert claims == [old_high, new_high, old_low, oldest_negative, None]

    task = load_task(ctx, old_high)
    assert task.status == "PROCESSING"
    assert task.lease_owner == "owner-0"
    assert task.lease_expires_at == T0 + timedelta(seconds=ctx.settings.lease_seconds)
    assert task.attempt == 1
    assert task.begin_at == T0

    clock.advance(60)
    assert leases.claim_next(ctx, "late") == backing_off
    assert leases.counts(ctx) == {"WAITING": 0, "PROCESSING": 5, "FINISH": 0, "ABORTED": 0}


def test_racing_owners_never_claim_the_same_task(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    task_ids = {add_task(ctx, created_at=T0 + timedelta(seconds=i)) for i in range(40)}
    threads = 8
    barrier = threading.Barrier(threads)
    claimed: list[list[tuple[str, str]]] = [[] for _ in range(threads)]

    def worker(n: int) -> None:
        barrier.wait()
        while True:
            owner = new_owner(n)
            task_id = leases.claim_next(ctx, owner)
            if task_id is None:
                return
            claimed[n].append((task_id, owner))

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(60)
    everything = [pair for mine in claimed for pair in mine]
    assert sorted(task_id for task_id, _ in everything) == sorted(task_ids)
    for task_id, owner in everything:
        assert load_task(ctx, task_id).lease_owner == owner
        assert load_task(ctx, task_id).attempt == 1


def race_for_one(ctx: Context, claimers: int) -> list[str | None]:
    """``claimers`` threads released together, each trying one claim."""
    barrier = threading.Barrier(claimers)
    results: list[str | None] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        barrier.wait()
        got = leases.claim_next(ctx, new_owner(n))
        with lock:
            results.append(got)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_one_task_many_claimers_exactly_one_wins(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    for _round in range(5):
        task_id = add_task(ctx)
        results = race_for_one(ctx, 6)
        assert len(results) == 6
        assert [r for r in results if r is not None] == [task_id]


def test_expired_lease_is_reclaimed_and_the_old_owner_is_fenced(
    tmp_path: Path, clock: Clock, metrics: Metrics
) -> None:
    ctx = make_ctx(tmp_path, clock)
    task_id = add_task(ctx)
    old = leases.claim_next(ctx, "old-owner", metrics)
    assert old == task_id
    # Not expired yet: nobody else may take it, the owner may extend it.
    assert leases.claim_next(ctx, "new-owner", metrics) is None
    clock.advance(20)
    assert leases.heartbeat(ctx, task_id, "old-owner")
    assert load_task(ctx, task_id).lease_expires_at == clock() + timedelta(seconds=30)

    clock.advance(31)
    assert leases.claim_next(ctx, "new-owner", metrics) == task_id
    assert sample(metrics, "anigraph_lease_reclaims_total") == 1
    task = load_task(ctx, task_id)
    assert (task.lease_owner, task.attempt, task.begin_at) == ("new-owner", 2, T0)

    done = entry(20000)
    done["AnimatedGraphicTask"].update(Status="FAIL", ErrCodeExt="InvalidInput", ErrCode=40000)
    assert not leases.heartbeat(ctx, task_id, "old-owner")
    assert not leases.record_subtask(ctx, task_id, "old-owner", 0, done)
    assert not leases.finish(ctx, task_id, "old-owner")
    assert not leases.retry_later(ctx, task_id, "old-owner", 5)
    assert sub(ctx, task_id)["Status"] == "PROCESSING"

    assert leases.record_subtask(ctx, task_id, "new-owner", 0, done)
    assert leases.finish(ctx, task_id, "new-owner")
    task = load_task(ctx, task_id)
    assert (task.status, task.progress, task.lease_owner, task.lease_expires_at) == (
        "FINISH",
        100,
        None,
        None,
    )
    assert task.finish_at == clock()
    # A finished task is nobody's to write any more.
    assert not leases.record_subtask(ctx, task_id, "new-owner", 0, done)
    assert leases.claim_next(ctx, "anyone") is None


def test_finish_hooks_run_in_the_finish_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(tmp_path)
    add_task(ctx)
    task_id, owner = claim(ctx)
    done = entry(20000)
    done["AnimatedGraphicTask"]["Status"] = "SUCCESS"
    assert leases.record_subtask(ctx, task_id, owner, 0, done)
    seen: list[tuple[str, bool]] = []

    def failing_hook(session: Any, task: Task) -> None:
        seen.append((task.status, session.in_transaction()))
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(leases, "on_finish", [failing_hook])
    with pytest.raises(RuntimeError):
        leases.finish(ctx, task_id, owner)
    assert seen == [("FINISH", True)]
    task = load_task(ctx, task_id)  # rolled back: still owned, finishable later
    assert (task.status, task.lease_owner) == ("PROCESSING", owner)

    monkeypatch.setattr(leases, "on_finish", [lambda session, task: seen.append(("ok", True))])
    assert leases.finish(ctx, task_id, owner)
    assert seen[-1] == ("ok", True)
    assert load_task(ctx, task_id).status == "FINISH"


def test_finish_refuses_unended_subtasks(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    add_task(ctx)
    task_id, owner = claim(ctx)
    with pytest.raises(ValueError):
        leases.finish(ctx, task_id, owner)
    assert load_task(ctx, task_id).status == "PROCESSING"


def test_reap_expired_returns_tasks_to_waiting(
    tmp_path: Path, clock: Clock, metrics: Metrics
) -> None:
    ctx = make_ctx(tmp_path, clock)
    expired = add_task(ctx)
    live = add_task(ctx, created_at=T0 + timedelta(seconds=1))
    assert leases.claim_next(ctx, "a") == expired
    clock.advance(20)
    assert leases.claim_next(ctx, "b") == live
    clock.advance(15)  # a's lease ran out, b's did not
    assert leases.reap_expired(ctx, metrics) == [expired]
    task = load_task(ctx, expired)
    assert (task.status, task.lease_owner) == ("WAITING", None)
    assert load_task(ctx, live).lease_owner == "b"
    assert sample(metrics, "anigraph_lease_reclaims_total") == 1


def test_a_subtask_whose_worker_keeps_dying_ends_fail(
    tmp_path: Path, clock: Clock, metrics: Metrics, small_clip: Path
) -> None:
    """Poison pill: every lost lease is charged to the subtask that was running."""
    ctx = make_ctx(tmp_path, clock, max_attempts=3)
    task_id = add_task(ctx, add_media(ctx, small_clip))
    for attempt in range(1, 4):
        owner = f"doomed-{attempt}"
        assert leases.claim_next(ctx, owner, metrics) == task_id
        begun = load_task(ctx, task_id).subtasks[0]
        begun["AnimatedGraphicTask"]["BeginProcessTime"] = "2026-11-25T09:00:00Z"
        assert leases.record_subtask(ctx, task_id, owner, 0, begun)
        clock.advance(31)  # the worker died: no heartbeat
    owner = "survivor"
    assert leases.claim_next(ctx, owner, metrics) == task_id
    assert load_task(ctx, task_id).subtasks[0]["_attempts"] == 3
    # The job would crash again; it must not even be started.
    assert run_claimed(ctx, task_id, owner, metrics, job=crash_exit) is Outcome.FINISHED
    result = sub(ctx, task_id)
    assert (result["Status"], result["ErrCodeExt"], result["ErrCode"]) == (
        "FAIL",
        "InternalError",
        70000,
    )
    assert "gave up after 3 attempts" in result["Message"]
    assert load_task(ctx, task_id).status == "FINISH"


# -- the media child ------------------------------------------------------------------------------


def test_child_deadline_kills_a_hung_job(tmp_path: Path, small_clip: Path) -> None:
    output = tmp_path / "out.gif"
    seen: list[float] = []
    # The child is started first: the 0.5 s deadline is the job's, not the forkserver's boot
    # (which alone can take longer than that on a loaded machine, and then no progress is seen).
    child.prestart_warm_child()
    began = time.monotonic()
    with pytest.raises(TaskError) as caught:
        child.run_job(
            small_clip,
            output,
            AnimateParams(),
            Limits(),
            time.monotonic() + 0.5,
            seen.append,
            job=hang,
            grace=0.3,
        )
    assert time.monotonic() - began < 10
    assert caught.value.code is ErrCodeExt.INTERNAL_ERROR
    assert "deadline" in caught.value.message
    assert seen == [0.5]  # progress crossed the process boundary
    assert list(tmp_path.iterdir()) == []  # the hung job's partial file is gone too


@pytest.mark.parametrize(
    ("job", "reason"),
    [
        (crash_exit, "exited with status 3"),
        (crash_sigkill, "killed by signal 9"),
        (crash_exception, "RuntimeError: boom"),
    ],
)
def test_child_crash_becomes_internal_error(
    tmp_path: Path, small_clip: Path, job: child.JobFunction, reason: str
) -> None:
    with pytest.raises(TaskError) as caught:
        child.run_job(
            small_clip,
            tmp_path / "out.gif",
            AnimateParams(),
            Limits(),
            time.monotonic() + 60,
            lambda _f: None,
            job=job,
        )
    assert caught.value.code is ErrCodeExt.INTERNAL_ERROR
    assert reason in caught.value.message


def test_child_cancel_kills_at_once(tmp_path: Path, small_clip: Path) -> None:
    cancel = child.Cancel()
    timer = threading.Timer(0.5, cancel.set, args=("release",))
    timer.start()
    began = time.monotonic()
    try:
        with pytest.raises(child.Cancelled) as caught:
            child.run_job(
                small_clip,
                tmp_path / "out.gif",
                AnimateParams(),
                Limits(),
                time.monotonic() + 600,
                lambda _f: None,
                cancel=cancel,
                job=hang,
            )
    finally:
        timer.cancel()
        cancel.close()
    assert caught.value.reason == "release"
    assert time.monotonic() - began < 10
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform != "linux", reason="forkserver is the Linux setup")
def test_children_come_from_a_preloaded_forkserver() -> None:
    context = child.mp_context()
    assert context.get_start_method() == "forkserver"
    # The engine and the encoders it imports lazily, so no child imports them per job.
    for module in ("anigraph.media.animate", "anigraph.media.gif", "anigraph.media.webp"):
        assert module in child.PRELOAD


def _pid_of(job: child.JobFunction, tmp_path: Path, clip: Path) -> int:
    """Run ``job`` through ``run_job``; the pid it reports (as Size or in its error)."""
    output = tmp_path / f"{uuid.uuid4().hex}.gif"
    try:
        return child.run_job(
            clip, output, AnimateParams(), Limits(), time.monotonic() + 60, lambda _f: None, job=job
        ).Size
    except TaskError as exc:
        assert exc.code is ErrCodeExt.CONTENT_MALFORMED
        return int(exc.message.split()[-1])


def test_a_sound_child_is_reused_and_a_failed_one_is_replaced(
    tmp_path: Path, small_clip: Path
) -> None:
    child.close_warm_child()
    first = _pid_of(report_pid, tmp_path, small_clip)
    assert first != os.getpid()
    # Success and a clean refusal both leave the child warm for this thread's next job.
    assert _pid_of(report_pid, tmp_path, small_clip) == first
    assert _pid_of(refuse_with_pid, tmp_path, small_clip) == first
    assert _pid_of(report_pid, tmp_path, small_clip) == first
    # A crash discards it: the next job gets a new process.
    with pytest.raises(TaskError):
        child.run_job(
            small_clip,
            tmp_path / "c.gif",
            AnimateParams(),
            Limits(),
            time.monotonic() + 60,
            lambda _f: None,
            job=crash_exception,
        )
    second = _pid_of(report_pid, tmp_path, small_clip)
    assert second != first
    # Another thread has a child of its own.
    other: list[int] = []
    thread = threading.Thread(
        target=lambda: (
            other.append(_pid_of(report_pid, tmp_path, small_clip)),
            child.close_warm_child(),
        )
    )
    thread.start()
    thread.join()
    assert other and other[0] not in (first, second)
    child.close_warm_child()
    assert _pid_of(report_pid, tmp_path, small_clip) not in (first, second)
    child.close_warm_child()


def test_a_child_is_recycled_after_its_job_quota(
    tmp_path: Path, small_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    child.close_warm_child()
    monkeypatch.setattr(child, "MAX_JOBS_PER_CHILD", 2)
    pids = [_pid_of(report_pid, tmp_path, small_clip) for _ in range(5)]
    child.close_warm_child()
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


def test_a_child_that_passed_the_memory_cap_retires_after_its_job(
    tmp_path: Path, small_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    child.close_warm_child()
    # The cap is read in the child: patch it where the forkserver imports it, via the env-free
    # route of a job that lowers it first (the child is ours alone).
    first = _pid_of(report_pid, tmp_path, small_clip)
    assert _pid_of(lower_retire_cap, tmp_path, small_clip) == first
    # The job after the one that found the cap exceeded runs in a new child, without error.
    assert _pid_of(report_pid, tmp_path, small_clip) != first
    child.close_warm_child()


def test_a_warm_child_exits_when_its_parent_is_killed(tmp_path: Path, small_clip: Path) -> None:
    script = (
        "import sys, time\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from pathlib import Path\n"
        "from anigraph.media import child\n"
        "from anigraph.media.types import AnimateParams, Limits\n"
        "from jobs_fixtures import report_pid\n"
        "if __name__ == '__main__':\n"
        "    made = child.run_job(Path(sys.argv[2]), Path(sys.argv[3]), AnimateParams(),\n"
        "                         Limits(), time.monotonic() + 60, lambda f: None,\n"
        "                         job=report_pid)\n"
        "    print(made.Size, flush=True)\n"
        "    time.sleep(3600)\n"
    )
    (tmp_path / "parent.py").write_text(script)
    parent = subprocess.Popen(
        [
            sys.executable,
            str(tmp_path / "parent.py"),
            str(Path(__file__).parent),
            str(small_clip),
            str(tmp_path / "out.gif"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        os.kill(child_pid, 0)  # alive and warm, waiting for a next job
    finally:
        parent.kill()
        parent.wait(10)
    wait_for(lambda: not _alive(child_pid), timeout=10, what="the orphaned child to exit")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie waits for a reaper that is gone: it no longer runs.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\tZ" in status.read_text())


def test_probe_in_a_child(tmp_path: Path, small_clip: Path) -> None:
    meta = child.run_probe(small_clip, Limits(), time.monotonic() + 30)
    assert (meta.Width, meta.Height) == (160, 96)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not media at all" * 100)
    with pytest.raises(TaskError) as refused:
        child.run_probe(garbage, Limits(), time.monotonic() + 30)
    assert refused.value.code is not ErrCodeExt.INTERNAL_ERROR  # the probe's own verdict


@pytest.mark.parametrize(
    ("job", "reason"),
    [(hang_probe, "deadline"), (crash_probe, "killed by signal 11")],
)
def test_a_hostile_probe_costs_only_its_child(small_clip: Path, job: Any, reason: str) -> None:
    began = time.monotonic()
    with pytest.raises(TaskError) as caught:
        child.run_probe(small_clip, Limits(), time.monotonic() + 0.5, job=job, grace=0.2)
    assert caught.value.code is ErrCodeExt.INTERNAL_ERROR
    assert reason in caught.value.message
    assert time.monotonic() - began < 10
    assert child.run_probe(small_clip, Limits(), time.monotonic() + 30).Width == 160


def test_child_runs_the_engine(tmp_path: Path, small_clip: Path) -> None:
    seen: list[float] = []
    made = child.run_job(
        small_clip,
        tmp_path / "out.webp",
        AnimateParams(format=OutputFormat.WEBP, fps=5, start=0.0, end=1.0),
        Limits(threads=1),
        time.monotonic() + 60,
        seen.append,
    )
    assert (made.Container, made.Width, made.Height, made.FrameCount) == ("webp", 160, 96, 5)
    assert seen and seen[-1] == 1.0
    assert decode_animation(tmp_path / "out.webp").indices() == [0, 2, 4, 6, 8]


# -- the runner -----------------------------------------------------------------------------------


def test_real_clip_end_to_end(tmp_path: Path, metrics: Metrics, small_clip: Path) -> None:
    ctx = make_ctx(tmp_path)
    file_id = add_media(ctx, small_clip)
    webp = add_template(ctx, format="webp", width=128, height=0, fps=5)
    task_id = add_task(ctx, file_id, [entry(20000, 0.5, 1.5), entry(webp)])
    task_id, owner = claim(ctx, metrics)

    assert run_claimed(ctx, task_id, owner, metrics) is Outcome.FINISHED

    task = load_task(ctx, task_id)
    assert (task.status, task.progress, task.lease_owner) == ("FINISH", 100, None)
    assert task.finish_at is not None
    rows = outputs(ctx, task_id)
    assert [row.subtask for row in rows] == [0, 1]
    expected = [("gif", 160, 96, 0.5, 1.5, 20000), ("webp", 128, 77, 0.0, 2.0, webp)]
    for index, (row, want) in enumerate(zip(rows, expected, strict=True)):
        result = sub(ctx, task_id, index)
        assert result["Status"] == "SUCCESS"
        assert (result["ErrCodeExt"], result["ErrCode"], result["Message"]) == ("", 0, "SUCCESS")
        assert result["Progress"] == 100
        assert result["BeginProcessTime"].endswith("Z") and result["FinishTime"].endswith("Z")
        output = result["Output"]
        assert set(output) == OUTPUT_KEYS
        container, width, height, start, end, definition = want
        assert (output["Container"], output["Width"], output["Height"]) == (
            container,
            width,
            height,
        )
        assert (output["StartTimeOffset"], output["EndTimeOffset"]) == (start, end)
        assert output["Definition"] == definition
        assert output["Url"] == ctx.file_url(row.store_key)
        assert row.file_id == file_id
        assert row.item == {k: v for k, v in output.items() if k != "Url"}
        stored = ctx.store.stat(row.store_key)
        assert stored is not None
        assert (stored.size, stored.md5) == (output["Size"], output["Md5"])
        path = ctx.store.local_path(row.store_key)
        assert path is not None
        # The store keeps the engine's MD5 without hashing again: it must be the bytes' own.
        assert hashlib.md5(path.read_bytes()).hexdigest() == output["Md5"]
        animation = decode_animation(path)
        assert (animation.width, animation.height) == (width, height)
    # Preset 20000 is 2 fps: the 0.5–1.5 s segment shows source frames 5 and 10.
    gif_path = ctx.store.local_path(rows[0].store_key)
    assert gif_path is not None
    assert decode_animation(gif_path).indices() == [5, 10]
    assert sample(metrics, "anigraph_subtasks_total", status="SUCCESS", err_code_ext="") == 2
    assert sample(metrics, "anigraph_subtask_seconds_count") == 2
    assert staging_leftovers(ctx) == []


def test_unknown_definition_fails_without_retry(
    tmp_path: Path, metrics: Metrics, small_clip: Path
) -> None:
    ctx = make_ctx(tmp_path)
    foreign = add_template(ctx, sub_app_id=OTHER_SUB_APP)
    task_id = add_task(ctx, add_media(ctx, small_clip), [entry(999_999), entry(foreign)])
    task_id, owner = claim(ctx)
    # crash_exit would turn any started job into a retry: the job must never start.
    assert run_claimed(ctx, task_id, owner, metrics, job=crash_exit) is Outcome.FINISHED
    for index in (0, 1):
        result = sub(ctx, task_id, index)
        assert (result["Status"], result["ErrCodeExt"], result["ErrCode"]) == (
            "FAIL",
            "InvalidInput.DefinitionNotExist",
            40000,
        )
        assert result["Output"] is None and result["FinishTime"]
        assert load_task(ctx, task_id).subtasks[index]["_attempts"] == 0
    assert load_task(ctx, task_id).status == "FINISH"
    assert sample(metrics, "anigraph_task_retries_total") == 0
    assert (
        sample(
            metrics,
            "anigraph_subtasks_total",
            status="FAIL",
            err_code_ext="InvalidInput.DefinitionNotExist",
        )
        == 2
    )
    assert outputs(ctx, task_id) == []


def test_engine_input_errors_fail_without_retry(
    tmp_path: Path, metrics: Metrics, small_clip: Path
) -> None:
    ctx = make_ctx(tmp_path)
    task_id = add_task(ctx, add_media(ctx, small_clip), [entry(20000, 1.5, 0.5)])
    task_id, owner = claim(ctx)
    assert run_claimed(ctx, task_id, owner, metrics) is Outcome.FINISHED
    result = sub(ctx, task_id)
    assert (result["Status"], result["ErrCodeExt"], result["ErrCode"]) == (
        "FAIL",
        "InvalidInput.InvalidTimeOffset",
        40000,
    )
    assert sample(metrics, "anigraph_task_retries_total") == 0
    # The key chosen for the output before the engine ran is not kept on an ended subtask.
    assert "_pending_key" not in load_task(ctx, task_id).subtasks[0]


def test_broken_custom_template_fails_as_configuration_unsupported(
    tmp_path: Path, metrics: Metrics, small_clip: Path
) -> None:
    ctx = make_ctx(tmp_path)
    broken = add_template(ctx, format="png")
    task_id = add_task(ctx, add_media(ctx, small_clip), [entry(broken)])
    task_id, owner = claim(ctx)
    assert run_claimed(ctx, task_id, owner, metrics, job=crash_exit) is Outcome.FINISHED
    assert sub(ctx, task_id)["ErrCodeExt"] == "InvalidInput.ConfigurationUnsupported"


def test_media_deleted_while_processing_keeps_no_output(
    tmp_path: Path, metrics: Metrics, small_clip: Path
) -> None:
    ctx = make_ctx(tmp_path)
    file_id = add_media(ctx, small_clip)
    task_id = add_task(ctx, file_id, [entry(20000, 0.0, 1.0)])
    task_id, owner = claim(ctx)
    outcome: list[Outcome] = []
    runner = threading.Thread(
        target=lambda: outcome.append(run_claimed(ctx, task_id, owner, metrics, job=slow_animate))
    )
    runner.start()
    wait_for(lambda: sub(ctx, task_id)["Progress"] == 10, 30, "the job to start")
    with ctx.db.session() as session:
        session.execute(delete(Media).where(Media.file_id == file_id))
    runner.join(60)
    assert outcome == [Outcome.FINISHED]
    result = sub(ctx, task_id)
    assert (result["Status"], result["ErrCodeExt"]) == ("FAIL", "SourceFileError.ContentMalformed")
    assert "deleted during processing" in result["Message"]
    assert outputs(ctx, task_id) == []
    assert isinstance(ctx.store, LocalStore)
    produced = [p for p in ctx.store.root.rglob("*") if "output" in p.parts and p.is_file()]
    assert produced == []  # the finished animation was removed again


@pytest.mark.parametrize("what", ["blob", "row"])
def test_missing_source_fails_with_source_file_error(
    tmp_path: Path, metrics: Metrics, small_clip: Path, what: str
) -> None:
    ctx = make_ctx(tmp_path)
    file_id = add_media(ctx, small_clip)
    task_id = add_task(ctx, file_id)
    with ctx.db.session() as session:
        media = session.get(Media, file_id)
        assert media is not None and media.store_key
        if what == "blob":
            ctx.store.delete(media.store_key)
        else:
            session.execute(delete(Media).where(Media.file_id == file_id))
    task_id, owner = claim(ctx)
    assert run_claimed(ctx, task_id, owner, metrics) is Outcome.FINISHED
    result = sub(ctx, task_id)
    assert (result["Status"], result["ErrCodeExt"], result["ErrCode"]) == (
        "FAIL",
        "SourceFileError.ContentMalformed",
        60000,
    )
    assert load_task(ctx, task_id).subtasks[0]["_attempts"] == 0


@pytest.mark.parametrize(("job", "reason"), [(crash_exit, "status 3"), (crash_sigkill, "signal 9")])
def test_crashing_child_is_retried_with_backoff_then_fails(
    tmp_path: Path,
    clock: Clock,
    metrics: Metrics,
    small_clip: Path,
    job: child.JobFunction,
    reason: str,
) -> None:
    ctx = make_ctx(tmp_path, clock, max_attempts=3, retry_backoff_seconds=10.0)
    task_id = add_task(ctx, add_media(ctx, small_clip))
    for attempt, backoff in ((1, 10.0), (2, 20.0)):
        owner = f"worker-{attempt}"
        assert leases.claim_next(ctx, owner) == task_id
        assert run_claimed(ctx, task_id, owner, metrics, job=job) is Outcome.RETRY
        task = load_task(ctx, task_id)
        assert (task.status, task.lease_owner) == ("WAITING", None)
        assert task.not_before == clock() + timedelta(seconds=backoff)
        assert task.subtasks[0]["_attempts"] == attempt
        assert sub(ctx, task_id)["Status"] == "PROCESSING"
        assert leases.claim_next(ctx, "too-early") is None
        clock.advance(backoff)
    assert leases.claim_next(ctx, "last") == task_id
    assert run_claimed(ctx, task_id, "last", metrics, job=job) is Outcome.FINISHED
    result = sub(ctx, task_id)
    assert (result["Status"], result["ErrCodeExt"], result["ErrCode"]) == (
        "FAIL",
        "InternalError",
        70000,
    )
    assert reason in result["Message"] and "attempt 3 of 3" in result["Message"]
    assert load_task(ctx, task_id).status == "FINISH"
    assert sample(metrics, "anigraph_task_retries_total") == 2
    assert sample(metrics, "anigraph_subtasks_total", status="FAIL", err_code_ext="InternalError")
    assert outputs(ctx, task_id) == []
    assert staging_leftovers(ctx) == []


def test_deadline_kill_in_the_runner(
    tmp_path: Path, metrics: Metrics, small_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(child, "KILL_GRACE_SECONDS", 0.2)
    ctx = make_ctx(tmp_path, task_deadline_seconds=0.5, max_attempts=1)
    task_id = add_task(ctx, add_media(ctx, small_clip))
    task_id, owner = claim(ctx)
    began = time.monotonic()
    assert run_claimed(ctx, task_id, owner, metrics, job=hang) is Outcome.FINISHED
    assert time.monotonic() - began < 10
    result = sub(ctx, task_id)
    assert (result["Status"], result["ErrCodeExt"]) == ("FAIL", "InternalError")
    assert "deadline" in result["Message"]
    assert staging_leftovers(ctx) == []


def test_lost_lease_kills_the_job_and_writes_nothing(
    tmp_path: Path, metrics: Metrics, small_clip: Path
) -> None:
    ctx = make_ctx(tmp_path, lease_seconds=0.6)  # heartbeat every 0.2 s
    task_id = add_task(ctx, add_media(ctx, small_clip))
    task_id, owner = claim(ctx)
    outcome: list[Outcome] = []
    runner = threading.Thread(
        target=lambda: outcome.append(run_claimed(ctx, task_id, owner, metrics, job=hang))
    )
    runner.start()
    # Progress reported inside the child reaches the row (subtask and task).
    wait_for(lambda: sub(ctx, task_id)["Progress"] == 50, 30, "progress 50")
    assert load_task(ctx, task_id).progress == 50
    with ctx.db.session() as session:
        session.execute(
            update(Task).where(Task.task_id == task_id).values(lease_owner="another-worker")
        )
    runner.join(30)
    assert outcome == [Outcome.LOST]
    task = load_task(ctx, task_id)
    assert (task.status, task.lease_owner) == ("PROCESSING", "another-worker")
    result = sub(ctx, task_id)
    assert (result["Status"], result["ErrCodeExt"], result["Progress"]) == ("PROCESSING", "", 50)
    assert task.subtasks[0]["_attempts"] == 0
    assert outputs(ctx, task_id) == []
    assert staging_leftovers(ctx) == []


def output_objects(ctx: Context) -> set[str]:
    return {listed.key for listed in ctx.store.list_objects() if "/output/" in listed.key}


class _Died(BaseException):
    """Stands for the process vanishing (kill -9): no handler of the runner may run after it."""


def run_and_die(
    ctx: Context,
    task_id: str,
    owner: str,
    metrics: Metrics,
    monkeypatch: pytest.MonkeyPatch,
    target: Any,
    name: str,
    dying: Any,
) -> None:
    """Run the claimed task with ``target.name`` replaced by ``dying`` (which raises ``_Died``)
    and the store's deletes disabled: the process vanishes there, cleaning up nothing."""
    with monkeypatch.context() as patched:
        patched.setattr(target, name, dying)
        patched.setattr(ctx.store, "delete", lambda key: False)
        with pytest.raises(_Died):
            run_claimed(ctx, task_id, owner, metrics)


def take_over_and_finish(
    ctx: Context, clock: Clock, task_id: str, first: str, metrics: Metrics
) -> None:
    """Let ``first``'s lease expire, claim the task as a new owner and run it to the end."""
    clock.advance(ctx.settings.lease_seconds + 1)
    assert claim(ctx)[0] == task_id
    second = load_task(ctx, task_id).lease_owner
    assert second is not None and second != first
    assert run_claimed(ctx, task_id, second, metrics) is Outcome.FINISHED


def test_an_output_stored_but_never_recorded_is_deleted_by_the_next_owner(
    tmp_path: Path, metrics: Metrics, small_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    ctx = make_ctx(tmp_path, clock)
    task_id = add_task(ctx, add_media(ctx, small_clip))
    task_id, first = claim(ctx)
    real_record = leases.record_subtask

    def die_when_recording(*args: Any, **kwargs: Any) -> bool:
        if kwargs.get("output_row", args[5] if len(args) > 5 else None) is not None:
            raise _Died
        return real_record(*args, **kwargs)

    run_and_die(
        ctx, task_id, first, metrics, monkeypatch, leases, "record_subtask", die_when_recording
    )
    stranded = output_objects(ctx)
    assert len(stranded) == 1 and outputs(ctx, task_id) == []
    # The key was recorded before the object was stored: that is how the next owner finds it.
    assert {load_task(ctx, task_id).subtasks[0]["_pending_key"]} == stranded

    take_over_and_finish(ctx, clock, task_id, first, metrics)

    rows = outputs(ctx, task_id)
    assert len(rows) == 1 and output_objects(ctx) == {rows[0].store_key}
    assert not stranded & output_objects(ctx)
    task = load_task(ctx, task_id)
    assert (task.status, task.attempt) == ("FINISH", 2)
    assert "_pending_key" not in task.subtasks[0]
    assert task.subtasks[0]["_output_key"] == rows[0].store_key
    assert sub(ctx, task_id)["Status"] == "SUCCESS"


@pytest.fixture
def web(small_clip: Path) -> Iterator[str]:
    """A loopback HTTP server over the small clip's folder; its base URL."""
    handler = functools.partial(QuietFiles, directory=str(small_clip.parent))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def media_objects(ctx: Context) -> set[str]:
    return {listed.key for listed in ctx.store.list_objects() if "/media/" in listed.key}


def test_a_pulled_file_stored_but_never_recorded_is_deleted_by_the_next_owner(
    tmp_path: Path, metrics: Metrics, small_clip: Path, web: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    ctx = make_ctx(tmp_path, clock, allow_private_networks="127.0.0.1/32")
    task_id = create_pull_task(ctx, SUB_APP, PullRequest(media_url=f"{web}/{small_clip.name}"))
    claimed, first = claim(ctx)
    assert claimed == task_id

    def die(*args: Any, **kwargs: Any) -> None:
        raise _Died  # between storing the object and the transaction that records it

    run_and_die(ctx, task_id, first, metrics, monkeypatch, pull, "_finish", die)
    stranded = media_objects(ctx)
    assert len(stranded) == 1
    assert {(load_task(ctx, task_id).payload or {})["_pending_key"]} == stranded

    take_over_and_finish(ctx, clock, task_id, first, metrics)

    task = load_task(ctx, task_id)
    payload = task.payload or {}
    assert task.status == "FINISH" and "_pending_key" not in payload
    with ctx.db.session() as session:
        media_row = session.get(Media, payload["Result"]["FileId"])
        assert media_row is not None
        assert media_objects(ctx) == {media_row.store_key}
    assert not stranded & media_objects(ctx)


def test_run_claimed_refuses_a_task_it_does_not_own(tmp_path: Path, metrics: Metrics) -> None:
    ctx = make_ctx(tmp_path)
    task_id = add_task(ctx)
    assert run_claimed(ctx, task_id, "nobody", metrics) is Outcome.LOST
    assert load_task(ctx, task_id).status == "WAITING"


def test_sweep_staging_removes_only_old_files(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    old = staging_dir(ctx) / "old.gif"
    fresh = staging_dir(ctx) / "fresh.gif"
    for path in (old, fresh):
        path.write_bytes(b"x")
    stale = time.time() - 3600
    os.utime(old, (stale, stale))
    assert sweep_staging(ctx, older_than=600) == 1
    assert staging_leftovers(ctx) == ["fresh.gif"]


# -- the pool -------------------------------------------------------------------------------------


def test_pool_processes_tasks_when_woken(
    tmp_path: Path, metrics: Metrics, small_clip: Path
) -> None:
    ctx = make_ctx(tmp_path, workers=2)
    file_id = add_media(ctx, small_clip)
    # A long idle wait: only wake() can make these tasks start promptly.
    pool = WorkerPool(ctx, metrics, 2, idle_wait=60.0)
    pool.start()
    try:
        time.sleep(0.2)  # let both slots go idle first
        task_ids = [add_task(ctx, file_id, [entry(20000, 0.0, 1.0)]) for _ in range(4)]
        pool.wake()
        wait_for(lambda: all(load_task(ctx, t).status == "FINISH" for t in task_ids), 45, "4 tasks")
    finally:
        assert pool.stop(drain=True, timeout=30)
    for task_id in task_ids:
        assert sub(ctx, task_id)["Status"] == "SUCCESS"
        assert len(outputs(ctx, task_id)) == 1
    assert leases.counts(ctx)["FINISH"] == 4


def test_pool_drain_finishes_the_running_task_and_claims_no_more(
    tmp_path: Path, metrics: Metrics, small_clip: Path
) -> None:
    ctx = make_ctx(tmp_path, workers=1)
    file_id = add_media(ctx, small_clip)
    running = add_task(ctx, file_id, [entry(20000, 0.0, 1.0)], priority=1)
    queued = add_task(ctx, file_id, [entry(20000, 0.0, 1.0)])
    pool = WorkerPool(ctx, metrics, 1, job=slow_animate)
    pool.start()
    wait_for(lambda: pool.running() == {0: running}, 30, "the first task to start")
    assert pool.stop(drain=True, timeout=60)
    assert load_task(ctx, running).status == "FINISH"
    assert sub(ctx, running)["Status"] == "SUCCESS"
    waiting = load_task(ctx, queued)
    assert (waiting.status, waiting.attempt) == ("WAITING", 0)


def test_pool_slots_start_their_media_processes_early_and_stop_them(
    tmp_path: Path, metrics: Metrics
) -> None:
    ctx = make_ctx(tmp_path, workers=2)
    before = {p.pid for p in multiprocessing.active_children()}
    pool = WorkerPool(ctx, metrics, 2, idle_wait=60.0)
    pool.start()
    try:
        # No task exists: the children are there for the first job, not made by it.
        wait_for(
            lambda: len({p.pid for p in multiprocessing.active_children()} - before) == 2,
            30,
            "one warm child per slot",
        )
    finally:
        assert pool.stop(drain=True, timeout=30)
    assert {p.pid for p in multiprocessing.active_children()} - before == set()


@pytest.mark.parametrize("drain", [False, True])
def test_pool_stop_releases_running_tasks(
    tmp_path: Path, metrics: Metrics, small_clip: Path, drain: bool
) -> None:
    """Without drain at once; with drain once the timeout has passed."""
    ctx = make_ctx(tmp_path, workers=1)
    task_id = add_task(ctx, add_media(ctx, small_clip))
    pool = WorkerPool(ctx, metrics, 1, job=hang)
    pool.start()
    wait_for(lambda: sub(ctx, task_id)["Progress"] == 50, 30, "the job to run")
    began = time.monotonic()
    assert pool.stop(drain=drain, timeout=0.5)
    assert time.monotonic() - began < 15
    task = load_task(ctx, task_id)
    assert (task.status, task.lease_owner, task.lease_expires_at) == ("WAITING", None, None)
    assert task.subtasks[0]["_attempts"] == 0  # interrupted on purpose: no attempt charged
    assert leases.claim_next(ctx, "next-worker") == task_id
    assert staging_leftovers(ctx) == []


def test_new_owner_is_unique_and_fits_the_column() -> None:
    owners = {new_owner(3) for _ in range(100)}
    assert len(owners) == 100
    assert all(len(owner) <= 96 and ":3:" in owner for owner in owners)


def test_counts_every_status(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    add_task(ctx)
    add_task(ctx)
    claim(ctx)
    assert leases.counts(ctx) == {"WAITING": 1, "PROCESSING": 1, "FINISH": 0, "ABORTED": 0}
