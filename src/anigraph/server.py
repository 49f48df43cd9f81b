"""The composition root: assembling and running the service (database, store, workers, HTTP).

Only this module (and the command line above it) puts the layers together: it builds the
context, installs the workers' ProcedureStateChanged hooks, starts the callback dispatcher, and
hands the Celery transport the service it runs tasks with.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from anigraph.context import Context
from anigraph.db.database import Database
from anigraph.metrics import Metrics
from anigraph.services import keys
from anigraph.settings import DEFAULT_KEY_FILE, Settings
from anigraph.storage.factory import parse_store_url

if TYPE_CHECKING:
    from anigraph.jobs.pool import WorkerPool
    from anigraph.notify.dispatch import EventDispatcher

log = logging.getLogger("anigraph.server")

PRIVATE_DIR_MODE = 0o700


def prepare_data_dir(path: Path) -> None:
    """Create the data folder owner-only, or take group and other access off an existing one.

    It holds the SQLite database (every SecretKey) and the default key file. ``mkdir``'s mode
    is masked by the umask, and an existing folder keeps its mode, hence the ``chmod``.
    """
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    current = stat.S_IMODE(path.stat().st_mode)
    if current & 0o077:
        log.info("data folder %s was mode %o; making it %o", path, current, PRIVATE_DIR_MODE)
    if current != PRIVATE_DIR_MODE:
        path.chmod(PRIVATE_DIR_MODE)


def open_context(settings: Settings) -> Context:
    """The embedded default: SQLite and files under the data folder, schema created if new."""
    prepare_data_dir(settings.data_dir)
    db = Database(settings.database_url)
    db.create_schema()
    return Context(settings=settings, db=db, store=parse_store_url(settings.store_url))


def write_secret_file(path: Path, data: dict[str, object]) -> None:
    """Create ``path`` readable by its owner only; it is never overwritten."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")


def ensure_default_key(ctx: Context) -> keys.KeyPair | None:
    """On first start, a default sub-application and key pair; returns it only when created."""
    if keys.has_any_key(ctx):
        return None
    pair = keys.create_key(ctx, keys.DEFAULT_SUB_APP_ID)
    write_secret_file(ctx.settings.data_dir / DEFAULT_KEY_FILE, pair.to_dict())
    return pair


def default_key_note(settings: Settings) -> str:
    """Where a restarted service's default key is, since it is printed on first start only."""
    path = (settings.data_dir / DEFAULT_KEY_FILE).resolve()
    if path.is_file():
        return f"Default API key: in {path} (mode 0600); more with `anigraph keys create`"
    return (
        f"Default API key: no {path} (this data folder's keys came from elsewhere); "
        "list them with `anigraph keys list`, add one with `anigraph keys create`"
    )


@dataclass
class Service:
    ctx: Context
    metrics: Metrics


def build(settings: Settings) -> Service:
    from anigraph.jobs import leases

    ctx = open_context(settings)
    metrics = Metrics()
    metrics.watch_queue(lambda: leases.counts(ctx))
    return Service(ctx, metrics)


def start_notifications(service: Service) -> EventDispatcher:
    """Install the ProcedureStateChanged hooks bound to the service's context and start the
    callback dispatcher: every process that finishes tasks calls this once at start.

    Call ``stop()`` on the result at shutdown, after the workers have drained, so that the
    events of their last tasks are at least in the outbox (they are sent at the next start
    if the dispatcher stops first).
    """
    from anigraph.jobs.procedure_events import install_hooks
    from anigraph.notify.dispatch import EventDispatcher

    install_hooks(service.ctx)
    dispatcher = EventDispatcher(service.ctx, service.metrics)
    dispatcher.start()
    return dispatcher


def _draining_server_class() -> type:
    import contextlib
    from collections.abc import Iterator

    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn re-raises SIGTERM/SIGINT once HTTP has shut down, which would kill the process
        before the workers drain; the signal has done its job by then, so it is dropped."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    return DrainingServer


def _wakers(settings: Settings, pool: WorkerPool | None) -> Callable[[], None]:
    """What to call after a task is committed: the local pool, and Celery when a queue is set.

    Messages only hurry workers up; a worker's idle claim loop finds every WAITING row anyway.
    """
    wakers: list[Callable[[], None]] = [pool.wake] if pool is not None else []
    if settings.queue:
        from anigraph.jobs.celery_transport import CeleryWaker, make_celery

        wakers.append(CeleryWaker(make_celery(settings)))

    def wake() -> None:
        for waker in wakers:
            waker()

    return wake


def serve(settings: Settings) -> None:
    """Run the API and the in-process workers until SIGINT/SIGTERM, then drain."""
    import uvicorn

    from anigraph.api.app import create_app
    from anigraph.api.registry import load_actions
    from anigraph.jobs.pool import WorkerPool

    _DrainingServer = _draining_server_class()

    service = build(settings)
    ctx = service.ctx
    created = ensure_default_key(ctx)
    if created is not None:
        print(
            "Created the default sub-application and API key (shown once; also saved to "
            f"{settings.data_dir / DEFAULT_KEY_FILE}, mode 0600):\n"
            f"  SecretId:  {created.secret_id}\n"
            f"  SecretKey: {created.secret_key}\n"
            f"  SubAppId:  {created.sub_app_id}",
            flush=True,
        )
    else:
        print(default_key_note(settings), flush=True)
    load_actions()
    notifications = start_notifications(service)
    slots = settings.serve_slots
    pool = (
        WorkerPool(ctx, service.metrics, slots, idle_wait=settings.idle_poll_seconds)
        if slots > 0
        else None
    )
    ctx.wake_workers = _wakers(settings, pool)
    app = create_app(ctx, service.metrics)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        # h11 keeps response header case (ETag): some COS SDK code reads headers case-sensitively.
        http="h11",
        timeout_graceful_shutdown=10,
    )
    server = _DrainingServer(config)
    if pool is not None:
        pool.start()
    where = f"{slots} worker slot(s)" if slots else "API only: workers run elsewhere"
    print(f"anigraph listening on http://{settings.host}:{settings.port}/ ({where})", flush=True)
    print(f"Console: {settings.base_url}/console", flush=True)
    try:
        server.run()
    finally:
        if pool is not None:
            log.info("shutting down: letting running tasks finish")
            pool.stop(drain=True, timeout=settings.task_deadline_seconds)
        notifications.stop()
        ctx.db.dispose()


def work(settings: Settings) -> None:
    """Run workers only (no HTTP) on the shared database and store, until SIGINT/SIGTERM.

    Any number of these can run beside API-only servers (``serve --workers 0``): the task rows
    are the truth, so a worker finds work by claiming it; an idle slot looks again every
    ``idle_poll_seconds``.
    """
    import signal
    import threading

    from anigraph.jobs.pool import WorkerPool

    service = build(settings)
    ctx = service.ctx
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: letting running tasks finish", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    notifications = start_notifications(service)
    slots = max(settings.worker_slots, 1)
    pool = WorkerPool(ctx, service.metrics, slots, idle_wait=settings.idle_poll_seconds)
    ctx.wake_workers = _wakers(settings, pool)
    pool.start()
    print(f"anigraph worker running {slots} slot(s)", flush=True)
    try:
        stop.wait()
    finally:
        pool.stop(drain=True, timeout=settings.task_deadline_seconds)
        notifications.stop()
        ctx.db.dispose()
