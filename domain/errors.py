"""The reasons a booking request is refused, each with a stable ``code`` clients can rely on."""

from __future__ import annotations


class BookingError(Exception):
    """A refused request. ``code`` is stable snake_case; ``extra`` goes into the error body."""

    code = "booking_error"

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.message = message
        self.extra = extra

    def __reduce__(self):
        # rebuilt without re-running __init__ with keywords: unpickling thousands of refusals
        # per actor call must stay cheap
        return (type(self), (self.message,), self.extra or None)

    def __setstate__(self, extra: dict) -> None:
        self.extra = extra

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and (self.message, self.extra) == (other.message, other.extra)

    def __hash__(self) -> int:
        return hash((type(self), self.message))


class InvalidSeats(BookingError):
    code = "invalid_seats"


class SeatsSpanBlocks(BookingError):
    code = "seats_span_blocks"


class TooManySeats(BookingError):
    code = "too_many_seats"


class SeatUnavailable(BookingError):
    code = "seat_unavailable"

    @classmethod
    def of(cls, taken: list[int]) -> "SeatUnavailable":
        return cls("some seats are no longer available", seats=taken)


class BookingNotFound(BookingError):
    code = "booking_not_found"


class PaymentNotFound(BookingError):
    code = "payment_not_found"


class BookingNotHeld(BookingError):
    code = "booking_not_held"


class StoreUnavailable(BookingError):
    code = "store_unavailable"


class Overloaded(BookingError):
    """More requests wait for one actor call or store batch than its bound allows: refused at
    once, before anything is decided, instead of queued in memory without end."""

    code = "overloaded"
