"""Command line of the events area: ``events dead-letters`` and ``events replay``.

Both work on the database directly, so they run beside a live server: a replayed event is
pending again, and the server's dispatcher sends it at its next look (about a second).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from anigraph.cli.shared import DATA_ONLY, settings_from, settings_options


def register(app: click.Group) -> None:
    """Add this area's commands to ``app``."""

    @app.group()
    def events() -> None:
        """Event notification: PUSH callbacks that could not be delivered."""

    @events.command("dead-letters")
    @settings_options(DATA_ONLY)
    @click.option("--sub-app-id", type=click.IntRange(1, 2**63 - 1), default=None)
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
    def dead_letters(sub_app_id: int | None, as_json: bool, **options: Any) -> None:
        """List callbacks whose retries ran out (oldest first)."""
        from anigraph.notify import dead_letters as service
        from anigraph.server import open_context

        rows = service.list_dead(open_context(settings_from(options)), sub_app_id)
        if as_json:
            click.echo(json.dumps(rows))
            return
        if not rows:
            click.echo("no dead letters")
        for row in rows:
            click.echo(
                f"{row['EventId']}  SubAppId {row['SubAppId']}  {row['EventType']}  "
                f"created {row['CreateTime']}  {row['Attempts']} attempts  {row['LastError']}"
            )

    @events.command("replay")
    @settings_options(DATA_ONLY)
    @click.argument("event_id", type=click.IntRange(1), required=False)
    @click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
    @click.option("--sub-app-id", type=click.IntRange(1, 2**63 - 1), default=None)
    def replay(
        event_id: int | None, replay_all: bool, sub_app_id: int | None, **options: Any
    ) -> None:
        """Send dead letter EVENT_ID (or --all) again, with a fresh retry budget."""
        from anigraph.notify import dead_letters as service
        from anigraph.server import open_context

        if (event_id is None) == (not replay_all):
            raise click.UsageError("give EVENT_ID or --all (not both)")
        ctx = open_context(settings_from(options))
        if replay_all:
            count = service.replay_all(ctx, sub_app_id)
            click.echo(f"replaying {count} dead letter{'s' if count != 1 else ''}")
            return
        assert event_id is not None
        try:
            service.replay(ctx, event_id)
        except service.NotDead:
            click.echo(f"event {event_id} is not a dead letter", err=True)
            sys.exit(1)
        click.echo(f"replaying event {event_id}")
