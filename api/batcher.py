"""Carry many requests to an actor in one call: one batch per key (a seat block) at a time.

While a block's call is in flight, new requests for that block wait and go together in the
next call, so batches grow with load. A request that finds its key idle waits
``linger_seconds`` for others before its call goes (none by default): a call and its commit
cost the actor far more than one more request in them.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Hashable

Call = Callable[[Hashable, list], Awaitable[list]]


class Batcher:
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
