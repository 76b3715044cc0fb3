"""What one ingress replica does for a request, between the HTTP route and the actors.

It holds the replica's handles (store, blocks, queue), its caches (seat map, queue head)
and the hold batcher, and turns each use case into actor and store calls. The booking rules
themselves stay in ``domain``; the routes only translate HTTP to these methods and back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import time
from dataclasses import dataclass

import httpx

from actors.metrics_board import start_metrics_board
from actors.queue import start_queue
from actors.seat_block import HoldRequest, start_block
from api import metrics as api_metrics
from api.auth import Caller, Tokens
from api.batcher import Batcher
from api.metrics import Figures, Metrics, render
from api.models import GradeOut, QueueAnswer, SectionOut, ShowOut, VenueOut
from api.ratelimit import LoginThrottle, RateLimiter
from api.errors import ApiError
from api.idempotency import IdempotencyLedger
from api.queue_view import QueueView
from api.seatmap import SeatMap
from domain.booking import Booking, BookingStatus, EventType, new_booking_id
from domain.errors import BookingError, BookingNotFound, BookingNotHeld, InvalidSeats, SeatsSpanBlocks, SeatUnavailable
from encore.settings import Settings
from payments import CallbackPayload, complete_checkout, providers_from_settings
from persistence import open_store
from persistence.records import LogEvent, Payment

log = logging.getLogger(__name__)

QUEUE_TICKET_SECONDS = 24 * 3600
IDEMPOTENCY_PURGE_SECONDS = 3600
METRICS_REPORT_SECONDS = 1.0  # a replica's figures reach the board at most this late while they change
METRICS_HEARTBEAT_SECONDS = 10.0  # and this often when they do not, so the board knows it is alive
METRICS_ASK_SECONDS = 2.0  # a block or the queue that does not answer a scrape in time is shown down


def venue_out(settings: Settings, provider_names: list[str]) -> VenueOut:
    """The layout the page draws and the rules it checks before asking: ``block_rows`` is the
    venue's (a whole section's rows when ``ENCORE_BLOCK_ROWS`` is 0), so the page keeps a
    booking's seats in the block the server will accept them in."""
    venue = settings.venue
    prices = settings.price_list
    return VenueOut(
        seats=venue.seats,
        sections=[SectionOut(**vars(section), grade=prices.grade_of_section(section.name).name) for section in venue.sections],
        block_rows=venue.block_rows,
        hold_seconds=settings.hold_seconds,
        max_seats_per_member=settings.max_seats_per_member,
        grades=[GradeOut(name=g.name, price=g.price, colour=g.colour, sections=list(g.sections)) for g in prices.grades],
        booking_fee=prices.fee_per_seat,
        price_per_seat=settings.price_per_seat,
        providers=provider_names,
    )


def show_out(settings: Settings) -> ShowOut:
    show = settings.show
    utc = lambda moment: moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")  # noqa: E731
    return ShowOut(
        title=show.title, performer=show.performer, starts_at=utc(show.starts_at_utc), ends_at=utc(show.ends_at_utc),
        timezone=show.timezone, venue=show.venue_name, running_minutes=show.running_minutes,
        age_rating=show.age_rating, poster_url=show.poster_url,
    )


@dataclass(frozen=True)
class BookingView:
    booking: Booking
    block_index: int
    payment: Payment | None


class BookingService:
    def __init__(self, settings: Settings, metrics: Metrics | None = None, replica: dict[str, str] | None = None):
        """``metrics``: the replica's counters (by default the process's, which the edge
        times every request into); ``replica``: its labels on ``/metrics`` (``replica``,
        ``node``, ``pid``)."""
        self.settings = settings
        self.venue = settings.venue
        self.prices = settings.price_list
        self.store = open_store(settings.db_url, pool_size=8)
        self.blocks = [
            start_block(block, settings.hold_seconds, settings.max_seats_per_member, settings.db_url)
            for block in self.venue.blocks()
        ]
        self.queue = start_queue(settings)
        self.queue_view = QueueView(self.queue, settings)
        self.seat_map = SeatMap(self.venue, self.blocks, settings.snapshot_interval_ms)
        self.holds = Batcher(self._hold_batch, settings.hold_batch_max, settings.hold_linger_ms / 1000)
        self.metrics = metrics or api_metrics.replica_metrics
        self.replica = replica or {"replica": f"pid-{os.getpid()}", "node": "", "pid": str(os.getpid())}
        self.metrics_board = start_metrics_board()
        self.providers = providers_from_settings(
            settings.provider_names, settings.secret_key, settings.payment_failure_rate, settings.payment_delay_ms
        )
        self.tokens = Tokens(settings.secret_key, settings.token_seconds, settings.admission_seconds,
                             settings.pollers_remembered_max)
        self.rate_limiter = RateLimiter(settings.rate_limit_writes_per_minute, settings.ingress_replicas)
        self.login_throttle = LoginThrottle(settings.ingress_replicas)
        self.idempotency = IdempotencyLedger(self.store)
        self.joins = Batcher(self._join_batch, settings.hold_batch_max)
        self.venue_out = venue_out(settings, list(self.providers))
        self.show_out = show_out(settings)
        self._rng = random.Random()
        self._http: httpx.AsyncClient | None = None
        self._background: list[asyncio.Task] = []

    def start_background(self) -> None:
        """Start the refresh loops; called once the replica's event loop runs."""
        if not self._background:
            self._background = [
                asyncio.create_task(self.seat_map.run_forever()),
                asyncio.create_task(self.queue_view.run_forever()),
                asyncio.create_task(self._purge_idempotency_forever()),
                asyncio.create_task(self._report_metrics_forever()),
            ]

    async def _purge_idempotency_forever(self) -> None:
        """Keys are kept 24 hours; older ones are deleted once an hour."""
        while True:
            try:
                await self.store.purge_idempotency(time.time())
            except Exception:
                log.exception("purging idempotency keys failed")
            await asyncio.sleep(IDEMPOTENCY_PURGE_SECONDS)

    # ---- metrics

    def replica_figures(self) -> dict:
        return self.metrics.snapshot({"remembered": self.tokens.polls_remembered, "verified": self.tokens.polls_verified})

    async def _report_metrics_forever(self) -> None:
        """Send the replica's figures to the board while they change, and a heartbeat when not:
        an idle replica costs a wake-up a second and a call every ``METRICS_HEARTBEAT_SECONDS``."""
        reported, reported_at = -1, 0.0
        while True:
            await asyncio.sleep(METRICS_REPORT_SECONDS)
            now = time.monotonic()
            if self.metrics.observed == reported and now - reported_at < METRICS_HEARTBEAT_SECONDS:
                continue
            reported, reported_at = self.metrics.observed, now
            try:
                await self.metrics_board.report.remote(self.replica, self.replica_figures())
            except Exception as error:
                log.warning("reporting metrics to the board failed: %r", error)

    async def metrics_text(self) -> str:
        """Every replica's figures (this one's as they are now, the others' as last reported),
        every block's and the queue's as they answer now, and the store's bookings by status."""
        async def ask(call):
            try:
                return await asyncio.wait_for(call, METRICS_ASK_SECONDS)
            except Exception:
                return None

        others, queue, bookings, *blocks = await asyncio.gather(
            ask(self.metrics_board.latest.remote()), ask(self.queue.figures.remote()), ask(self.store.booking_counts()),
            *(ask(block.stats.remote()) for block in self.blocks),
        )
        replicas = [(who, figures) for who, figures in others or [] if who["replica"] != self.replica["replica"]]
        replicas.append((self.replica, self.replica_figures()))
        names = [block.name for block in self.venue.blocks()]
        return render(Figures(replicas, list(zip(names, blocks)), queue, bookings))

    # ---- the waiting queue

    async def join_queue(self, caller: Caller) -> QueueAnswer:
        """Join (or rejoin: the same place comes back) and get a signed ticket to poll with."""
        standing = await self.joins.submit("queue", caller.member_id)
        if isinstance(standing, BookingError):
            raise ApiError(503, standing.code, standing.message, {"Retry-After": "5"})
        return self._queue_answer(caller, standing.number)

    async def poll_queue(self, authorization: str | None, ticket: str) -> QueueAnswer:
        """Answered from the ticket and the cached head; only a ticket from before the opening
        draw asks the actor, once, for the number the draw gave it."""
        caller, number = self.tokens.queue_poller(authorization, ticket)
        summary = self.queue_view.summary
        if number is None and summary is not None and summary["opened"]:
            [standing] = await self.queue.standings.remote([caller.member_id])
            if standing is None:
                raise ApiError(403, "bad_ticket", "this ticket is no longer in the queue; join again")
            return self._queue_answer(caller, standing.number)
        return self._queue_answer(caller, number, ticket)

    async def claim_admission(self, caller: Caller, ticket: str) -> tuple[QueueAnswer, float | None]:
        """The one call a waiting page makes once the public status shows its turn: the ticket
        is checked as a poll checks it, and a ticket from before the opening draw learns its
        number from the actor (once). The answer says ``admitted`` (with the token and when the
        admission ends), ``waiting`` or ``expired``; a second claim gets the very same token."""
        number = self.tokens.ticket_claims(ticket, caller).get("n")
        summary = self.queue_view.summary
        if number is None and summary is not None and summary["opened"]:
            [standing] = await self.queue.standings.remote([caller.member_id])
            if standing is None:
                raise ApiError(403, "bad_ticket", "this ticket is no longer in the queue; join again")
            number, ticket = standing.number, None
        answer = self._queue_answer(caller, number, ticket)
        return answer, self.queue_view.position(number).admitted_until

    def _queue_answer(self, caller: Caller, number: int | None, ticket: str | None = None) -> QueueAnswer:
        """``ticket``: the one the caller holds, handed back unchanged (a poll signs nothing new)."""
        epoch = (self.queue_view.summary or {}).get("epoch", 0)
        position = self.queue_view.position(number)
        ticket = ticket or self.tokens.ticket(caller.member_id, number, epoch, QUEUE_TICKET_SECONDS)
        admission = None
        if position.state == "admitted":
            admission = self.tokens.admission(caller.member_id, number, epoch, position.admitted_until)
        return QueueAnswer(ticket, position.state, position.ahead, position.eta_tenths, position.poll_after_ms, admission)

    async def _join_batch(self, _key, member_ids: list[int]) -> list:
        return await self.queue.join_many.remote(member_ids)

    # ---- holds

    async def hold(self, member_id: int, seat_ids: list[int]) -> Booking:
        """All or nothing; the seats must lie in one block (one section by default)."""
        refusal = self.hold_refusal(seat_ids)
        if refusal is not None:
            raise refusal
        seats = tuple(sorted(set(seat_ids)))
        result = await self.holds.submit(self.venue.block_index_of(seats[0]), HoldRequest(new_booking_id(), member_id, seats))
        if isinstance(result, BookingError):
            self.metrics.count_hold(result.code)
            raise result
        self.metrics.count_hold("won")
        return result

    def hold_refusal(self, seat_ids: list[int]) -> BookingError | None:
        """Why these seats are refused before their block is asked, if they are.

        Ids outside the hall, or seats of several blocks. And seats the map shows taken, while
        the map is current for their block (``SeatMap.current``): most attempts of a busy sale
        are on seats already taken. A seat released a moment ago, while the news was on its
        way, is refused as if another contender had won it. A block whose last question
        failed decides itself.
        """
        seats = sorted(set(seat_ids))
        if not seats:
            return InvalidSeats("choose at least one seat", seats=[])
        outside = [s for s in seats if not 0 <= s < self.venue.seats]
        if outside:
            return InvalidSeats(f"seat ids run from 0 to {self.venue.seats - 1}", seats=outside)
        blocks = {self.venue.block_index_of(s) for s in seats}
        if len(blocks) > 1:
            return SeatsSpanBlocks("the seats of one booking must lie in one section", seats=seats)
        if self.seat_map.current(blocks.pop()):
            taken = self.seat_map.taken(seats)
            if taken:
                self.metrics.count_hold("refused_by_map")
                return SeatUnavailable.of(taken)
        return None

    async def _hold_batch(self, block_index: int, requests: list[HoldRequest]) -> list:
        return await self.blocks[block_index].hold_many.remote(requests)

    async def cancel(self, member_id: int, booking_id: str) -> Booking:
        """Idempotent: releasing a booking already released by its member answers as the first
        time did (a second click, or Ray retrying the call after a block restart)."""
        view = await self.booking(booking_id, member_id, is_admin=False)
        block = self.blocks[view.block_index]
        try:
            return await block.cancel.remote(booking_id, member_id)
        except BookingNotHeld as error:
            if error.extra.get("booking_status") != BookingStatus.CANCELLED.value:
                raise
            return await block.booking.remote(booking_id)

    # ---- reading bookings

    async def booking(self, booking_id: str, member_id: int, is_admin: bool) -> BookingView:
        """Another member's booking is "not found": its existence is not revealed."""
        found = await self.store.booking(booking_id) if len(booking_id) <= 32 else None
        if found is None or (found[0].member_id != member_id and not is_admin):
            raise BookingNotFound("no such booking")
        booking, block_index = found
        return BookingView(booking, block_index, await self.store.latest_payment(booking_id))

    # ---- payments

    async def start_payment(self, member_id: int, booking_id: str, provider_name: str) -> Payment:
        if provider_name not in self.providers:
            raise ApiError(422, "unknown_provider", f"choose one of: {', '.join(self.providers)}", providers=list(self.providers))
        view = await self.booking(booking_id, member_id, is_admin=False)
        live = await self.blocks[view.block_index].booking.remote(booking_id)
        if live.status is not BookingStatus.HELD or live.expires_at <= time.time():
            raise BookingNotHeld(f"booking {booking_id} is {live.status.value}; it cannot be paid", booking_status=live.status.value)
        now = time.time()
        payment = Payment(
            payment_id=f"pay_{secrets.token_hex(10)}",
            booking_id=booking_id,
            member_id=member_id,
            provider=provider_name,
            amount=self.prices.amount(live.seat_ids),
            status="pending",
            created_at=now,
            updated_at=now,
        )
        await self.store.create_payment(payment, live.seat_ids)
        return payment

    async def checkout(self, provider_name: str, payment_id: str, requested: str) -> tuple[str, bool]:
        """The mock provider's side of a click on Pay/Fail: decide, then call our own callback."""
        payment = await self.payment_of(provider_name, payment_id)
        if self._http is None:
            self._http = httpx.AsyncClient()
        result = await complete_checkout(
            self._http, self.providers[provider_name], f"{self.settings.base_url}/api/payments/{provider_name}/callback",
            payment.payment_id, payment.booking_id, payment.amount, requested, self._rng,
        )
        return result.status, result.delivered

    async def payment_callback(self, provider_name: str, payload: CallbackPayload) -> Booking:
        """Apply a provider's verdict once; a repeated delivery finds the work done and changes nothing."""
        payment = await self.payment_of(provider_name, payload.payment_id)
        if payload.booking_id != payment.booking_id or payload.amount != payment.amount:
            raise ApiError(422, "payment_mismatch", "the callback does not match the payment (booking or amount)")
        view = await self.booking(payment.booking_id, payment.member_id, is_admin=True)
        if payload.amount != self.prices.amount(view.booking.seat_ids):
            raise ApiError(422, "payment_mismatch", "the amount is not the booking's price (its seats' grades and the fee)")
        first_delivery = await self.store.record_payment_result(
            payload.event_id, payment, payload.status, time.time(),
            {"payment_id": payment.payment_id, "provider": provider_name}, view.booking.seat_ids,
        )
        payment = await self.store.payment(payment.payment_id)  # the first verdict wins
        block = self.blocks[view.block_index]
        detail = {"payment_id": payment.payment_id, "provider": provider_name}
        if payment.status == "refunded":  # the booking was already paid by another payment
            return await block.booking.remote(payment.booking_id)
        try:
            if payment.status != "succeeded":
                return await block.fail_payment.remote(payment.booking_id, detail)
            booking = await block.confirm.remote(payment.booking_id, detail)
        except BookingNotHeld:
            # a repeated delivery, or Ray retrying the call after a block restart whose first
            # attempt had already decided it: the booking says what happened
            booking = await block.booking.remote(payment.booking_id)
            if first_delivery and payment.status == "failed":
                await self.store.append_log([LogEvent(
                    time.time(), EventType.PAYMENT_FAILED.value, booking.booking_id, booking.member_id, booking.seat_ids,
                    {**detail, "booking_status": booking.status.value},
                )])
        if payment.status == "succeeded" and booking.status is BookingStatus.CONFIRMED:
            await self.queue.complete.remote(payment.member_id)
        return booking

    async def payment_of(self, provider_name: str, payment_id: str) -> Payment:
        payment = await self.store.payment(payment_id) if len(payment_id) <= 32 else None
        if payment is None or payment.provider != provider_name:
            raise ApiError(404, "payment_not_found", "no such payment")
        return payment
