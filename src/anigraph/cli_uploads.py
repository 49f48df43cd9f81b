"""Command line of the uploads area."""

from __future__ import annotations

import click


def register(app: click.Group) -> None:
    """Add this area's commands to ``app``."""
