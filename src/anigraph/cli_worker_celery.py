"""Command line: ``anigraph celery-worker``, a Celery worker serving task wake-ups."""

from __future__ import annotations

from typing import Any

import click

from anigraph.cli_service import _settings, settings_options


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
        type=click.Choice(["prefork", "solo"]),
        default="prefork",
        show_default=True,
        help="Celery pool: prefork runs WORKERS processes (hard time limits work); solo runs one.",
    )
    def celery_worker(broker: str | None, pool: str, **options: Any) -> None:
        """Run a Celery worker that runs tasks when their wake-up message arrives.

        Messages only accelerate: keep an ``anigraph worker`` (or ``serve``) pool running on
        the same database; its claim loop picks up tasks whose message was lost.
        """
        from anigraph import logs
        from anigraph.jobs.celery_transport import make_celery, worker_argv

        settings = _settings(options)
        logs.configure(settings.log_level)
        try:
            celery_app = make_celery(settings, broker)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        celery_app.worker_main(worker_argv(settings, pool=pool))
