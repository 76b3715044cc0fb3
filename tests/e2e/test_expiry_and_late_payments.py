"""Time over real HTTP, on MariaDB, with a 3-second hold: holds expire by themselves, and a
payment that succeeds after its hold ran out is re-granted (seats still free) or refunded."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from tests.e2e.helpers import crowd, events_of, my_events, wait_for_booking, wait_for_seats
from tests.e2e.helpers import boss, starts  # noqa: F401  (module fixtures)

pytestmark = pytest.mark.slow

SERVICE_SETTINGS = {"hold_seconds": 3}
EXPIRY_LATENESS_MAX = 2.0  # seconds after the deadline by which the booking must read "expired"


@pytest.fixture(scope="module")
def service(mysql_service):
    return mysql_service


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_the_venue_says_three_seconds(service, boss):
    assert boss.http.get("/api/venue").json()["hold_seconds"] == 3


def test_a_hold_expires_by_itself_and_the_seat_is_free_again(service, starts):
    owner, next_person = crowd(service, 2)
    seat = starts[0] + 11
    held = owner.hold([seat])
    assert held.status_code == 201, held.text
    booking_id = held.json()["booking_id"]
    deadline = epoch(held.json()["expires_at"])
    assert 2 <= deadline - time.time() <= 3.5, held.json()
    assert owner.booking(booking_id)["status"] == "held"
    wait_for_seats(owner.http, {seat: "H"}, seconds=2)

    booking, seen_at = wait_for_booking(owner, booking_id, "expired", seconds=15, poll=0.05)
    assert seen_at >= deadline, "expired before its deadline"
    assert seen_at - deadline <= EXPIRY_LATENESS_MAX, f"expired {seen_at - deadline:.2f} s after the deadline"
    wait_for_seats(owner.http, {seat: "A"}, seconds=1.5)

    expired = [e for e in my_events(owner, booking_id=booking_id) if e["type"] == "hold_expired"]
    assert len(expired) == 1 and expired[0]["seat_ids"] == [seat]
    again = next_person.hold([seat])
    assert again.status_code == 201, again.text
    wait_for_seats(next_person.http, {seat: "H"})

    # an expired booking cannot be paid, and cannot be released any more (409, not a crash)
    late = owner.pay(booking_id)
    assert late.status_code == 409 and late.json()["code"] == "booking_not_held", late.text
    release = owner.http.delete(f"/api/holds/{booking_id}")
    assert release.status_code == 409 and release.json()["code"] == "booking_not_held", release.text
    assert owner.booking(booking_id)["status"] == "expired"


def test_cancelled_hold_frees_the_seat_at_once(service, starts):
    owner, next_person = crowd(service, 2)
    seat = starts[0] + 12
    held = owner.hold([seat])
    assert held.status_code == 201, held.text
    released = owner.http.delete(f"/api/holds/{held.json()['booking_id']}")
    assert released.status_code == 200, released.text
    assert released.json() == {"booking_id": held.json()["booking_id"], "status": "cancelled"}
    again = owner.http.delete(f"/api/holds/{held.json()['booking_id']}")
    assert (again.status_code, again.json()) == (200, released.json()), "releasing twice answers as the first time"
    assert next_person.hold([seat]).status_code == 201


def _pay_then_let_expire(person, seat: int) -> tuple[str, dict]:
    held = person.hold([seat])
    assert held.status_code == 201, held.text
    booking_id = held.json()["booking_id"]
    payment = person.pay(booking_id)
    assert payment.status_code == 201, payment.text
    wait_for_booking(person, booking_id, "expired", seconds=15)
    wait_for_seats(person.http, {seat: "A"})
    return booking_id, payment.json()


def test_late_success_with_the_seat_still_free_is_regranted(service, starts, boss):
    [buyer] = crowd(service, 1)
    seat = starts[1] + 5
    booking_id, payment = _pay_then_let_expire(buyer, seat)

    clicked = buyer.checkout(payment, "success")
    assert clicked.status_code == 200, clicked.text
    assert clicked.json() == {"delivered": True, "status": "succeeded"}
    booking = buyer.booking(booking_id)
    assert booking["status"] == "confirmed", booking
    assert booking["payment"]["status"] == "succeeded"
    wait_for_seats(buyer.http, {seat: "S"})

    events = events_of(boss, booking_id=booking_id)
    types = [e["type"] for e in events]
    assert {"hold_created", "payment_started", "hold_expired", "payment_succeeded", "booking_confirmed"} <= set(types), types
    [confirmed] = [e for e in events if e["type"] == "booking_confirmed"]
    assert confirmed["detail"].get("regranted_from") == "expired", confirmed
    assert "payment_refunded" not in types


def test_late_success_with_the_seat_taken_is_refunded(service, starts, boss):
    late, quick = crowd(service, 2)
    seat = starts[2] + 5
    booking_id, payment = _pay_then_let_expire(late, seat)
    taken = quick.hold([seat])
    assert taken.status_code == 201, taken.text

    clicked = late.checkout(payment, "success")
    assert clicked.status_code == 200, clicked.text
    assert clicked.json() == {"delivered": True, "status": "succeeded"}
    booking = late.booking(booking_id)
    assert booking["status"] == "refunded", booking
    assert booking["payment"]["status"] == "refunded", "the booking and its payment tell one story"
    # the seat stayed with the person who held it in between
    assert quick.booking(taken.json()["booking_id"])["status"] == "held"
    wait_for_seats(late.http, {seat: "H"})

    events = events_of(boss, booking_id=booking_id)
    types = [e["type"] for e in events]
    assert {"hold_expired", "payment_succeeded", "payment_refunded"} <= set(types), types
    assert "booking_confirmed" not in types
    [refund] = [e for e in events if e["type"] == "payment_refunded"]
    assert refund["detail"].get("refunded_from") == "expired", refund

    # the one who holds it now can still buy it
    theirs = quick.pay(taken.json()["booking_id"])
    assert theirs.status_code == 201, theirs.text
    assert quick.checkout(theirs.json(), "success").json()["delivered"] is True
    assert quick.booking(taken.json()["booking_id"])["status"] == "confirmed"
    wait_for_seats(quick.http, {seat: "S"})


def test_late_failure_leaves_the_expired_booking_alone(service, starts, boss):
    [buyer] = crowd(service, 1)
    seat = starts[3] + 5
    booking_id, payment = _pay_then_let_expire(buyer, seat)
    clicked = buyer.checkout(payment, "fail")
    assert clicked.json() == {"delivered": True, "status": "failed"}, clicked.text
    booking = buyer.booking(booking_id)
    assert booking["status"] == "expired" and booking["payment"]["status"] == "failed", booking
    wait_for_seats(buyer.http, {seat: "A"})
    types = [e["type"] for e in events_of(boss, booking_id=booking_id)]
    assert "payment_failed" in types and "booking_confirmed" not in types, types
