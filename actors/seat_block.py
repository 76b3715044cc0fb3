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

import ray

from actors.journal import Journal
from domain.booking import Booking, BookingChange
from domain.errors import BookingError, StoreUnavailable, TooManySeats
from domain.seat_block import SeatBlock
from domain.venue import Block
from persistence import open_store

log = logging.getLogger(__name__)

NAMESPACE = "encore"
EXPIRY_TICK_MAX_SECONDS = 0.25
ACK_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class HoldRequest:
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
        self._version = 0

    async def _ready(self) -> None:
        """Load from the store on the first message (an actor constructor cannot await)."""
        if self._started is None:
            self._started = asyncio.create_task(self._start())
        await asyncio.shield(self._started)

    async def _start(self) -> None:
        self._block.restore(await self._store.load_block(self._block.block.index))
        expired = self._block.expire_due(time.time())
        if expired:
            log.info("%s: %d holds expired while the block was down", self._block.block.name, len(expired))
            await self._journal.write(expired, undoable=False)
        self._version += 1
        asyncio.create_task(self._expire_forever())

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
            try:
                if existing is not None and (existing.member_id, existing.seat_ids) == (request.member_id, tuple(sorted(request.seat_ids))):
                    results.append(existing)  # a retried message: the hold was already made
                else:
                    results.append(self._block.hold(request.booking_id, request.member_id, request.seat_ids, now))
            except BookingError as error:
                results.append(error)
        changes = [r for r in results if isinstance(r, BookingChange)]
        if changes:
            self._version += 1
            try:
                refused = await asyncio.wait_for(self._journal.write(changes, undoable=True), ACK_TIMEOUT_SECONDS)
            except Exception as error:
                log.warning("%s: holds not written, taken back: %r", self._block.block.name, error)
                for change in reversed(changes):
                    self._block.undo(change)
                failure = StoreUnavailable("the booking store did not answer; nothing was held")
                return [failure if isinstance(r, BookingChange) else r for r in results]
            for change in changes:
                if change.booking.booking_id in refused:
                    self._block.undo(change)
            results = [
                TooManySeats("over the per-member seat cap across the hall", max_seats=self._block.max_seats_per_member)
                if isinstance(r, BookingChange) and r.booking.booking_id in refused
                else r
                for r in results
            ]
        return [r.booking if isinstance(r, BookingChange) else r for r in results]

    async def confirm(self, booking_id: str, detail: dict | None = None) -> Booking:
        """A payment succeeded: the booking ends confirmed, or refunded if its seats are gone."""
        await self._ready()
        change = self._block.confirm(booking_id, time.time(), detail)
        try:
            refused = await self._write(change)
        except StoreUnavailable:
            if not change.claims_seats:
                raise
            self._block.undo(change)
            raise
        if change.booking.booking_id in refused:
            self._block.undo(change)
            change = self._block.confirm(booking_id, time.time(), detail, regrant=False)
            await self._write(change)
        return change.booking

    async def cancel(self, booking_id: str, member_id: int) -> Booking:
        await self._ready()
        change = self._block.cancel(booking_id, time.time(), member_id)
        await self._write(change)
        return change.booking

    async def fail_payment(self, booking_id: str, detail: dict | None = None) -> Booking:
        await self._ready()
        change = self._block.fail_payment(booking_id, time.time(), detail)
        await self._write(change)
        return change.booking

    async def booking(self, booking_id: str) -> Booking:
        await self._ready()
        return self._block.booking(booking_id)

    async def status(self, known_version: int = -1) -> BlockStatus | None:
        """The block's seats as bytes, or ``None`` when nothing changed since ``known_version``."""
        await self._ready()
        if known_version == self._version:
            return None
        return BlockStatus(self._block.block.first_seat_id, self._version, self._block.status())

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

    async def _write(self, change: BookingChange) -> set[str]:
        self._version += 1
        try:
            return await asyncio.wait_for(self._journal.write([change], undoable=change.claims_seats), ACK_TIMEOUT_SECONDS)
        except Exception as error:
            raise StoreUnavailable("the booking store did not confirm the change in time") from error

    async def _expire_forever(self) -> None:
        """Release unpaid holds within a tick of their deadline, for as long as the actor lives."""
        while True:
            deadline = self._block.next_deadline()
            delay = EXPIRY_TICK_MAX_SECONDS if deadline is None else deadline - time.time()
            await asyncio.sleep(min(max(delay, 0.01), EXPIRY_TICK_MAX_SECONDS))
            expired = self._block.expire_due(time.time())
            if expired:
                self._version += 1
                try:
                    await self._journal.write(expired, undoable=False)
                except Exception:
                    log.exception("%s: writing expiries failed (they are retried)", self._block.block.name)


SeatBlockRemote = ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0)(SeatBlockActor)


def block_actor_name(block: Block) -> str:
    return f"encore-{block.name}"


def start_block(block: Block, hold_seconds: float, max_seats_per_member: int, db_url: str):
    """Create (or find, if it already runs) the named, restartable actor for ``block``."""
    return SeatBlockRemote.options(
        name=block_actor_name(block), namespace=NAMESPACE, get_if_exists=True, lifetime="detached"
    ).remote(block, hold_seconds, max_seats_per_member, db_url)
