"""Every way a payment can end, through a real block actor and MariaDB: the payment and its
booking tell one story in the block's memory and in the store, and the log has exactly one
event per change, in the order the changes happened."""

from __future__ import annotations

import asyncio
import time

import pytest
import ray

from actors.seat_block import HoldRequest, Settled, Verdict, start_block
from domain.booking import Booking, BookingStatus, new_booking_id
from domain.payment import Payment, PaymentStatus
from domain.venue import Venue
from persistence import migrate, open_store
from persistence.records import LogQuery
from tests.integration.conftest import insert_members, payment_for, start_paying, success

pytestmark = pytest.mark.mysql

HOLD_SECONDS = 1.0
CAP = 4
VENUE = Venue.grid(sections=2, rows=2, cols=10, block_rows=2)  # two blocks of 20 seats


async def _read(url: str, call):
    await migrate(url)
    store = open_store(url)
    try:
        return await call(store)
    finally:
        await store.close()


def read(url: str, call):
    return asyncio.run(_read(url, call))


@pytest.fixture(scope="module")
def db(make_mysql_database, ray_instance):
    url = make_mysql_database()
    read(url, lambda store: store.claims())
    return url


@pytest.fixture(scope="module")
def blocks(db):
    actors = [start_block(block, HOLD_SECONDS, CAP, db) for block in VENUE.blocks()]
    yield actors
    for actor in actors:
        ray.kill(actor)


@pytest.fixture
def member(db):
    [member_id] = insert_members(db, 1)
    return member_id


def hold(actor, member_id: int, *seats: int) -> Booking:
    [held] = ray.get(actor.hold_many.remote([HoldRequest(new_booking_id(), member_id, seats)]))
    assert isinstance(held, Booking), held
    return held


def failure(payment: Payment) -> Verdict:
    return Verdict(payment.payment_id, payment.booking_id, PaymentStatus.FAILED, f"evt_fail_{payment.payment_id}")


def wait_until_expired(actor, booking: Booking) -> None:
    time.sleep(max(0.0, booking.expires_at - time.time()) + 0.4)
    assert ray.get(actor.booking.remote(booking.booking_id)).status is BookingStatus.EXPIRED


def agrees(db, actor, settled: Settled, booking: BookingStatus, payment: PaymentStatus) -> None:
    """The answer, the block's memory and the store say the same."""
    assert (settled.booking.status, settled.payment.status) == (booking, payment)
    assert ray.get(actor.booking.remote(settled.booking.booking_id)).status is booking

    async def stored(store):
        return (await store.booking(settled.booking.booking_id))[0].status, (await store.payment(settled.payment.payment_id)).status
    assert read(db, stored) == (booking, payment)


def log_of(db, booking_id: str) -> list[tuple[str, dict]]:
    events = read(db, lambda store: store.query_log(LogQuery(booking_id=booking_id, limit=100)))
    return [(e.type, e.detail) for e in reversed(events)]


def test_paid_in_time_is_confirmed(db, blocks, member):
    booking = hold(blocks[0], member, 0, 1)
    payment = start_paying(blocks[0], booking)
    settled = ray.get(blocks[0].settle_payment.remote(success(payment)))
    agrees(db, blocks[0], settled, BookingStatus.CONFIRMED, PaymentStatus.SUCCEEDED)
    assert [t for t, _ in log_of(db, booking.booking_id)] == [
        "hold_created", "payment_started", "payment_succeeded", "booking_confirmed"]


def test_a_repeated_or_contradicting_verdict_changes_nothing(db, blocks, member):
    booking = hold(blocks[0], member, 2)
    payment = start_paying(blocks[0], booking)
    first = ray.get(blocks[0].settle_payment.remote(success(payment)))
    before = log_of(db, booking.booking_id)
    assert ray.get(blocks[0].settle_payment.remote(success(payment))) == first
    contradicted = ray.get(blocks[0].settle_payment.remote(failure(payment)))
    agrees(db, blocks[0], contradicted, BookingStatus.CONFIRMED, PaymentStatus.SUCCEEDED)
    assert log_of(db, booking.booking_id) == before


def test_a_failure_releases_the_hold(db, blocks, member):
    booking = hold(blocks[0], member, 3)
    settled = ray.get(blocks[0].settle_payment.remote(failure(start_paying(blocks[0], booking))))
    agrees(db, blocks[0], settled, BookingStatus.PAYMENT_FAILED, PaymentStatus.FAILED)
    assert ray.get(blocks[0].status.remote()).status[3] == ord("A")
    assert [t for t, _ in log_of(db, booking.booking_id)] == ["hold_created", "payment_started", "payment_failed"]


def test_a_second_success_for_a_paid_booking_is_refunded(db, blocks, member):
    booking = hold(blocks[0], member, 4)
    first, second = start_paying(blocks[0], booking), start_paying(blocks[0], booking)
    ray.get(blocks[0].settle_payment.remote(success(first)))
    settled = ray.get(blocks[0].settle_payment.remote(success(second)))
    agrees(db, blocks[0], settled, BookingStatus.CONFIRMED, PaymentStatus.REFUNDED)
    assert read(db, lambda store: store.latest_payment(booking.booking_id)).payment_id == first.payment_id
    log = log_of(db, booking.booking_id)
    assert [t for t, _ in log] == ["hold_created", "payment_started", "payment_started", "payment_succeeded",
                                   "booking_confirmed", "payment_succeeded", "payment_refunded"]
    assert log[-1][1] == {"payment_id": second.payment_id, "provider": "mockpay", "refunded_from": "already_paid",
                          "paid_by": first.payment_id}


def test_a_late_success_with_every_seat_free_is_regranted(db, blocks, member):
    booking = hold(blocks[0], member, 5)
    payment = start_paying(blocks[0], booking)
    wait_until_expired(blocks[0], booking)
    settled = ray.get(blocks[0].settle_payment.remote(success(payment)))
    agrees(db, blocks[0], settled, BookingStatus.CONFIRMED, PaymentStatus.SUCCEEDED)
    log = log_of(db, booking.booking_id)
    assert [t for t, _ in log] == ["hold_created", "payment_started", "hold_expired", "payment_succeeded", "booking_confirmed"]
    assert log[-1][1]["regranted_from"] == "expired"


@pytest.mark.parametrize("rival", ["another member took a seat", "the member reached the cap in another block"])
def test_a_late_success_that_cannot_have_its_seats_is_refunded(db, blocks, member, rival):
    """In the second case the block sees the seat free and the member within its own count;
    the store, counting every block, refuses the re-grant, and the success is refunded
    instead: the same story."""
    seat = 6 if rival.startswith("another") else 8
    booking = hold(blocks[0], member, seat)
    payment = start_paying(blocks[0], booking)
    wait_until_expired(blocks[0], booking)
    if rival.startswith("another"):
        hold(blocks[0], insert_members(db, 1)[0], seat)
    else:
        hold(blocks[1], member, 20, 21, 22, 23)
    settled = ray.get(blocks[0].settle_payment.remote(success(payment)))
    agrees(db, blocks[0], settled, BookingStatus.REFUNDED, PaymentStatus.REFUNDED)
    assert [t for t, _ in log_of(db, booking.booking_id)] == [
        "hold_created", "payment_started", "hold_expired", "payment_succeeded", "payment_refunded"]


def test_a_payment_cannot_start_after_the_deadline_or_for_another_member(db, blocks, member):
    from domain.errors import BookingNotFound, BookingNotHeld

    [stranger] = insert_members(db, 1)
    booking = hold(blocks[0], member, 9)
    with pytest.raises(BookingNotFound):
        ray.get(blocks[0].start_payment.remote(payment_for(Booking(**{**vars(booking), "member_id": stranger}))))
    wait_until_expired(blocks[0], booking)
    with pytest.raises(BookingNotHeld):
        start_paying(blocks[0], booking)
    assert read(db, lambda store: store.payments_of(booking.booking_id)) == []
