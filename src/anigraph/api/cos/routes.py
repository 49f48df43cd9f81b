"""Where COS requests are told apart from API calls on the one listener."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from anigraph.api.cos.endpoint import CosEndpoint
from anigraph.context import Context

COS_METHODS: Final = ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"]
_OBJECT_PATH: Final = re.compile(r"/[0-9]+(?:/|$)")
"""Digits-first paths, also ``/<digits>`` alone: left unclaimed, Starlette would answer it with a
307 to ``/<digits>/`` (redirect_slashes), and the SDK does not follow redirects."""


class _CosRoute(Route):
    """A route that claims a request only when ``accept(scope)`` says it is a COS request, so
    it can share paths with the API (``/``) and leave every other request to the other routes.
    """

    def __init__(
        self,
        path: str,
        endpoint: Callable[[Request], Awaitable[Response]],
        accept: Callable[[Scope], bool],
    ) -> None:
        super().__init__(path, endpoint, methods=COS_METHODS)
        self._accept = accept

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.NONE or not self._accept(scope):
            return Match.NONE, {}
        return match, child


def _is_object_request(scope: Scope) -> bool:
    # Store keys start with the sub-application id (``Store.new_key``); nothing else served on
    # this listener does, so digits-first paths are COS object requests whatever the method.
    return _OBJECT_PATH.match(str(scope.get("path", ""))) is not None


def _is_bucket_request(scope: Scope) -> bool:
    # ``GET /?uploads...`` (ListMultipartUploads); the API at ``/`` never has that parameter.
    if scope.get("method") not in ("GET", "HEAD", "OPTIONS"):
        return False
    query = bytes(scope.get("query_string", b""))
    if b"uploads" not in query:  # the common case, API calls: no parsing
        return False
    raw = query.decode("latin-1")
    return any(name == "uploads" for name, _ in parse_qsl(raw, keep_blank_values=True))


def cos_routes(ctx: Context) -> list[Route]:
    """The COS endpoint's routes; put them before the API's ``/`` route."""
    endpoint = CosEndpoint(ctx)
    return [
        _CosRoute("/", endpoint.bucket_request, _is_bucket_request),
        _CosRoute("/{key:path}", endpoint.object_request, _is_object_request),
    ]
