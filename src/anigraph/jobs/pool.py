"""The in-process worker pool: a few threads that claim tasks from the database and run them.

Each slot loops claim → run. An idle slot sleeps on its own ``threading.Event`` with a short
timeout: ``wake()`` (called when a task is created) ends the sleep at once, and the timeout is
what picks up work nobody announced: retries whose backoff ran out and tasks whose lease expired
(the claim takes those over, so the embedded setup needs no separate reaper).

The heavy lifting happens in child processes (``media.child``), so the threads only wait; the
GIL is not a bottleneck and a crashing media job cannot take the API down with it. Each slot
starts its child with the slot, keeps it warm between jobs and stops it when the slot ends.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Final

from anigraph.context import Context
from anigraph.jobs import leases
from anigraph.jobs.runner import RELEASE, run_claimed, sweep_staging
from anigraph.jobs.sweep import Sweeper
from anigraph.logs import bound
from anigraph.media.child import (
    Cancel,
    JobFunction,
    animate_job,
    close_warm_child,
    prestart_warm_child,
)
from anigraph.metrics import Metrics

log = logging.getLogger(__name__)

IDLE_WAIT_SECONDS: Final = 1.0
RELEASE_WAIT_SECONDS: Final = 10.0
"""After releasing, how long ``stop`` waits for slots: killing a child and one write are quick."""
OWNER_MAX: Final = 96  # Task.lease_owner is VARCHAR(96)


def new_owner(slot: int) -> str:
    """A lease owner id, unique per claim: ``host:pid:slot:random``.

    Host and pid tell an operator where a task runs; the random part makes the id a fencing
    token, so a slot never mistakes a task it lost for one it holds.
    """
    tail = f":{os.getpid()}:{slot}:{uuid.uuid4().hex[:8]}"
    return socket.gethostname()[: OWNER_MAX - len(tail)] + tail


class WorkerPool:
    """``slots`` worker threads in this process. ``start`` once, ``stop`` once."""

    def __init__(
        self,
        ctx: Context,
        metrics: Metrics,
        slots: int,
        *,
        job: JobFunction = animate_job,
        idle_wait: float = IDLE_WAIT_SECONDS,
    ) -> None:
        if slots < 1:
            raise ValueError("a worker pool needs at least one slot")
        self._ctx = ctx
        self._metrics = metrics
        self._slots = slots
        self._job = job
        self._idle_wait = idle_wait
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._release = False
        self._wakes = [threading.Event() for _ in range(slots)]
        self._running: dict[int, tuple[str, Cancel]] = {}
        self._threads: list[threading.Thread] = []
        self._sweeper = Sweeper(ctx)

    @property
    def slots(self) -> int:
        return self._slots

    def running(self) -> dict[int, str]:
        """Task id by slot, for the tasks being run right now."""
        with self._lock:
            return {slot: task_id for slot, (task_id, _) in self._running.items()}

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("the worker pool was already started")
        # Scratch files of a previous process that died mid-job (older than any live job).
        sweep_staging(self._ctx, older_than=self._ctx.settings.task_deadline_seconds + 60.0)
        self._sweeper.start()  # and, while the pool runs, what other writes leave (jobs.sweep)
        for slot in range(self._slots):
            thread = threading.Thread(
                target=self._loop, args=(slot,), name=f"anigraph-worker-{slot}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def wake(self) -> None:
        """Make idle slots look for work now (a task was just created)."""
        for event in self._wakes:
            event.set()

    def stop(self, drain: bool = True, timeout: float = 30.0) -> bool:
        """Stop claiming; ``True`` when every slot has ended.

        ``drain``: running tasks may finish within ``timeout``; those still running then are
        released. Otherwise running tasks are released at once: their children are killed and
        the tasks go back to WAITING for another worker (no attempt is charged). Either way no
        task is left PROCESSING under this pool's name.
        """
        with self._lock:
            self._stopping.set()
            if not drain:
                self._release_all()
        self.wake()
        deadline = time.monotonic() + (timeout if drain else RELEASE_WAIT_SECONDS)
        self._join(deadline)
        if drain and self._alive():
            log.warning("drain timed out after %.0fs; releasing running tasks", timeout)
            with self._lock:
                self._release_all()
            self._join(time.monotonic() + RELEASE_WAIT_SECONDS)
        self._sweeper.stop()
        stopped = not self._alive()
        if not stopped:
            log.error("worker slots still running after stop: %s", self.running())
        return stopped

    def _release_all(self) -> None:
        # Caller holds the lock. Slots that register later see ``_release`` themselves.
        self._release = True
        for _task_id, cancel in self._running.values():
            cancel.set(RELEASE)

    def _alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def _join(self, deadline: float) -> None:
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _loop(self, slot: int) -> None:
        try:
            prestart_warm_child()
        except Exception:  # the first job will try again and report what fails
            log.exception("worker %d: starting the media process failed", slot)
        try:
            self._claim_and_run(slot)
        finally:
            close_warm_child()

    def _claim_and_run(self, slot: int) -> None:
        wake = self._wakes[slot]
        while not self._stopping.is_set():
            # Cleared before the claim: a wake() during the claim is not lost.
            wake.clear()
            owner = new_owner(slot)
            try:
                task_id = leases.claim_next(self._ctx, owner, self._metrics)
            except Exception:
                log.exception("worker %d: claiming failed", slot)
                wake.wait(self._idle_wait)
                continue
            if task_id is None:
                wake.wait(self._idle_wait)
                continue
            self._run(slot, task_id, owner)

    def _run(self, slot: int, task_id: str, owner: str) -> None:
        cancel = Cancel()
        with self._lock:
            self._running[slot] = (task_id, cancel)
            if self._release or self._stopping.is_set():
                # Claimed while stop() began: hand it straight back.
                cancel.set(RELEASE)
        try:
            with bound(task_id=task_id):
                outcome = run_claimed(
                    self._ctx, task_id, owner, self._metrics, cancel=cancel, job=self._job
                )
            log.info("worker %d: task %s %s", slot, task_id, outcome.value)
        except Exception:
            # The task keeps its lease; when that expires it is claimed again (natural backoff).
            log.exception("worker %d: task %s failed unexpectedly", slot, task_id)
        finally:
            with self._lock:
                del self._running[slot]
            cancel.close()
