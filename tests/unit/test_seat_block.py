"""The seat block state machine: who gets a seat, when it comes back, and that it is never sold twice.

Examples pin every rule; a Hypothesis state machine then drives random holds, payments,
cancellations, expiries, undos and restarts against a plain reference model.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from domain.booking import Booking, BookingStatus, EventType
from domain.errors import (
    BookingNotFound,
    BookingNotHeld,
    InvalidSeats,
    SeatsSpanBlocks,
    SeatUnavailable,
    TooManySeats,
)
from domain.seat_block import SeatBlock, within_cap
from domain.venue import Venue

VENUE = Venue.grid(2, 4, 10, 2)  # blocks of 20 seats: 0–19, 20–39, 40–59, 60–79
BLOCK = VENUE.blocks()[1]  # seats 20 … 39
HOLD = 180.0
CAP = 4
T0 = 1_000.0

ALICE, BOB, CAROL = 1, 2, 3


def fresh(cap: int = CAP, hold: float = HOLD) -> SeatBlock:
    return SeatBlock(BLOCK, hold_seconds=hold, seats_per_member_max=cap)


def status_of(block: SeatBlock, *seats: int) -> str:
    raw = block.status()
    return "".join(chr(raw[s - BLOCK.first_seat_id]) for s in seats)


def snapshot(block: SeatBlock) -> tuple:
    """Everything observable about a block, to show a refused request changed nothing."""
    return (
        block.status(),
        [block.owner_of(s) for s in BLOCK.seat_ids],
        sorted(block.live_bookings(), key=lambda b: b.booking_id),
        {m: block.seats_of_member(m) for m in (ALICE, BOB, CAROL)},
        block.next_deadline(),
    )


# ---- holding


def test_block_starts_empty():
    block = fresh()
    assert block.status() == b"A" * 20
    assert block.live_bookings() == []
    assert block.next_deadline() is None
    assert block.seats_of_member(ALICE) == 0
    assert block.owner_of(20) is None
    assert block.find("b1") is None
    with pytest.raises(BookingNotFound):
        block.booking("b1")


def test_hold_takes_every_seat_with_a_fixed_deadline():
    block = fresh()
    change = block.hold("b1", ALICE, [23, 21, 22], T0)
    assert change.type is EventType.HOLD_CREATED
    assert change.previous is None
    assert change.at == T0
    assert change.claims_seats and not change.releases_seats
    assert change.booking == Booking("b1", ALICE, (21, 22, 23), BookingStatus.HELD, T0, T0 + HOLD)
    assert block.booking("b1") == change.booking
    assert status_of(block, 20, 21, 22, 23, 24) == "AHHHA"
    assert [block.owner_of(s) for s in (20, 21, 22, 23)] == [None, "b1", "b1", "b1"]
    assert block.seats_of_member(ALICE) == 3
    assert block.next_deadline() == T0 + HOLD
    assert block.live_bookings() == [change.booking]


def test_hold_is_all_or_nothing_and_names_exactly_the_taken_seats():
    block = fresh()
    block.hold("b1", ALICE, [21, 22], T0)
    block.hold("b2", BOB, [25], T0)
    block.confirm("b2", T0 + 1)
    before = snapshot(block)
    with pytest.raises(SeatUnavailable) as caught:
        block.hold("b3", CAROL, [20, 22, 24, 25], T0 + 2)
    assert caught.value.code == "seat_unavailable"
    assert caught.value.extra == {"seats": [22, 25]}  # one held, one sold; 20 and 24 were free
    assert snapshot(block) == before
    assert block.find("b3") is None
    # the free seats alone can still be taken
    block.hold("b3", CAROL, [20, 24], T0 + 3)
    assert status_of(block, 20, 21, 22, 23, 24, 25) == "HHHAHS"


def test_too_many_seats_at_the_cap():
    block = fresh()
    block.hold("b1", ALICE, [20, 21, 22, 23], T0)  # exactly the cap is fine
    assert block.seats_of_member(ALICE) == CAP
    with pytest.raises(TooManySeats) as caught:
        block.hold("b2", ALICE, [30], T0)
    assert caught.value.code == "too_many_seats"
    assert caught.value.extra == {"max_seats": CAP}
    with pytest.raises(TooManySeats):
        fresh().hold("b1", ALICE, [20, 21, 22, 23, 24], T0)


def test_cap_counts_held_and_confirmed_seats_but_not_released_ones():
    block = fresh()
    block.hold("b1", ALICE, [20, 21], T0)
    block.confirm("b1", T0 + 1)
    block.hold("b2", ALICE, [22], T0 + 2)
    assert block.seats_of_member(ALICE) == 3
    with pytest.raises(TooManySeats):
        block.hold("b3", ALICE, [23, 24], T0 + 3)
    block.cancel("b2", T0 + 4, ALICE)
    assert block.seats_of_member(ALICE) == 2
    block.hold("b3", ALICE, [23, 24], T0 + 5)
    assert block.seats_of_member(ALICE) == CAP
    assert block.seats_of_member(BOB) == 0  # the cap is per member
    block.hold("b4", BOB, [30, 31, 32, 33], T0 + 5)


def test_within_cap():
    assert within_cap(0, 4, 4)
    assert within_cap(3, 1, 4)
    assert not within_cap(3, 2, 4)
    assert not within_cap(0, 5, 4)


@pytest.mark.parametrize(
    "seats, outside",
    [
        ([19, 20], [19]),  # the last seat of the block before
        ([39, 40], [40]),  # the first seat of the block after
        ([5, 25, 70], [5, 70]),
        ([-1, 20], [-1]),
        ([10_000], [10_000]),
    ],
)
def test_seats_outside_the_block_are_refused(seats, outside):
    block = fresh()
    with pytest.raises(SeatsSpanBlocks) as caught:
        block.hold("b1", ALICE, seats, T0)
    assert caught.value.code == "seats_span_blocks"
    assert caught.value.extra == {"seats": outside}
    assert block.status() == b"A" * 20
    assert block.find("b1") is None


def test_an_empty_request_is_invalid():
    block = fresh()
    with pytest.raises(InvalidSeats) as caught:
        block.hold("b1", ALICE, [], T0)
    assert caught.value.code == "invalid_seats"
    assert block.find("b1") is None


def test_a_booking_id_is_used_once():
    block = fresh()
    block.hold("b1", ALICE, [20], T0)
    with pytest.raises(InvalidSeats):
        block.hold("b1", BOB, [21], T0)
    block.cancel("b1", T0, ALICE)
    with pytest.raises(InvalidSeats):
        block.hold("b1", ALICE, [21], T0)  # not even after the first one ended
    assert status_of(block, 20, 21) == "AA"


def test_duplicate_seat_ids_are_collapsed():
    block = fresh()
    change = block.hold("b1", ALICE, [22, 21, 22, 22, 21, 23, 23], T0)
    assert change.booking.seat_ids == (21, 22, 23)
    assert block.seats_of_member(ALICE) == 3
    # five copies of one seat are one seat, not five against the cap
    assert block.hold("b2", ALICE, iter([30] * 5), T0).booking.seat_ids == (30,)
    assert block.seats_of_member(ALICE) == CAP


def test_the_first_broken_rule_is_reported():
    block = fresh()
    block.hold("b1", ALICE, [20, 21, 22], T0)
    with pytest.raises(InvalidSeats):
        block.hold("b2", ALICE, [], T0)
    with pytest.raises(SeatsSpanBlocks):
        block.hold("b2", ALICE, [20, 21, 22, 23, 24, 99], T0)  # outside beats cap and taken
    with pytest.raises(TooManySeats):
        block.hold("b2", ALICE, [20, 23], T0)  # over the cap beats taken


# ---- confirming


def test_confirm_a_held_booking_sells_its_seats():
    block = fresh()
    block.hold("b1", ALICE, [20, 21], T0)
    detail = {"payment_id": "pay_1"}
    change = block.confirm("b1", T0 + 10, detail)
    assert change.type is EventType.BOOKING_CONFIRMED
    assert change.previous is BookingStatus.HELD
    assert change.at == T0 + 10
    assert change.detail == {"payment_id": "pay_1"}
    assert change.detail is not detail
    assert not change.claims_seats and not change.releases_seats
    assert change.booking == Booking("b1", ALICE, (20, 21), BookingStatus.CONFIRMED, T0, T0 + HOLD)
    assert status_of(block, 20, 21) == "SS"
    assert block.owner_of(20) == "b1"
    assert block.seats_of_member(ALICE) == 2
    assert block.next_deadline() is None


def test_confirm_just_before_the_deadline_is_on_time():
    block = fresh()
    block.hold("b1", ALICE, [20], T0)
    change = block.confirm("b1", T0 + HOLD - 0.001)
    assert change.previous is BookingStatus.HELD
    assert "regranted_from" not in change.detail


@pytest.mark.parametrize(
    "end", ["expire", "cancel", "fail_payment"],
)
def test_a_late_success_regrants_when_every_seat_is_free_and_the_member_within_cap(end):
    block = fresh()
    block.hold("b1", ALICE, [20, 21], T0)
    if end == "expire":
        [ended] = block.expire_due(T0 + HOLD)
    elif end == "cancel":
        ended = block.cancel("b1", T0 + 5, ALICE)
    else:
        ended = block.fail_payment("b1", T0 + 5, {"reason": "declined"})
    assert status_of(block, 20, 21) == "AA"
    block.hold("b2", ALICE, [22, 23], T0 + 200)  # two more: 2 + 2 is still within the cap
    payment = {"payment_id": "p"}
    change = block.confirm("b1", T0 + 300, payment)
    assert payment == {"payment_id": "p"}  # the caller's detail is not written into
    assert change.type is EventType.BOOKING_CONFIRMED
    assert change.previous is ended.booking.status
    assert change.detail == {"payment_id": "p", "regranted_from": ended.booking.status.value}
    assert change.claims_seats
    assert change.booking.status is BookingStatus.CONFIRMED
    assert change.booking.expires_at == T0 + HOLD  # the deadline never moves
    assert status_of(block, 20, 21, 22, 23) == "SSHH"
    assert block.owner_of(21) == "b1"
    assert block.seats_of_member(ALICE) == CAP


def test_a_late_success_is_refunded_when_a_seat_was_taken():
    block = fresh()
    block.hold("b1", ALICE, [20, 21], T0)
    block.expire_due(T0 + HOLD)
    block.hold("b2", BOB, [21], T0 + HOLD + 1)
    before = snapshot(block)
    change = block.confirm("b1", T0 + HOLD + 2, {"payment_id": "p"})
    assert change.type is EventType.PAYMENT_REFUNDED
    assert change.previous is BookingStatus.EXPIRED
    assert change.booking.status is BookingStatus.REFUNDED
    assert change.detail == {"payment_id": "p", "refunded_from": "expired"}
    assert not change.claims_seats and not change.releases_seats
    assert snapshot(block) == before  # Bob keeps seat 21, seat 20 stays free


def test_a_late_success_is_refunded_when_the_member_is_at_the_cap():
    block = fresh()
    block.hold("b1", ALICE, [20, 21], T0)
    block.cancel("b1", T0 + 1, ALICE)
    block.hold("b2", ALICE, [30, 31, 32], T0 + 2)
    change = block.confirm("b1", T0 + 3)
    assert change.type is EventType.PAYMENT_REFUNDED
    assert change.detail == {"refunded_from": "cancelled"}
    assert status_of(block, 20, 21) == "AA"
    assert block.seats_of_member(ALICE) == 3


def test_a_late_success_without_regrant_is_refunded_even_if_seats_are_free():
    block = fresh()
    block.hold("b1", ALICE, [20], T0)
    block.expire_due(T0 + HOLD)
    change = block.confirm("b1", T0 + HOLD + 1, regrant=False)
    assert change.type is EventType.PAYMENT_REFUNDED
    assert change.detail == {"refunded_from": "expired"}
    assert status_of(block, 20) == "A"


def test_a_success_at_the_deadline_of_an_unswept_hold_keeps_its_own_seats():
    """Late, but no sweep ran yet: the seats are still the booking's own, so it is re-granted
    in one change that the store can apply as is (held → confirmed, nothing claimed twice)."""
    block = fresh()
    block.hold("b1", ALICE, [20, 21], T0)
    change = block.confirm("b1", T0 + HOLD)
    assert change.type is EventType.BOOKING_CONFIRMED
    assert change.previous is BookingStatus.HELD
    assert change.detail == {"regranted_from": "expired"}
    assert not change.claims_seats and not change.releases_seats
    assert status_of(block, 20, 21) == "SS"
    assert block.seats_of_member(ALICE) == 2
    assert block.expire_due(T0 + HOLD + 1) == []


def test_a_late_success_of_an_unswept_hold_without_regrant_releases_its_seats():
    block = fresh()
    block.hold("b1", ALICE, [20, 21], T0)
    change = block.confirm("b1", T0 + HOLD + 5, regrant=False)
    assert change.type is EventType.PAYMENT_REFUNDED
    assert change.previous is BookingStatus.HELD
    assert change.detail == {"refunded_from": "expired"}
    assert change.releases_seats
    assert status_of(block, 20, 21) == "AA"
    assert block.seats_of_member(ALICE) == 0


def test_confirm_changes_only_its_own_booking():
    """Every change the block makes is returned to the caller, who writes it to the store and
    the log; a confirm must not quietly expire other due holds on the way."""
    block = fresh()
    block.hold("b1", ALICE, [20], T0)
    block.hold("b2", BOB, [21], T0 + 100)
    block.confirm("b2", T0 + HOLD + 10)  # b1's deadline passed, no sweep ran yet
    assert block.booking("b1").status is BookingStatus.HELD
    assert status_of(block, 20, 21) == "HS"
    [expired] = block.expire_due(T0 + HOLD + 10)
    assert expired.booking.booking_id == "b1"
    assert expired.type is EventType.HOLD_EXPIRED


def test_confirm_twice_is_refused():
    block = fresh()
    block.hold("b1", ALICE, [20], T0)
    block.confirm("b1", T0 + 1)
    with pytest.raises(BookingNotHeld) as caught:
        block.confirm("b1", T0 + 2)
    assert caught.value.code == "booking_not_held"
    assert caught.value.extra == {"booking_status": "confirmed"}
    with pytest.raises(BookingNotHeld):
        block.confirm("b1", T0 + HOLD + 100)  # not even a late one
    assert status_of(block, 20) == "S"


def test_a_refunded_booking_stays_refunded():
    block = fresh()
    block.hold("b1", ALICE, [20], T0)
    block.expire_due(T0 + HOLD)
    block.hold("b2", BOB, [20], T0 + HOLD)
    block.confirm("b1", T0 + HOLD + 1)
    block.cancel("b2", T0 + HOLD + 2, BOB)  # the seat is free again …
    with pytest.raises(BookingNotHeld) as caught:
        block.confirm("b1", T0 + HOLD + 3)  # … but a refunded payment is not taken again
    assert caught.value.extra == {"booking_status": "refunded"}
    assert status_of(block, 20) == "A"


def test_confirm_of_an_unknown_booking():
    with pytest.raises(BookingNotFound) as caught:
        fresh().confirm("nope", T0)
    assert caught.value.code == "booking_not_found"


# ---- cancelling and failing


def test_cancel_by_the_owner_frees_the_seats():
    block = fresh()
    block.hold("b1", ALICE, [20, 21], T0)
    change = block.cancel("b1", T0 + 3, ALICE)
    assert change.type is EventType.HOLD_CANCELLED
    assert change.previous is BookingStatus.HELD
    assert change.releases_seats
    assert change.booking.status is BookingStatus.CANCELLED
    assert change.booking.expires_at == T0 + HOLD
    assert status_of(block, 20, 21) == "AA"
    assert block.owner_of(20) is None
    assert block.seats_of_member(ALICE) == 0
    assert block.next_deadline() is None
    with pytest.raises(BookingNotHeld):
        block.cancel("b1", T0 + 4, ALICE)


def test_cancel_by_another_member_is_not_found():
    block = fresh()
    block.hold("b1", ALICE, [20], T0)
    before = snapshot(block)
    with pytest.raises(BookingNotFound):
        block.cancel("b1", T0 + 1, BOB)
    assert snapshot(block) == before
    assert block.booking("b1").status is BookingStatus.HELD


def test_a_sale_cannot_be_cancelled():
    block = fresh()
    block.hold("b1", ALICE, [20], T0)
    block.confirm("b1", T0 + 1)
    with pytest.raises(BookingNotHeld):
        block.cancel("b1", T0 + 2, ALICE)
    with pytest.raises(BookingNotHeld):
        block.fail_payment("b1", T0 + 2)
    assert status_of(block, 20) == "S"


def test_failed_payment_puts_the_seats_back():
    block = fresh()
    block.hold("b1", ALICE, [20, 21], T0)
    change = block.fail_payment("b1", T0 + 5, {"reason": "declined"})
    assert change.type is EventType.PAYMENT_FAILED
    assert change.booking.status is BookingStatus.PAYMENT_FAILED
    assert change.detail == {"reason": "declined"}
    assert change.releases_seats
    assert status_of(block, 20, 21) == "AA"
    assert block.seats_of_member(ALICE) == 0
    with pytest.raises(BookingNotHeld):
        block.fail_payment("b1", T0 + 6)
    with pytest.raises(BookingNotFound):
        block.fail_payment("nope", T0 + 6)


# ---- expiry and deadlines


def test_expiry_happens_exactly_at_the_deadline():
    block = fresh()
    block.hold("b1", ALICE, [20], T0)
    assert block.expire_due(T0 + HOLD - 0.001) == []
    assert status_of(block, 20) == "H"
    [change] = block.expire_due(T0 + HOLD)
    assert change.type is EventType.HOLD_EXPIRED
    assert change.previous is BookingStatus.HELD
    assert change.at == T0 + HOLD
    assert change.detail == {"deadline": T0 + HOLD}
    assert change.releases_seats
    assert change.booking.status is BookingStatus.EXPIRED
    assert status_of(block, 20) == "A"
    assert block.seats_of_member(ALICE) == 0
    assert block.expire_due(T0 + HOLD) == []  # once only
    assert block.expire_due(T0 + 10 * HOLD) == []


def test_expire_due_releases_in_deadline_order_and_spares_sales():
    block = fresh()
    block.hold("late", ALICE, [20], T0 + 30)
    block.hold("early", BOB, [21], T0)
    block.hold("sold", CAROL, [22], T0)
    block.hold("later", CAROL, [23], T0 + 500)
    block.confirm("sold", T0 + 1)
    assert block.next_deadline() == T0 + HOLD
    changes = block.expire_due(T0 + HOLD + 30)
    assert [c.booking.booking_id for c in changes] == ["early", "late"]
    assert [c.detail["deadline"] for c in changes] == [T0 + HOLD, T0 + 30 + HOLD]
    assert all(c.at == T0 + HOLD + 30 for c in changes)
    assert status_of(block, 20, 21, 22, 23) == "AASH"
    assert block.next_deadline() == T0 + 500 + HOLD


def test_deadlines_never_move():
    block = fresh()
    block.hold("b1", ALICE, [20], T0)
    deadline = block.booking("b1").expires_at
    block.hold("b2", ALICE, [21], T0 + 100)  # more activity by the same member
    assert block.booking("b1").expires_at == deadline
    assert block.expire_due(T0 + HOLD - 1) == []
    [expired] = block.expire_due(T0 + HOLD + 50)
    assert expired.booking.expires_at == deadline
    regrant = block.confirm("b1", T0 + 400)
    assert regrant.booking.expires_at == deadline
    assert block.booking("b2").expires_at == T0 + 100 + HOLD


# ---- restore and undo


def test_restore_rebuilds_identical_state():
    block = fresh()
    block.hold("b1", ALICE, [20, 21], T0)
    block.hold("b2", BOB, [25, 26, 27], T0 + 10)
    block.hold("b3", CAROL, [30], T0 + 20)
    block.hold("b4", CAROL, [31], T0 + 30)
    block.confirm("b2", T0 + 40)
    block.cancel("b3", T0 + 50, CAROL)
    restored = fresh()
    restored.restore(block.live_bookings())
    assert snapshot(restored) == snapshot(block)
    assert restored.status() == block.status()
    assert restored.booking("b2") == block.booking("b2")
    assert restored.find("b3") is None  # only live bookings come back
    # the restored holds keep their original deadlines
    assert [c.booking.booking_id for c in restored.expire_due(T0 + 30 + HOLD)] == ["b1", "b4"]
    assert status_of(restored, 20, 21, 25, 26, 27, 30, 31) == "AASSSAA"


def test_restore_refuses_what_could_not_have_been_stored():
    block = fresh()
    ended = Booking("x", ALICE, (20,), BookingStatus.EXPIRED, T0, T0 + HOLD)
    with pytest.raises(AssertionError):
        block.restore([ended])
    with pytest.raises(SeatsSpanBlocks):
        block.restore([Booking("y", ALICE, (5,), BookingStatus.HELD, T0, T0 + HOLD)])
    with pytest.raises(AssertionError):  # two live owners of seat 21
        block.restore([
            Booking("a", ALICE, (21,), BookingStatus.CONFIRMED, T0, T0 + HOLD),
            Booking("b", BOB, (21, 22), BookingStatus.HELD, T0, T0 + HOLD),
        ])


def test_undo_of_a_hold_leaves_no_trace():
    block = fresh()
    block.hold("b0", BOB, [30], T0)
    before = snapshot(block)
    change = block.hold("b1", ALICE, [20, 21], T0 + 1)
    block.undo(change)
    assert snapshot(block) == before
    assert block.find("b1") is None
    block.hold("b1", ALICE, [20, 21, 22, 23], T0 + 2)  # the id, the seats and the cap are free again


def test_undo_of_a_regrant_puts_the_booking_back_as_it_ended():
    block = fresh()
    block.hold("b1", ALICE, [20, 21], T0)
    [expired] = block.expire_due(T0 + HOLD)
    before = snapshot(block)
    regrant = block.confirm("b1", T0 + HOLD + 1)
    assert regrant.claims_seats
    block.undo(regrant)
    assert snapshot(block) == before
    assert block.booking("b1") == expired.booking
    refund = block.confirm("b1", T0 + HOLD + 2, regrant=False)  # what the actor does next
    assert refund.type is EventType.PAYMENT_REFUNDED
    assert status_of(block, 20, 21) == "AA"


def test_only_the_latest_change_that_took_seats_can_be_undone():
    block = fresh()
    hold = block.hold("b1", ALICE, [20], T0)
    sale = block.confirm("b1", T0 + 1)
    with pytest.raises(AssertionError):
        block.undo(sale)  # a confirmation took no seats
    with pytest.raises(AssertionError):
        block.undo(hold)  # the booking moved on since
    assert status_of(block, 20) == "S"


# ---- the state machine, against a reference model

MEMBERS = (1, 2, 3, 4, 5)
STRANGER = 6  # never holds; only tries to cancel other people's bookings
M_HOLD = 60.0
M_CAP = 4
M_VENUE = Venue.grid(2, 2, 5, 2)  # blocks of 10 seats
M_BLOCK = M_VENUE.blocks()[1]  # seats 10 … 19
M_SEATS = range(M_BLOCK.first_seat_id - 2, M_BLOCK.end_seat_id + 2)  # a few outside on each side
PLAUSIBLE_SEATS = st.lists(st.sampled_from(M_BLOCK.seat_ids), min_size=1, max_size=3)
ANY_SEATS = st.lists(st.sampled_from(M_SEATS), min_size=0, max_size=6)  # empty, outside, over the cap …


class SeatBlockMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.block = SeatBlock(M_BLOCK, M_HOLD, M_CAP)
        self.now = T0
        self.next_id = 0
        # The reference model: booking id → (member, seats, status, deadline), and seat → live owner.
        self.model: dict[str, list] = {}
        self.owner: dict[int, str] = {}
        # What a store would hold if it wrote exactly the changes the block returned.
        self.written: dict[str, Booking] = {}
        self.sold: dict[int, str] = {}  # seat → booking, once sold for good
        self.deadline: dict[str, float] = {}
        self.undoable: list = []  # changes that took seats and whose booking has not moved since
        self.changes_since_restart = 0  # an actor does not die after every message

    # ---- helpers

    def live_seats(self, member: int) -> int:
        return sum(len(m[1]) for m in self.model.values() if m[0] == member and m[2].claims_seats)

    def record(self, change, previous: BookingStatus | None, event: EventType, status: BookingStatus, detail=None):
        """Check one returned change against the model's expectation, then apply it to the model."""
        booking = change.booking
        member, seats, _, deadline = self.model[booking.booking_id]
        assert change.type is event
        assert change.previous is previous
        assert change.at == self.now
        assert booking.status is status
        assert (booking.member_id, booking.seat_ids, booking.expires_at) == (member, seats, deadline)
        if detail is not None:
            assert change.detail == detail
        self.model[booking.booking_id][2] = status
        for seat in seats:
            if status.claims_seats:
                self.owner[seat] = booking.booking_id
            elif self.owner.get(seat) == booking.booking_id:
                del self.owner[seat]
        if status is BookingStatus.CONFIRMED:
            for seat in seats:
                self.sold[seat] = booking.booking_id
        self.written[booking.booking_id] = booking
        self.changes_since_restart += 1
        self.undoable = [c for c in self.undoable if c.booking.booking_id != booking.booking_id]
        if change.claims_seats:
            self.undoable.append(change)

    def pick_booking(self, data) -> str:
        """Any known booking or an unknown id; more often one still held, or one that let its seats go."""
        choices = [st.sampled_from(sorted(self.model) + ["unknown"])]
        held = sorted(b for b, m in self.model.items() if m[2] is BookingStatus.HELD)
        ended = sorted(b for b, m in self.model.items() if not m[2].claims_seats and m[2] is not BookingStatus.REFUNDED)
        choices += [st.sampled_from(ids) for ids in (held, ended) if ids]
        return data.draw(st.one_of(choices), label="booking")

    # ---- rules

    @initialize(requests=st.lists(st.tuples(st.sampled_from(MEMBERS), PLAUSIBLE_SEATS), max_size=4))
    def some_holds_to_start_with(self, requests):
        for member, seats in requests:
            self.hold(member, seats)

    @rule(member=st.sampled_from(MEMBERS), seats=st.one_of(PLAUSIBLE_SEATS, ANY_SEATS))
    def hold(self, member, seats):
        booking_id = f"b{self.next_id:03d}"
        self.next_id += 1
        wanted = tuple(sorted(set(seats)))
        outside = [s for s in wanted if s not in M_BLOCK.seat_ids]
        taken = [s for s in wanted if s in self.owner]
        try:
            change = self.block.hold(booking_id, member, seats, self.now)
        except InvalidSeats:
            assert not wanted
        except SeatsSpanBlocks as error:
            assert wanted and error.extra == {"seats": outside}
        except TooManySeats:
            assert wanted and not outside and self.live_seats(member) + len(wanted) > M_CAP
        except SeatUnavailable as error:
            assert wanted and not outside and self.live_seats(member) + len(wanted) <= M_CAP
            assert error.extra == {"seats": taken}
        else:
            assert wanted and not outside and not taken and self.live_seats(member) + len(wanted) <= M_CAP
            self.model[booking_id] = [member, wanted, None, self.now + M_HOLD]
            self.deadline[booking_id] = self.now + M_HOLD
            self.record(change, None, EventType.HOLD_CREATED, BookingStatus.HELD, {})
            assert change.booking.created_at == self.now
            return
        assert self.block.find(booking_id) is None

    def came_back(self) -> list[int]:
        return sorted({s for m in self.model.values() if not m[2].claims_seats for s in m[1] if s not in self.owner})

    @precondition(lambda self: self.came_back())
    @rule(data=st.data(), same_seats=st.booleans())
    def hold_again_after_a_release(self, data, same_seats):
        """Thirteen people want every seat: released seats are taken again at once by anyone;
        or the member whose hold just ended picks other seats (and then pays late for the old one)."""
        came_back = self.came_back()
        if same_seats:
            member = data.draw(st.sampled_from(MEMBERS), label="member")
            seats = data.draw(st.lists(st.sampled_from(came_back), min_size=1, max_size=2), label="seats")
        else:
            released = sorted({m[0] for m in self.model.values() if not m[2].claims_seats})
            member = data.draw(st.sampled_from(released), label="member")
            others = [s for s in M_BLOCK.seat_ids if s not in self.owner and s not in came_back] or list(M_BLOCK.seat_ids)
            seats = data.draw(st.lists(st.sampled_from(others), min_size=1, max_size=3), label="seats")
        self.hold(member, seats)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def hold_with_a_used_booking_id(self, data):
        booking_id = data.draw(st.sampled_from(sorted(self.model)), label="used id")
        free = [s for s in M_BLOCK.seat_ids if s not in self.owner][:1]
        before = self.block.booking(booking_id)
        with pytest.raises(InvalidSeats):
            self.block.hold(booking_id, STRANGER, free, self.now)
        assert self.block.booking(booking_id) == before

    @rule(
        data=st.data(),
        regrant=st.sampled_from([True, True, True, False]),
        delay=st.sampled_from([0.0, 1.0, M_HOLD, M_HOLD + 1]),
    )
    def confirm(self, data, regrant, delay):
        """A payment success arrives, maybe late, and maybe before any sweep ran."""
        booking_id = self.pick_booking(data)
        self.now += delay
        if booking_id not in self.model:
            with pytest.raises(BookingNotFound):
                self.block.confirm(booking_id, self.now, regrant=regrant)
            return
        member, seats, status, deadline = self.model[booking_id]
        if status in (BookingStatus.CONFIRMED, BookingStatus.REFUNDED):
            with pytest.raises(BookingNotHeld):
                self.block.confirm(booking_id, self.now, {"payment_id": "p"}, regrant=regrant)
            return
        change = self.block.confirm(booking_id, self.now, {"payment_id": "p"}, regrant=regrant)
        if status is BookingStatus.HELD and self.now < deadline:
            self.record(change, status, EventType.BOOKING_CONFIRMED, BookingStatus.CONFIRMED, {"payment_id": "p"})
            return
        ended = BookingStatus.EXPIRED if status is BookingStatus.HELD else status
        if status is BookingStatus.HELD:
            fits = True  # its seats are still its own
        else:
            fits = not any(s in self.owner for s in seats) and self.live_seats(member) + len(seats) <= M_CAP
        if regrant and fits:
            self.record(
                change, status, EventType.BOOKING_CONFIRMED, BookingStatus.CONFIRMED,
                {"payment_id": "p", "regranted_from": ended.value},
            )
        else:
            self.record(
                change, status, EventType.PAYMENT_REFUNDED, BookingStatus.REFUNDED,
                {"payment_id": "p", "refunded_from": ended.value},
            )

    @rule(data=st.data(), by_owner=st.booleans())
    def cancel(self, data, by_owner):
        booking_id = self.pick_booking(data)
        if booking_id not in self.model:
            with pytest.raises(BookingNotFound):
                self.block.cancel(booking_id, self.now, ALICE)
            return
        member, _, status, _ = self.model[booking_id]
        if not by_owner:
            other = data.draw(st.sampled_from([m for m in MEMBERS + (STRANGER,) if m != member]), label="other")
            with pytest.raises(BookingNotFound):
                self.block.cancel(booking_id, self.now, other)
            return
        if status is not BookingStatus.HELD:
            with pytest.raises(BookingNotHeld):
                self.block.cancel(booking_id, self.now, member)
            return
        change = self.block.cancel(booking_id, self.now, member)
        self.record(change, status, EventType.HOLD_CANCELLED, BookingStatus.CANCELLED, {})

    @rule(data=st.data())
    def fail_payment(self, data):
        booking_id = self.pick_booking(data)
        if booking_id not in self.model:
            with pytest.raises(BookingNotFound):
                self.block.fail_payment(booking_id, self.now)
            return
        status = self.model[booking_id][2]
        if status is not BookingStatus.HELD:
            with pytest.raises(BookingNotHeld):
                self.block.fail_payment(booking_id, self.now, {"reason": "declined"})
            return
        change = self.block.fail_payment(booking_id, self.now, {"reason": "declined"})
        self.record(change, status, EventType.PAYMENT_FAILED, BookingStatus.PAYMENT_FAILED, {"reason": "declined"})

    @rule(step=st.sampled_from([60.0, 0.0, 0.5, 1.0, 30.0, 59.0, 61.0, 200.0]), sweep=st.booleans())
    def advance_time(self, step, sweep):
        """Time passes; the sweep may or may not run (an unswept hold past its deadline is real)."""
        self.now += step
        if sweep:
            self.expire()

    @precondition(lambda self: self.block.next_deadline() is not None)
    @rule(sweep=st.booleans())
    def advance_to_the_next_deadline(self, sweep):
        """Exactly to the earliest deadline, where that hold is due (and may not be swept yet)."""
        self.now = max(self.now, self.block.next_deadline())
        if sweep:
            self.expire()

    def expire(self):
        due = {b for b, m in self.model.items() if m[2] is BookingStatus.HELD and m[3] <= self.now}
        changes = self.block.expire_due(self.now)
        assert {c.booking.booking_id for c in changes} == due
        deadlines = [c.booking.expires_at for c in changes]
        assert deadlines == sorted(deadlines)
        for change in changes:
            deadline = self.model[change.booking.booking_id][3]
            self.record(change, BookingStatus.HELD, EventType.HOLD_EXPIRED, BookingStatus.EXPIRED, {"deadline": deadline})

    @precondition(lambda self: self.undoable)
    @rule()
    def undo_latest(self):
        """The store refused the latest claim (a hold or a re-grant): take it back."""
        change = self.undoable.pop()
        booking_id = change.booking.booking_id
        self.block.undo(change)
        for seat in change.booking.seat_ids:
            assert self.owner.pop(seat) == booking_id
            if change.booking.status is BookingStatus.CONFIRMED:
                assert self.sold.pop(seat) == booking_id  # a sale never written never happened
        if change.previous is None:
            del self.model[booking_id]
            del self.written[booking_id]
            del self.deadline[booking_id]
        else:
            self.model[booking_id][2] = change.previous
            self.written[booking_id] = replace(change.booking, status=change.previous)  # what the store kept

    @precondition(lambda self: self.changes_since_restart >= 6)
    @rule(sweep=st.booleans())
    def restart(self, sweep):
        """The actor dies and comes back: a new block from the live bookings the store holds,
        which are exactly those the returned changes describe. Then, like the actor, it may
        expire the holds whose deadline passed while it was down."""
        stored = sorted((b for b in self.written.values() if b.status.claims_seats), key=lambda b: b.booking_id)
        assert stored == sorted(self.block.live_bookings(), key=lambda b: b.booking_id)
        restored = SeatBlock(M_BLOCK, M_HOLD, M_CAP)
        restored.restore(stored)
        assert restored.status() == self.block.status()
        assert [restored.owner_of(s) for s in M_BLOCK.seat_ids] == [self.block.owner_of(s) for s in M_BLOCK.seat_ids]
        for member in MEMBERS:
            assert restored.seats_of_member(member) == self.block.seats_of_member(member)
        assert restored.next_deadline() == self.block.next_deadline()
        self.block = restored
        self.model = {b: m for b, m in self.model.items() if m[2].claims_seats}
        self.written = {b: w for b, w in self.written.items() if b in self.model}
        self.undoable = []
        self.changes_since_restart = 0
        if sweep:
            self.expire()

    # ---- invariants

    @invariant()
    def one_live_owner_per_seat_and_the_bytes_agree(self):
        live = self.block.live_bookings()
        claimed = [s for b in live for s in b.seat_ids]
        assert len(claimed) == len(set(claimed)), "a seat has two live owners"
        expected = bytearray(b"A" * len(M_BLOCK.seat_ids))
        for booking in live:
            for seat in booking.seat_ids:
                expected[seat - M_BLOCK.first_seat_id] = ord("S" if booking.status is BookingStatus.CONFIRMED else "H")
        assert self.block.status() == bytes(expected)
        for seat in M_BLOCK.seat_ids:
            assert self.block.owner_of(seat) == self.owner.get(seat)

    @invariant()
    def a_sold_seat_never_changes(self):
        raw = self.block.status()
        for seat, booking_id in self.sold.items():
            assert raw[seat - M_BLOCK.first_seat_id] == ord("S")
            assert self.block.owner_of(seat) == booking_id

    @invariant()
    def deadlines_never_move(self):
        for booking_id, deadline in self.deadline.items():
            booking = self.block.find(booking_id)
            if booking is not None:
                assert booking.expires_at == deadline
                assert booking.expires_at == booking.created_at + M_HOLD

    @invariant()
    def members_within_cap_and_counted_right(self):
        for member in MEMBERS + (STRANGER,):
            from_bookings = sum(len(b.seat_ids) for b in self.block.live_bookings() if b.member_id == member)
            assert self.block.seats_of_member(member) == from_bookings == self.live_seats(member)
            assert from_bookings <= M_CAP

    @invariant()
    def next_deadline_is_the_earliest_hold(self):
        held = [m[3] for m in self.model.values() if m[2] is BookingStatus.HELD]
        assert self.block.next_deadline() == min(held, default=None)

    @invariant()
    def the_model_and_the_written_changes_agree_with_the_block(self):
        """Every state change was returned as a change: nothing happened behind the caller's back."""
        for booking_id, (member, seats, status, deadline) in self.model.items():
            booking = self.block.booking(booking_id)
            assert (booking.member_id, booking.seat_ids, booking.status, booking.expires_at) == (member, seats, status, deadline)
            assert self.written[booking_id] == booking
        assert sorted(self.written) == sorted(self.model)
        assert self.owner == {s: b for b, m in self.model.items() if m[2].claims_seats for s in m[1]}


SeatBlockMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestSeatBlockMachine = SeatBlockMachine.TestCase
