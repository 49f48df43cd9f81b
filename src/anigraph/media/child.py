"""Media jobs in child processes, with a hard deadline.

FFmpeg is C code fed untrusted input: it can crash, hang in a loop or eat memory. Running the
engine in a child process means that costs one attempt, not the worker: the parent only waits,
relays progress, and kills the child (SIGKILL) when the deadline plus a short grace has passed
or when the runner cancels the job (lost lease, shutdown). A crash, a kill or a timeout becomes
``TaskError(InternalError)``, which the runner retries; a ``TaskError`` raised by the engine
itself crosses the process boundary unchanged.

A child is kept warm for the next job of the same worker thread: a fresh process per job cost
about 40 ms a job (fork, first-use imports, and the allocator and codecs warming up again), a
tenth of a short job. A child is discarded as soon as anything went wrong in it (crash, kill,
timeout, cancel, an exception that is not a clean ``TaskError``), after ``MAX_JOBS_PER_CHILD``
jobs, and when its peak memory passed ``RETIRE_RSS_BYTES``; a child whose parent dies sees
the pipe close and exits.

Children come from a *forkserver* that has imported the engine once
(``set_forkserver_preload``), so a new child pays neither the interpreter start nor the imports
of PyAV/NumPy, and the fork happens from a single-threaded process (forking the threaded API or
worker process directly would be unsafe). Where forkserver does not exist we spawn.

The job function is a parameter so tests can inject one that crashes or hangs; it must be a
module-level function (it is pickled by reference into the child).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import resource
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Final, Protocol

from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.media.types import AnimateParams, Limits, MetaData, ProgressCallback, Result

log = logging.getLogger(__name__)

PRELOAD: Final = [
    "__main__",
    "anigraph.media.child",
    "anigraph.media.animate",
    "anigraph.media.gif",
    "anigraph.media.webp",
    "anigraph.media.avif",
    "anigraph.media.mp4",
]
"""Imported once by the forkserver, so no job pays for them: the encoders' modules are imported
lazily by ``animate`` (PIL and imagequant with them), and ``__main__`` would otherwise be
re-imported by every child (multiprocessing re-runs a main *script* such as the ``anigraph``
console entry point in each child it starts)."""
KILL_GRACE_SECONDS: Final = 2.0
"""How long past its deadline a child may run before SIGKILL: the engine checks the deadline
itself between frames and fails cleanly; the kill is for a child stuck inside C code."""
PROGRESS_INTERVAL: Final = 0.2
"""The child sends progress at most this often: the engine reports every frame."""
EXIT_WAIT_SECONDS: Final = 5.0
"""How long a child that closed its pipe may take to exit before it is killed."""
MAX_JOBS_PER_CHILD: Final = 100
"""Jobs a warm child runs before it is replaced: bounds whatever a long life accumulates."""
RETIRE_RSS_BYTES: Final = 1024**3
"""A child whose peak memory passed this exits after its job instead of staying warm."""


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


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _child_loop(conn: Connection) -> None:
    """Runs in the child: calls ``call(*args, progress)`` one at a time, each answered by one
    final message ("ok", "error" or "crash"), until the pipe closes or the child should not be
    reused."""
    try:
        while True:
            try:
                call, args = conn.recv()
            except EOFError:  # the parent is done with us (or died)
                return
            try:
                result = call(*args, _Reporter(conn))
            except TaskError as exc:
                # TaskError does not pickle (its args are not its constructor's): send the parts.
                final: tuple[Any, ...] = ("error", exc.code.value, exc.message)
            except BaseException as exc:  # a bug or MemoryError: reported, then we are done
                conn.send(("crash", f"{type(exc).__name__}: {exc}"))
                return
            else:
                final = ("ok", result)
            # The last item says whether we stay: the parent must not send to a leaving child.
            retire = _peak_rss_bytes() > RETIRE_RSS_BYTES
            conn.send((*final, retire))
            if retire:
                return
    finally:
        conn.close()


class _Child:
    """One media process and the parent's end of its pipe."""

    def __init__(self) -> None:
        context = mp_context()
        self.conn, child_end = context.Pipe(duplex=True)
        self.process: Any = context.Process(
            target=_child_loop, args=(child_end,), name="anigraph-media", daemon=True
        )
        try:
            self.process.start()
        finally:
            child_end.close()  # the child holds the only other end: EOF tells us it is gone
        self.jobs = 0

    def reusable(self) -> bool:
        return self.jobs < MAX_JOBS_PER_CHILD and self.process.is_alive()

    def close(self) -> None:
        """Kill the process (if it still runs) and release its resources."""
        self.conn.close()
        if self.process.pid is not None:
            _kill(self.process)
            self.process.close()


_warm = threading.local()
"""Per worker thread: the ``_Child`` kept for its next job, if any."""


def _take_warm_child() -> _Child:
    child: _Child | None = getattr(_warm, "child", None)
    _warm.child = None
    if child is not None and child.reusable():
        return child
    if child is not None:
        child.close()
    return _Child()


def prestart_warm_child() -> None:
    """Start this thread's child now, so that the first job does not wait for the forkserver
    (about 0.15 s to import the engine) and a fork."""
    if getattr(_warm, "child", None) is None:
        _warm.child = _Child()


def close_warm_child() -> None:
    """Stop this thread's warm child (a worker slot that ends calls this)."""
    child: _Child | None = getattr(_warm, "child", None)
    _warm.child = None
    if child is not None:
        child.conn.close()  # EOF: the child leaves its loop and exits by itself
        child.process.join(EXIT_WAIT_SECONDS)
        child.close()


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


def _remove_partials(output: Path) -> None:
    """A killed child leaves the engine's ``.<name>.<uuid>.part`` scratch file (or more)."""
    for part in output.parent.glob(f".{output.name}.*.part"):
        part.unlink(missing_ok=True)


def _send_job(request: tuple[Any, ...]) -> _Child:
    """Hand ``request`` to a child: the warm one, or a new one if the warm one is gone."""
    child = _take_warm_child()
    try:
        child.conn.send(request)
        return child
    except OSError:  # it exited between the check and the send (retired or killed)
        child.close()
    child = _Child()
    try:
        child.conn.send(request)
    except BaseException:
        child.close()
        raise
    return child


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
    or ``Cancelled`` if ``cancel`` was raised; in every failure case no partial output is left,
    and any child that misbehaved is gone.
    """
    grace = KILL_GRACE_SECONDS if grace is None else grace
    child = _send_job((job, (str(source), str(output), params, limits, deadline)))
    child.jobs += 1
    final: tuple[Any, ...] = ("crash", "no answer")
    try:
        final = _wait_for_child(child.process, child.conn, deadline + grace, progress, cancel)
        result: Result = _settle(final)
        return result
    finally:
        if final[0] in ("ok", "error") and not final[-1]:
            _warm.child = child  # a result or a clean refusal: the process is sound
        else:
            child.close()
        if final[0] != "ok":
            _remove_partials(output)
            output.unlink(missing_ok=True)


def probe_job(source: str, limits: Limits, progress: ProgressCallback) -> MetaData:
    """The real probe (``anigraph.media.probe.probe``), run in the child."""
    from anigraph.media.probe import probe

    return probe(source, limits)


def run_probe(
    source: Path,
    limits: Limits,
    deadline: float,
    *,
    job: Callable[[str, Limits, ProgressCallback], MetaData] = probe_job,
    grace: float | None = None,
) -> MetaData:
    """Probe ``source`` in a child of its own, killed past ``deadline`` (a monotonic instant).

    Uploads are probed by the API process: a demuxer that crashes or loops on a hostile file
    must cost that one request, not the API. A probe is rare and short, so it gets a new child
    (a fork of the preloaded forkserver) instead of a warm one per API thread.
    """
    grace = KILL_GRACE_SECONDS if grace is None else grace
    child = _Child()
    try:
        child.conn.send((job, (str(source), limits)))
        final = _wait_for_child(child.process, child.conn, deadline + grace, _ignore, None)
        meta: MetaData = _settle(final)
        return meta
    finally:
        child.close()


def _ignore(_fraction: float) -> None:
    return None


def _settle(final: tuple[Any, ...]) -> Any:
    """The value of a child's final message, or its failure raised as a ``TaskError``."""
    kind = final[0]
    if kind == "ok":
        return final[1]
    if kind == "error":
        raise TaskError(_code(final[1]), str(final[2]))
    raise TaskError(ErrCodeExt.INTERNAL_ERROR, f"media process failed: {final[1]}")


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
