"""``anigraph media``: media items in the service's store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from anigraph.cli.shared import DATA_ONLY, fail, settings_from, settings_options


def register(app: click.Group) -> None:
    @app.group()
    def media() -> None:
        """Media items in the service's store."""

    @media.command("import")
    @settings_options((*DATA_ONLY, "public_url", "host", "port"))
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

        ctx = open_context(settings_from(options))
        target = sub_app_id or key_service.DEFAULT_SUB_APP_ID
        key_service.ensure_sub_app(ctx, target)
        try:
            file_id = media_service.import_file(ctx, target, file, name=name)
        except TaskError as exc:
            fail(str(exc))
        click.echo(json.dumps({"FileId": file_id}) if as_json else file_id)
