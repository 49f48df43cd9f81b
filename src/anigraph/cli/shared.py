"""What the command modules share: one flag per setting, and the one-line failure."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

import click

from anigraph.settings import Settings, env_name, load

DATA_ONLY = ("data_dir", "db")
"""The settings of commands that only open the database (and the data folder)."""

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


def settings_from(options: dict[str, Any]) -> Settings:
    """The settings from a command's ``settings_options`` flags (removed from ``options``)."""
    config = options.pop("config", None)
    try:
        return load(options, config)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def fail(message: str) -> NoReturn:
    """Print the first line of ``message`` on stderr and exit with status 1."""
    click.echo(message.splitlines()[0] if message else "error", err=True)
    sys.exit(1)
