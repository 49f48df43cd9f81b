"""The action table: each action family module registers its actions here with a schema."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anigraph.api.params import Object
from anigraph.context import Context


@dataclass(frozen=True)
class Caller:
    """Who is asking: the key's SecretId, its sub-application and the request's id."""

    secret_id: str
    sub_app_id: int
    request_id: str


Handler = Callable[[Context, Caller, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Action:
    name: str
    schema: Object
    handler: Handler


ACTIONS: dict[str, Action] = {}


def action(name: str, schema: Object) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        if name in ACTIONS:
            raise RuntimeError(f"action {name} registered twice")
        ACTIONS[name] = Action(name, schema, handler)
        return handler

    return register


def load_actions() -> dict[str, Action]:
    """Import every action family so that its actions are registered."""
    from anigraph.api.actions import (  # noqa: F401
        events,
        media,
        procedures,
        processing,
        pull,
        tasks,
        templates,
        uploads,
    )

    return ACTIONS
