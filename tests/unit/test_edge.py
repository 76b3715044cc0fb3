"""The replica's ASGI edge without Ray: the hot routes answer exactly as their routes would.

The seat map, queue polls, holds and the static route skip FastAPI (``api.hot_routes.HotRoutes``),
so their headers, compression, 304s and error bodies are checked here, in-process, as well
as over real HTTP in the end-to-end tests; a refused hold is compared with FastAPI's answer.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from types import SimpleNamespace

import httpx
import pytest

from api import hot_routes, routes
from api import metrics as api_metrics
from api.auth import Tokens
from api.edge import BODY_BYTES_MAX, create_app
from api.hot_routes import accepts_gzip
from api.idempotency import IdempotencyLedger
from api.metrics import Metrics
from api.ratelimit import RateLimiter
from api.service import BookingService
from domain.errors import BookingNotFound
from encore.settings import Settings
from persistence import open_store
from tests.unit.replica import replica_service

SETTINGS = Settings(db_url="sqlite:///:memory:", secret_key="edge-test-secret")
BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}
UNCOMPRESSED = {"Accept-Encoding": "identity"}


def fake_service() -> BookingService:
    """A replica's service short of an actor or a store: a real seat map, queue view, tokens,
    rate limiter and idempotency checks, and a queue summary as the queue actor would send."""
    service = replica_service(SETTINGS)
    service.queue_view.update({"head": 11, "checkpoints": [(11, 1e12)], "rate": 100.0, "drawing": 0, "opened": True,
                               "opens_at": None, "epoch": 0})
    return service


@pytest.fixture
def edge(monkeypatch):
    monkeypatch.setattr(api_metrics, "replica_metrics", Metrics())
    app = create_app()
    service = fake_service()
    hot_routes.use_service(service)

    def request(method: str, path: str, through=app, **kwargs) -> httpx.Response:
        async def go():
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=through), base_url="http://edge") as client:
                return await client.request(method, path, **kwargs)
        return asyncio.run(go())

    fastapi = app.app.app  # behind the edge: what FastAPI itself would answer
    yield SimpleNamespace(request=request, service=service, metrics=api_metrics.replica_metrics, fastapi=fastapi)
    hot_routes.use_service(None)


@pytest.mark.parametrize("header, expected", [
    (None, False), ("identity", False), ("gzip", True), ("gzip, deflate, br", True), ("GZIP;q=0.5", True),
    ("br;q=1, gzip;q=0", False), ("*", True), ("gzip; q=0.000", False), ("*, gzip;q=0", False),
    ("*;q=0", False), ("identity, *;q=0.1", True), ("gzip;q=nonsense", False),
])
def test_gzip_is_sent_only_to_clients_that_take_it(header, expected):
    assert accepts_gzip(header) is expected


def test_the_seat_map_is_the_same_document_compressed_or_not(edge):
    plain = edge.request("GET", "/api/seats", headers=UNCOMPRESSED)
    compressed = edge.request("GET", "/api/seats", headers=BROWSER)
    assert plain.status_code == compressed.status_code == 200
    assert compressed.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert compressed.json() == plain.json() and set(plain.json()["status"]) == {"A"}
    assert int(compressed.headers["content-length"]) < len(plain.content) // 10
    assert plain.headers["etag"] == edge.service.seat_map.etag
    assert compressed.headers["etag"] == f"W/{plain.headers['etag']}"
    for answer in (plain, compressed):
        assert answer.headers["vary"] == "Accept-Encoding" and answer.headers["cache-control"] == "public, max-age=1, stale-while-revalidate=1"


@pytest.mark.parametrize("sent", ["strong", "weak", "in a list"])
def test_either_etag_of_the_current_map_gets_a_304(edge, sent):
    etag = edge.service.seat_map.etag
    if_none_match = {"strong": etag, "weak": f"W/{etag}", "in a list": f'"old", W/{etag}'}[sent]
    answer = edge.request("GET", "/api/seats", headers={**BROWSER, "If-None-Match": if_none_match})
    assert answer.status_code == 304 and answer.content == b"" and answer.headers["etag"] == f"W/{etag}"


def test_a_changed_map_is_sent_again(edge):
    etag = edge.service.seat_map.etag
    edge.service.seat_map._status[0:1] = b"S"
    edge.service.seat_map._render()
    answer = edge.request("GET", "/api/seats", headers={**UNCOMPRESSED, "If-None-Match": etag})
    assert answer.status_code == 200 and answer.json()["status"][0] == "S" and answer.headers["etag"] != etag


def test_a_map_read_before_a_change_is_rendered_again_after_it(edge):
    """The bytes are made at the first read of a version: a read of the old version must not
    leave them behind for the next."""
    seat_map = edge.service.seat_map
    before = {name: edge.request("GET", "/api/seats", headers=headers).json()["status"]
              for name, headers in (("gzip", BROWSER), ("identity", UNCOMPRESSED))}
    taken = "S" if before["identity"][1] != "S" else "H"
    seat_map._status[1:2] = taken.encode()
    seat_map._render()
    for headers in (BROWSER, UNCOMPRESSED):
        answer = edge.request("GET", "/api/seats", headers=headers)
        assert answer.json()["status"][1] == taken and answer.json()["version"] == seat_map.version


def test_a_poll_is_answered_from_the_ticket(edge):
    tokens = edge.service.tokens
    session = {"Authorization": f"Bearer {tokens.session(7, 'user')}"}
    ticket = tokens.ticket(7, 31, 0, 3600)
    answer = edge.request("GET", "/api/queue", params={"ticket": ticket}, headers=session)
    assert answer.status_code == 200
    assert answer.json() | {"eta_seconds": None} == {
        "ticket": ticket, "state": "waiting", "ahead": 20, "eta_seconds": None, "poll_after_ms": 1000, "admission_token": None,
    }


@pytest.mark.parametrize("case, status, code", [
    ("no session", 401, "unauthorized"),
    ("no ticket", 422, "validation_error"),
    ("a ticket too long", 422, "validation_error"),
    ("someone else's ticket", 403, "bad_ticket"),
    ("a forged ticket", 403, "bad_ticket"),
])
def test_a_bad_poll_gets_a_problem_body(edge, case, status, code):
    tokens = edge.service.tokens
    session = {"Authorization": f"Bearer {tokens.session(7, 'user')}"}
    params, headers = {"ticket": tokens.ticket(7, 31, 0, 3600)}, session
    if case == "no session":
        headers = {}
    elif case == "no ticket":
        params = {}
    elif case == "a ticket too long":
        params = {"ticket": "x" * (hot_routes.TICKET_CHARS_MAX + 1)}
    elif case == "someone else's ticket":
        params = {"ticket": tokens.ticket(8, 31, 0, 3600)}
    elif case == "a forged ticket":
        params = {"ticket": Tokens("another-secret-of-32-bytes-long", 3600, 600).ticket(7, 31, 0, 3600)}
    answer = edge.request("GET", "/api/queue", params=params, headers=headers)
    assert (answer.status_code, answer.json()["code"]) == (status, code)


def test_before_the_service_is_up_hot_routes_say_starting(edge):
    hot_routes.use_service(None)
    for path in ("/api/seats", "/api/queue?ticket=x"):
        answer = edge.request("GET", path, headers={"Authorization": "Bearer x"})
        assert (answer.status_code, answer.json()["code"], answer.headers["retry-after"]) == (503, "starting", "1")
    assert edge.request("GET", "/static-ceiling").json() == {"ok": True}


def test_oversized_bodies_are_refused_before_they_are_read(edge):
    answer = edge.request("POST", "/api/holds", content=b"x" * (BODY_BYTES_MAX + 1), headers={"Content-Type": "application/json"})
    assert (answer.status_code, answer.json()["code"]) == (413, "body_too_large")


HOLD_REFUSALS = {
    # case: (headers beyond a good session, admission and key; body)
    "no session": ({"Authorization": None}, b'{"seat_ids": [1]}'),
    "a forged session": ({"Authorization": "Bearer abc.def"}, b'{"seat_ids": [1]}'),
    "no admission": ({"X-Admission-Token": None}, b'{"seat_ids": [1]}'),
    "someone else's admission": ({"X-Admission-Token": "of member 8"}, b'{"seat_ids": [1]}'),
    "rate limited": ({"Authorization": "of member 9"}, b'{"seat_ids": [1]}'),
    "invalid JSON": ({}, b'{"seat_ids": [1,'),
    "not JSON at all": ({"Content-Type": "text/plain"}, b"seat_ids=1"),
    "JSON said otherwise": ({"Content-Type": "application/x-www-form-urlencoded"}, b'{"seat_ids": [1]}'),
    "no content type": ({"Content-Type": None}, b'{"seat_ids": "1"}'),
    "JSON but not an object": ({}, b"[1, 2]"),
    "no body": ({}, b""),
    "an extra field": ({}, b'{"seat_ids": [1], "price": 0}'),
    "a seat id is a word": ({}, b'{"seat_ids": ["one"]}'),
    "a seat id is true": ({}, b'{"seat_ids": [true]}'),
    "a seat id is digits in a string": ({}, b'{"seat_ids": ["13929"]}'),
    "a seat id is a float": ({}, b'{"seat_ids": [13929.0]}'),
    "too many seats for one request": ({}, json.dumps({"seat_ids": list(range(21))}).encode()),
    "not UTF-8": ({}, b'{"seat_ids": [1]}\xff'),
    "no idempotency key": ({"Idempotency-Key": None}, b'{"seat_ids": [1]}'),
    "a key too long": ({"Idempotency-Key": "k" * 65}, b'{"seat_ids": [1]}'),
}


@pytest.mark.parametrize("case", HOLD_REFUSALS)
def test_a_refused_hold_gets_what_fastapi_would_answer(edge, case):
    tokens = edge.service.tokens
    if case == "rate limited":
        edge.service.rate_limiter = RateLimiter(6)  # one write, then 429
        edge.service.rate_limiter.check(9, time.time())
    extra, body = HOLD_REFUSALS[case]
    named = {"of member 8": tokens.admission(8, 1, 0, time.time() + 60),
             "of member 9": f"Bearer {tokens.session(9, 'user')}"}
    headers = {"Authorization": f"Bearer {tokens.session(7, 'user')}", "X-Admission-Token": tokens.admission(7, 1, 0, time.time() + 60),
               "Idempotency-Key": "k1", "Content-Type": "application/json"}
    headers |= {name: named.get(value, value) for name, value in extra.items()}
    headers = {name: value for name, value in headers.items() if value is not None}
    if case == "rate limited":
        headers["X-Admission-Token"] = tokens.admission(9, 1, 0, time.time() + 60)

    ours = edge.request("POST", "/api/holds", content=body, headers=headers)
    theirs = edge.request("POST", "/api/holds", content=body, headers=headers, through=edge.fastapi)
    assert ours.status_code == theirs.status_code and ours.status_code in (400, 401, 403, 422, 429), (ours.text, theirs.text)
    assert ours.json()["code"] == theirs.json()["code"], (ours.text, theirs.text)
    assert ours.headers.get("retry-after") == theirs.headers.get("retry-after")
    assert ours.headers.get("www-authenticate") == theirs.headers.get("www-authenticate")
    if ours.status_code == 422:
        assert {tuple(e["loc"][:1]) for e in ours.json()["errors"]} == {("body",)}, ours.text


def test_a_body_without_a_length_is_still_bounded(edge):
    async def chunks():
        for _ in range(BODY_BYTES_MAX // 1024 + 1):
            yield b" " * 1024

    answer = edge.request("POST", "/api/holds", content=chunks(), headers={"Content-Type": "application/json"})
    assert (answer.status_code, answer.json()["code"]) == (413, "body_too_large")


def test_hot_routes_are_counted_under_their_route(edge):
    edge.request("GET", "/api/seats")
    edge.request("GET", "/api/queue")
    edge.request("GET", "/static-ceiling")
    counted = {key: count for key, count in edge.metrics._requests.items()}
    assert counted == {("/api/seats", "GET", 200): 1, ("/api/queue", "GET", 401): 1, ("/static-ceiling", "GET", 200): 1}


def test_the_schema_still_describes_the_hot_routes(edge):
    paths = edge.request("GET", "/openapi.json").json()["paths"]
    poll = {p["name"]: p for p in paths["/api/queue"]["get"]["parameters"]}
    assert poll["ticket"]["required"] is True and "if-none-match" in {
        p["name"] for p in paths["/api/seats"]["get"]["parameters"]}
    assert json.dumps(paths["/api/queue"]["get"]["responses"]["200"]).count("QueueOut") == 1


@pytest.mark.parametrize("path", ["/api/me/logs", "/api/admin/logs"])
@pytest.mark.parametrize("cursor", ["%C2%B2", "%D9%A3", "1%C2%B2", "0x10", "-1", "1234567890123456789"])
def test_a_cursor_this_service_did_not_give_out_is_refused(edge, path, cursor):
    admin = {"Authorization": f"Bearer {edge.service.tokens.session(1, 'admin')}"}
    answer = edge.request("GET", f"{path}?cursor={cursor}", headers=admin)
    assert (answer.status_code, answer.json()["code"]) == (422, "bad_cursor"), answer.text


@pytest.mark.parametrize("path", ["/api/members", "/api/sessions", "/api/holds", "/api/payments/mockpay/callback"])
def test_a_long_body_without_a_length_is_refused_before_its_end_on_every_route(edge, path):
    chunk, sent = b" " * 1024, []

    async def five_megabytes():
        for _ in range(5 * 1024):
            sent.append(len(chunk))
            yield chunk

    answer = edge.request("POST", path, content=five_megabytes(), headers={"Content-Type": "application/json"})
    assert (answer.status_code, answer.json()["code"]) == (413, "body_too_large"), answer.text
    assert sum(sent) <= BODY_BYTES_MAX + len(chunk), "read no further than the bound"


@pytest.mark.parametrize("path", ["/api/members", "/api/sessions", "/api/holds"])
def test_deeply_nested_json_is_refused_as_a_problem(edge, path):
    tokens = edge.service.tokens
    headers = {"Authorization": f"Bearer {tokens.session(7, 'user')}", "X-Admission-Token": tokens.admission(7, 1, 0, time.time() + 60),
               "Idempotency-Key": "deep", "Content-Type": "application/json"}
    answer = edge.request("POST", path, content=b"[" * 5000 + b"]" * 5000, headers=headers)
    assert 400 <= answer.status_code < 500 and answer.json()["code"] in ("bad_request", "validation_error"), answer.text


def assert_security_headers(answer: httpx.Response) -> None:
    policy = answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy, policy
    assert answer.headers["x-frame-options"] == "DENY" and answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] in ("same-origin", "no-referrer", "strict-origin-when-cross-origin")
    assert len(answer.headers.get_list("content-security-policy")) == 1


@pytest.mark.parametrize("method, path", [
    ("GET", "/"), ("GET", "/static/app.js"), ("GET", "/static/css/app.css"), ("GET", "/api/seats"), ("GET", "/api/venue"),
    ("GET", "/api/queue?ticket=x"), ("POST", "/api/holds"), ("GET", "/api/me"), ("GET", "/static-ceiling"),
    ("GET", "/openapi.json"), ("GET", "/no/such/page"), ("GET", "/docs"),
])
def test_every_answer_carries_the_security_headers(edge, method, path):
    edge.service.venue_out = routes.models.VenueOut(seats=1, sections=[], block_rows=1, hold_seconds=1, max_seats_per_member=4,
                                                    price_per_seat=1, providers=[])
    answer = edge.request(method, path)
    assert answer.status_code < 500, answer.text
    assert_security_headers(answer)


def test_the_page_policy_allows_what_the_page_loads_and_the_docs_theirs(edge):
    page = edge.request("GET", "/")
    assert "<script type=\"module\" src=\"/static/app.js\">" in page.text
    policy = page.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy and "img-src 'self' data:" in policy
    docs = edge.request("GET", "/docs")
    assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"] and "swagger-ui" in docs.text


def test_the_checkout_page_keeps_its_own_policy(edge):
    from payments import CHECKOUT_PAGE_HEADERS, providers_from_settings
    from domain.payment import Payment, PaymentStatus

    async def payment_of(provider, payment_id):
        return Payment(payment_id, "b1", 7, provider, 110000, PaymentStatus.PENDING, 1.0, 1.0)

    async def no_booking(booking_id):
        return None

    edge.service.providers = providers_from_settings(["mockpay"], SETTINGS.secret_key, 0, 0)
    edge.service.payment_of, edge.service.venue = payment_of, SETTINGS.venue
    edge.service.store = SimpleNamespace(booking=no_booking)
    answer = edge.request("GET", "/pg/mockpay/checkout/pay_1")
    assert answer.status_code == 200 and "<script>" in answer.text
    assert answer.headers.get_list("content-security-policy") == [CHECKOUT_PAGE_HEADERS["Content-Security-Policy"]]
    assert answer.headers.get_list("referrer-policy") == ["no-referrer"] and answer.headers["x-frame-options"] == "DENY"
    assert answer.headers.get_list("cache-control") == ["no-store"]


def test_answers_for_one_member_are_never_stored_by_a_cache(edge):
    from api.auth import HASHER
    from persistence.records import Member

    member = Member(7, "alice", "Alice", "admin", HASHER.hash("a-good-password"))

    async def found(*args):
        return member

    async def nothing(*args):
        return []

    async def no_names(*args):
        return {}

    async def not_found(*args):
        raise BookingNotFound("no such booking")

    edge.service.store = SimpleNamespace(member_by_username=found, member_by_id=found, query_log=nothing, member_bookings=nothing,
                                         usernames=no_names, booking_seqs=no_names, latest_payments=no_names)
    edge.service.booking = not_found
    edge.service.venue = SETTINGS.venue
    tokens = edge.service.tokens
    session = {"Authorization": f"Bearer {tokens.session(7, 'admin')}"}
    login = edge.request("POST", "/api/sessions", json={"username": "alice", "password": "a-good-password"})
    assert login.status_code == 200 and login.json()["token"]
    answers = [login] + [edge.request("GET", path, headers=session) for path in (
        "/api/me", "/api/me/logs", "/api/admin/logs", "/api/admin/logs.csv", "/api/me/bookings", "/api/bookings/b1",
        f"/api/queue?ticket={tokens.ticket(7, 31, 0, 3600)}")]
    answers.append(edge.request("POST", "/api/bookings/b1/payments", json={"provider": "mockpay"}, headers=session))
    for answer in answers:
        assert answer.headers.get_list("cache-control") == ["no-store"], (answer.request.url, answer.status_code)
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 200, 200, 404, 200, 403]


def test_public_reads_stay_cacheable_with_or_without_a_session(edge):
    edge.service.venue_out = routes.models.VenueOut(seats=1, sections=[], block_rows=1, hold_seconds=1, max_seats_per_member=4,
                                                    price_per_seat=1, providers=[])
    session = {"Authorization": f"Bearer {edge.service.tokens.session(7, 'user')}"}
    for headers in ({}, session):
        assert edge.request("GET", "/api/seats", headers=headers).headers["cache-control"] == "public, max-age=1, stale-while-revalidate=1"
        assert edge.request("GET", "/api/venue", headers=headers).headers["cache-control"] == "public, max-age=3600"
    assert "cache-control" not in edge.request("GET", "/static/app.js").headers
    assert edge.request("GET", "/").headers["cache-control"] == "no-cache"


def test_while_the_store_is_down_answers_are_a_quick_503(edge):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the probe is closed
    store = open_store(f"mysql://root@127.0.0.1:{port}/encore")
    edge.service.store, edge.service.idempotency = store, IdempotencyLedger(store)
    tokens = edge.service.tokens
    session = {"Authorization": f"Bearer {tokens.session(7, 'user')}"}
    writer = {**session, "X-Admission-Token": tokens.admission(7, 1, 0, time.time() + 60), "Idempotency-Key": "k"}
    started = time.monotonic()
    answers = [
        edge.request("GET", "/api/me", headers=session),
        edge.request("GET", "/api/me/bookings", headers=session),
        edge.request("POST", "/api/sessions", json={"username": "alice", "password": "a-good-password"}),
        edge.request("POST", "/api/holds", json={"seat_ids": [1]}, headers=writer),
    ]
    assert time.monotonic() - started < 5
    for answer in answers:
        assert (answer.status_code, answer.json()["code"], answer.headers["retry-after"]) == (503, "store_unavailable", "2"), (
            answer.request.url, answer.text)


def test_failed_logins_are_throttled_per_username_and_the_owner_gets_back_in(edge, monkeypatch):
    from api.auth import HASHER
    from persistence.records import Member

    alice = Member(7, "alice", "Alice", "user", HASHER.hash("a-good-password"))

    async def by_username(username):
        return alice if username == "alice" else None

    edge.service.store = SimpleNamespace(member_by_username=by_username)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now)  # a slow hash on a busy machine must not refill the bucket
    guesses = [edge.request("POST", "/api/sessions", json={"username": "alice", "password": f"guess-{n}"}) for n in range(15)]
    assert [g.status_code for g in guesses] == [401] * 5 + [429] * 10
    assert {(g.json()["code"], g.headers["retry-after"]) for g in guesses[5:]} == {("too_many_attempts", "12")}
    assert edge.request("POST", "/api/sessions", json={"username": "bob", "password": "guess"}).status_code == 401

    later = now + 12
    monkeypatch.setattr(time, "time", lambda: later)
    assert edge.request("POST", "/api/sessions", json={"username": "alice", "password": "a-good-password"}).status_code == 200
    assert edge.request("POST", "/api/sessions", json={"username": "alice", "password": "guess-16"}).status_code == 401
