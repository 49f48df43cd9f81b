"""``anigraph serve``, ``worker``, ``migrate`` and ``config-example``: running the service."""

from __future__ import annotations

from typing import Any

import click

from anigraph.cli.shared import DATA_ONLY, settings_from, settings_options


def register(app: click.Group) -> None:
    @app.command()
    @settings_options()
    def serve(**options: Any) -> None:
        """Run the API, the output files and the workers on one machine."""
        from anigraph import logs, server

        settings = settings_from(options)
        logs.configure(settings.log_level)
        server.serve(settings)

    @app.command()
    @settings_options()
    def worker(**options: Any) -> None:
        """Run workers only, on the same database and store as the API (any machine)."""
        from anigraph import logs, server

        settings = settings_from(options)
        logs.configure(settings.log_level)
        server.work(settings)

    @app.command()
    @settings_options(DATA_ONLY)
    def migrate(**options: Any) -> None:
        """Bring the database schema to the newest version (also done on every start)."""
        from anigraph.db.database import Database
        from anigraph.db.migrate import current
        from anigraph.server import prepare_data_dir

        settings = settings_from(options)
        prepare_data_dir(settings.data_dir)
        database = Database(settings.database_url)
        database.create_schema()
        click.echo(f"schema at revision {current(database.engine)}")
        database.dispose()

    @app.command("config-example")
    def config_example() -> None:
        """Print a --config TOML file with every setting at its default, each with its help."""
        from anigraph.settings import example_toml

        click.echo(example_toml(), nl=False)
