"""Many waiting callers, one costly step: the two batchings a hold goes through.

``Batcher`` carries many requests to an actor in one call, in the replica; ``GroupCommitter``
writes many of a seat block's changes in one transaction, in the actor. Both let a batch
grow while the step before it is in flight, so the busier the service, the more each call
and each commit is shared, and both bound what waits in memory.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Hashable, Sequence

from domain.booking import BookingChange
from domain.errors import Overloaded
from encore.settings import BATCH_WAITING_MAX, COMMIT_BACKLOG_MAX

log = logging.getLogger(__name__)

Call = Callable[[Hashable, list], Awaitable[list]]


class Batcher:
    """Carry many requests to an actor in one call: one batch per key (a seat block) at a time.
    
    While a block's call is in flight, new requests for that block wait and go together in the
    next call, so batches grow with load. A request that finds its key idle waits
    ``linger_seconds`` for others before its call goes (none by default): a call and its commit
    cost the actor far more than one more request in them.
    
    At most ``waiting_max`` requests wait per key. While the call in flight hangs (a store that
    does not answer, an actor restarting), more are refused at once with ``Overloaded`` rather
    than kept in memory: each waiting request is a connection, a future and its body.
    ``waiting_max=None`` only where a refusal would leave work half done (see its caller).
    """

    def __init__(self, call: Call, batch_max: int, linger_seconds: float = 0.0, waiting_max: int | None = BATCH_WAITING_MAX):
        self._call = call
        self._batch_max = batch_max
        self._linger_seconds = linger_seconds
        self._waiting_max = waiting_max
        self._waiting: dict[Hashable, list[tuple[Any, asyncio.Future]]] = {}
        self._running: dict[Hashable, asyncio.Task] = {}

    def waiting(self, key: Hashable) -> int:
        return len(self._waiting.get(key, ()))

    async def submit(self, key: Hashable, item: Any) -> Any:
        waiting = self._waiting.setdefault(key, [])
        if self._waiting_max is not None and len(waiting) >= self._waiting_max:
            raise Overloaded(f"{len(waiting)} requests already wait for the same call; try again shortly",
                             waiting_max=self._waiting_max)
        future = asyncio.get_running_loop().create_future()
        waiting.append((item, future))
        task = self._running.get(key)
        if task is None or task.done():
            self._running[key] = asyncio.create_task(self._drain(key))
        return await future

    async def _drain(self, key: Hashable) -> None:
        if self._linger_seconds:
            await asyncio.sleep(self._linger_seconds)
        waiting = self._waiting[key]
        while waiting:
            batch = waiting[: self._batch_max]
            del waiting[: self._batch_max]
            try:
                results = await self._call(key, [item for item, _ in batch])
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            assert len(results) == len(batch), "one answer per request"
            for (_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)


RETRY_DELAY_MAX_SECONDS = 2.0

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
