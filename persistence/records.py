"""Plain records the store hands out; bookings and payments are the domain's own (``domain.booking``, ``domain.payment``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Member:
    id: int
    username: str
    nickname: str
    role: str
    password_hash: str = field(repr=False)


@dataclass(frozen=True)
class LogEvent:
    at: float
    type: str
    booking_id: str | None
    member_id: int | None
    seat_ids: tuple[int, ...] = ()
    detail: dict = field(default_factory=dict)
    id: int | None = None


LOG_PAGE_MAX = 200
LOG_PAGE_DEFAULT = 50


@dataclass(frozen=True)
class LogQuery:
    """Filters of the booking log; every one optional, results newest first, at most
    ``LOG_PAGE_MAX`` a page (the HTTP ``limit`` and the store both hold to it)."""

    booking_id: str | None = None
    member_id: int | None = None
    seat_id: int | None = None
    type: str | None = None
    since: float | None = None
    until: float | None = None
    before_id: int | None = None
    limit: int = LOG_PAGE_DEFAULT


@dataclass(frozen=True)
class IdempotencyClaim:
    """One request's attempt to own ``key``; ``claim`` is unique to that request.

    ``answer`` (status, body) when the request was decided before it claimed the key (refused
    without any work): it is stored done with the claim, saving the second transaction.
    """

    member_id: int
    key: str
    request_hash: str
    claim: str
    answer: tuple[int, str] | None = None


@dataclass(frozen=True)
class IdempotencyRecord:
    request_hash: str
    state: str
    response_status: int | None
    response_body: str | None
    created_at: float
