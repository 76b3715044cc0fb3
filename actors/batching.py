"""Many waiting callers, one actor call: ``Batcher``, in the replica, for holds (per seat
block), queue joins and idempotency writes."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Hashable

from domain.errors import Overloaded
from encore.settings import BATCH_WAITING_MAX

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
