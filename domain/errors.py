"""The reasons a request is refused by a rule, each with a stable ``code`` clients can rely on."""

from __future__ import annotations


class Refusal(Exception):
    """A request a rule refused. ``code`` is stable snake_case; ``extra`` goes into the error body."""

    code = "refused"

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


class BookingError(Refusal):
    """A booking request refused: its seats, its cap, its booking, or the store behind it."""

    code = "booking_error"


class QueueFull(Refusal):
    """The waiting room already holds its ``members_max`` people; the person tries again shortly."""

    code = "queue_full"


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
