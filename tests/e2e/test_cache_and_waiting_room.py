"""Through the HTTP cache in front of the real service: what it answers from memory, what it
must never keep, and the waiting room that costs nothing per poll (the public status from
the cache, one claim per person).

The service admits one person at a time here (``queue_active_max`` 1, admissions of 10 s),
so a second person's turn comes only when the first one's admission runs out.
"""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest

from encore.cache import nginx_binary
from tests.e2e.conftest import Person

pytestmark = [pytest.mark.slow, pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (make cache)")]

ADMISSION_SECONDS = 10
SERVICE_SETTINGS = {"queue_active_max": 1, "admission_seconds": ADMISSION_SECONDS}
PUBLIC_OBJECTS = ["/api/seats", "/api/venue", "/api/queue/status", "/", "/static/app.js"]


@pytest.fixture(scope="module")
def service(mysql_service):
    return mysql_service


def read_twice(http: httpx.Client, path: str, **headers) -> tuple[httpx.Response, httpx.Response]:
    first = http.get(path, headers=headers)
    return first, http.get(path, headers=headers)


@pytest.mark.parametrize("path", PUBLIC_OBJECTS)
def test_the_second_read_of_a_public_object_is_a_hit(service, path):
    with service.client() as http:
        first, second = read_twice(http, path)
        assert first.status_code == second.status_code == 200
        assert second.headers["x-cache"] == "HIT", (path, first.headers, second.headers)
        assert second.content == first.content or path in ("/api/seats", "/api/queue/status")


def test_the_seat_map_is_cached_in_both_encodings_with_its_etags(service):
    with service.client() as http:
        _, zipped = read_twice(http, "/api/seats", **{"Accept-Encoding": "gzip"})
        _, plain = read_twice(http, "/api/seats", **{"Accept-Encoding": "identity"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["x-cache"] == "HIT"
    assert "content-encoding" not in plain.headers and plain.headers["x-cache"] == "HIT"
    assert zipped.headers["etag"].startswith('W/"') and plain.headers["etag"].startswith('"')
    assert len(json.loads(plain.content)["status"]) == 15_000


def test_a_304_comes_from_the_cache(service):
    with service.client() as http:
        for path in ("/api/seats", "/api/queue/status"):
            etag = http.get(path).headers["etag"]
            again = http.get(path, headers={"If-None-Match": etag})
            if again.status_code == 200:  # the object changed in between: once more with the new tag
                again = http.get(path, headers={"If-None-Match": again.headers["etag"]})
            assert again.status_code == 304 and again.headers["x-cache"] == "HIT", (path, again.headers)


def test_a_member_never_receives_another_members_answer(service):
    alice, bob = Person(service), Person(service)
    for _ in range(3):
        for person in (alice, bob):
            answer = person.http.get("/api/me")
            assert answer.json()["username"] == person.username
            assert answer.headers["x-cache"] == "MISS" and answer.headers["cache-control"] == "no-store"
            mine = person.http.get("/api/me/bookings")
            assert mine.headers["x-cache"] == "MISS" and mine.headers["cache-control"] == "no-store"
    joined = alice.http.post("/api/queue")
    assert joined.headers["x-cache"] == "MISS" and joined.headers["cache-control"] == "no-store"


def test_the_client_address_reaches_the_rate_limiter(service):
    """Failed logins are limited per client address: spend one address's budget, and another
    address is still answered. Without the address forwarded, every client would be the
    cache's own 127.0.0.1 and share one budget."""
    def failed_login(http: httpx.Client, attempt: int) -> httpx.Response:
        return http.post("/api/sessions", json={"username": f"nobody-{attempt}-{time.monotonic_ns()}", "password": "wrong-password"},
                         headers={"X-Forwarded-For": "203.0.113.9"})  # a client's own claim: overwritten by the cache

    guesser = httpx.Client(base_url=service.url, timeout=30, transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    bystander = httpx.Client(base_url=service.url, timeout=30, transport=httpx.HTTPTransport(local_address="127.0.0.3"))
    with guesser, bystander:
        answers = [failed_login(guesser, attempt) for attempt in range(60)]
        throttled = [answer for answer in answers if answer.status_code == 429]
        assert throttled, [answer.status_code for answer in answers]
        assert throttled[0].json()["code"] == "too_many_attempts" and "retry-after" in throttled[0].headers
        assert failed_login(bystander, 0).status_code == 401


# ---- the waiting room

def ticket_number(ticket: str) -> int | None:
    body = ticket.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["n"]


def status(http: httpx.Client) -> dict:
    answer = http.get("/api/queue/status")
    assert answer.status_code == 200 and "authorization" not in answer.request.headers
    return answer.json()


def wait_for_turn(http: httpx.Client, number: int, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        room = status(http)
        if room["admitted_through"] >= number:
            return room
        time.sleep(0.25)
    raise AssertionError(f"number {number} was not admitted in {seconds} s: {room}")


def claim(person: Person, ticket: str) -> httpx.Response:
    return person.http.post("/api/queue/admission", json={"ticket": ticket})


def test_the_waiting_room_by_public_status_and_one_claim(service):
    alice, bob = Person(service), Person(service)
    anyone = service.client()
    alice_ticket = alice.http.post("/api/queue").json()["ticket"]
    bob_ticket = bob.http.post("/api/queue").json()["ticket"]
    alice_number, bob_number = ticket_number(alice_ticket), ticket_number(bob_ticket)
    assert bob_number > alice_number

    room = wait_for_turn(anyone, alice_number, 10)
    assert room["admitted_through"] < bob_number, "one person at a time"
    assert room["opened"] and room["waiting"] >= 1 and room["admit_per_second"] > 0 and room["version"] > 0
    assert bob_number - (room["admitted_through"] + 1) >= 0

    early = claim(bob, bob_ticket)
    assert early.status_code == 409 and early.json()["code"] == "not_your_turn", early.text
    assert early.json()["ahead"] >= 0 and early.json()["ticket"] == bob_ticket

    first, second = claim(alice, alice_ticket), claim(alice, alice_ticket)
    assert first.status_code == 200, first.text
    assert first.json()["admission_token"] == second.json()["admission_token"], "a second claim gets the same token"
    assert first.headers["cache-control"] == "no-store" and first.headers["x-cache"] == "MISS"
    alice.admission = first.json()["admission_token"]

    borrowed = claim(bob, alice_ticket)
    assert borrowed.status_code == 403 and borrowed.json()["code"] == "bad_ticket"
    body, tag = alice_ticket.split(".")
    forged = claim(alice, body + "." + ("A" if tag[0] != "A" else "B") + tag[1:])
    assert forged.status_code in (401, 403) and forged.json()["code"] == "bad_ticket"
    assert claim(alice, "not-a-ticket").status_code == 403

    held = alice.hold([7_000])
    assert held.status_code == 201, held.text
    held_at = time.monotonic()
    while anyone.get("/api/seats").json()["status"][7_000] == "0":
        assert time.monotonic() - held_at < 5, "the hold never showed on the map"
        time.sleep(0.02)
    shown_after = time.monotonic() - held_at
    # the replica's map takes up to one settle interval (200 ms); the cache keeps a copy less than 1 s
    assert shown_after < 1.2 + 0.1, shown_after

    room = wait_for_turn(anyone, bob_number, ADMISSION_SECONDS + 10)
    turn = claim(bob, bob_ticket)
    assert turn.status_code == 200, turn.text
    bob.admission = turn.json()["admission_token"]
    assert bob.hold([7_001]).status_code == 201
    late = claim(alice, alice_ticket)
    assert late.status_code == 409 and late.json()["code"] == "admission_expired", late.text
    anyone.close()


def test_the_first_read_after_a_quiet_spell_is_current(service):
    """A cache that serves its expired copy while it refreshes must not hand the first reader
    after a quiet spell a copy as old as the spell: the status it gets is the current one."""
    serve_front = f"http://127.0.0.1:{int(service.env['ENCORE_PORT']) + 100}"
    person = Person(service)
    with service.client() as http:
        http.get("/api/queue/status")
        assert person.http.post("/api/queue").status_code == 200
        time.sleep(2.5)  # nobody reads; the replicas' summary takes the join within 0.2 s
        current = httpx.get(f"{serve_front}/api/queue/status").json()
        seen = http.get("/api/queue/status")
    assert seen.json()["version"] == current["version"], (seen.headers, seen.json(), current)
