"""Many requests to one actor in one call: batches grow while a call is in flight, and a
request that finds its key idle waits the linger for others before its call goes."""

from __future__ import annotations

import asyncio

from actors.batching import Batcher


def batcher_recording_calls(linger_seconds: float) -> tuple[Batcher, list[tuple[str, list]]]:
    calls: list[tuple[str, list]] = []

    async def call(key, items):
        calls.append((key, list(items)))
        await asyncio.sleep(0.01)
        return [f"{key}:{item}" for item in items]

    return Batcher(call, batch_max=3, linger_seconds=linger_seconds), calls


async def test_without_a_linger_the_first_request_goes_alone_and_the_rest_wait_for_it():
    batcher, calls = batcher_recording_calls(0.0)
    first = asyncio.ensure_future(batcher.submit("a", 1))
    await asyncio.sleep(0)
    answers = await asyncio.gather(first, *(batcher.submit("a", n) for n in (2, 3, 4, 5)))
    assert answers == ["a:1", "a:2", "a:3", "a:4", "a:5"]
    assert calls == [("a", [1]), ("a", [2, 3, 4]), ("a", [5])], "at most batch_max items per call"


async def test_a_linger_gathers_the_requests_that_arrive_during_it_per_key():
    batcher, calls = batcher_recording_calls(0.05)
    first = asyncio.ensure_future(batcher.submit("a", 1))
    other_key = asyncio.ensure_future(batcher.submit("b", 1))
    await asyncio.sleep(0.01)
    answers = await asyncio.gather(first, other_key, batcher.submit("a", 2))
    assert answers == ["a:1", "b:1", "a:2"]
    assert sorted(calls) == [("a", [1, 2]), ("b", [1])]


async def test_a_failed_call_fails_its_own_requests_only():
    async def call(key, items):
        if 1 in items:
            raise RuntimeError("the actor is gone")
        return items

    batcher = Batcher(call, batch_max=1)
    results = await asyncio.gather(batcher.submit("a", 1), batcher.submit("a", 2), return_exceptions=True)
    assert isinstance(results[0], RuntimeError) and results[1] == 2
