"""Small helpers shared by the end-to-end modules: crowds, races, the seat map, the log, callbacks."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import httpx
import pytest

from domain import tokens
from payments import Provider, build_callback, providers_from_settings
from tests.e2e.conftest import LiveService, Person, make_admin

SIGN_UP_THREADS = 4


def crowd(service: LiveService, count: int, admitted: bool = True) -> list[Person]:
    """``count`` fresh members, signed up (argon2 is slow, so a few at a time) and admitted."""

    def one(_):
        person = Person(service)
        if admitted:
            person.queue_until_admitted(60)
        return person

    with ThreadPoolExecutor(SIGN_UP_THREADS) as pool:
        return list(pool.map(one, range(count)))


def all_at_once(calls: Sequence[Callable[[], httpx.Response]], timeout: float = 120) -> list[httpx.Response]:
    """Run every call on its own thread, released together by a barrier; answers in call order."""
    barrier = threading.Barrier(len(calls))
    answers: list[httpx.Response | BaseException | None] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout)
            answers[index] = calls[index]()
        except BaseException as error:  # noqa: BLE001 - reported below, with the others
            answers[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    errors = [a for a in answers if not isinstance(a, httpx.Response)]
    assert not errors, f"some concurrent calls got no HTTP answer: {errors!r}"
    return answers  # type: ignore[return-value]


def seat_status(http: httpx.Client) -> str:
    answer = http.get("/api/seats")
    assert answer.status_code == 200, answer.text
    return answer.json()["status"]


def wait_for_seats(http: httpx.Client, expected: dict[int, str], seconds: float = 5) -> str:
    """The seat map once every seat in ``expected`` shows its character (the map trails by a refresh)."""
    deadline = time.monotonic() + seconds
    while True:
        status = seat_status(http)
        wrong = {s: status[s] for s, c in expected.items() if status[s] != c}
        if not wrong:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"seat map after {seconds} s: {wrong} (expected {expected})")
        time.sleep(0.1)


def settled_seat_status(http: httpx.Client, quiet: float = 0.6) -> str:
    """The seat map once it stopped changing for ``quiet`` seconds (several snapshot refreshes)."""
    last = seat_status(http)
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < quiet:
        time.sleep(0.1)
        now = seat_status(http)
        if now != last:
            last, stable_since = now, time.monotonic()
    return last


def wait_for_booking(person: Person, booking_id: str, status: str, seconds: float = 10, poll: float = 0.1) -> tuple[dict, float]:
    """Poll the booking until it has ``status``; return it and the wall-clock time it was first seen."""
    deadline = time.monotonic() + seconds
    while True:
        booking = person.booking(booking_id)
        if booking["status"] == status:
            return booking, time.time()
        if time.monotonic() > deadline:
            raise AssertionError(f"booking {booking_id} still {booking['status']!r} after {seconds} s, expected {status!r}")
        time.sleep(poll)


def section_starts(http: httpx.Client) -> list[int]:
    venue = http.get("/api/venue").json()
    return [section["first_seat_id"] for section in venue["sections"]]


def my_events(person: Person, **params) -> list[dict]:
    answer = person.http.get("/api/me/logs", params={"limit": 200, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()["events"]


def admin(service: LiveService, name: str) -> Person:
    make_admin(service, name)
    return Person(service, name=name, password="admin-password-1", sign_up=False)


def events_of(admin_person: Person, **params) -> list[dict]:
    answer = admin_person.http.get("/api/admin/logs", params={"limit": 200, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()["events"]


def providers(service: LiveService) -> dict[str, Provider]:
    """The service's mock providers with their real secrets (derived from ENCORE_SECRET_KEY)."""
    return providers_from_settings(["mockpay", "fakecard"], service.env["ENCORE_SECRET_KEY"], 0.0, 0)


def signed_callback(service: LiveService, provider: str, payment: dict, booking_id: str, status: str = "succeeded",
                    now: float | None = None, amount: int | None = None) -> tuple[bytes, dict]:
    return build_callback(providers(service)[provider], payment["payment_id"], booking_id,
                          payment["amount"] if amount is None else amount, status, time.time() if now is None else now)


def post_callback(http: httpx.Client, provider: str, body: bytes, headers: dict) -> httpx.Response:
    return http.post(f"/api/payments/{provider}/callback", content=body, headers=headers)


def admission_token(service: LiveService, member_id: int, issued_at: float, ttl: float, secret: str | None = None) -> str:
    """An admission token the way the service signs one (with its key unless ``secret`` is given)."""
    key = (secret or service.env["ENCORE_SECRET_KEY"]).encode()
    return tokens.sign("admission", {"m": member_id, "n": 1, "e": 0}, key, issued_at, ttl)


@pytest.fixture(scope="module")
def boss(service) -> Person:
    """An admin of the module's service (a module defines the ``service`` fixture)."""
    return admin(service, f"boss{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def starts(boss) -> list[int]:
    return section_starts(boss.http)
