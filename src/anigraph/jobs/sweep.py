"""The periodic sweep of what killed writes leave, run by every worker process.

A worker killed with -9 (or a machine that loses power) runs no cleanup: hidden temp files stay
in the store, engine and download scratch files in ``staging/``, and on S3 spool files and
unfinished multipart uploads. Nothing names them, so nothing else ever removes them.

Every process that runs workers (``serve`` with workers, ``anigraph worker``, ``anigraph
celery-worker``) sweeps every ``sweep_seconds``, with jitter so that several workers do not
sweep in step. A leftover is what nobody has written to for ``task_deadline_seconds`` plus
``SWEEP_MARGIN_SECONDS``: every write of a live job (engine output, download, upload to the
store) happens within its deadline, so no live file is that old. Sweeps are idempotent and
race-free between processes (see ``storage.sweeping``); each costs a walk of the local store's
folders, or one multipart-upload listing on S3, and a look at the staging folder.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Final

from anigraph.context import Context
from anigraph.jobs.staging import sweep_staging

log = logging.getLogger(__name__)

SWEEP_MARGIN_SECONDS: Final = 600.0
"""Beyond the task deadline: the kill grace, the store upload after the job, clock skew."""
FIRST_SWEEP_MAX_DELAY: Final = 30.0
"""The first sweep comes at a random moment this soon after start (sooner if the interval is
shorter): leftovers of the process that died before this one go early, yet not all at once."""


def leftover_age(ctx: Context) -> float:
    """Seconds without a write after which a scratch or temp file is a leftover."""
    return ctx.settings.task_deadline_seconds + SWEEP_MARGIN_SECONDS


def sweep_once(ctx: Context) -> int:
    """One sweep of the staging folder and the store; how many leftovers were removed."""
    older_than = leftover_age(ctx)
    removed = sweep_staging(ctx, older_than=older_than)
    removed += ctx.store.sweep_leftovers(time.time() - older_than)
    return removed


class Sweeper:
    """A daemon thread that calls :func:`sweep_once` every ``sweep_seconds`` until stopped."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._interval = ctx.settings.sweep_seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="anigraph-sweeper", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        delay = random.uniform(0.0, min(self._interval, FIRST_SWEEP_MAX_DELAY))
        while not self._stopping.wait(delay):
            try:
                removed = sweep_once(self._ctx)
            except Exception:  # a store hiccup: the next sweep tries again
                log.exception("sweeping leftovers failed")
            else:
                if removed:
                    log.info("swept %d leftover file(s) of interrupted writes", removed)
            delay = self._interval * random.uniform(0.9, 1.1)
