"""The seat block state machine: the only place that decides who gets a seat.

Every method is synchronous and does its check and its change in one step, so the actor
that owns a block can never interleave two decisions about the same seat. Time is passed
in (``now``), never read, which keeps the rules deterministic and testable.

Seat lifecycle: ``A`` (available) → ``H`` (held by one booking) → ``S`` (sold, forever), or
``H`` → ``A`` when the hold is cancelled, expires or its payment fails.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from domain.booking import Booking, BookingChange, BookingStatus, EventType
from domain.errors import BookingNotFound, BookingNotHeld, InvalidSeats, SeatsSpanBlocks, SeatUnavailable, TooManySeats
from domain.venue import Block

AVAILABLE, HELD, SOLD = ord("A"), ord("H"), ord("S")


def within_cap(seats_owned: int, seats_requested: int, cap: int) -> bool:
    """The per-member rule: live holds plus confirmed seats never exceed the cap."""
    return seats_owned + seats_requested <= cap


class SeatBlock:
    def __init__(self, block: Block, hold_seconds: float, max_seats_per_member: int):
        self.block = block
        self.hold_seconds = hold_seconds
        self.max_seats_per_member = max_seats_per_member
        self._status = bytearray(b"A" * len(block.seat_ids))
        self._owner: list[str | None] = [None] * len(block.seat_ids)
        self._bookings: dict[str, Booking] = {}
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
        seats = tuple(sorted(set(seat_ids)))
        self._validate_seats(seats)
        if booking_id in self._bookings:
            raise InvalidSeats(f"booking id {booking_id} is already used")
        if not within_cap(self.seats_of_member(member_id), len(seats), self.max_seats_per_member):
            raise TooManySeats(
                f"a member may hold at most {self.max_seats_per_member} seats", max_seats=self.max_seats_per_member
            )
        taken = [s for s in seats if self._status[s - self.block.first_seat_id] != AVAILABLE]
        if taken:
            raise SeatUnavailable.of(taken)
        booking = Booking(booking_id, member_id, seats, BookingStatus.HELD, now, now + self.hold_seconds)
        return self._apply(BookingChange(EventType.HOLD_CREATED, booking, None, now))

    def confirm(self, booking_id: str, now: float, detail: dict | None = None, regrant: bool = True) -> BookingChange:
        """A payment succeeded: sell the held seats, or decide what a late success means.

        A success after the hold ended re-grants the seats when every one is still free,
        and is refunded otherwise; a repeated success changes nothing. A hold whose deadline
        has passed but that no sweep has expired yet counts as expired, and still owns its
        seats. Only this booking changes, and the one change returned says all of it: other
        due holds are left to ``expire_due``, whose changes the caller writes.
        """
        booking = self.booking(booking_id)
        detail = dict(detail or {})
        if booking.status in (BookingStatus.CONFIRMED, BookingStatus.REFUNDED):
            raise BookingNotHeld(f"booking {booking_id} is already {booking.status.value}", booking_status=booking.status.value)
        if booking.status is BookingStatus.HELD and now < booking.expires_at:
            return self._apply(self._change(EventType.BOOKING_CONFIRMED, booking, BookingStatus.CONFIRMED, now, detail))
        ended = BookingStatus.EXPIRED if booking.status is BookingStatus.HELD else booking.status
        still_owned = booking.status is BookingStatus.HELD
        if regrant and (still_owned or (
            all(self._status[s - self.block.first_seat_id] == AVAILABLE for s in booking.seat_ids)
            and within_cap(self.seats_of_member(booking.member_id), len(booking.seat_ids), self.max_seats_per_member)
        )):
            detail["regranted_from"] = ended.value
            return self._apply(self._change(EventType.BOOKING_CONFIRMED, booking, BookingStatus.CONFIRMED, now, detail))
        detail["refunded_from"] = ended.value
        return self._apply(self._change(EventType.PAYMENT_REFUNDED, booking, BookingStatus.REFUNDED, now, detail))

    def cancel(self, booking_id: str, now: float, member_id: int) -> BookingChange:
        """The member lets their hold go. Someone else's booking is "not found", not "forbidden"."""
        if self.booking(booking_id).member_id != member_id:
            raise BookingNotFound(f"no booking {booking_id}")
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

    # ---- restoring and undoing

    def restore(self, bookings: Iterable[Booking]) -> None:
        """Rebuild from the store: live bookings take their seats back, with their original deadlines."""
        for booking in bookings:
            assert booking.status.claims_seats, f"only live bookings are restored, got {booking.status}"
            self._validate_seats(booking.seat_ids)
            self._apply(BookingChange(EventType.HOLD_CREATED, booking, None, booking.created_at))

    def recall(self, booking: Booking) -> None:
        """Take back an ended booking read from the store (a restart forgets them), so a late
        payment for it can still be decided: re-granted or refunded."""
        assert not booking.status.claims_seats, "live bookings come back through restore"
        self._validate_seats(booking.seat_ids)
        self._bookings.setdefault(booking.booking_id, booking)

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
        outside = [s for s in seats if s not in self.block.seat_ids]
        if outside:
            raise SeatsSpanBlocks(f"seats must all lie in {self.block.name}", seats=outside)

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
