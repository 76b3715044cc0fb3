"""Payments and the one rule that settles a provider's verdict against its booking.

A payment is started for a held booking and then receives verdicts from its provider. The
first verdict wins: a payment that is no longer pending ignores every later delivery. The
seat block owns its bookings' payments, so a verdict and what it does to the booking are
decided together, in one synchronous step, and written in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from domain.booking import BookingStatus


class PaymentStatus(str, Enum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"


@dataclass(frozen=True)
class Payment:
    payment_id: str
    booking_id: str
    member_id: int
    provider: str
    amount: int
    status: PaymentStatus
    created_at: float
    updated_at: float
    event_id: str | None = None
    """The provider's event that settled it (kept in the store's ``payment_events``)."""

    @property
    def settles_booking(self) -> bool:
        """Only a succeeded payment paid for its booking; a booking is paid at most once."""
        return self.status is PaymentStatus.SUCCEEDED


class Settlement(str, Enum):
    """What a verdict does, decided by ``settle``."""

    IGNORED = "ignored"  # the payment already had its verdict
    FAILED = "failed"  # the payment failed; a held booking lets its seats go
    CONFIRMED = "confirmed"  # paid in time: the held seats are sold
    REGRANTED = "regranted"  # paid late, and every seat is still free and within the cap
    REFUNDED = "refunded"  # paid, but the booking cannot have its seats: the money goes back


REFUNDED_ALREADY_PAID = "already_paid"


def settle(payment: PaymentStatus, verdict: PaymentStatus, booking: BookingStatus, in_time: bool, seats_free: bool) -> Settlement:
    """The first verdict wins; a failure releases a held booking's seats; a success sells
    them if the hold is still running, re-grants them if it ended and every seat is free
    (``seats_free``: free and within the member's cap), and is refunded otherwise, including
    when the booking was already paid by another payment.

    ``in_time``: the booking is held and its deadline has not passed. ``seats_free`` for a
    held booking past its deadline that no sweep has expired yet: it still owns its seats.
    """
    if verdict not in (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED):
        raise ValueError(f"a provider's verdict is succeeded or failed, not {verdict.value}")
    if payment is not PaymentStatus.PENDING:
        return Settlement.IGNORED
    if verdict is PaymentStatus.FAILED:
        return Settlement.FAILED
    if in_time:
        return Settlement.CONFIRMED
    if booking in (BookingStatus.CONFIRMED, BookingStatus.REFUNDED):
        return Settlement.REFUNDED
    return Settlement.REGRANTED if seats_free else Settlement.REFUNDED
