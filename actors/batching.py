"""Many waiting callers, one costly step: the two batchings a hold goes through.

``Batcher`` carries many requests to an actor in one call, in the replica; ``GroupCommitter``
writes many of a seat block's changes in one transaction, in the actor. Both let a batch
grow while the step before it is in flight, so the busier the service, the more each call
and each commit is shared.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Hashable, Sequence

from domain.booking import BookingChange

log = logging.getLogger(__name__)

RETRY_DELAY_MAX_SECONDS = 2.0

Call = Callable[[Hashable, list], Awaitable[list]]


class Batcher:
    """Carry many requests to an actor in one call: one batch per key (a seat block) at a time.

    While a block's call is in flight, new requests for that block wait and go together in the
    next call, so batches grow with load. A request that finds its key idle waits
    ``linger_seconds`` for others before its call goes (none by default): a call and its commit
    cost the actor far more than one more request in them.
    """

    def __init__(self, call: Call, batch_max: int, linger_seconds: float = 0.0):
        self._call = call
        self._batch_max = batch_max
        self._linger_seconds = linger_seconds
        self._waiting: dict[Hashable, list[tuple[Any, asyncio.Future]]] = {}
        self._running: dict[Hashable, asyncio.Task] = {}

    async def submit(self, key: Hashable, item: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append((item, future))
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

    A batch the store refuses is split by what can be taken back: changes that claimed seats
    (holds, re-grants) are reported failed to their callers, who undo them; every other change
    (confirmations, releases, expiries) already happened in memory and is retried until it is
    written, so the store catches up with what the block decided.
    """

    def __init__(self, commit: Commit, batch_changes_max: int = 2048):
        self._commit = commit
        self._batch_changes_max = batch_changes_max
        self._pending: list[_Entry] = []
        self._flusher: asyncio.Task | None = None
        self.batches = 0
        self.changes_written = 0

    @property
    def backlog(self) -> int:
        return sum(len(entry.changes) for entry in self._pending)

    async def write(self, changes: list[BookingChange]) -> Outcome:
        """Wait until ``changes`` are committed, except claims given up after a failed commit."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Entry(list(changes), future))
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
                    entry.failed |= {c.booking.booking_id for c in entry.changes if c.claims_seats}
                    entry.changes = [c for c in entry.changes if not c.claims_seats]
                    if entry.changes:
                        retried.append(entry)
                    else:
                        self._resolve(entry)
                self._pending[:0] = retried
                if retried:
                    await asyncio.sleep(retry_delay)
                    retry_delay = min(retry_delay * 2, RETRY_DELAY_MAX_SECONDS)
                continue
            retry_delay = 0.05
            self.batches += 1
            for entry in batch:
                self.changes_written += len(entry.changes)
                entry.refused |= refused & {c.booking.booking_id for c in entry.changes}
                self._resolve(entry)

    @staticmethod
    def _resolve(entry: _Entry) -> None:
        if not entry.future.done():
            entry.future.set_result(Outcome(entry.refused, entry.failed))

    def _take_batch(self) -> list[_Entry]:
        batch, size = [], 0
        while self._pending and (not batch or size + len(self._pending[0].changes) <= self._batch_changes_max):
            entry = self._pending.pop(0)
            batch.append(entry)
            size += len(entry.changes)
        return batch
