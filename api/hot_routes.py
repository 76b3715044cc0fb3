"""The hot routes, answered before FastAPI: the seat map, the queue's status and polls, holds.

On this path FastAPI's routing, dependency solving and response validation cost more than
answering the seat map, a queue poll or a refused hold (docs/DESIGN.md: principle 1). Those
arrive by the hundred thousand, so ``HotRoutes`` answers them here, and ``api.routes``
declares the same routes to FastAPI (for ``/openapi.json``, and for requests that reach it)
by calling these very functions: one answer, two ways in. The checks a member's write passes
are written once too (``admitted_writer``), for FastAPI's dependency and the hot hold alike.
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from urllib.parse import parse_qsl

from fastapi import FastAPI, Response
from pydantic import BaseModel, ValidationError

from api import errors, models
from api.auth import Caller
from api.errors import ApiError, invalid_request
from api.idempotency import request_fingerprint
from api.models import iso
from api.service import BookingService

TICKET_CHARS_MAX = 2048

_service: BookingService | None = None


def use_service(booking_service: BookingService) -> None:
    """Give this process's routes their service. Serve runs a copy of the app object in each
    replica, so the service lives here, in the module, rather than on ``app.state``."""
    global _service
    _service = booking_service


def start_background() -> None:
    if _service is not None:
        _service.start_background()


async def service() -> BookingService:
    if _service is None:
        raise ApiError(503, "starting", "the service is starting", {"Retry-After": "1"})
    return _service


def admitted_writer(svc: BookingService, authorization: str | None, admission_token: str | None) -> Caller:
    """The member behind a write: a session (401), then an admission (403), then the write
    limit (429), in that order on every path, so a refused write reads the same however it came."""
    who = svc.tokens.caller(authorization)
    svc.tokens.check_admission(admission_token, who)
    svc.rate_limiter.check(who.member_id, time.time())
    return who


class JSONBytes(Response):
    """A JSON body rendered already: Starlette's ``Response`` less its per-request header
    assembly, for the answers that arrive by the hundred thousand (polls, the ceiling)."""

    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200):
        self.status_code = status_code
        self.body = body
        self.background = None
        self.raw_headers = [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]


async def queue_answer(authorization: str | None, ticket: str | None) -> Response:
    svc = await service()
    if not ticket or len(ticket) > TICKET_CHARS_MAX:
        svc.tokens.caller(authorization)  # 401 before 422, in FastAPI's order
        raise ApiError(422, "validation_error", "the request is not valid",
                       errors=[{"loc": ["query", "ticket"], "msg": f"a ticket of 1 to {TICKET_CHARS_MAX} characters is required"}])
    return JSONBytes((await svc.poll_queue(authorization, ticket)).render())


async def queue_status_answer(if_none_match: str | None) -> Response:
    """The same bytes for everyone, for up to a second: what the HTTP cache in front serves
    to the whole waiting room, asking a replica about once a second."""
    view = (await service()).queue_view
    body, etag = view.status_body, view.status_etag
    headers = {"ETag": etag, "Cache-Control": LIVE_CACHE_CONTROL, "X-Accel-Expires": until_this_second_ends()}
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


# Browsers and caches keep the seat map and the queue status a second; an HTTP cache may serve
# an expired copy one more second while it fetches the next. Sent before X-Accel-Expires: see
# encore/cache.py, whose nginx reads the extension only in that order.
LIVE_CACHE_CONTROL = "public, max-age=1, stale-while-revalidate=1"


def until_this_second_ends() -> str:
    """For the HTTP cache in front (nginx, which counts in whole seconds and drops this header
    before it reaches a client): keep this answer until the current second ends, so that no
    copy it serves is more than a second old."""
    return f"@{int(time.time())}"


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match compares weakly (RFC 9110): ``W/"x"`` matches ``"x"``."""
    strong = etag.removeprefix("W/")
    return if_none_match is not None and strong in [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]


async def seat_map_answer(if_none_match: str | None, accept_encoding: str | None) -> Response:
    """The replica's current map, gzip-compressed when the client takes it (the weak ETag of
    that variant matches the same version, as If-None-Match compares weakly)."""
    seat_map = (await service()).seat_map
    compressed = accepts_gzip(accept_encoding)
    headers = {"ETag": seat_map.etag_gzip if compressed else seat_map.etag, "Cache-Control": LIVE_CACHE_CONTROL,
               "Vary": "Accept-Encoding", "X-Accel-Expires": until_this_second_ends()}
    if etag_matches(if_none_match, seat_map.etag):
        return Response(status_code=304, headers=headers)
    if compressed:
        headers["Content-Encoding"] = "gzip"
        return Response(seat_map.body_gzip, media_type="application/json", headers=headers)
    return Response(seat_map.body, media_type="application/json", headers=headers)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """RFC 9110: gzip is acceptable unless its weight is 0; ``*`` stands for codings not named."""
    weights = {}
    for coding in (accept_encoding or "").lower().split(","):
        name, _, params = coding.partition(";")
        weights[name.strip()] = _weight(params)
    return weights.get("gzip", weights.get("*", 0.0)) > 0


def _weight(params: str) -> float:
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


async def hold_answer(authorization: str | None, admission_token: str | None, key: str | None,
                      content_type: str | None, body: bytes) -> Response:
    """``POST /api/holds``: the writer's checks (``admitted_writer``), then the body, as FastAPI
    orders its dependencies and body. At 13 buyers per seat the sale is mostly holds, and
    FastAPI's routing and dependency solving cost them more than deciding them does."""
    svc = await service()
    who = admitted_writer(svc, authorization, admission_token)
    return await hold_once(svc, who, read_json_body(models.HoldIn, content_type, body), key)


async def hold_once(svc: BookingService, who: Caller, body: models.HoldIn, key: str | None) -> Response:
    """Most holds of a busy sale are refused before their block is asked: those are remembered
    under their key in one transaction, the others after their block decides."""
    async def work():
        booking = await svc.hold(who.member_id, body.seat_ids)
        return 201, models.HoldOut(
            booking_id=booking.booking_id, seat_ids=list(booking.seat_ids), status=booking.status.value,
            expires_at=iso(booking.expires_at),
        ).model_dump()

    fingerprint = request_fingerprint("POST", "/api/holds", body.model_dump())
    return await svc.idempotency.run_once(who.member_id, key, fingerprint, work, svc.hold_refusal(body.seat_ids))


def read_json_body(model: type[BaseModel], content_type: str | None, body: bytes) -> BaseModel:
    """The body as FastAPI reads it for a model parameter: JSON when the type says JSON (or says
    nothing), anything else left as bytes for the model to refuse; refusals are the same 422."""
    value = None
    if body:
        value = body
        media_type = (content_type or "application/json").partition(";")[0].strip().lower()
        if media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json")):
            try:
                value = json.loads(body)
            except (UnicodeDecodeError, RecursionError):  # RecursionError: nested deeper than the decoder goes
                raise ApiError(400, "bad_request", "There was an error parsing the body") from None
            except json.JSONDecodeError as error:
                raise invalid_request([{"loc": ["body", error.pos], "msg": "JSON decode error"}]) from None
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise invalid_request([{"loc": ["body", *error_["loc"]], "msg": error_["msg"]} for error_ in error.errors()]) from None


async def constant_answer() -> Response:
    return JSONBytes(b'{"ok":true}')


HOT_ROUTES = {
    ("GET", "/api/seats"): lambda scope, body: seat_map_answer(
        header(scope, b"if-none-match"), header(scope, b"accept-encoding")),
    ("GET", "/api/queue/status"): lambda scope, body: queue_status_answer(header(scope, b"if-none-match")),
    ("GET", "/api/queue"): lambda scope, body: queue_answer(
        header(scope, b"authorization"), query_parameter(scope, "ticket")),
    ("POST", "/api/holds"): lambda scope, body: hold_answer(
        header(scope, b"authorization"), header(scope, b"x-admission-token"), header(scope, b"idempotency-key"),
        header(scope, b"content-type"), body),
    ("GET", "/static-ceiling"): lambda scope, body: constant_answer(),
}


def header(scope, name: bytes) -> str | None:
    """The request header ``name`` (lower case), read from the scope as Starlette would."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def query_parameter(scope, name: str) -> str | None:
    """The last value of ``name`` in the query string, as Starlette's ``QueryParams`` gives it
    (``parse_qsl``, blank values kept). A query with nothing to unquote, as every poll's is, is
    split directly: ``parse_qsl`` costs a poll more than finding its place in the line."""
    query = scope["query_string"].decode("latin-1")
    if "%" in query or "+" in query:
        pairs = parse_qsl(query, keep_blank_values=True)
    elif "&" not in query:
        pairs = [query.partition("=")[::2]] if query else []
    else:
        pairs = [part.partition("=")[::2] for part in query.split("&") if part]
    found = None
    for key, value in pairs:
        if key == name:
            found = value
    return found


async def read_body(receive) -> bytes:
    """The whole request body (``receive`` is the bounded one, so this stops past the bound)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class HotRoutes:
    """A method and path of ``HOT_ROUTES``: answered here, errors as the same problem bodies."""

    def __init__(self, app: FastAPI):
        self.app = app
        # what Starlette's router would have put in ``scope["route"]``, for the per-route metrics
        self.routes = {key: SimpleNamespace(path=key[1]) for key in HOT_ROUTES}

    async def __call__(self, scope, receive, send):
        key = (scope["method"], scope["path"]) if scope["type"] == "http" else None
        answer = HOT_ROUTES.get(key)
        if answer is None:
            return await self.app(scope, receive, send)
        scope["route"] = self.routes[key]
        try:
            body = await read_body(receive) if key[0] == "POST" else b""
            response = await answer(scope, body)
        except errors.BodyTooLarge:
            response = errors.too_large()
        except Exception as error:
            response = errors.answer_for(error, *key)
        await response(scope, receive, send)
