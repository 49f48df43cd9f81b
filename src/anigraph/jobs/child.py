"""One media job in a child process, with a hard deadline.

FFmpeg is C code fed untrusted input: it can crash, hang in a loop or eat memory. Running the
engine in a child process means that costs one attempt, not the worker: the parent only waits,
relays progress, and kills the child (SIGKILL) when the deadline plus a short grace has passed
or when the runner cancels the job (lost lease, shutdown). A crash, a kill or a timeout becomes
``TaskError(InternalError)``, which the runner retries; a ``TaskError`` raised by the engine
itself crosses the process boundary unchanged.

Children come from a *forkserver* that has imported the engine once
(``set_forkserver_preload``), so a job pays neither the interpreter start nor the imports of
PyAV/NumPy, and the fork happens from a single-threaded process (forking the threaded API or
worker process directly would be unsafe). Where forkserver does not exist we spawn.

The job function is a parameter so tests can inject one that crashes or hangs; it must be a
module-level function (it is pickled by reference into the child).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Final, Protocol

from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.media.types import AnimateParams, Limits, ProgressCallback, Result

log = logging.getLogger(__name__)

PRELOAD: Final = ["anigraph.media.animate"]
KILL_GRACE_SECONDS: Final = 2.0
"""How long past its deadline a child may run before SIGKILL: the engine checks the deadline
itself between frames and fails cleanly; the kill is for a child stuck inside C code."""
PROGRESS_INTERVAL: Final = 0.2
"""The child sends progress at most this often: the engine reports every frame."""
EXIT_WAIT_SECONDS: Final = 5.0
"""After its final message a child should exit at once; past this it is killed."""


class JobFunction(Protocol):
    """The engine entry point's shape (``anigraph.media.animate.animate``)."""

    def __call__(
        self,
        source: str,
        output: str,
        params: AnimateParams,
        limits: Limits,
        deadline: float,
        progress: ProgressCallback,
    ) -> Result: ...


def animate_job(
    source: str,
    output: str,
    params: AnimateParams,
    limits: Limits,
    deadline: float,
    progress: ProgressCallback,
) -> Result:
    """The real job: the engine's ``animate`` (imported in the child, preloaded by forkserver)."""
    from anigraph.media.animate import animate

    return animate(source, output, params, limits, deadline, progress)


class Cancelled(Exception):
    """The job was stopped on request (``Cancel.set``); the child was killed, nothing kept."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Cancel:
    """A flag that another thread raises to stop a running job at once.

    Besides the flag it holds a pipe whose read end the waiting parent includes in
    ``multiprocessing.connection.wait``, so raising it wakes the parent immediately instead of
    at its next poll. The first reason given wins.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._reader, self._writer = multiprocessing.Pipe(duplex=False)

    @property
    def reason(self) -> str | None:
        return self._reason

    def is_set(self) -> bool:
        return self._reason is not None

    def set(self, reason: str) -> None:
        with self._lock:
            if self._reason is not None:
                return
            self._reason = reason
            with contextlib.suppress(OSError):  # closed: nobody is waiting any more
                self._writer.send_bytes(b"!")

    @property
    def waitable(self) -> Connection:
        return self._reader

    def close(self) -> None:
        with self._lock:
            self._writer.close()
            self._reader.close()


_context_lock = threading.Lock()
_context: Any = None  # ForkServerContext or SpawnContext; typeshed gives them no common Process


def mp_context() -> Any:
    """The forkserver context with the engine preloaded, or spawn where there is no forkserver."""
    global _context
    with _context_lock:
        if _context is None:
            context: Any
            try:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(PRELOAD)
            except ValueError:
                context = multiprocessing.get_context("spawn")
            _context = context
        return _context


class _Reporter:
    """The child's progress callback: forwards to the parent, at most every PROGRESS_INTERVAL."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._last = 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if fraction >= 1.0 or now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            self._conn.send(("progress", float(fraction)))


def _child_main(
    conn: Connection,
    job: JobFunction,
    source: str,
    output: str,
    params: AnimateParams,
    limits: Limits,
    deadline: float,
) -> None:
    """Runs in the child: one job, then one final message ("ok", "error" or "crash")."""
    try:
        result = job(source, output, params, limits, deadline, _Reporter(conn))
    except TaskError as exc:
        # TaskError does not pickle (its args are not its constructor's): send the parts.
        conn.send(("error", exc.code.value, exc.message))
    except BaseException as exc:  # a bug or MemoryError: reported, then the attempt is retried
        conn.send(("crash", f"{type(exc).__name__}: {exc}"))
    else:
        conn.send(("ok", result))
    finally:
        conn.close()


def _remove_partials(output: Path) -> None:
    """A killed child leaves the engine's ``.<name>.<uuid>.part`` scratch file (or more)."""
    for part in output.parent.glob(f".{output.name}.*.part"):
        part.unlink(missing_ok=True)


def _code(value: object) -> ErrCodeExt:
    try:
        return ErrCodeExt(str(value))
    except ValueError:  # a job that invents codes is a bug: treat it as one
        return ErrCodeExt.INTERNAL_ERROR


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "did not exit"
    if exitcode < 0:
        return f"was killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def run_job(
    source: Path,
    output: Path,
    params: AnimateParams,
    limits: Limits,
    deadline: float,
    progress: Callable[[float], None],
    *,
    cancel: Cancel | None = None,
    job: JobFunction = animate_job,
    grace: float | None = None,
) -> Result:
    """Run ``job`` in a child process and return its result; ``output`` is written by the child.

    ``deadline`` is a ``time.monotonic()`` instant (the monotonic clock is system-wide, so the
    child can check it too). ``progress`` is called in this thread with fractions in [0, 1].
    Raises ``TaskError`` (engine failures as they are; crash, kill or timeout as InternalError)
    or ``Cancelled`` if ``cancel`` was raised; in every failure case the child is gone and no
    partial output is left.
    """
    grace = KILL_GRACE_SECONDS if grace is None else grace
    context = mp_context()
    reader, writer = context.Pipe(duplex=False)
    process: Any = context.Process(
        target=_child_main,
        args=(writer, job, str(source), str(output), params, limits, deadline),
        name=f"anigraph-job-{output.stem}",
        daemon=True,
    )
    succeeded = False
    try:
        process.start()
        writer.close()  # the child holds the only write end: EOF tells us it is gone
        final = _wait_for_child(process, reader, deadline + grace, progress, cancel)
        kind = final[0]
        if kind == "ok":
            result: Result = final[1]
            succeeded = True
            return result
        if kind == "error":
            raise TaskError(_code(final[1]), str(final[2]))
        raise TaskError(ErrCodeExt.INTERNAL_ERROR, f"media process failed: {final[1]}")
    finally:
        _reap(process, EXIT_WAIT_SECONDS if succeeded else 0.0)
        reader.close()
        writer.close()
        if not succeeded:
            _remove_partials(output)
            output.unlink(missing_ok=True)


def _wait_for_child(
    process: Any,
    reader: Connection,
    kill_at: float,
    progress: Callable[[float], None],
    cancel: Cancel | None,
) -> tuple[Any, ...]:
    """Relay progress until the child's final message; kill it on timeout, cancel or crash."""
    waitables: list[Any] = [reader, process.sentinel]
    if cancel is not None:
        waitables.append(cancel.waitable)
    while True:
        if cancel is not None and cancel.is_set():
            _kill(process)
            raise Cancelled(cancel.reason or "cancelled")
        remaining = kill_at - time.monotonic()
        if remaining <= 0:
            _kill(process)
            log.warning("media process %s killed: deadline exceeded", process.pid)
            raise TaskError(
                ErrCodeExt.INTERNAL_ERROR, "media process exceeded its deadline and was killed"
            )
        ready = wait(waitables, timeout=remaining)
        if reader in ready:
            try:
                message: tuple[Any, ...] = reader.recv()
            except EOFError:
                # The pipe closed without a final message: the child died.
                process.join(EXIT_WAIT_SECONDS)
                raise TaskError(
                    ErrCodeExt.INTERNAL_ERROR,
                    f"media process {_exit_reason(process.exitcode)}",
                ) from None
            if message[0] == "progress":
                progress(float(message[1]))
                continue
            return message
        if process.sentinel in ready and not reader.poll():
            process.join(EXIT_WAIT_SECONDS)
            raise TaskError(
                ErrCodeExt.INTERNAL_ERROR, f"media process {_exit_reason(process.exitcode)}"
            )


def _kill(process: Any) -> None:
    if process.is_alive():
        process.kill()
    process.join()


def _reap(process: Any, wait_seconds: float) -> None:
    """Make sure the child is gone (a never-started process has nothing to reap)."""
    if process.pid is None:
        return
    if wait_seconds > 0:
        process.join(wait_seconds)
    _kill(process)
    process.close()
