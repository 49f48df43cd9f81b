"""Run a claimed task: each unfinished subtask through the media child, results fenced by the lease.

While the task runs, a heartbeat thread extends the lease every ``lease_seconds / 3``. If a
heartbeat (or any write) finds that another worker took the task over, the job is cancelled:
the child is killed and nothing more is written, because the new owner redoes the work.

Failures are values: bad input (``InvalidInput.*``, ``SourceFileError.*``) ends the subtask FAIL
at once; a transient failure (``InternalError``: crash, kill, timeout, storage error) is charged
to the subtask's ``_attempts`` and the task goes back to WAITING with exponential backoff, until
``max_attempts`` makes it FAIL for good (poison-pill rule: the input is kept for inspection).
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from anigraph.db.models import Media, MediaOutput, Task, Template
from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.domain.geometry import ResolutionAdaptive
from anigraph.domain.templates import PRESETS
from anigraph.jobs import leases
from anigraph.jobs.child import Cancel, Cancelled, JobFunction, animate_job, run_job
from anigraph.media.types import (
    AnimateParams,
    Limits,
    LoopMode,
    OutputFormat,
    Result,
    SegmentMode,
)
from anigraph.metrics import Metrics
from anigraph.services.context import Context
from anigraph.services.wire import iso

log = logging.getLogger(__name__)

LOST: Final = "lost"
"""Cancel reason: another worker owns the task now; stop without writing."""
RELEASE: Final = "release"
"""Cancel reason: this worker is shutting down; hand the task back as WAITING."""

PROGRESS_WRITE_SECONDS: Final = 0.5
PENDING_KEY: Final = leases.PENDING_KEY
CONTENT_TYPES: Final = {
    OutputFormat.GIF: "image/gif",
    OutputFormat.WEBP: "image/webp",
    OutputFormat.AVIF: "image/avif",
    OutputFormat.MP4: "video/mp4",
}


class Outcome(StrEnum):
    """How a run ended, for the caller's logs and tests; the row says the rest."""

    FINISHED = "finished"  # every subtask ended; the task is FINISH
    RETRY = "retry"  # a transient failure: the task is WAITING until its not_before
    LOST = "lost"  # ownership lost: nothing was written after that
    RELEASED = "released"  # stopped on request: the task is WAITING again


def staging_dir(ctx: Context) -> Path:
    """Scratch folder for engine outputs, beside the store so that ``move=True`` is a rename."""
    path = (ctx.settings.data_dir / "staging").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def sweep_staging(ctx: Context, older_than: float) -> int:
    """Delete scratch files older than ``older_than`` seconds; how many were removed.

    A job's files live at most its deadline plus the kill grace, so anything much older was left
    by a process that died (the parent is SIGKILLed too, or the machine lost power).
    """
    limit = time.time() - older_than
    removed = 0
    for path in staging_dir(ctx).iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another process swept it first
            continue
    return removed


def engine_limits(ctx: Context) -> Limits:
    """The engine's caps from the settings; threads shared out between the worker slots."""
    settings = ctx.settings
    return Limits(
        max_source_pixels=settings.max_source_pixels,
        max_frames=settings.max_frames,
        max_segment_seconds=settings.max_segment_seconds,
        max_output_bytes=settings.max_output_bytes,
        threads=max(1, (os.cpu_count() or 1) // max(1, settings.worker_slots)),
    )


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


@dataclass(frozen=True)
class _Source:
    path: Path
    temporary: bool  # downloaded from a remote store into staging: delete after use


class _Run:
    """The state of one run of one claimed task."""

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
        self.subtasks: list[dict[str, Any]] = copy.deepcopy(list(task.subtasks))
        self.owner = owner
        self.metrics = metrics
        self.cancel = cancel
        self.job = job
        self._last_progress_write = 0.0
        self._last_progress = -1

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> Outcome:
        for index in range(len(self.subtasks)):
            if self.cancel.is_set():
                return self._stopped()
            if leases.subtask_ended(self.subtasks[index]):
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

    def _write(self, index: int, entry: dict[str, Any], row: MediaOutput | None = None) -> bool:
        if not leases.record_subtask(self.ctx, self.task_id, self.owner, index, entry, row):
            self.cancel.set(LOST)
            return False
        self.subtasks[index] = entry
        return True

    def _run_subtask(self, index: int) -> Outcome | None:
        """Run subtask ``index``; ``None`` to go on with the next one, else how the run ended."""
        entry = copy.deepcopy(self.subtasks[index])
        result = leases.subtask_result(entry)
        attempts = int(entry.get("_attempts") or 0)
        started = time.monotonic()
        if attempts >= self.ctx.settings.max_attempts:
            # Charged by lease expiries: the worker died with this subtask every time.
            error = TaskError(
                ErrCodeExt.INTERNAL_ERROR,
                f"gave up after {attempts} attempts (the worker was lost each time)",
            )
            return self._fail(index, error, started)
        try:
            definition, params = self._params(result.get("Input") or {})
            source = self._source()
        except TaskError as exc:
            return self._fail(index, exc, started)
        except Exception as exc:  # the database or the store hiccuped: transient
            log.exception("task %s subtask %d: preparing failed", self.task_id, index)
            error = TaskError(ErrCodeExt.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            return self._retry_or_fail(index, error, started)

        try:
            try:
                self._discard_stale_output(entry)
            except Exception as exc:  # the store hiccuped: transient, like preparing
                log.exception(
                    "task %s subtask %d: deleting a stale output failed", self.task_id, index
                )
                error = TaskError(ErrCodeExt.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
                return self._retry_or_fail(index, error, started)
            key = self.ctx.store.new_key(self.sub_app_id, "output", f".{params.format.value}")
            entry[PENDING_KEY] = key
            result["BeginProcessTime"] = result.get("BeginProcessTime") or iso(self.ctx.now())
            result["Progress"] = 0
            if not self._write(index, entry):
                return Outcome.LOST
            staged = staging_dir(self.ctx) / f"{uuid.uuid4().hex}.{params.format.value}"
            try:
                made = run_job(
                    source.path,
                    staged,
                    params,
                    engine_limits(self.ctx),
                    time.monotonic() + self.ctx.settings.task_deadline_seconds,
                    lambda fraction: self._progress(index, fraction),
                    cancel=self.cancel,
                    job=self.job,
                )
            except Cancelled:
                return self._stopped()
            except TaskError as exc:
                if exc.code.retryable:
                    return self._retry_or_fail(index, exc, started)
                return self._fail(index, exc, started)
        finally:
            if source.temporary:
                source.path.unlink(missing_ok=True)
        return self._succeed(index, key, definition, params, staged, made, started)

    def _discard_stale_output(self, entry: dict[str, Any]) -> None:
        """Delete what a former owner of this subtask may have stored under its pending key
        (the subtask has not ended, so nothing refers to it) and drop the key from ``entry``."""
        discard_pending(self.ctx, entry, self.task_id)

    # -- inputs ------------------------------------------------------------------------------

    def _params(self, task_input: dict[str, Any]) -> tuple[int, AnimateParams]:
        """The template (a preset, or a custom one of this sub-application) and the offsets."""
        raw: Any = task_input.get("Definition")
        try:
            definition = int(raw)
        except (TypeError, ValueError):
            raise TaskError(
                ErrCodeExt.DEFINITION_NOT_EXIST, f"template {raw!r} does not exist"
            ) from None
        try:
            start = float(task_input.get("StartTimeOffset") or 0.0)
            end = float(task_input.get("EndTimeOffset") or 0.0)
        except (TypeError, ValueError):
            raise TaskError(
                ErrCodeExt.INVALID_TIME_OFFSET, "StartTimeOffset/EndTimeOffset must be numbers"
            ) from None
        preset = PRESETS.get(definition)
        if preset is not None:
            return definition, AnimateParams(
                format=OutputFormat(preset.format),
                width=preset.width,
                height=preset.height,
                resolution_adaptive=preset.resolution_adaptive,
                fps=preset.fps,
                quality=preset.quality,
                start=start,
                end=end,
            )
        with self.ctx.db.session() as session:
            row = session.get(Template, definition)
            if row is None or row.sub_app_id != self.sub_app_id:
                raise TaskError(
                    ErrCodeExt.DEFINITION_NOT_EXIST,
                    f"animated-graphics template {definition} does not exist",
                )
            try:
                return definition, AnimateParams(
                    format=OutputFormat(row.format),
                    width=row.width,
                    height=row.height,
                    resolution_adaptive=ResolutionAdaptive(row.resolution_adaptive),
                    fps=row.fps,
                    quality=row.quality,
                    start=start,
                    end=end,
                    max_size=row.max_size,
                    quality_target=row.quality_target,
                    segment_mode=SegmentMode(row.segment_mode),
                    duration=row.duration,
                    loop_mode=LoopMode(row.loop_mode),
                )
            except ValueError:  # a row the template rules would never have let in
                raise TaskError(
                    ErrCodeExt.CONFIGURATION_UNSUPPORTED,
                    f"animated-graphics template {definition} is broken",
                ) from None

    def _source(self) -> _Source:
        """A local file of the source media; a remote store's object is downloaded to staging."""
        missing = TaskError(ErrCodeExt.CONTENT_MALFORMED, "the source media no longer exists")
        with self.ctx.db.session() as session:
            media = session.get(Media, self.file_id)
            key = media.store_key if media is not None else None
        if not key:
            raise missing
        store = self.ctx.store
        path = store.local_path(key)
        if path is not None:
            if not path.is_file():
                raise missing
            return _Source(path, temporary=False)
        if store.stat(key) is None:
            raise missing
        target = staging_dir(self.ctx) / f"{uuid.uuid4().hex}.source"
        try:
            with target.open("wb") as handle:
                for chunk in store.open(key):
                    handle.write(chunk)
        except FileNotFoundError:
            target.unlink(missing_ok=True)
            raise missing from None
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return _Source(target, temporary=True)

    # -- progress and outcomes ---------------------------------------------------------------

    def _progress(self, index: int, fraction: float) -> None:
        """Write the subtask's and the task's progress, at most every PROGRESS_WRITE_SECONDS."""
        percent = max(0, min(99, int(fraction * 100)))
        now = time.monotonic()
        if percent == self._last_progress or now - self._last_progress_write < (
            PROGRESS_WRITE_SECONDS
        ):
            return
        self._last_progress_write = now
        self._last_progress = percent
        entry = copy.deepcopy(self.subtasks[index])
        leases.subtask_result(entry)["Progress"] = percent
        try:
            self._write(index, entry)
        except Exception:  # progress is cosmetic: never fail the job over it
            log.exception("task %s: progress write failed", self.task_id)

    def _succeed(
        self,
        index: int,
        key: str,
        definition: int,
        params: AnimateParams,
        staged: Path,
        made: Result,
        started: float,
    ) -> Outcome | None:
        try:
            self.ctx.store.put_file(
                key, staged, CONTENT_TYPES[params.format], move=True, md5=made.Md5
            )
        except Exception as exc:
            log.exception("task %s subtask %d: storing the output failed", self.task_id, index)
            staged.unlink(missing_ok=True)
            self.ctx.store.delete(key)
            error = TaskError(ErrCodeExt.INTERNAL_ERROR, f"could not store the output: {exc}")
            return self._retry_or_fail(index, error, started)
        item = {
            "Definition": definition,
            "Container": made.Container,
            "Height": made.Height,
            "Width": made.Width,
            "Bitrate": made.Bitrate,
            "Size": made.Size,
            "Md5": made.Md5,
            "StartTimeOffset": made.StartTimeOffset,
            "EndTimeOffset": made.EndTimeOffset,
        }
        if params.uses_extension():
            # Only templates that use an extension see fields beyond Tencent's (SDKs warn).
            item.update(made.extension_fields())
        now = self.ctx.now()
        entry = copy.deepcopy(self.subtasks[index])
        leases.subtask_result(entry).update(
            Status=leases.SUB_SUCCESS,
            ErrCodeExt="",
            ErrCode=0,
            Message="SUCCESS",
            Output={"Url": self.ctx.file_url(key), **item},
            Progress=100,
            FinishTime=iso(now),
        )
        entry.pop(PENDING_KEY, None)
        entry["_output_key"] = key  # readers build the Url from it (services.tasks.OUTPUT_KEY)
        row = MediaOutput(
            file_id=self.file_id,
            task_id=self.task_id,
            subtask=index,
            store_key=key,
            item=item,
            created_at=now,
        )
        try:
            written = self._write(index, entry, row)
        except leases.MediaGone:
            self.ctx.store.delete(key)
            error = TaskError(
                ErrCodeExt.CONTENT_MALFORMED, "the source media was deleted during processing"
            )
            return self._fail(index, error, started)
        except BaseException:
            self.ctx.store.delete(key)
            raise
        if not written:
            self.ctx.store.delete(key)  # the new owner makes its own
            return Outcome.LOST
        self.metrics.subtasks.labels(leases.SUB_SUCCESS, "").inc()
        self.metrics.subtask_seconds.observe(time.monotonic() - started)
        return None

    def _fail(self, index: int, error: TaskError, started: float) -> Outcome | None:
        log.info("task %s subtask %d failed: %s", self.task_id, index, error)
        entry = copy.deepcopy(self.subtasks[index])
        try:
            self._discard_stale_output(entry)
        except Exception:  # the failure stands; the key stays recorded for an operator
            log.exception("task %s subtask %d: deleting a stale output failed", self.task_id, index)
        result = leases.subtask_result(entry)
        now = iso(self.ctx.now())
        result.update(
            Status=leases.SUB_FAIL,
            ErrCodeExt=error.code.value,
            ErrCode=error.code.legacy_code,
            Message=error.message,
            Output=None,
            BeginProcessTime=result.get("BeginProcessTime") or now,
            FinishTime=now,
        )
        if not self._write(index, entry):
            return Outcome.LOST
        self.metrics.subtasks.labels(leases.SUB_FAIL, error.code.value).inc()
        self.metrics.subtask_seconds.observe(time.monotonic() - started)
        return None

    def _retry_or_fail(self, index: int, error: TaskError, started: float) -> Outcome | None:
        """Charge one attempt; FAIL at ``max_attempts``, else back to WAITING with backoff."""
        entry = copy.deepcopy(self.subtasks[index])
        attempts = int(entry.get("_attempts") or 0) + 1
        limit = self.ctx.settings.max_attempts
        if attempts >= limit:
            final = TaskError(
                ErrCodeExt.INTERNAL_ERROR, f"{error.message} (attempt {attempts} of {limit})"
            )
            entry["_attempts"] = attempts
            self.subtasks[index] = entry
            return self._fail(index, final, started)
        entry["_attempts"] = attempts
        leases.subtask_result(entry)["Progress"] = 0
        if not self._write(index, entry):
            return Outcome.LOST
        delay = retry_delay(self.ctx, attempts)
        log.warning(
            "task %s subtask %d: attempt %d of %d failed (%s); retry in %.1fs",
            self.task_id,
            index,
            attempts,
            limit,
            error.message,
            delay,
        )
        if not leases.retry_later(self.ctx, self.task_id, self.owner, delay):
            return Outcome.LOST
        self.metrics.task_retries.inc()
        return Outcome.RETRY


def discard_pending(ctx: Context, holder: dict[str, Any], task_id: str) -> None:
    """Delete the object stored under ``holder``'s :data:`PENDING_KEY` (a subtask entry or a
    task payload), if any, and remove the key from ``holder``.

    The object was never recorded: its writer died between storing and recording it. A writer
    that is still alive and stores it later fails its fenced write and deletes it itself.
    """
    stale = holder.pop(PENDING_KEY, None)
    if isinstance(stale, str) and stale and ctx.store.delete(stale):
        log.warning("task %s: deleted the unrecorded object %s", task_id, stale)


def retry_delay(ctx: Context, attempts: int) -> float:
    """Exponential backoff after ``attempts`` failed attempts (1 → the base delay)."""
    return float(ctx.settings.retry_backoff_seconds * 2 ** max(attempts - 1, 0))


def retry_task_later(
    ctx: Context, task: Task, owner: str, metrics: Metrics, error: TaskError
) -> Outcome | None:
    """A whole task failed transiently before its subtasks ran (a download): back to WAITING
    with backoff while attempts remain. None when it should fail instead."""
    if not error.code.retryable or task.attempt >= ctx.settings.max_attempts:
        return None
    delay = retry_delay(ctx, task.attempt)
    metrics.task_retries.inc()
    log.info("task %s: %s; retrying in %.1fs", task.task_id, error, delay)
    return Outcome.RETRY if leases.retry_later(ctx, task.task_id, owner, delay) else Outcome.LOST


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
                from anigraph.jobs.pull import run_pull

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
    from anigraph.jobs.pull import fail_all_subtasks, ingest_url

    try:
        file_id = ingest_url(ctx, task, owner)
    except TaskError as error:
        return retry_task_later(ctx, task, owner, metrics, error) or fail_all_subtasks(
            ctx, task, owner, error
        )
    if file_id is None:
        return Outcome.LOST
    task.file_id = file_id
    return None
