"""Command line: ``anigraph celery-worker``, a Celery worker serving task wake-ups."""

from __future__ import annotations

from typing import Any

import click

from anigraph.cli.shared import settings_from, settings_options


def register(app: click.Group) -> None:
    @app.command("celery-worker")
    @settings_options()
    @click.option(
        "--broker",
        default=None,
        help="Broker URL (redis://host:port/0); default: the queue setting.",
    )
    @click.option(
        "--pool",
        "pool",
        type=click.Choice(["threads", "solo"]),
        default="threads",
        show_default=True,
        help="Celery pool: threads runs WORKERS tasks at once, solo one; either way each media "
        "job runs in a child process of its own.",
    )
    def celery_worker(broker: str | None, pool: str, **options: Any) -> None:
        """Run a Celery worker that runs tasks when their wake-up message arrives.

        Messages only accelerate: keep an ``anigraph worker`` (or ``serve``) pool running on
        the same database; its claim loop picks up tasks whose message was lost.
        """
        from anigraph import logs
        from anigraph.jobs.celery_transport import make_celery, worker_argv
        from anigraph.jobs.sweep import Sweeper
        from anigraph.server import build, start_notifications

        settings = settings_from(options)
        logs.configure(settings.log_level)
        if not (broker or settings.queue):
            raise click.UsageError("the Celery worker needs a broker URL (--queue redis://…)")
        # Built here, as `anigraph worker` does: the event hooks must be in place before the
        # first task finishes, and the process runs the callback dispatcher like every other.
        service = build(settings)
        notifications = start_notifications(service)
        sweeper = Sweeper(service.ctx)
        sweeper.start()
        try:
            celery_app = make_celery(settings, broker, service=service)
            celery_app.worker_main(worker_argv(settings, pool=pool))
        finally:
            sweeper.stop()
            notifications.stop()
            service.ctx.db.dispose()
