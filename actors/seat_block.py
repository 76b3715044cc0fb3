"""The seat block actor: owns one ``SeatBlock`` and its store, and nothing else.

Ray delivers the block's messages one event-loop step at a time, and every decision is one
synchronous call into the domain, so no two decisions about a seat can interleave. A
decision is acknowledged only after its ``GroupCommitter`` (below, the block's only way to
the store) has committed it; what the committer gives up, the actor undoes. On (re)start the
actor rebuilds its block from the store, expiring holds whose deadline passed while it was down.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, NamedTuple, Sequence

import ray

from domain.booking import Booking, BookingChange, BookingStatus
from domain.errors import BookingError, StoreUnavailable, TooManySeats
from domain.payment import Payment, PaymentStatus
from domain.seat_block import SeatBlock
from domain.venue import Block
from encore.collector import tune_collector
from encore.placement import block_scheduling
from encore.settings import COMMIT_BACKLOG_MAX
from persistence import open_store

log = logging.getLogger(__name__)

NAMESPACE = "encore"
EXPIRY_GAP_MIN_SECONDS = 0.01  # holds due within this much of each other are released together
EXPIRY_RETRY_SECONDS = 0.25
ACK_TIMEOUT_SECONDS = 15.0
RETRY_DELAY_MAX_SECONDS = 2.0  # between commits the store refused


class HoldRequest(NamedTuple):
    """A tuple on the wire: thousands cross to a block in one call."""

    booking_id: str
    member_id: int
    seat_ids: tuple[int, ...]


class Verdict(NamedTuple):
    """A provider's signed verdict on a payment, checked by the ingress before it is sent here."""

    payment_id: str
    booking_id: str
    status: PaymentStatus
    event_id: str


class Settled(NamedTuple):
    """A booking and its payment as a verdict left them (or found them, for a repeat)."""

    booking: Booking
    payment: Payment


@dataclass(frozen=True)
class BlockStatus:
    """What the ingress needs to draw this block on the seat map."""

    first_seat_id: int
    version: int
    status: bytes


Commit = Callable[[Sequence[BookingChange]], Awaitable[set[str]]]


@dataclass(frozen=True)
class Outcome:
    """Of one ``write``: bookings refused by the member cap, and claims given up after a failed commit."""

    refused: set[str]
    failed: set[str]


@dataclass
class _Entry:
    changes: list[BookingChange]
    future: asyncio.Future = field(repr=False)
    refused: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)


class GroupCommitter:
    """Group commit for one seat block: every change waiting to be written goes in one transaction.

    While a transaction is in flight, new changes queue up; the next transaction takes all of
    them (up to ``batch_changes_max``). So the busier the block, the larger its batches, and
    the cost of a commit is shared by everyone who waited for it.

    A batch the store refuses is split by what can be taken back: a decision that claimed seats
    (a hold, or a re-grant with the payment verdict that made it) is reported failed to its
    caller, who undoes all of it; every other change (confirmations, releases, expiries, payment
    verdicts) already happened in memory and is retried until it is written, so the store
    catches up with what the block decided.

    What waits in memory is bounded. Past ``changes_max`` changes not yet written (a store that
    hangs, or refuses for long), new claims are given up at once, as if their commit had
    failed: their callers undo them and answer ``store_unavailable``. Likewise while changes
    that already happened wait for a retry (the store refused the last commit): a claim would
    only wait for a store known to be down. Other changes are always taken: each ends or settles
    a claim already in memory, so there are never more of them than claims and live seats.
    """

    def __init__(self, commit: Commit, batch_changes_max: int = 2048, changes_max: int = COMMIT_BACKLOG_MAX):
        self._commit = commit
        self._batch_changes_max = batch_changes_max
        self._changes_max = changes_max
        self._pending: list[_Entry] = []
        self._flusher: asyncio.Task | None = None
        self._unwritten = 0  # changes waiting or in the commit in flight
        self._retrying = False  # the last commit failed: changes that already happened wait for a retry
        self.batches = 0
        self.changes_written = 0
        self.claims_refused = 0

    @property
    def backlog(self) -> int:
        """Changes not yet written: waiting, or in the commit in flight."""
        return self._unwritten

    def takes_claims(self, count: int) -> bool:
        """Whether ``count`` more claims would be queued now rather than given up at once."""
        return not self._retrying and self._unwritten + count <= self._changes_max

    async def write(self, changes: list[BookingChange]) -> Outcome:
        """Wait until ``changes`` are committed, except claims given up: after a failed commit,
        or at once while the committer is full or waiting to retry."""
        changes = list(changes)
        given_up: set[str] = set()
        claims = sum(1 for c in changes if c.claims_seats)
        if claims and not self.takes_claims(claims):
            self.claims_refused += claims
            given_up, changes = _without_claims(changes)
            if not changes:
                return Outcome(set(), given_up)
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Entry(changes, future, failed=given_up))
        self._unwritten += len(changes)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        retry_delay = 0.05
        while self._pending:
            batch = self._take_batch()
            try:
                refused = await self._commit([c for entry in batch for c in entry.changes])
            except Exception as error:
                log.warning("commit of %d changes failed: %r", sum(len(e.changes) for e in batch), error)
                retried = []
                for entry in batch:
                    given_up, kept = _without_claims(entry.changes)
                    entry.failed |= given_up
                    self._unwritten -= len(entry.changes) - len(kept)
                    entry.changes = kept
                    if entry.changes:
                        retried.append(entry)
                    else:
                        self._resolve(entry)
                self._pending[:0] = retried
                if retried:
                    self._retrying = True
                    await asyncio.sleep(retry_delay)
                    retry_delay = min(retry_delay * 2, RETRY_DELAY_MAX_SECONDS)
                continue
            retry_delay = 0.05
            self._retrying = False
            self.batches += 1
            for entry in batch:
                self.changes_written += len(entry.changes)
                entry.refused |= refused & {c.booking.booking_id for c in entry.changes}
                self._resolve(entry)

    def _resolve(self, entry: _Entry) -> None:
        self._unwritten -= len(entry.changes)
        entry.changes = []
        if not entry.future.done():
            entry.future.set_result(Outcome(entry.refused, entry.failed))

    def _take_batch(self) -> list[_Entry]:
        batch, size = [], 0
        while self._pending and (not batch or size + len(self._pending[0].changes) <= self._batch_changes_max):
            entry = self._pending.pop(0)
            batch.append(entry)
            size += len(entry.changes)
        return batch


def _without_claims(changes: list[BookingChange]) -> tuple[set[str], list[BookingChange]]:
    """The bookings whose decision claimed seats, and the changes of every other booking: a
    claim is given up with its whole decision (a re-grant with the verdict that made it)."""
    given_up = {c.booking.booking_id for c in changes if c.claims_seats}
    return given_up, [c for c in changes if c.booking.booking_id not in given_up]


class SeatBlockActor:
    def __init__(self, block: Block, hold_seconds: float, seats_per_member_max: int, db_url: str,
                 commit_backlog_max: int = COMMIT_BACKLOG_MAX):
        self._block = SeatBlock(block, hold_seconds, seats_per_member_max)
        self._store = open_store(db_url, pool_size=2)
        self._committer = GroupCommitter(self._commit, changes_max=commit_backlog_max)
        self._late: set[asyncio.Task] = set()  # answers that timed out, still settled when their commit ends
        self._started: asyncio.Task | None = None
        self._expiry: asyncio.Task | None = None
        self._expiry_wake = asyncio.Event()
        self._expiry_due_at: float | None = None  # the deadline the expiry timer sleeps until; None: no hold
        self._changed = asyncio.Event()
        self._version = time.time_ns()  # grows across restarts, so a reader never mistakes a new incarnation for an old one
        self._released_version = -1
        tune_collector()

    async def _ready(self) -> None:
        """Load from the store on the first message (an actor constructor cannot await)."""
        if self._started is None or (self._started.done() and self._started.exception() is not None):
            self._started = asyncio.create_task(self._start())
        await asyncio.shield(self._started)

    async def _start(self) -> None:
        bookings, payments = await self._store.load_block(self._block.block.index)
        self._block.restore(bookings, payments)
        expired = self._block.expire_due(time.time())
        if expired:
            log.info("%s: %d holds expired while the block was down", self._block.block.name, len(expired))
            await self._committer.write(expired)
        self._bump_version(released=True)  # a new incarnation: what readers knew is from the old one
        self._expiry = asyncio.create_task(self._expire_forever())

    async def _commit(self, changes) -> set[str]:
        return await self._store.commit_block_changes(
            self._block.block.index, changes, self._block.seats_per_member_max
        )

    # ---- messages

    async def hold_many(self, requests: list[HoldRequest]) -> list[Booking | BookingError]:
        """Decide every request now, write the winners in one commit, then answer each."""
        await self._ready()
        if not self._committer.takes_claims(len(requests)):
            # decided now, each would be given up by the group committer and undone: refuse before deciding
            return [StoreUnavailable("the booking store is not keeping up; nothing was held") for _ in requests]
        now = time.time()
        results: list[Booking | list[BookingChange] | BookingError] = []
        for request in requests:
            existing = self._block.find(request.booking_id)
            if existing is not None and existing.member_id == request.member_id:
                results.append(existing)  # a retried message: this hold was already decided
                continue
            try:
                results.append([self._block.hold(request.booking_id, request.member_id, request.seat_ids, now)])
            except BookingError as error:
                results.append(error)
        return await self._commit_decisions(results, self._refuse_hold)

    async def start_payment(self, payment: Payment) -> Payment:
        """Record a payment started for a running hold; the same payment id again (Ray
        retrying the call after a restart) finds it recorded and answers it."""
        await self._ready()
        await self._recall([payment.booking_id])
        started = self._block.find_payment(payment.payment_id)
        if started is None:
            self._raise_error(await self._decide(lambda now: [self._block.start_payment(payment, now)]))
            started = self._block.payment(payment.payment_id)
        return started

    async def settle_payment(self, verdict: Verdict) -> Settled:
        """Apply a provider's verdict: the payment, the booking and their log events are
        written together; a verdict for a payment that already had one changes nothing."""
        await self._ready()
        await self._recall([verdict.booking_id])
        decided = await self._decide(lambda now: self._block.settle_payment(
            verdict.payment_id, verdict.status, verdict.event_id, now), self._refund_instead)
        self._raise_error(decided)
        payment = self._block.payment(verdict.payment_id)
        return Settled(self._block.booking(payment.booking_id), payment)

    async def cancel(self, booking_id: str, member_id: int) -> Booking:
        await self._ready()
        await self._recall([booking_id])
        return self._raise_error(await self._decide(lambda now: [self._block.cancel(booking_id, now, member_id)]))

    async def booking(self, booking_id: str) -> Booking:
        await self._ready()
        await self._recall([booking_id])
        return self._block.booking(booking_id)

    async def status(self, known_version: int = -1, wait_seconds: float = 0.0,
                     settle_seconds: float = 0.0) -> BlockStatus | None:
        """The block's seats as bytes, or ``None`` when nothing changed since ``known_version``.

        With ``wait_seconds`` the answer waits for the next change, at most that long: readers
        then cost the block a call per change (or per wait) instead of one per refresh tick.
        Seats taken are answered no sooner than ``settle_seconds`` after the question (a busy
        block answers each reader a few times a second), seats released since
        ``known_version`` at once: while a reader's question is open, every seat its map shows
        taken still is, but for one released in the moment the news takes to arrive.
        """
        await self._ready()
        loop = asyncio.get_running_loop()
        asked = loop.time()
        while self._released_version <= known_version:
            answer_at = asked + (settle_seconds if self._version != known_version else wait_seconds)
            if loop.time() >= answer_at:
                break
            try:
                await asyncio.wait_for(self._changed.wait(), answer_at - loop.time())
            except asyncio.TimeoutError:
                pass
        if known_version == self._version:
            return None
        return BlockStatus(self._block.block.first_seat_id, self._version, self._block.status())

    def _bump_version(self, released: bool) -> None:
        """Every change of any seat's state goes through here, and wakes the waiting readers;
        ``released``: some seat went back to available (readers hear of it at once)."""
        self._version += 1
        if released:
            self._released_version = self._version
        self._changed.set()
        self._changed = asyncio.Event()

    async def stats(self) -> dict:
        await self._ready()
        return {
            "block": self._block.block.index,
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
            "seats": self._block.seat_counts(),
            "live_bookings": len(self._block.live_bookings()),
            "commit_batches": self._committer.batches,
            "changes_written": self._committer.changes_written,
            "commit_backlog": self._committer.backlog,
            "commit_claims_refused": self._committer.claims_refused,
        }

    # ---- internals

    async def _recall(self, booking_ids: list[str]) -> None:
        """Bookings that ended before a restart are not in memory; read them back, with their
        payments, when asked."""
        for booking_id in booking_ids:
            if self._block.find(booking_id) is None:
                found = await self._store.booking(booking_id)
                if found is not None and found[1] == self._block.block.index and not found[0].status.claims_seats:
                    self._block.recall(found[0], await self._store.payments_of(booking_id))

    async def _decide(self, decision, on_refused=None) -> list[Booking | BookingError]:
        try:
            changes = decision(time.time())
        except BookingError as error:
            return [error]
        return await self._commit_decisions([changes], on_refused or self._refuse_hold)

    @staticmethod
    def _raise_error(results: list[Booking | BookingError | None]) -> Booking | None:
        [result] = results
        if isinstance(result, BookingError):
            raise result
        return result

    async def _commit_decisions(self, results, on_refused) -> list[Booking | BookingError | None]:
        """Write the decisions (lists of changes) among ``results`` and turn each into the
        caller's answer: the booking as the decision left it (``None`` for a decision that
        changed nothing).

        A claim the group committer gave up on is undone with its whole decision (it never became
        durable, so it never happened); one the member cap refused is handed to
        ``on_refused``. On a timeout the caller is answered ``store_unavailable`` at once, and
        the outcome is still settled when the commit ends: a claim given up then is undone
        then, so no seat stays held in memory that the store never had.
        """
        changes = [c for r in results if isinstance(r, list) for c in r]
        if not changes:
            return [None if isinstance(r, list) else r for r in results]
        if any(change.previous is not change.booking.status for change in changes):
            self._bump_version(released=any(change.releases_seats for change in changes))
        self._expire_by(min((c.booking.expires_at for c in changes if c.booking.status is BookingStatus.HELD), default=None))
        written = asyncio.ensure_future(self._committer.write(changes))
        try:
            outcome = await asyncio.wait_for(asyncio.shield(written), ACK_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            late = asyncio.create_task(self._settle_late(results, written, on_refused))
            self._late.add(late)
            late.add_done_callback(self._late.discard)
            unknown = StoreUnavailable("the booking store did not confirm the change in time")
            return [unknown if isinstance(r, list) and r else r for r in results]
        return await self._settle(results, outcome, on_refused)

    async def _settle_late(self, results, written: asyncio.Future, on_refused) -> None:
        await self._settle(results, await written, on_refused, late=True)

    async def _settle(self, results, outcome: Outcome, on_refused, late: bool = False) -> list[Booking | BookingError | None]:
        answers: list[Booking | BookingError | None] = []
        undone = False
        for result in results:
            if isinstance(result, list) and result:
                booking_id = result[0].booking.booking_id
                if booking_id in outcome.failed or booking_id in outcome.refused:
                    if late and self._block.find(booking_id) != result[-1].booking:
                        answers.append(result[-1].booking)  # changed since (expired): that change stands
                        continue
                    self._block.undo_decision(result)
                    undone = True
                    result = (StoreUnavailable("the booking store refused the change; nothing was held")
                              if booking_id in outcome.failed else await on_refused(result))
                else:
                    result = result[-1].booking
            elif isinstance(result, list):
                result = None
            answers.append(result)
        if undone:
            self._bump_version(released=True)  # readers must see the undone claims too
        return answers

    async def _refuse_hold(self, changes: list[BookingChange]) -> BookingError:
        return TooManySeats("over the per-member seat cap across the hall", max_seats=self._block.seats_per_member_max)

    async def _refund_instead(self, changes: list[BookingChange]) -> Booking | BookingError:
        """A late success whose re-grant would pass the member's cap is refunded instead."""
        verdict = changes[0].payment
        refund = self._block.settle_payment(verdict.payment_id, verdict.status, verdict.event_id, time.time(), regrant=False)
        [answer] = await self._commit_decisions([refund], self._refuse_hold)
        return answer

    def _expire_by(self, deadline: float | None) -> None:
        """Wake the expiry timer if a hold is due before the deadline it sleeps until (a hold
        made while no other was live: the timer sleeps until a hold arrives)."""
        if deadline is not None and (self._expiry_due_at is None or deadline < self._expiry_due_at):
            self._expiry_wake.set()

    async def _expire_forever(self) -> None:
        """Release unpaid holds at their deadline, for as long as the actor lives. Between
        deadlines the timer sleeps: an idle block makes no wake-ups at all."""
        while True:
            self._expiry_due_at = self._block.next_deadline()
            self._expiry_wake.clear()
            delay = None if self._expiry_due_at is None else max(self._expiry_due_at - time.time(), EXPIRY_GAP_MIN_SECONDS)
            try:
                await asyncio.wait_for(self._expiry_wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
            try:
                expired = self._block.expire_due(time.time())
                if expired:
                    self._bump_version(released=True)
                    await self._committer.write(expired)
            except Exception:
                log.exception("%s: expiring holds failed; trying again shortly", self._block.block.name)
                await asyncio.sleep(EXPIRY_RETRY_SECONDS)


SeatBlockRemote = ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0)(SeatBlockActor)


def block_actor_name(block: Block) -> str:
    return f"encore-{block.name}"


def start_block(block: Block, hold_seconds: float, seats_per_member_max: int, db_url: str,
                commit_backlog_max: int = COMMIT_BACKLOG_MAX):
    """Create (or find, if it already runs) the named, restartable actor for ``block``, on
    the node ``encore.placement`` deals it to."""
    return SeatBlockRemote.options(
        name=block_actor_name(block), namespace=NAMESPACE, get_if_exists=True, lifetime="detached",
        scheduling_strategy=block_scheduling(block.index),
    ).remote(block, hold_seconds, seats_per_member_max, db_url, commit_backlog_max)
