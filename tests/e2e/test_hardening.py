"""The findings of the security review (#13) over real HTTP, through HAProxy and uvicorn, on the
embedded SQLite store (the idempotency keys' case, on MariaDB, is in test_concurrency.py)."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from api.edge import BODY_BYTES_MAX
from tests.e2e.conftest import Person

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(sqlite_service):
    return sqlite_service


@pytest.fixture(scope="module")
def member(service):
    person = Person(service)
    person.queue_until_admitted(60)
    return person


def test_only_strict_integers_are_seat_ids(member):
    for seat_ids in ([True], ["13929"], [13929.0]):
        answer = member.http.post("/api/holds", json={"seat_ids": seat_ids}, headers=member.write_headers())
        assert (answer.status_code, answer.json()["code"]) == (422, "validation_error"), (seat_ids, answer.text)
    assert member.http.get("/api/me/bookings").json()["bookings"] == []


def test_a_cursor_of_unicode_digits_is_refused(member):
    answer = member.http.get("/api/me/logs?cursor=%C2%B2")
    assert (answer.status_code, answer.json()["code"]) == (422, "bad_cursor"), answer.text


def test_guessing_a_password_is_throttled(service):
    victim = Person(service)
    with service.client() as http:
        guesses = [http.post("/api/sessions", json={"username": victim.username, "password": f"guess-{n}"}) for n in range(15)]
    codes = [g.status_code for g in guesses]
    assert codes[0] == 401 and codes[-1] == 429 and set(codes) == {401, 429} and codes.count(401) <= 6, codes
    refused = guesses[-1]
    assert refused.json()["code"] == "too_many_attempts" and 1 <= int(refused.headers["Retry-After"]) <= 12


@pytest.mark.parametrize("path", ["/api/members", "/api/sessions"])
def test_a_long_chunked_body_is_refused_before_its_end(service, path):
    def five_megabytes():
        for _ in range(5 * 1024):
            yield b" " * 1024

    started = time.monotonic()
    with service.client() as http:
        try:
            answer = http.post(path, content=five_megabytes(), headers={"Content-Type": "application/json"})
        except httpx.TransportError:
            pytest.fail("the connection was dropped instead of answered")
    assert (answer.status_code, answer.json()["code"]) == (413, "body_too_large"), answer.text
    assert time.monotonic() - started < 10


def test_deeply_nested_json_is_a_problem_not_a_crash(member):
    for path in ("/api/holds", "/api/members"):
        answer = member.http.post(path, content=b"[" * 5000 + b"]" * 5000,
                                  headers={**member.write_headers(), "Content-Type": "application/json"})
        assert 400 <= answer.status_code < 500 and answer.json()["code"], answer.text
    assert len(b"[" * 5000 + b"]" * 5000) < BODY_BYTES_MAX


def test_the_page_static_files_and_api_carry_the_security_headers(service, member):
    with service.client() as http:
        answers = [http.get(path) for path in ("/", "/static/app.js", "/api/seats", "/api/venue")]
    answers.append(member.http.get("/api/me"))
    for answer in answers:
        assert answer.status_code == 200, answer.request.url
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-frame-options"] == "DENY" and answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"


def test_answers_for_one_member_say_no_store_and_public_ones_stay_public(service, member):
    login = member.http.post("/api/sessions", json={"username": member.username, "password": member.password})
    ticket = member.http.post("/api/queue")
    poll = member.http.get("/api/queue", params={"ticket": ticket.json()["ticket"]})
    for answer in (login, ticket, poll, member.http.get("/api/me"), member.http.get("/api/me/bookings"),
                   member.http.get("/api/me/logs"), member.http.get(f"/api/bookings/{uuid.uuid4().hex[:12]}")):
        assert answer.headers.get("cache-control") == "no-store", (answer.request.url, answer.status_code)
    assert member.http.get("/api/seats").headers["cache-control"] == "public, max-age=1, stale-while-revalidate=1"
    assert member.http.get("/api/venue").headers["cache-control"] == "public, max-age=3600"
