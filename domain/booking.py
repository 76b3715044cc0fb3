"""Bookings, their statuses and the changes a seat block reports about them.

A booking is immutable: every decision produces a new ``Booking`` and a ``BookingChange``
that says what happened, so the actor can write exactly that to the store and the log.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from domain.payment import Payment

from domain.errors import BookingNotFound


class BookingStatus(str, Enum):
    HELD = "held"
    CONFIRMED = "confirmed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    PAYMENT_FAILED = "payment_failed"
    REFUNDED = "refunded"

    @property
    def claims_seats(self) -> bool:
        """A held or confirmed booking owns its seats; every other status has let them go."""
        return self in (BookingStatus.HELD, BookingStatus.CONFIRMED)


class EventType(str, Enum):
    HOLD_CREATED = "hold_created"
    HOLD_CANCELLED = "hold_cancelled"
    HOLD_EXPIRED = "hold_expired"
    PAYMENT_STARTED = "payment_started"
    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_FAILED = "payment_failed"
    BOOKING_CONFIRMED = "booking_confirmed"
    PAYMENT_REFUNDED = "payment_refunded"
    QUEUE_JOINED = "queue_joined"
    QUEUE_ADMITTED = "queue_admitted"
    QUEUE_LEFT = "queue_left"
    QUEUE_ADMISSION_EXPIRED = "queue_admission_expired"


@dataclass(frozen=True)
class Booking:
    booking_id: str
    member_id: int
    seat_ids: tuple[int, ...]
    status: BookingStatus
    created_at: float
    expires_at: float

    def payable(self, now: float) -> bool:
        """A hold can be paid, and a success sells its seats as they are, only until its deadline."""
        return self.status is BookingStatus.HELD and now < self.expires_at


def visible_booking(booking: Booking | None, member_id: int, is_admin: bool = False) -> Booking:
    """The booking as ``member_id`` may see it: another member's booking is "not found", not
    "forbidden", so its existence is not revealed; an admin sees every booking."""
    if booking is None or (booking.member_id != member_id and not is_admin):
        raise BookingNotFound("no such booking")
    return booking


@dataclass(frozen=True)
class BookingChange:
    """One decision of a seat block, and the one log event it makes: the booking as it now is,
    what its status was before, and the payment as the change leaves it, if it is about one."""

    type: EventType
    booking: Booking
    previous: BookingStatus | None
    at: float
    detail: dict = field(default_factory=dict)
    payment: Payment | None = None

    @property
    def claims_seats(self) -> bool:
        return self.booking.status.claims_seats and not (self.previous and self.previous.claims_seats)

    @property
    def releases_seats(self) -> bool:
        return bool(self.previous and self.previous.claims_seats) and not self.booking.status.claims_seats


def new_booking_id(now: float | None = None) -> str:
    """Time-ordered and unguessable: 12 hex digits of milliseconds, then 10 random."""
    millis = int((time.time() if now is None else now) * 1000)
    return f"{millis:012x}{secrets.token_hex(5)}"


def booking_number(seq: int, created_at: float) -> str:
    """The short number a person reads and says on the phone: ``T`` + the year and month the
    booking was made (KST) + its sequence number (at least 4 digits) + 2 check digits, e.g.
    ``T2612-4821-93``. Unique because the sequence number is (the store numbers bookings);
    the check digits catch a mistyped digit or two swapped neighbours."""
    if seq < 0:
        raise ValueError("a sequence number is not negative")
    month = time.strftime("%y%m", time.gmtime(created_at + KST_OFFSET_SECONDS))
    body = f"{seq:04d}"
    return f"T{month}-{body}-{_check_digits(month + body):02d}"


KST_OFFSET_SECONDS = 9 * 3600


def _check_digits(digits: str) -> int:
    """ISO 7064 MOD 97-10 (as in IBAN): a changed digit or a swap of two changes it."""
    return 98 - (int(digits) * 100) % 97


def is_booking_number(text: str) -> bool:
    """Whether ``text`` reads as a booking number with the right check digits."""
    parts = text.split("-")
    if len(parts) != 3 or not text.isascii() or parts[0][:1] != "T":
        return False
    month, body, check = parts[0][1:], parts[1], parts[2]
    if not (len(month) == 4 and month.isdigit() and len(body) >= 4 and body.isdigit() and len(check) == 2 and check.isdigit()):
        return False
    return _check_digits(month + body) == int(check)
