"""``anigraph keys``: API key pairs, each belonging to one sub-application."""

from __future__ import annotations

import json
from typing import Any

import click

from anigraph.cli.shared import DATA_ONLY, fail, settings_from, settings_options


def register(app: click.Group) -> None:
    @app.group()
    def keys() -> None:
        """API key pairs; each belongs to one sub-application."""

    @keys.command("create")
    @settings_options(DATA_ONLY)
    @click.option("--sub-app-id", type=click.IntRange(1, 2**63 - 1), default=None)
    @click.option("--json", "as_json", is_flag=True, help="Print the key pair as JSON.")
    def keys_create(sub_app_id: int | None, as_json: bool, **options: Any) -> None:
        """Create a key pair (and its sub-application if new)."""
        from anigraph.server import open_context
        from anigraph.services import keys as key_service

        ctx = open_context(settings_from(options))
        pair = key_service.create_key(ctx, sub_app_id or key_service.DEFAULT_SUB_APP_ID)
        if as_json:
            click.echo(json.dumps(pair.to_dict()))
        else:
            click.echo(
                f"SecretId:  {pair.secret_id}\nSecretKey: {pair.secret_key}\n"
                f"SubAppId:  {pair.sub_app_id}"
            )

    @keys.command("list")
    @settings_options(DATA_ONLY)
    @click.option("--json", "as_json", is_flag=True)
    def keys_list(as_json: bool, **options: Any) -> None:
        """List key pairs (SecretId, SubAppId, state; never the SecretKey)."""
        from anigraph.server import open_context
        from anigraph.services import keys as key_service

        rows = key_service.list_keys(open_context(settings_from(options)))
        if as_json:
            click.echo(json.dumps(rows))
            return
        for row in rows:
            state = "revoked" if row["Revoked"] else "active"
            click.echo(f"{row['SecretId']}  SubAppId {row['SubAppId']}  {state}")

    @keys.command("revoke")
    @settings_options(DATA_ONLY)
    @click.argument("secret_id")
    def keys_revoke(secret_id: str, **options: Any) -> None:
        """Revoke a key pair: its requests fail from now on."""
        from anigraph.server import open_context
        from anigraph.services import keys as key_service

        if not key_service.revoke_key(open_context(settings_from(options)), secret_id):
            fail(f"no active key {secret_id}")
        click.echo(f"revoked {secret_id}")
