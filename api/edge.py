"""The replica's ASGI edge: what every request passes before FastAPI, and the reads that skip it.

On this hot path FastAPI's routing, dependency solving and response validation cost more
than answering the seat map or a queue poll (../shared/DESIGN.md: principle 1). Those reads
arrive by the hundred thousand, so ``HotReads`` answers them with the very functions their
routes call, and FastAPI still declares them for ``/openapi.json`` and serves everything else.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api import errors, routes
from api.metrics import Metrics

WEB = Path(__file__).resolve().parent.parent / "web"
BODY_BYTES_MAX = 16 * 1024

HOT_READS = {
    "/api/seats": lambda scope: routes.seat_map_answer(header(scope, b"if-none-match"), header(scope, b"accept-encoding")),
    "/api/queue": lambda scope: routes.queue_answer(header(scope, b"authorization"), query_parameter(scope, "ticket")),
    "/static-ceiling": lambda scope: routes.constant_answer(),
}


def header(scope, name: bytes) -> str | None:
    """The request header ``name`` (lower case), read from the scope as Starlette would."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def query_parameter(scope, name: str) -> str | None:
    """The last value of ``name`` in the query string, as Starlette's ``QueryParams`` gives it."""
    found = None
    for key, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        if key == name:
            found = value
    return found


class HotReads:
    """``GET`` on a path of ``HOT_READS``: answered here, errors as the same problem bodies."""

    def __init__(self, app: FastAPI):
        self.app = app
        # what Starlette's router would have put in ``scope["route"]``, for the per-route metrics
        self.routes = {path: SimpleNamespace(path=path) for path in HOT_READS}

    async def __call__(self, scope, receive, send):
        answer = HOT_READS.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "GET" else None
        if answer is None:
            return await self.app(scope, receive, send)
        scope["route"] = self.routes[scope["path"]]
        try:
            response = await answer(scope)
        except Exception as error:
            response = errors.answer_for(error, "GET", scope["path"])
        await response(scope, receive, send)


class BoundAndMeasured:
    """Refuse oversized bodies before reading them, and time every request per route.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` costs a task and a stream
    per request, which on this hot path is a large share of a trivial request's time.
    """

    def __init__(self, app: HotReads, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > BODY_BYTES_MAX):
                response = errors.problem(413, "body_too_large", f"request bodies are at most {BODY_BYTES_MAX} bytes")
                return await response(scope, receive, send)
        routes.start_background()
        started = time.perf_counter()
        status = 500

        async def send_and_note(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            self.metrics.observe(getattr(route, "path", "unmatched"), scope["method"], status, time.perf_counter() - started)


def create_app() -> BoundAndMeasured:
    """FastAPI with every route, wrapped by the edge: the outermost ASGI app Serve runs, so the
    hot reads skip FastAPI's own middleware stack as well as its routing."""
    app = FastAPI(title="Encore", version="0.2.0", description="Concert ticket booking: queue, seat map, holds, payments.")
    errors.install(app)
    app.include_router(routes.router)
    app.state.metrics = Metrics()

    if WEB.is_dir():
        app.mount("/static", StaticFiles(directory=WEB), name="static")

        @app.get("/", include_in_schema=False)
        async def page():
            return FileResponse(WEB / "index.html", headers={"Cache-Control": "no-cache"})

    return BoundAndMeasured(HotReads(app), app.state.metrics)
