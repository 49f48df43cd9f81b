"""The web console: hand-written ES modules and CSS served at ``/console``.

Nothing is built: ``static/`` holds ``index.html``, ``css/`` and ``js/`` (one module per page).
The console is a plain API client: it signs every call with TC3-HMAC-SHA256 in the browser and
posts it to ``/``, exactly like the SDKs, so it needs no server-side state or routes of its own.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

STATIC_DIR: Final = Path(__file__).parent / "static"
NO_CACHE: Final = {"Cache-Control": "no-cache"}

# Some systems' mime tables map .js to text/plain or lack .mjs; ES modules need a JS type.
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/css", ".css")


class _NoCacheStatic(StaticFiles):
    """Static files revalidated on every load (ETag / Last-Modified still give 304s)."""

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(NO_CACHE)
        return response


async def _index(_request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=NO_CACHE)


def console_routes() -> list[BaseRoute]:
    """``/console`` and ``/console/`` (the page) and ``/console/static/...`` (its assets)."""
    return [
        Route("/console", _index, methods=["GET", "HEAD"]),
        Route("/console/", _index, methods=["GET", "HEAD"]),
        Mount("/console/static", app=_NoCacheStatic(directory=STATIC_DIR), name="console-static"),
    ]
