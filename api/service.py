"""What one ingress replica does for a request, between the HTTP route and the actors.

``BookingService`` turns each use case into actor and store calls, through the parts it is
given (store, blocks, queue, the replica's seat map and queue view, tokens, limits) and its
batchers. The booking and payment rules themselves stay in ``domain``; the routes only
translate HTTP to these methods and back.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass

from actors.batching import Batcher
from actors.seat_block import HoldRequest, Verdict
from api.auth import Caller, Tokens
from api.metrics import Figures, Metrics, render
from api.models import GradeOut, QueueAnswer, SectionOut, ShowOut, VenueOut
from api.ratelimit import LoginThrottle, RateLimiter
from api.errors import ApiError
from api.idempotency import IdempotencyLedger
from api.queue_view import QueueView
from api.seatmap import SeatMap
from domain.booking import Booking, BookingStatus, new_booking_id, visible_booking
from domain.errors import BookingError, BookingNotHeld, Refusal, SeatUnavailable
from domain.payment import Payment, PaymentStatus
from domain.seat_block import hold_refusal
from domain.venue import distinct_seats
from encore.settings import Settings
from payments import CallbackPayload, MockProviders, Provider
from persistence.store import SqlStore

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
        max_seats_per_member=settings.seats_per_member_max,
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
    """The use cases of one ingress replica. Its parts are built and wired in one place,
    ``serve_app.build_service``; tests hand it real parts of their own."""

    def __init__(self, settings: Settings, *, store: SqlStore, blocks: list, queue, queue_view: QueueView,
                 seat_map: SeatMap, providers: dict[str, Provider], mock_providers: MockProviders, tokens: Tokens,
                 rate_limiter: RateLimiter, login_throttle: LoginThrottle, idempotency: IdempotencyLedger,
                 metrics: Metrics, metrics_board, replica: dict[str, str], replica_process=None):
        """``metrics``: the replica's counters, which the edge times every request into;
        ``metrics_board``: the actor that keeps every replica's last figures; ``replica``: this
        replica's labels on ``/metrics`` (``replica``, ``node``, ``pid``); ``replica_process``:
        its Ray actor, by which the board tells a dead replica from a quiet one."""
        self.settings = settings
        self.venue = settings.venue
        self.prices = settings.price_list
        self.store = store
        self.blocks = blocks
        self.queue = queue
        self.queue_view = queue_view
        self.seat_map = seat_map
        self.providers = providers
        self.mock_providers = mock_providers
        self.tokens = tokens
        self.rate_limiter = rate_limiter
        self.login_throttle = login_throttle
        self.idempotency = idempotency
        self.metrics = metrics
        self.metrics_board = metrics_board
        self.replica = replica
        self.replica_process = replica_process
        self.holds = Batcher(self._hold_batch, settings.hold_batch_max, settings.hold_linger_ms / 1000,
                             settings.batch_waiting_max)
        self.joins = Batcher(self._join_batch, settings.hold_batch_max, waiting_max=settings.batch_waiting_max)
        self.venue_out = venue_out(settings, list(providers))
        self.show_out = show_out(settings)
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

    @property
    def ready(self) -> bool:
        """The seat map and the queue summary are loaded; before that the map shows every seat free."""
        return self.seat_map.fresh.is_set() and self.queue_view.summary is not None

    async def until_ready(self, seconds: float) -> None:
        """Wait until ``ready``, at most ``seconds``."""
        deadline = time.monotonic() + seconds
        while not self.ready:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the seat map or the queue summary was not loaded within {seconds:.0f} s")
            await asyncio.sleep(0.05)

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
                await self.metrics_board.report.remote(self.replica, self.replica_figures(), self.replica_process)
            except Exception as error:
                log.warning("reporting metrics to the board failed: %r", error)

    async def metrics_text(self) -> str:
        """Every replica's figures (this one's as they are now, the others' as last reported),
        every block's and the queue's as they answer now, and the store's bookings by status.

        This replica's figures go to the board before the answer: otherwise the next scrape,
        answered by another replica, would show them as last reported, behind what this one
        showed, and a counter would go back."""
        async def ask(call):
            try:
                return await asyncio.wait_for(call, METRICS_ASK_SECONDS)
            except Exception:
                return None

        own = self.replica_figures()
        others, _, queue, bookings, *blocks = await asyncio.gather(
            ask(self.metrics_board.latest.remote()), ask(self.metrics_board.report.remote(self.replica, own, self.replica_process)),
            ask(self.queue.figures.remote()), ask(self.store.booking_counts()),
            *(ask(block.stats.remote()) for block in self.blocks),
        )
        replicas = [(who, figures) for who, figures in others or [] if who["replica"] != self.replica["replica"]]
        replicas.append((self.replica, own))
        names = [block.name for block in self.venue.blocks()]
        return render(Figures(replicas, list(zip(names, blocks)), queue, bookings))

    # ---- the waiting queue

    async def join_queue(self, caller: Caller) -> QueueAnswer:
        """Join (or rejoin: the same place comes back) and get a signed ticket to poll with."""
        standing = await self.joins.submit("queue", caller.member_id)
        if isinstance(standing, Refusal):  # the room is full, or its log cannot be written now
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
        """All or nothing, for seats ``hold_refusal`` let through: they lie in one block (one
        section by default), and that block decides."""
        seats = distinct_seats(seat_ids)
        result = await self.holds.submit(self.venue.block_index_of(seats[0]), HoldRequest(new_booking_id(), member_id, seats))
        if isinstance(result, BookingError):
            self.metrics.count_hold(result.code)
            raise result
        self.metrics.count_hold("won")
        return result

    def hold_refusal(self, seat_ids: list[int]) -> BookingError | None:
        """Why these seats are refused before their block is asked, if they are
        (``domain.seat_block.hold_refusal`` by this replica's seat map); asked once per hold."""
        refusal = hold_refusal(self.venue, self.seat_map.seats, self.seat_map.blocks_current, seat_ids)
        if isinstance(refusal, SeatUnavailable):
            self.metrics.count_hold("refused_by_map")
        return refusal

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
        """Another member's booking is "not found" (``domain.booking.visible_booking``)."""
        found = await self.store.booking(booking_id) if len(booking_id) <= 32 else None
        booking = visible_booking(found[0] if found else None, member_id, is_admin)
        return BookingView(booking, found[1], await self.store.latest_payment(booking_id))

    # ---- payments

    async def start_payment(self, member_id: int, booking_id: str, provider_name: str) -> Payment:
        """The booking's block records the payment, so that it and every later verdict are
        decided where the booking is."""
        if provider_name not in self.providers:
            raise ApiError(422, "unknown_provider", f"choose one of: {', '.join(self.providers)}", providers=list(self.providers))
        view = await self.booking(booking_id, member_id, is_admin=False)
        now = time.time()
        payment = Payment(
            payment_id=f"pay_{secrets.token_hex(10)}", booking_id=booking_id, member_id=member_id, provider=provider_name,
            amount=self.prices.amount(view.booking.seat_ids), status=PaymentStatus.PENDING, created_at=now, updated_at=now,
        )
        return await self.blocks[view.block_index].start_payment.remote(payment)

    async def payment_callback(self, provider_name: str, payload: CallbackPayload) -> Booking:
        """A provider's verdict (its signature already verified): checked against the payment,
        answered from the store when the payment already had its verdict (a repeated delivery),
        else decided by the booking's block; a paid booking frees its member's queue place."""
        payment = await self.payment_of(provider_name, payload.payment_id)
        if payload.booking_id != payment.booking_id or payload.amount != payment.amount:
            raise ApiError(422, "payment_mismatch", "the callback does not match the payment (booking or amount)")
        view = await self.booking(payment.booking_id, payment.member_id, is_admin=True)
        booking = view.booking
        if payment.status is PaymentStatus.PENDING:
            verdict = Verdict(payment.payment_id, payment.booking_id, PaymentStatus(payload.status), payload.event_id)
            booking, payment = await self.blocks[view.block_index].settle_payment.remote(verdict)
        if payment.settles_booking:  # again on a repeated delivery, in case the queue missed it
            await self.queue.complete.remote(payment.member_id)
        return booking

    async def payment_of(self, provider_name: str, payment_id: str) -> Payment:
        payment = await self.store.payment(payment_id) if len(payment_id) <= 32 else None
        if payment is None or payment.provider != provider_name:
            raise ApiError(404, "payment_not_found", "no such payment")
        return payment
