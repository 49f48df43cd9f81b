"""Command line of the service: ``serve``, ``keys``, ``media import``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from anigraph.settings import Settings, env_name, load

_TYPES: dict[str, Any] = {
    "Path": click.Path(path_type=Path),
    "int": int,
    "float": float,
    "str": str,
}


def settings_options(only: tuple[str, ...] | None = None) -> Callable[[Any], Any]:
    """Add one ``--flag`` per setting (all, or ``only``) plus ``--config FILE.toml``."""

    def decorate(command: Any) -> Any:
        for spec in reversed(fields(Settings)):
            if only is not None and spec.name not in only:
                continue
            command = click.option(
                f"--{spec.name.replace('_', '-')}",
                spec.name,
                type=_TYPES[str(spec.type)],
                default=None,
                help=f"{spec.metadata['help']} [env {env_name(spec.name)}; default {spec.default}]",
            )(command)
        return click.option(
            "--config",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="TOML file of settings.",
        )(command)

    return decorate


def _settings(options: dict[str, Any]) -> Settings:
    config = options.pop("config", None)
    try:
        return load(options, config)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _fail(message: str) -> None:
    click.echo(message.splitlines()[0] if message else "error", err=True)
    sys.exit(1)


def register(app: click.Group) -> None:
    @app.command()
    @settings_options()
    def serve(**options: Any) -> None:
        """Run the API, the output files and the workers on one machine."""
        from anigraph import logs, server

        settings = _settings(options)
        logs.configure(settings.log_level)
        server.serve(settings)

    @app.command()
    @settings_options()
    def worker(**options: Any) -> None:
        """Run workers only, on the same database and store as the API (any machine)."""
        from anigraph import logs, server

        settings = _settings(options)
        logs.configure(settings.log_level)
        server.work(settings)

    @app.command()
    @settings_options(("data_dir", "db"))
    def migrate(**options: Any) -> None:
        """Bring the database schema to the newest version (also done on every start)."""
        from anigraph.db.database import Database
        from anigraph.db.migrate import current
        from anigraph.server import prepare_data_dir

        settings = _settings(options)
        prepare_data_dir(settings.data_dir)
        database = Database(settings.database_url)
        database.create_schema()
        click.echo(f"schema at revision {current(database.engine)}")
        database.dispose()

    @app.group()
    def keys() -> None:
        """API key pairs; each belongs to one sub-application."""

    data_only = ("data_dir", "db")

    @keys.command("create")
    @settings_options(data_only)
    @click.option("--sub-app-id", type=click.IntRange(1, 2**63 - 1), default=None)
    @click.option("--json", "as_json", is_flag=True, help="Print the key pair as JSON.")
    def keys_create(sub_app_id: int | None, as_json: bool, **options: Any) -> None:
        """Create a key pair (and its sub-application if new)."""
        from anigraph.server import open_context
        from anigraph.services import keys as key_service

        ctx = open_context(_settings(options))
        pair = key_service.create_key(ctx, sub_app_id or key_service.DEFAULT_SUB_APP_ID)
        if as_json:
            click.echo(json.dumps(pair.to_dict()))
        else:
            click.echo(
                f"SecretId:  {pair.secret_id}\nSecretKey: {pair.secret_key}\n"
                f"SubAppId:  {pair.sub_app_id}"
            )

    @keys.command("list")
    @settings_options(data_only)
    @click.option("--json", "as_json", is_flag=True)
    def keys_list(as_json: bool, **options: Any) -> None:
        """List key pairs (SecretId, SubAppId, state; never the SecretKey)."""
        from anigraph.server import open_context
        from anigraph.services import keys as key_service

        rows = key_service.list_keys(open_context(_settings(options)))
        if as_json:
            click.echo(json.dumps(rows))
            return
        for row in rows:
            state = "revoked" if row["Revoked"] else "active"
            click.echo(f"{row['SecretId']}  SubAppId {row['SubAppId']}  {state}")

    @keys.command("revoke")
    @settings_options(data_only)
    @click.argument("secret_id")
    def keys_revoke(secret_id: str, **options: Any) -> None:
        """Revoke a key pair: its requests fail from now on."""
        from anigraph.server import open_context
        from anigraph.services import keys as key_service

        if not key_service.revoke_key(open_context(_settings(options)), secret_id):
            _fail(f"no active key {secret_id}")
        click.echo(f"revoked {secret_id}")

    @app.group()
    def media() -> None:
        """Media items in the service's store."""

    @media.command("import")
    @settings_options((*data_only, "public_url", "host", "port"))
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--sub-app-id", type=click.IntRange(1, 2**63 - 1), default=None)
    @click.option("--name", help="Media name; default: the file name without extension.")
    @click.option("--json", "as_json", is_flag=True, help='Print {"FileId": ...}.')
    def media_import(
        file: Path, sub_app_id: int | None, name: str | None, as_json: bool, **options: Any
    ) -> None:
        """Store a local video as a media item (probed: BasicInfo and MetaData filled)."""
        from anigraph.domain.errors import TaskError
        from anigraph.server import open_context
        from anigraph.services import keys as key_service
        from anigraph.services import media as media_service

        ctx = open_context(_settings(options))
        target = sub_app_id or key_service.DEFAULT_SUB_APP_ID
        key_service.ensure_sub_app(ctx, target)
        try:
            file_id = media_service.import_file(ctx, target, file, name=name)
        except TaskError as exc:
            _fail(str(exc))
            return
        click.echo(json.dumps({"FileId": file_id}) if as_json else file_id)
