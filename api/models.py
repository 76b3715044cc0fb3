"""Request and response bodies of the HTTP contract (docs/API.md), with their bounds."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StrictInt


def iso(epoch: float) -> str:
    """A moment as the API writes it: UTC, milliseconds, ``Z``."""
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")

SEATS_PER_REQUEST_MAX = 20


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignUp(Strict):
    username: str = Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(min_length=8, max_length=128)
    nickname: str = Field(min_length=1, max_length=64)


class Login(Strict):
    username: str = Field(min_length=1, max_length=32)
    password: str = Field(min_length=1, max_length=128)


class MemberOut(BaseModel):
    id: int
    username: str
    nickname: str
    role: Literal["user", "admin"]


class SessionOut(BaseModel):
    token: str
    member: MemberOut


class QueueOut(BaseModel):
    ticket: str
    state: Literal["waiting", "admitted", "expired"]
    ahead: int
    eta_seconds: float
    poll_after_ms: int
    admission_token: str | None = None


class QueueAnswer(NamedTuple):
    """A ``QueueOut`` as the queue polls send it, tens of thousands of times a second at the
    brief's peak: rendered straight to JSON, with the fields, order and types of ``QueueOut`` (a
    property test compares the two), instead of building and dumping a pydantic model.

    ``ticket`` and ``admission_token`` are tokens this service signed (``domain.tokens``):
    base64url text and one dot, which JSON takes as it is.
    """

    ticket: str
    state: str
    ahead: int
    eta_tenths: int
    poll_after_ms: int
    admission_token: str | None = None

    @property
    def eta_seconds(self) -> float:
        return self.eta_tenths / 10

    def render(self) -> bytes:
        ticket, state, ahead, eta_tenths, poll_after_ms, admission_token = self
        admission = "null" if admission_token is None else f'"{admission_token}"'
        return (
            f'{{"ticket":"{ticket}","state":"{state}","ahead":{ahead},"eta_seconds":{eta_tenths // 10}.{eta_tenths % 10},'
            f'"poll_after_ms":{poll_after_ms},"admission_token":{admission}}}'
        ).encode("ascii")

    def out(self) -> QueueOut:
        return QueueOut(ticket=self.ticket, state=self.state, ahead=self.ahead, eta_seconds=self.eta_seconds,
                        poll_after_ms=self.poll_after_ms, admission_token=self.admission_token)


class QueueStatusOut(BaseModel):
    """The waiting room as everyone sees it (``GET /api/queue/status``, cached by the HTTP cache)."""

    version: int = Field(description="ms time of the room's last change: a larger one is newer")
    opened: bool
    opens_at: str | None
    admitted_through: int = Field(description="every ticket numbered up to this one has been admitted")
    waiting: int = Field(description="people in line, the pre-opening draw included")
    drawing: int = Field(description="people who joined before the opening, to be shuffled when it opens")
    admit_per_second: float = Field(description="the measured admission rate")
    admission_seconds: int
    poll_after_ms: int


class AdmissionIn(Strict):
    ticket: str = Field(min_length=1, max_length=2048)


class AdmissionOut(BaseModel):
    state: Literal["admitted"]
    ticket: str
    admission_token: str
    admitted_until: str


class SectionOut(BaseModel):
    name: str
    rows: int
    cols: int
    first_seat_id: int
    grade: str = Field("", description="the name of the section's grade (see grades)")


class GradeOut(BaseModel):
    name: str
    price: int = Field(description="KRW per seat")
    colour: str = Field(description="#rrggbb, the seat map's colour for its available seats")
    sections: list[str]


class VenueOut(BaseModel):
    seats: int
    sections: list[SectionOut]
    block_rows: int = Field(description="rows per seat block, counted from each section's first row: "
                                        "the seats of one booking lie in one block")
    hold_seconds: float
    max_seats_per_member: int
    grades: list[GradeOut] = Field(default_factory=list, description="dearest first; every section is in one")
    booking_fee: int = Field(0, description="KRW added per seat to every booking")
    price_per_seat: int = Field(description="deprecated: bookings are priced by grade; kept for old clients")
    providers: list[str]


class ShowOut(BaseModel):
    title: str
    performer: str
    starts_at: str = Field(description="ISO-8601 UTC")
    ends_at: str = Field(description="ISO-8601 UTC, the start plus the running time")
    timezone: str = Field(description="the hall's zone, in which the page shows the times (Asia/Seoul)")
    venue: str
    running_minutes: int
    age_rating: str
    poster_url: str


class SeatsOut(BaseModel):
    version: str
    status: str


class HoldIn(Strict):
    # strict: ``true``, ``"13"`` and ``13.0`` are not seat ids, whatever pydantic could coerce them to
    seat_ids: list[StrictInt] = Field(min_length=1, max_length=SEATS_PER_REQUEST_MAX)


class HoldOut(BaseModel):
    booking_id: str
    seat_ids: list[int]
    status: str
    expires_at: str


class CancelOut(BaseModel):
    booking_id: str
    status: str


class PaymentIn(Strict):
    provider: str = Field(min_length=1, max_length=32)


class PaymentOut(BaseModel):
    payment_id: str
    provider: str
    status: str
    amount: int
    redirect_url: str


class BookingOut(BaseModel):
    booking_id: str
    booking_number: str | None = Field(None, description="the short number a person reads, e.g. T2612-4821-93")
    member_id: int
    seat_ids: list[int]
    seat_labels: list[str]
    status: str
    created_at: str
    expires_at: str
    payment: PaymentOut | None = None


class BookingsOut(BaseModel):
    bookings: list[BookingOut]


class CheckoutIn(Strict):
    result: Literal["success", "fail"]


class CheckoutOut(BaseModel):
    delivered: bool
    status: str


class CallbackOut(BaseModel):
    booking_id: str
    status: str


class LogEventOut(BaseModel):
    id: int
    at: str
    type: str
    booking_id: str | None
    member_id: int | None
    username: str | None = Field(None, description="the member's username (null for a member no longer there)")
    seat_ids: list[int]
    detail: dict


class LogPageOut(BaseModel):
    events: list[LogEventOut]
    next_cursor: str | None


class GradeSeatsOut(BaseModel):
    grade: str
    price: int
    seats: int
    sold: int
    held: int
    available: int
    revenue: int = Field(description="KRW: the grade's price × its seats sold")


class PaymentCountOut(BaseModel):
    status: str
    count: int
    amount: int = Field(description="KRW, the payments' amounts added up")


class DashboardOut(BaseModel):
    seats_version: str = Field(description="the seat map's version the seat counts come from")
    grades: list[GradeSeatsOut]
    payments: list[PaymentCountOut]
    bookings: dict[str, int] = Field(description="bookings by status")


class Problem(BaseModel):
    code: str
    message: str
