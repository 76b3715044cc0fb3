"""docs/API.md names every route the service serves, and only those.

Each route is a heading ``### `METHOD /path` ``; a route served but left out of
``/openapi.json`` ends its heading with "— outside /openapi.json". The schema comes from the
app itself, built in-process (no Ray, no service).
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.routing import APIRoute
from starlette.routing import Mount

from api.edge import create_app
from api.hot_routes import HOT_ROUTES

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "API.md"
ROUTE_HEADING = re.compile(r"^### `([A-Z]+) (/\S*)`(.*)$")
OUTSIDE_SCHEMA = "outside /openapi.json"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

Route = tuple[str, str]


def documented_routes() -> tuple[set[Route], set[Route]]:
    """(routes documented as in the schema, routes documented as outside it)."""
    in_schema: set[Route] = set()
    outside: set[Route] = set()
    for line in API_DOC.read_text(encoding="utf-8").splitlines():
        heading = ROUTE_HEADING.match(line)
        if heading:
            method, path, rest = heading.groups()
            (outside if OUTSIDE_SCHEMA in rest else in_schema).add((method, path))
    return in_schema, outside


def schema_routes(fastapi_app) -> set[Route]:
    return {
        (method.upper(), path)
        for path, operations in fastapi_app.openapi()["paths"].items()
        for method in operations
        if method in HTTP_METHODS
    }


def routes_outside_schema(fastapi_app) -> set[Route]:
    """What the app serves without declaring it: hidden routes, mounts, the edge's own routes."""
    served: set[Route] = set()
    for route in fastapi_app.routes:
        if isinstance(route, APIRoute) and not route.include_in_schema:
            served |= {(method, route.path) for method in route.methods - {"HEAD"}}
        elif isinstance(route, Mount):
            served.add(("GET", f"{route.path}/{{path}}"))
    return served | set(HOT_ROUTES)


def differences(documented: set[Route], served: set[Route], where: str) -> list[str]:
    def listed(routes: set[Route]) -> str:
        return "\n".join(f"    {method} {path}" for method, path in sorted(routes, key=lambda r: (r[1], r[0])))

    lines = []
    if served - documented:
        lines.append(f"{where} but missing from docs/API.md:\n{listed(served - documented)}")
    if documented - served:
        lines.append(f"in docs/API.md but not {where}:\n{listed(documented - served)}")
    return lines


def test_docs_api_md_lists_exactly_the_routes_of_openapi_json():
    fastapi_app = create_app().app.app
    documented, _ = documented_routes()
    served = schema_routes(fastapi_app)
    assert documented, f"no route headings like ### `GET /api/seats` found in {API_DOC}"
    problems = differences(documented, served, "in /openapi.json")
    assert not problems, "docs/API.md and /openapi.json disagree:\n" + "\n".join(problems)


def test_routes_documented_as_outside_the_schema_are_served_and_undeclared():
    fastapi_app = create_app().app.app
    _, outside = documented_routes()
    served = routes_outside_schema(fastapi_app) - schema_routes(fastapi_app)
    problems = differences(outside, served, "served outside /openapi.json")
    assert not problems, f"routes marked '{OUTSIDE_SCHEMA}' in docs/API.md:\n" + "\n".join(problems)
