"""The ``anigraph`` command: the root group and the entry point.

Each command group is a module of this package with a ``register(app)`` function; a module
imports what its commands need when they run, so ``anigraph --help`` loads no engine, database
or HTTP code.
"""

from __future__ import annotations

import sys

import click

from anigraph.cli import (
    celery_worker,
    convert,
    events,
    keys,
    media,
    migrate_store,
    service,
    upload,
    upload_signature,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="anigraph", prog_name="anigraph", message="%(prog)s %(version)s")
def app() -> None:
    """Turn videos into animated images (GIF, WebP, AVIF) or MP4 loops, by template."""


for _group in (
    convert,
    service,
    keys,
    media,
    upload,
    upload_signature,
    events,
    celery_worker,
    migrate_store,
):
    _group.register(app)


def main() -> None:
    """Entry point: usage errors become one line on stderr and exit status 2."""
    try:
        app.main(standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.format_message())
    except click.UsageError as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
