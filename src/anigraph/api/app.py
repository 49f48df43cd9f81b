"""The HTTP application: the API endpoint ``/``, output files, health and metrics."""

from __future__ import annotations

import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from anigraph.api import envelope
from anigraph.api.bodies import read_capped
from anigraph.api.cos import cos_routes
from anigraph.api.dispatch import handle
from anigraph.api.errors import request_size_limit_exceeded
from anigraph.api.files import files_route
from anigraph.api.ugc import ugc_routes
from anigraph.console import console_routes
from anigraph.context import Context
from anigraph.metrics import Metrics

log = logging.getLogger("anigraph.api")

API_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


def _json(body: bytes) -> Response:
    # Exactly "application/json": the SDK ignores Error otherwise (spec 1.6).
    return Response(body, status_code=200, headers={"Content-Type": envelope.CONTENT_TYPE})


def _browser_visit(request: Request) -> bool:
    """A person typing the service's address: a GET with no API parameters, no signature, from a
    client that wants HTML. An SDK never sends that, so the redirect cannot change its answers."""
    return (
        request.method == "GET"
        and not request.url.query
        and "authorization" not in request.headers
        and "text/html" in request.headers.get("accept", "")
    )


def create_app(ctx: Context, metrics: Metrics) -> Starlette:
    async def api(request: Request) -> Response:
        if _browser_visit(request):
            return RedirectResponse("/console", status_code=303)
        request_id = envelope.new_request_id()
        body = await read_capped(request, ctx.settings.max_body_bytes)
        if body is None:
            error = request_size_limit_exceeded(ctx.settings.max_body_bytes)
            metrics.api_requests.labels("-", error.code).inc()
            return _json(envelope.failure(request_id, error))
        outcome = await run_in_threadpool(
            handle,
            ctx,
            request.method,
            request.url.query,
            dict(request.headers),
            body,
            request_id,
        )
        metrics.api_requests.labels(outcome.action, outcome.code).inc()
        return _json(outcome.body)

    def healthz(_request: Request) -> Response:
        try:
            with ctx.db.session() as session:
                session.connection().exec_driver_sql("SELECT 1")
        except Exception as exc:
            log.warning("health check failed: %s", exc)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    def prometheus(_request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes = [
        *cos_routes(ctx),
        Route("/", api, methods=API_METHODS),
        *ugc_routes(ctx),
        files_route(ctx.store),
        *console_routes(),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
    return Starlette(routes=routes)
