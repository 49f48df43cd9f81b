"""Recording what a run did: progress, a subtask's success, failure or retry, all fenced.

Every write goes through the lease (``leases.record_subtask``): when another worker owns the
task now, nothing is written, the run is cancelled with reason :data:`LOST`, and an output
stored meanwhile is deleted (the new owner makes its own).

Failures are values: bad input (``InvalidInput.*``, ``SourceFileError.*``) ends the subtask FAIL
at once; a transient failure (``InternalError``: crash, kill, timeout, storage error) is charged
to the subtask's ``_attempts`` and the task goes back to WAITING with exponential backoff, until
``max_attempts`` makes it FAIL for good (poison-pill rule: the input is kept for inspection).
"""

from __future__ import annotations

import copy
import logging
import time
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from anigraph.context import Context
from anigraph.db.models import MediaOutput, Task
from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.domain.wire import iso
from anigraph.jobs import leases
from anigraph.media.child import Cancel
from anigraph.media.types import AnimateParams, OutputFormat, Result
from anigraph.metrics import Metrics

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


class Recorder:
    """The fenced writes of one run of one claimed task; ``subtasks`` is the run's view."""

    def __init__(
        self, ctx: Context, task: Task, owner: str, metrics: Metrics, cancel: Cancel
    ) -> None:
        self.ctx = ctx
        self.task_id = task.task_id
        self.file_id = task.file_id
        self.owner = owner
        self.metrics = metrics
        self.cancel = cancel
        self.subtasks: list[dict[str, Any]] = copy.deepcopy(list(task.subtasks))
        self._last_progress_write = 0.0
        self._last_progress = -1

    def write(self, index: int, entry: dict[str, Any], row: MediaOutput | None = None) -> bool:
        if not leases.record_subtask(self.ctx, self.task_id, self.owner, index, entry, row):
            self.cancel.set(LOST)
            return False
        self.subtasks[index] = entry
        return True

    def discard_stale_output(self, entry: dict[str, Any]) -> None:
        """Delete what a former owner of this subtask may have stored under its pending key
        (the subtask has not ended, so nothing refers to it) and drop the key from ``entry``."""
        discard_pending(self.ctx, entry, self.task_id)

    def progress(self, index: int, fraction: float) -> None:
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
            self.write(index, entry)
        except Exception:  # progress is cosmetic: never fail the job over it
            log.exception("task %s: progress write failed", self.task_id)

    def succeed(
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
            return self.retry_or_fail(index, error, started)
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
            written = self.write(index, entry, row)
        except leases.MediaGone:
            self.ctx.store.delete(key)
            error = TaskError(
                ErrCodeExt.CONTENT_MALFORMED, "the source media was deleted during processing"
            )
            return self.fail(index, error, started)
        except BaseException:
            self.ctx.store.delete(key)
            raise
        if not written:
            self.ctx.store.delete(key)  # the new owner makes its own
            return Outcome.LOST
        self.metrics.subtasks.labels(leases.SUB_SUCCESS, "").inc()
        self.metrics.subtask_seconds.observe(time.monotonic() - started)
        return None

    def fail(self, index: int, error: TaskError, started: float) -> Outcome | None:
        log.info("task %s subtask %d failed: %s", self.task_id, index, error)
        entry = copy.deepcopy(self.subtasks[index])
        try:
            self.discard_stale_output(entry)
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
        if not self.write(index, entry):
            return Outcome.LOST
        self.metrics.subtasks.labels(leases.SUB_FAIL, error.code.value).inc()
        self.metrics.subtask_seconds.observe(time.monotonic() - started)
        return None

    def retry_or_fail(self, index: int, error: TaskError, started: float) -> Outcome | None:
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
            return self.fail(index, final, started)
        entry["_attempts"] = attempts
        leases.subtask_result(entry)["Progress"] = 0
        if not self.write(index, entry):
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


def gave_up(task: Task, error: TaskError) -> TaskError:
    """The error a whole task fails with once :func:`retry_task_later` declined: a transient
    one says how many attempts were made, so the final message is not taken for a pending
    retry."""
    if not error.code.retryable:
        return error
    return TaskError(error.code, f"{error.message} (gave up after {task.attempt} attempts)")
