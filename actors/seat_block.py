"""The seat block actor: owns one ``SeatBlock`` and its store, and nothing else.

Ray delivers the block's messages one event-loop step at a time, and every decision is one
synchronous call into the domain, so no two decisions about a seat can interleave. A
decision is acknowledged only after the journal has committed it. On (re)start the actor
rebuilds its block from the store, expiring holds whose deadline passed while it was down.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import NamedTuple

import ray

from actors.journal import Journal
from domain.booking import Booking, BookingChange, BookingStatus
from domain.errors import BookingError, StoreUnavailable, TooManySeats
from domain.seat_block import SeatBlock
from domain.venue import Block
from encore.collector import tune_collector
from encore.placement import block_scheduling
from persistence import open_store

log = logging.getLogger(__name__)

NAMESPACE = "encore"
EXPIRY_GAP_MIN_SECONDS = 0.01  # holds due within this much of each other are released together
EXPIRY_RETRY_SECONDS = 0.25
ACK_TIMEOUT_SECONDS = 15.0


class HoldRequest(NamedTuple):
    """A tuple on the wire: thousands cross to a block in one call."""

    booking_id: str
    member_id: int
    seat_ids: tuple[int, ...]


@dataclass(frozen=True)
class BlockStatus:
    """What the ingress needs to draw this block on the seat map."""

    first_seat_id: int
    version: int
    status: bytes


class SeatBlockActor:
    def __init__(self, block: Block, hold_seconds: float, max_seats_per_member: int, db_url: str):
        self._block = SeatBlock(block, hold_seconds, max_seats_per_member)
        self._store = open_store(db_url, pool_size=2)
        self._journal = Journal(self._commit)
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
        self._block.restore(await self._store.load_block(self._block.block.index))
        expired = self._block.expire_due(time.time())
        if expired:
            log.info("%s: %d holds expired while the block was down", self._block.block.name, len(expired))
            await self._journal.write(expired)
        self._bump_version(released=True)  # a new incarnation: what readers knew is from the old one
        self._expiry = asyncio.create_task(self._expire_forever())

    async def _commit(self, changes) -> set[str]:
        return await self._store.commit_block_changes(
            self._block.block.index, changes, self._block.max_seats_per_member
        )

    # ---- messages

    async def hold_many(self, requests: list[HoldRequest]) -> list[Booking | BookingError]:
        """Decide every request now, write the winners in one commit, then answer each."""
        await self._ready()
        now = time.time()
        results: list[Booking | BookingChange | BookingError] = []
        for request in requests:
            existing = self._block.find(request.booking_id)
            if existing is not None and existing.member_id == request.member_id:
                results.append(existing)  # a retried message: this hold was already decided
                continue
            try:
                results.append(self._block.hold(request.booking_id, request.member_id, request.seat_ids, now))
            except BookingError as error:
                results.append(error)
        return await self._commit_decisions(results, self._refuse_hold)

    async def confirm_many(self, payments: list[tuple[str, dict | None]]) -> list[Booking | BookingError]:
        """Successful payments: each booking ends confirmed, or refunded if its seats are gone."""
        await self._ready()
        await self._recall([booking_id for booking_id, _ in payments])
        now = time.time()
        results: list[BookingChange | BookingError] = []
        for booking_id, detail in payments:
            try:
                results.append(self._block.confirm(booking_id, now, detail))
            except BookingError as error:
                results.append(error)
        return await self._commit_decisions(results, self._refund_instead)

    async def confirm(self, booking_id: str, detail: dict | None = None) -> Booking:
        return self._raise_error(await self.confirm_many([(booking_id, detail)]))

    async def cancel(self, booking_id: str, member_id: int) -> Booking:
        await self._ready()
        await self._recall([booking_id])
        return self._raise_error(await self._decide(lambda now: self._block.cancel(booking_id, now, member_id)))

    async def fail_payment(self, booking_id: str, detail: dict | None = None) -> Booking:
        await self._ready()
        await self._recall([booking_id])
        return self._raise_error(await self._decide(lambda now: self._block.fail_payment(booking_id, now, detail)))

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
            "live_bookings": len(self._block.live_bookings()),
            "commit_batches": self._journal.batches,
            "changes_written": self._journal.changes_written,
            "journal_backlog": self._journal.backlog,
        }

    # ---- internals

    async def _recall(self, booking_ids: list[str]) -> None:
        """Bookings that ended before a restart are not in memory; read them back when asked."""
        for booking_id in booking_ids:
            if self._block.find(booking_id) is None:
                found = await self._store.booking(booking_id)
                if found is not None and found[1] == self._block.block.index and not found[0].status.claims_seats:
                    self._block.recall(found[0])

    async def _decide(self, decision) -> list[Booking | BookingError]:
        try:
            return await self._commit_decisions([decision(time.time())], self._refuse_hold)
        except BookingError as error:
            return [error]

    @staticmethod
    def _raise_error(results: list[Booking | BookingError]) -> Booking:
        [result] = results
        if isinstance(result, BookingError):
            raise result
        return result

    async def _commit_decisions(self, results, on_refused) -> list[Booking | BookingError]:
        """Write the changes among ``results`` and turn each into the caller's answer.

        A claim the journal gave up on is undone (it never became durable, so it never
        happened); one the member cap refused is handed to ``on_refused``. On a timeout
        nothing is undone: the change may still commit, and the store stays the truth.
        """
        changes = [r for r in results if isinstance(r, BookingChange)]
        if not changes:
            return list(results)
        self._bump_version(released=any(change.releases_seats for change in changes))
        self._expire_by(min((c.booking.expires_at for c in changes if c.booking.status is BookingStatus.HELD), default=None))
        try:
            outcome = await asyncio.wait_for(self._journal.write(changes), ACK_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            unknown = StoreUnavailable("the booking store did not confirm the change in time")
            return [unknown if isinstance(r, BookingChange) else r for r in results]
        answers: list[Booking | BookingError] = []
        for result in results:
            if isinstance(result, BookingChange):
                booking_id = result.booking.booking_id
                if booking_id in outcome.failed:
                    self._block.undo(result)
                    result = StoreUnavailable("the booking store refused the change; nothing was held")
                elif booking_id in outcome.refused:
                    self._block.undo(result)
                    result = await on_refused(result)
                else:
                    result = result.booking
            answers.append(result)
        if outcome.failed or outcome.refused:
            self._bump_version(released=True)  # readers must see the undone claims too
        return answers

    async def _refuse_hold(self, change: BookingChange) -> BookingError:
        return TooManySeats("over the per-member seat cap across the hall", max_seats=self._block.max_seats_per_member)

    async def _refund_instead(self, change: BookingChange) -> Booking | BookingError:
        """A late success whose re-grant would pass the member's cap is refunded instead."""
        detail = {k: v for k, v in change.detail.items() if k != "regranted_from"}
        refund = self._block.confirm(change.booking.booking_id, time.time(), detail, regrant=False)
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
                    await self._journal.write(expired)
            except Exception:
                log.exception("%s: expiring holds failed; trying again shortly", self._block.block.name)
                await asyncio.sleep(EXPIRY_RETRY_SECONDS)


SeatBlockRemote = ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0)(SeatBlockActor)


def block_actor_name(block: Block) -> str:
    return f"encore-{block.name}"


def start_block(block: Block, hold_seconds: float, max_seats_per_member: int, db_url: str):
    """Create (or find, if it already runs) the named, restartable actor for ``block``, on
    the node ``encore.placement`` deals it to."""
    return SeatBlockRemote.options(
        name=block_actor_name(block), namespace=NAMESPACE, get_if_exists=True, lifetime="detached",
        scheduling_strategy=block_scheduling(block.index),
    ).remote(block, hold_seconds, max_seats_per_member, db_url)
