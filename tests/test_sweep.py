"""Worker processes sweep what killed writes left, in the store and in staging, while they run.

Leftovers are planted as a worker killed with -9 leaves them (a hidden ``.tmp`` beside an
output in the store, a ``.part`` scratch file in staging) and dated back past the task deadline
plus the margin; a fresh one of each is a live write and must stay.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from anigraph.jobs.pool import WorkerPool
from anigraph.jobs.sweep import SWEEP_MARGIN_SECONDS, sweep_once
from anigraph.metrics import Metrics
from jobs_fixtures import make_ctx

pytest_plugins = ["redis_fixtures"]

DEADLINE = 1.0
STALE = DEADLINE + SWEEP_MARGIN_SECONDS + 60
"""Seconds since a planted leftover was last written."""


def plant(data_dir: Path, age: float) -> list[Path]:
    """A store temp file and a staging scratch file, last written ``age`` seconds ago."""
    suffix = f"{int(age):08x}"
    temp = data_dir / "files" / "1" / "output" / "20260101" / f".{suffix}.gif.{suffix * 2}.tmp"
    scratch = data_dir / "staging" / f".{suffix}.gif.{suffix}.part"
    for path in (temp, scratch):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half an animation")
        os.utime(path, (time.time() - age, time.time() - age))
    return [temp, scratch]


def wait_until(done: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_sweep_once_removes_only_what_is_old_enough(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, task_deadline_seconds=DEADLINE)
    stale = plant(ctx.settings.data_dir, STALE)
    live = plant(ctx.settings.data_dir, DEADLINE + 1)
    assert sweep_once(ctx) == 2
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in live)


def test_the_in_process_pool_sweeps_while_it_runs(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, task_deadline_seconds=DEADLINE, sweep_seconds=0.2)
    pool = WorkerPool(ctx, Metrics(), 1, idle_wait=0.05)
    pool.start()
    try:
        stale = plant(ctx.settings.data_dir, STALE)  # after start: not the start-up sweep
        live = plant(ctx.settings.data_dir, 5)
        wait_until(lambda: not any(path.exists() for path in stale), "the sweep")
        assert all(path.exists() for path in live)
    finally:
        assert pool.stop(drain=False)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Start ``anigraph <kind>`` on a data folder of its own; returns the folder once ready."""
    started: list[subprocess.Popen[bytes]] = []

    def start(kind: str, ready: str, *extra: str) -> Path:
        data = tmp_path / "data"
        log = tmp_path / f"{kind}.log"
        args = [sys.executable, "-m", "anigraph", kind, "--data-dir", str(data)]
        args += ["--workers", "1", "--task-deadline-seconds", str(DEADLINE)]
        args += ["--sweep-seconds", "0.3", *extra]
        with log.open("ab") as out:
            started.append(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT))

        def is_ready() -> bool:
            assert started[-1].poll() is None, log.read_text(errors="replace")[-3000:]
            return ready in log.read_text(errors="replace")

        wait_until(is_ready, f"{kind} to start", timeout=60)
        return data

    yield start
    for process in started:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


@pytest.mark.parametrize("kind", ["worker", "celery-worker"])
def test_worker_processes_sweep_while_they_run(
    worker: Callable[..., Path], request: pytest.FixtureRequest, kind: str
) -> None:
    if kind == "worker":
        data = worker(kind, "anigraph worker running")
    else:
        data = worker(kind, " ready.", "--queue", request.getfixturevalue("redis_url"))
    stale = plant(data, STALE)
    live = plant(data, 5)
    wait_until(lambda: not any(path.exists() for path in stale), f"{kind} to sweep")
    assert all(path.exists() for path in live)
