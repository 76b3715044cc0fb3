"""The seat block state machine: the only place that decides who gets a seat.

Every method is synchronous and does its check and its change in one step, so the actor
that owns a block can never interleave two decisions about the same seat. Time is passed
in (``now``), never read, which keeps the rules deterministic and testable.

Seat lifecycle: ``A`` (available) → ``H`` (held by one booking) → ``S`` (sold, forever), or
``H`` → ``A`` when the hold is cancelled, expires or its payment fails.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Sequence

from domain.booking import Booking, BookingChange, BookingStatus, EventType, visible_booking
from domain.errors import (
    BookingError,
    BookingNotFound,
    BookingNotHeld,
    InvalidSeats,
    PaymentNotFound,
    SeatUnavailable,
    TooManySeats,
)
from domain.payment import REFUNDED_ALREADY_PAID, Payment, PaymentStatus, Settlement, settle
from domain.venue import Block, Venue, distinct_seats

AVAILABLE, HELD, SOLD = ord("A"), ord("H"), ord("S")


def within_cap(seats_owned: int, seats_requested: int, cap: int) -> bool:
    """The per-member rule: live holds plus confirmed seats never exceed the cap."""
    return seats_owned + seats_requested <= cap


def hold_refusal(venue: Venue, status: bytes | bytearray, current: Sequence[bool], seat_ids: Iterable[int]) -> BookingError | None:
    """Why a hold is refused before its block is asked, if it is, from a replica's seat map
    (``status``: one ``A``/``H``/``S`` byte per seat of the hall; ``current[i]``: block ``i``
    holds the map's open question, so it has released no seat the map shows taken).

    The layout's refusals (``Venue.layout_refusal``), then seats the map shows taken while it
    is current for their block: most attempts of a busy sale are on seats already taken. A
    seat released a moment ago, while the news was on its way, is refused as if another
    contender had won it; a block the map cannot follow decides itself.
    """
    seats = distinct_seats(seat_ids)
    refusal = venue.layout_refusal(seats)
    if refusal is not None or not current[venue.block_index_of(seats[0])]:
        return refusal
    taken = [seat for seat in seats if status[seat] != AVAILABLE]
    return SeatUnavailable.of(taken) if taken else None


class SeatBlock:
    def __init__(self, block: Block, hold_seconds: float, seats_per_member_max: int):
        self.block = block
        self.hold_seconds = hold_seconds
        self.seats_per_member_max = seats_per_member_max
        self._status = bytearray(b"A" * len(block.seat_ids))
        self._owner: list[str | None] = [None] * len(block.seat_ids)
        self._bookings: dict[str, Booking] = {}
        self._payments: dict[str, Payment] = {}
        self._seats_by_member: dict[int, int] = {}

    # ---- reading

    def status(self) -> bytes:
        """One byte per seat of the block, ``A``/``H``/``S``, in seat id order."""
        return bytes(self._status)

    def seat_counts(self) -> dict[str, int]:
        """How many of the block's seats are available, held and sold."""
        return {"available": self._status.count(AVAILABLE), "held": self._status.count(HELD), "sold": self._status.count(SOLD)}

    def booking(self, booking_id: str) -> Booking:
        try:
            return self._bookings[booking_id]
        except KeyError:
            raise BookingNotFound(f"no booking {booking_id} in {self.block.name}") from None

    def find(self, booking_id: str) -> Booking | None:
        return self._bookings.get(booking_id)

    def payment(self, payment_id: str) -> Payment:
        try:
            return self._payments[payment_id]
        except KeyError:
            raise PaymentNotFound(f"no payment {payment_id} in {self.block.name}") from None

    def find_payment(self, payment_id: str) -> Payment | None:
        return self._payments.get(payment_id)

    def payment_of(self, booking_id: str) -> Payment | None:
        """The payment that paid for the booking, or else the newest one started for it."""
        payments = [p for p in self._payments.values() if p.booking_id == booking_id]
        return max(payments, key=lambda p: (p.settles_booking, p.created_at), default=None)

    def live_bookings(self) -> list[Booking]:
        return [b for b in self._bookings.values() if b.status.claims_seats]

    def owner_of(self, seat_id: int) -> str | None:
        return self._owner[seat_id - self.block.first_seat_id]

    def seats_of_member(self, member_id: int) -> int:
        return self._seats_by_member.get(member_id, 0)

    def next_deadline(self) -> float | None:
        deadlines = [b.expires_at for b in self._bookings.values() if b.status is BookingStatus.HELD]
        return min(deadlines, default=None)

    # ---- deciding

    def hold(self, booking_id: str, member_id: int, seat_ids: Iterable[int], now: float) -> BookingChange:
        """Hold every seat for the member, or none of them."""
        seats = distinct_seats(seat_ids)
        self._validate_seats(seats)
        if booking_id in self._bookings:
            raise InvalidSeats(f"booking id {booking_id} is already used")
        if not within_cap(self.seats_of_member(member_id), len(seats), self.seats_per_member_max):
            raise TooManySeats(
                f"a member may hold at most {self.seats_per_member_max} seats", max_seats=self.seats_per_member_max
            )
        taken = [s for s in seats if self._status[s - self.block.first_seat_id] != AVAILABLE]
        if taken:
            raise SeatUnavailable.of(taken)
        booking = Booking(booking_id, member_id, seats, BookingStatus.HELD, now, now + self.hold_seconds)
        return self._apply(BookingChange(EventType.HOLD_CREATED, booking, None, now))

    def confirm(self, booking_id: str, now: float, detail: dict | None = None, regrant: bool = True) -> BookingChange:
        """A payment succeeded: sell the held seats, or decide what a late success means
        (``domain.payment.settle``). A hold whose deadline has passed but that no sweep has
        expired yet counts as expired, and still owns its seats. Only this booking changes,
        and the one change returned says all of it: other due holds are left to
        ``expire_due``, whose changes the caller writes. ``regrant=False``: refund a late
        success even if its seats are free (the store refused the re-grant).
        """
        booking = self.booking(booking_id)
        if booking.status in (BookingStatus.CONFIRMED, BookingStatus.REFUNDED):
            raise BookingNotHeld(f"booking {booking_id} is already {booking.status.value}", booking_status=booking.status.value)
        grantable = regrant and self._grantable(booking)
        decision = settle(PaymentStatus.PENDING, PaymentStatus.SUCCEEDED, booking.status, booking.payable(now), grantable)
        return self._grant_or_refund(booking, decision, now, dict(detail or {}))

    def cancel(self, booking_id: str, now: float, member_id: int) -> BookingChange:
        """The member lets their hold go. Someone else's booking is "not found", not "forbidden"."""
        visible_booking(self.find(booking_id), member_id)
        return self._release(booking_id, EventType.HOLD_CANCELLED, BookingStatus.CANCELLED, now)

    def fail_payment(self, booking_id: str, now: float, detail: dict | None = None) -> BookingChange:
        return self._release(booking_id, EventType.PAYMENT_FAILED, BookingStatus.PAYMENT_FAILED, now, detail)

    def expire_due(self, now: float) -> list[BookingChange]:
        """Release every hold whose deadline has passed; the deadline itself never moves."""
        due = [b for b in self._bookings.values() if b.status is BookingStatus.HELD and b.expires_at <= now]
        return [
            self._apply(self._change(EventType.HOLD_EXPIRED, b, BookingStatus.EXPIRED, now, {"deadline": b.expires_at}))
            for b in sorted(due, key=lambda b: b.expires_at)
        ]

    # ---- payments

    def start_payment(self, payment: Payment, now: float) -> BookingChange:
        """A member starts paying for their hold; only a running hold can be paid, and another
        member's booking is "not found"."""
        booking = visible_booking(self.find(payment.booking_id), payment.member_id)
        if not booking.payable(now):
            raise BookingNotHeld(f"booking {booking.booking_id} is {booking.status.value}; it cannot be paid",
                                 booking_status=booking.status.value)
        if payment.payment_id in self._payments:
            raise InvalidSeats(f"payment id {payment.payment_id} is already used")
        started = Payment(payment.payment_id, booking.booking_id, booking.member_id, payment.provider, payment.amount,
                          PaymentStatus.PENDING, now, now)
        self._payments[started.payment_id] = started
        detail = {"payment_id": started.payment_id, "provider": started.provider, "amount": started.amount}
        return BookingChange(EventType.PAYMENT_STARTED, booking, booking.status, now, detail, started)

    def settle_payment(self, payment_id: str, verdict: PaymentStatus, event_id: str, now: float,
                       regrant: bool = True) -> list[BookingChange]:
        """Apply a provider's verdict (``domain.payment.settle``): no change if the payment
        already had one; else the changes in the order they happened, one log event each: the
        verdict, then what it did to the booking (confirmed, re-granted or refunded)."""
        payment = self.payment(payment_id)
        booking = self.booking(payment.booking_id)
        grantable = regrant and self._grantable(booking)
        decision = settle(payment.status, verdict, booking.status, booking.payable(now), grantable)
        if decision is Settlement.IGNORED:
            return []
        decided = Payment(payment.payment_id, payment.booking_id, payment.member_id, payment.provider, payment.amount,
                          verdict, payment.created_at, now, event_id)
        detail = {"payment_id": payment.payment_id, "provider": payment.provider}
        if decision is Settlement.FAILED:
            self._payments[payment_id] = decided
            if booking.status is BookingStatus.HELD:
                return [replace(self.fail_payment(booking.booking_id, now, detail), payment=decided)]
            return [BookingChange(EventType.PAYMENT_FAILED, booking, booking.status, now,
                                  {**detail, "booking_status": booking.status.value}, decided)]
        succeeded = BookingChange(EventType.PAYMENT_SUCCEEDED, booking, booking.status, now, detail, decided)
        if booking.status in (BookingStatus.CONFIRMED, BookingStatus.REFUNDED):
            refunded = replace(decided, status=PaymentStatus.REFUNDED)
            self._payments[payment_id] = refunded
            paid_by = self.payment_of(booking.booking_id)
            reason = {"refunded_from": REFUNDED_ALREADY_PAID, "paid_by": paid_by.payment_id} \
                if booking.status is BookingStatus.CONFIRMED and paid_by and paid_by.settles_booking \
                else {"refunded_from": booking.status.value}
            return [succeeded, BookingChange(EventType.PAYMENT_REFUNDED, booking, booking.status, now,
                                             {**detail, **reason}, refunded)]
        change = self._grant_or_refund(booking, decision, now, detail)
        if change.booking.status is BookingStatus.REFUNDED:
            decided = replace(decided, status=PaymentStatus.REFUNDED)
        self._payments[payment_id] = decided
        return [succeeded, replace(change, payment=decided)]

    def undo_decision(self, changes: list[BookingChange]) -> None:
        """Take back a decision the store refused: its claim (a hold or a re-grant), and a
        verdict it applied, so that the payment is pending again and can be settled anew."""
        for change in reversed(changes):
            if change.claims_seats:
                self.undo(change)
        verdict = changes[0]
        if verdict.type in (EventType.PAYMENT_SUCCEEDED, EventType.PAYMENT_FAILED):
            self._payments[verdict.payment.payment_id] = replace(verdict.payment, status=PaymentStatus.PENDING, event_id=None)

    # ---- restoring and undoing

    def restore(self, bookings: Iterable[Booking], payments: Iterable[Payment] = ()) -> None:
        """Rebuild from the store: live bookings take their seats back, with their original
        deadlines, and their payments come back with them."""
        for booking in bookings:
            assert booking.status.claims_seats, f"only live bookings are restored, got {booking.status}"
            self._validate_seats(booking.seat_ids)
            self._apply(BookingChange(EventType.HOLD_CREATED, booking, None, booking.created_at))
        self._remember_payments(payments)

    def recall(self, booking: Booking, payments: Iterable[Payment] = ()) -> None:
        """Take back an ended booking read from the store (a restart forgets them), with its
        payments, so a late payment for it can still be decided: re-granted or refunded."""
        assert not booking.status.claims_seats, "live bookings come back through restore"
        self._validate_seats(booking.seat_ids)
        self._bookings.setdefault(booking.booking_id, booking)
        self._remember_payments(payments)

    def _remember_payments(self, payments: Iterable[Payment]) -> None:
        for payment in payments:
            assert payment.booking_id in self._bookings, "a payment comes back with its booking"
            self._payments.setdefault(payment.payment_id, payment)

    def undo(self, change: BookingChange) -> None:
        """Take back a change the store refused. Only changes that claimed seats can be undone:
        those seats were free before, nobody else could take them in between, and a sale that
        never became durable never happened."""
        assert change.claims_seats, "only a change that took seats can be undone"
        assert self._bookings.get(change.booking.booking_id) == change.booking, "undo the latest change only"
        for seat in change.booking.seat_ids:
            self._status[seat - self.block.first_seat_id] = AVAILABLE
            self._owner[seat - self.block.first_seat_id] = None
        self._count(change.booking, -1)
        if change.previous is None:
            del self._bookings[change.booking.booking_id]
        else:
            self._bookings[change.booking.booking_id] = replace(change.booking, status=change.previous)

    # ---- internals

    def _grantable(self, booking: Booking) -> bool:
        """Whether a success may sell the booking its seats: a held booking still owns them; an
        ended one only if every seat is free and the member stays within the cap."""
        if booking.status is BookingStatus.HELD:
            return True
        return all(self._status[s - self.block.first_seat_id] == AVAILABLE for s in booking.seat_ids) and within_cap(
            self.seats_of_member(booking.member_id), len(booking.seat_ids), self.seats_per_member_max
        )

    def _grant_or_refund(self, booking: Booking, decision: Settlement, now: float, detail: dict) -> BookingChange:
        """The booking's side of a success: sold, re-granted (saying from what) or refunded."""
        ended = BookingStatus.EXPIRED if booking.status is BookingStatus.HELD else booking.status
        if decision is Settlement.CONFIRMED:
            return self._apply(self._change(EventType.BOOKING_CONFIRMED, booking, BookingStatus.CONFIRMED, now, detail))
        if decision is Settlement.REGRANTED:
            detail["regranted_from"] = ended.value
            return self._apply(self._change(EventType.BOOKING_CONFIRMED, booking, BookingStatus.CONFIRMED, now, detail))
        detail["refunded_from"] = ended.value
        return self._apply(self._change(EventType.PAYMENT_REFUNDED, booking, BookingStatus.REFUNDED, now, detail))

    def _release(self, booking_id, event, status, now, detail=None) -> BookingChange:
        booking = self.booking(booking_id)
        if booking.status is not BookingStatus.HELD:
            raise BookingNotHeld(f"booking {booking_id} is {booking.status.value}", booking_status=booking.status.value)
        return self._apply(self._change(event, booking, status, now, dict(detail or {})))

    @staticmethod
    def _change(event, booking, status, now, detail) -> BookingChange:
        return BookingChange(event, replace(booking, status=status), booking.status, now, detail)

    def _validate_seats(self, seats: tuple[int, ...]) -> None:
        if not seats:
            raise InvalidSeats("choose at least one seat")
        refusal = self.block.span_refusal(seats)
        if refusal is not None:
            raise refusal

    def _apply(self, change: BookingChange) -> BookingChange:
        booking = change.booking
        if change.claims_seats:
            for seat in booking.seat_ids:
                assert self._status[seat - self.block.first_seat_id] == AVAILABLE, f"seat {seat} has another owner"
            self._count(booking, +1)
        elif change.releases_seats:
            self._count(booking, -1)
        if booking.status.claims_seats:
            self._mark(booking, SOLD if booking.status is BookingStatus.CONFIRMED else HELD, booking.booking_id)
        elif change.releases_seats:
            self._mark(booking, AVAILABLE, None)
        self._bookings[booking.booking_id] = booking
        return change

    def _mark(self, booking: Booking, state: int, owner: str | None) -> None:
        for seat in booking.seat_ids:
            index = seat - self.block.first_seat_id
            assert self._status[index] != SOLD or state == SOLD, f"sold seat {seat} never changes"
            self._status[index] = state
            self._owner[index] = owner

    def _count(self, booking: Booking, sign: int) -> None:
        count = self._seats_by_member.get(booking.member_id, 0) + sign * len(booking.seat_ids)
        assert 0 <= count, "a member's seat count never goes negative"
        if count:
            self._seats_by_member[booking.member_id] = count
        else:
            self._seats_by_member.pop(booking.member_id, None)
