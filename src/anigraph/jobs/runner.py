"""Run a claimed task: each unfinished subtask through the media child, results fenced by the lease.

While the task runs, a heartbeat thread extends the lease every ``lease_seconds / 3``. If a
heartbeat (or any write) finds that another worker took the task over, the job is cancelled:
the child is killed and nothing more is written, because the new owner redoes the work. How each
subtask's end is recorded (success, failure, retry with backoff) is :mod:`anigraph.jobs.recording`.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import uuid

from anigraph.context import Context
from anigraph.db.models import Task
from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.domain.wire import iso
from anigraph.jobs import leases
from anigraph.jobs.inputs import engine_limits, params_of, source_of
from anigraph.jobs.pull import fail_all_subtasks, ingest_url, run_pull
from anigraph.jobs.recording import (
    LOST,
    PENDING_KEY,
    RELEASE,
    Outcome,
    Recorder,
    gave_up,
    retry_task_later,
)
from anigraph.jobs.staging import staging_dir, sweep_staging
from anigraph.media.child import Cancel, Cancelled, JobFunction, animate_job, run_job
from anigraph.metrics import Metrics

__all__ = ["LOST", "RELEASE", "Outcome", "run_claimed", "staging_dir", "sweep_staging"]

log = logging.getLogger(__name__)


class _Heartbeat:
    """Extends the lease from the parent (the child may be stuck in C code) until stopped."""

    def __init__(self, ctx: Context, task_id: str, owner: str, cancel: Cancel) -> None:
        self._ctx = ctx
        self._task_id = task_id
        self._owner = owner
        self._cancel = cancel
        self._stopped = threading.Event()
        self._interval = max(ctx.settings.lease_seconds / 3.0, 0.05)
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{task_id[-8:]}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                owned = leases.heartbeat(self._ctx, self._task_id, self._owner)
            except Exception:  # a busy or restarting database: try again next beat
                log.exception("heartbeat of task %s failed", self._task_id)
                continue
            if not owned:
                log.warning("task %s: lease lost, cancelling the running job", self._task_id)
                self._cancel.set(LOST)
                return


class _Run:
    """The claim loop of one run of one claimed task: each unfinished subtask in turn."""

    def __init__(
        self,
        ctx: Context,
        task: Task,
        owner: str,
        metrics: Metrics,
        cancel: Cancel,
        job: JobFunction,
    ) -> None:
        self.ctx = ctx
        self.task_id = task.task_id
        self.sub_app_id = task.sub_app_id
        self.file_id = task.file_id
        self.owner = owner
        self.cancel = cancel
        self.job = job
        self.record = Recorder(ctx, task, owner, metrics, cancel)

    def run(self) -> Outcome:
        for index in range(len(self.record.subtasks)):
            if self.cancel.is_set():
                return self._stopped()
            if leases.subtask_ended(self.record.subtasks[index]):
                continue
            outcome = self._run_subtask(index)
            if outcome is not None:
                return outcome
        # Nothing left to run: finish even when a release was asked for (finishing is one
        # fenced write, and handing back a task with no work would only delay its event).
        if not leases.finish(self.ctx, self.task_id, self.owner):
            return Outcome.LOST
        return Outcome.FINISHED

    def _stopped(self) -> Outcome:
        if self.cancel.reason == RELEASE and leases.release(self.ctx, self.task_id, self.owner):
            log.info("task %s released", self.task_id)
            return Outcome.RELEASED
        return Outcome.LOST

    def _run_subtask(self, index: int) -> Outcome | None:
        """Run subtask ``index``; ``None`` to go on with the next one, else how the run ended."""
        entry = copy.deepcopy(self.record.subtasks[index])
        result = leases.subtask_result(entry)
        attempts = int(entry.get("_attempts") or 0)
        started = time.monotonic()
        if attempts >= self.ctx.settings.max_attempts:
            # Charged by lease expiries: the worker died with this subtask every time.
            error = TaskError(
                ErrCodeExt.INTERNAL_ERROR,
                f"gave up after {attempts} attempts (the worker was lost each time)",
            )
            return self.record.fail(index, error, started)
        try:
            definition, params = params_of(self.ctx, self.sub_app_id, result.get("Input") or {})
            source = source_of(self.ctx, self.file_id)
        except TaskError as exc:
            return self.record.fail(index, exc, started)
        except Exception as exc:  # the database or the store hiccuped: transient
            log.exception("task %s subtask %d: preparing failed", self.task_id, index)
            error = TaskError(ErrCodeExt.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            return self.record.retry_or_fail(index, error, started)

        try:
            try:
                self.record.discard_stale_output(entry)
            except Exception as exc:  # the store hiccuped: transient, like preparing
                log.exception(
                    "task %s subtask %d: deleting a stale output failed", self.task_id, index
                )
                error = TaskError(ErrCodeExt.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
                return self.record.retry_or_fail(index, error, started)
            key = self.ctx.store.new_key(self.sub_app_id, "output", f".{params.format.value}")
            entry[PENDING_KEY] = key
            result["BeginProcessTime"] = result.get("BeginProcessTime") or iso(self.ctx.now())
            result["Progress"] = 0
            if not self.record.write(index, entry):
                return Outcome.LOST
            staged = staging_dir(self.ctx) / f"{uuid.uuid4().hex}.{params.format.value}"
            try:
                made = run_job(
                    source.path,
                    staged,
                    params,
                    engine_limits(self.ctx),
                    time.monotonic() + self.ctx.settings.task_deadline_seconds,
                    lambda fraction: self.record.progress(index, fraction),
                    cancel=self.cancel,
                    job=self.job,
                )
            except Cancelled:
                return self._stopped()
            except TaskError as exc:
                if exc.code.retryable:
                    return self.record.retry_or_fail(index, exc, started)
                return self.record.fail(index, exc, started)
        finally:
            if source.temporary:
                source.path.unlink(missing_ok=True)
        return self.record.succeed(index, key, definition, params, staged, made, started)


def run_claimed(
    ctx: Context,
    task_id: str,
    owner: str,
    metrics: Metrics,
    *,
    cancel: Cancel | None = None,
    job: JobFunction = animate_job,
) -> Outcome:
    """Run the unfinished subtasks of a task ``owner`` has claimed, then finish it.

    ``cancel`` lets the caller stop the run (reason ``RELEASE``: hand the task back); the
    heartbeat raises it with reason ``LOST`` when the lease was taken over. ``job`` replaces the
    engine (tests inject crashing or hanging jobs).
    """
    own_cancel = cancel is None
    token = Cancel() if cancel is None else cancel
    try:
        with ctx.db.session() as session:
            task = session.get(Task, task_id)
            if task is None or task.lease_owner != owner or task.status != leases.PROCESSING:
                return Outcome.LOST
        heartbeat = _Heartbeat(ctx, task_id, owner, token)
        heartbeat.start()
        try:
            if task.task_type == "PullUpload":
                return run_pull(ctx, task, owner, metrics)
            if not task.file_id and (task.payload or {}).get("Url"):
                early = _ingest(ctx, task, owner, metrics)
                if early is not None:
                    return early
            return _Run(ctx, task, owner, metrics, token, job).run()
        finally:
            heartbeat.stop()
    finally:
        if own_cancel:
            token.close()


def _ingest(ctx: Context, task: Task, owner: str, metrics: Metrics) -> Outcome | None:
    """ProcessMedia with a Url: make the media item first. None means go on and process."""
    try:
        file_id = ingest_url(ctx, task, owner)
    except TaskError as error:
        return retry_task_later(ctx, task, owner, metrics, error) or fail_all_subtasks(
            ctx, task, owner, gave_up(task, error)
        )
    if file_id is None:
        return Outcome.LOST
    task.file_id = file_id
    return None
