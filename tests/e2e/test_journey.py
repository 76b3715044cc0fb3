"""The whole journey over real HTTP on MariaDB: sign-up → queue → hold → pay → confirmed → log."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Person, make_admin

pytestmark = pytest.mark.slow


def journey(service) -> None:
    buyer = Person(service)
    buyer.queue_until_admitted()
    held = buyer.hold([1, 2])
    assert held.status_code == 201, held.text
    booking_id = held.json()["booking_id"]
    assert held.json()["status"] == "held"

    payment = buyer.pay(booking_id)
    assert payment.status_code == 201, payment.text
    assert payment.json()["status"] == "pending"
    page = buyer.http.get(payment.json()["redirect_url"])
    assert page.status_code == 200 and "pay-button" in page.text
    clicked = buyer.checkout(payment.json(), "success")
    assert clicked.json() == {"delivered": True, "status": "succeeded"}

    booking = buyer.booking(booking_id)
    assert booking["status"] == "confirmed"
    assert booking["seat_labels"] == ["A-01-02", "A-01-03"]
    assert booking["payment"]["status"] == "succeeded"
    mine = buyer.http.get("/api/me/bookings").json()["bookings"]
    assert [b["booking_id"] for b in mine] == [booking_id]

    deadline = time.monotonic() + 5  # the replica's snapshot trails the blocks by a refresh or so
    while buyer.http.get("/api/seats").json()["status"][1:3] != "SS" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert buyer.http.get("/api/seats").json()["status"][1:3] == "SS"

    types = [e["type"] for e in buyer.http.get("/api/me/logs").json()["events"]]
    booking_types = [t for t in types if not t.startswith("queue_")]
    assert booking_types == ["booking_confirmed", "payment_succeeded", "payment_started", "hold_created"]
    assert {"queue_joined", "queue_admitted"} <= set(types)

    make_admin(service, f"admin{buyer.id}")
    admin = Person(service, name=f"admin{buyer.id}", password="admin-password-1", sign_up=False)
    logs = admin.http.get("/api/admin/logs", params={"booking_id": booking_id}).json()["events"]
    assert {e["type"] for e in logs} >= {"hold_created", "payment_started", "payment_succeeded", "booking_confirmed"}
    by_seat = admin.http.get("/api/admin/logs", params={"seat_id": 2}).json()["events"]
    assert {e["booking_id"] for e in by_seat} == {booking_id}


def test_journey_on_mariadb(mysql_service):
    journey(mysql_service)
