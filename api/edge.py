"""The replica's ASGI edge: what every request passes before FastAPI (a bound on its body, the
edge's headers on its answer, its time per route), then the hot routes (``api.hot_routes``),
then FastAPI with every route (``api.routes``)."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api import errors, metrics, routes
from api.hot_routes import HotRoutes, start_background
from encore.settings import BODY_BYTES_MAX

WEB = Path(__file__).resolve().parent.parent / "web"

PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# FastAPI's /docs and /redoc load Swagger UI and ReDoc from a CDN and start them with an inline script
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})


def _encoded(headers: dict[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items())


def _security_headers(policy: str) -> tuple[tuple[bytes, bytes], ...]:
    return _encoded({"Content-Security-Policy": policy, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                     "Referrer-Policy": "same-origin"})


SECURITY_HEADERS = _security_headers(PAGE_POLICY)
DOCS_SECURITY_HEADERS = _security_headers(DOCS_POLICY)
NO_STORE = _encoded({"Cache-Control": "no-store"})


def edge_headers(headers, security: tuple, private: bool) -> list:
    """A response's headers with the edge's own: ``security`` unless the response brings its own
    Content-Security-Policy (the provider's checkout page pins its inline code by hash), and
    ``Cache-Control: no-store`` for a ``private`` answer that says nothing about caching.

    An HTTP cache will sit in front: whatever answers a request with credentials, or a write,
    is someone's own, and must not be stored there for the next person.
    """
    has_policy = has_cache_control = False
    for name, _ in headers:
        if name == b"content-security-policy":
            has_policy = True
        elif name == b"cache-control":
            has_cache_control = True
    added = () if has_policy else security
    if private and not has_cache_control:
        added = (*added, *NO_STORE)
    return [*headers, *added]


def bounded(receive):
    """``receive`` that refuses a body past ``BODY_BYTES_MAX`` as it arrives, whoever reads it
    and whether or not a length was announced: nothing past the bound is read."""
    received = 0

    async def receive_within_bound():
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > BODY_BYTES_MAX:
                raise errors.BodyTooLarge
        return message

    return receive_within_bound


class BoundAndMeasured:
    """Refuse oversized bodies before reading past the bound, add the edge's headers to every
    answer (``edge_headers``), and time every request per route.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` costs a task and a stream
    per request, which on this hot path is a large share of a trivial request's time.
    """

    def __init__(self, app: HotRoutes):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        private = scope["method"] not in ("GET", "HEAD")
        announced_too_long = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                private = True
            elif name == b"content-length" and (not value.isdigit() or int(value) > BODY_BYTES_MAX):
                announced_too_long = True
        security = DOCS_SECURITY_HEADERS if scope["path"] in DOCS_PATHS else SECURITY_HEADERS
        status = 500

        async def send_and_note(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = edge_headers(message.get("headers", ()), security, private)
            await send(message)

        if announced_too_long:
            return await errors.too_large()(scope, receive, send_and_note)
        start_background()
        started = time.perf_counter()
        try:
            await self.app(scope, bounded(receive), send_and_note)
        finally:
            route = scope.get("route")
            metrics.replica_metrics.observe(
                getattr(route, "path", "unmatched"), scope["method"], status, time.perf_counter() - started)


def create_app() -> BoundAndMeasured:
    """FastAPI with every route, wrapped by the edge: the outermost ASGI app Serve runs, so the
    hot routes skip FastAPI's own middleware stack as well as its routing."""
    app = FastAPI(title="Encore", version="0.7.1", description="Concert ticket booking: queue, seat map, holds, payments.")
    errors.install(app)
    app.include_router(routes.router)

    if WEB.is_dir():
        app.mount("/static", StaticFiles(directory=WEB), name="static")

        @app.get("/", include_in_schema=False)
        async def page():
            return FileResponse(WEB / "index.html", headers={"Cache-Control": "no-cache"})

    return BoundAndMeasured(HotRoutes(app))
