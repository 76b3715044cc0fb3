"""The payment rules in the domain: any order of verdicts, deadlines and rivals leaves a booking
and its payments telling one story, and each decision makes exactly its own log events."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.booking import BookingStatus, EventType
from domain.errors import BookingNotFound, BookingNotHeld
from domain.payment import Payment, PaymentStatus, Settlement, settle
from domain.seat_block import SeatBlock
from domain.venue import Venue

BLOCK = Venue.grid(1, 2, 5, 2).blocks()[0]  # seats 0 … 9
HOLD = 60.0
T0 = 1_000.0
ALICE, BOB = 1, 2


def payment(payment_id: str, booking_id: str = "b1", member_id: int = ALICE) -> Payment:
    return Payment(payment_id, booking_id, member_id, "mockpay", 1000, PaymentStatus.PENDING, 0.0, 0.0)


def test_the_first_verdict_wins():
    for verdict in (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED):
        for status in (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.REFUNDED):
            assert settle(status, verdict, BookingStatus.HELD, True, True) is Settlement.IGNORED


def test_a_verdict_is_a_success_or_a_failure():
    with pytest.raises(ValueError):
        settle(PaymentStatus.PENDING, PaymentStatus.REFUNDED, BookingStatus.HELD, True, True)


def test_only_a_running_hold_of_ones_own_can_be_paid():
    block = SeatBlock(BLOCK, HOLD, 4)
    block.hold("b1", ALICE, [0], T0)
    with pytest.raises(BookingNotFound):
        block.start_payment(payment("p1", member_id=BOB), T0 + 1)
    with pytest.raises(BookingNotHeld):
        block.start_payment(payment("p1"), T0 + HOLD)
    change = block.start_payment(payment("p1"), T0 + 1)
    assert change.type is EventType.PAYMENT_STARTED and change.payment.status is PaymentStatus.PENDING
    assert change.payment.created_at == T0 + 1 and change.detail == {"payment_id": "p1", "provider": "mockpay", "amount": 1000}
    assert not change.claims_seats and not change.releases_seats and change.previous is BookingStatus.HELD


STEPS = st.lists(
    st.tuples(
        st.sampled_from(["verdict", "time", "sweep", "rival", "undo"]),
        st.integers(0, 2),  # which payment
        st.sampled_from([PaymentStatus.SUCCEEDED, PaymentStatus.FAILED]),
        st.sampled_from([1.0, 30.0, HOLD]),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(steps=STEPS, seats=st.sampled_from([(0,), (0, 1), (2, 3, 4)]))
def test_a_booking_and_its_payments_always_agree(steps, seats):
    block = SeatBlock(BLOCK, HOLD, 4)
    now = T0
    block.hold("b1", ALICE, seats, now)
    payments = [f"p{i}" for i in range(3)]
    for payment_id in payments:
        block.start_payment(payment(payment_id), now)
    rival = 0
    last_decision: list = []
    for action, which, verdict, step in steps:
        if action == "time":
            now += step
        elif action == "sweep":
            block.expire_due(now)
        elif action == "rival":
            free = [s for s in seats if block.owner_of(s) is None]
            if free:
                rival += 1
                block.hold(f"r{rival}", BOB, free[:1], now)
        elif action == "undo" and any(c.claims_seats for c in last_decision):
            block.undo_decision(last_decision)
            last_decision = []
        elif action == "verdict":
            pending = block.payment(payments[which]).status is PaymentStatus.PENDING
            booking_before = block.booking("b1")
            changes = block.settle_payment(payments[which], verdict, f"e{len(steps)}-{which}", now)
            last_decision = changes
            if not pending:
                assert changes == [], "the first verdict wins"
                continue
            assert [c.type for c in changes][:1] == [
                EventType.PAYMENT_SUCCEEDED if verdict is PaymentStatus.SUCCEEDED else EventType.PAYMENT_FAILED]
            assert len(changes) == (2 if verdict is PaymentStatus.SUCCEEDED else 1), "one event per change"
            assert all(c.payment.payment_id == payments[which] for c in changes)
            assert changes[-1].payment == block.payment(payments[which])
            assert changes[0].previous is booking_before.status and changes[-1].booking == block.booking("b1")
        booking = block.booking("b1")
        statuses = [block.payment(p).status for p in payments]
        paid = statuses.count(PaymentStatus.SUCCEEDED)
        assert paid <= 1, "a booking is paid at most once"
        assert (booking.status is BookingStatus.CONFIRMED) == (paid == 1), (booking.status, statuses)
        if booking.status is BookingStatus.REFUNDED:
            assert PaymentStatus.REFUNDED in statuses
        owned = [block.owner_of(s) == "b1" for s in seats]
        assert all(owned) == booking.status.claims_seats and (any(owned) == all(owned))
