"""What waits in memory for a store or an actor that does not answer is bounded, and past
the bound a request is refused at once and changes nothing (issue 14, "Faults")."""

from __future__ import annotations

import asyncio

import pytest

from actors.batching import Batcher
from actors.seat_block import GroupCommitter
from domain.booking import new_booking_id
from domain.errors import Overloaded
from domain.seat_block import SeatBlock
from domain.venue import Venue

BLOCK = Venue.grid(sections=1, rows=4, cols=10, block_rows=4).blocks()[0]


class Gate:
    """A call (an actor's, the store's) that hangs until opened, counting what reached it."""

    def __init__(self):
        self.opened = asyncio.Event()
        self.received: list = []

    async def call(self, _key, items):
        self.received.append(list(items))
        await self.opened.wait()
        return [f"done:{item}" for item in items]

    async def commit(self, changes) -> set[str]:
        self.received.append(list(changes))
        await self.opened.wait()
        return set()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_batcher_keeps_at_most_its_bound_waiting_and_refuses_the_rest_at_once():
    gate = Gate()
    batcher = Batcher(gate.call, batch_max=2, waiting_max=3)
    in_flight = [asyncio.ensure_future(batcher.submit("block", n)) for n in range(2)]
    await settle()
    waiting = [asyncio.ensure_future(batcher.submit("block", n)) for n in range(2, 5)]
    await settle()
    assert batcher.waiting("block") == 3
    with pytest.raises(Overloaded) as refused:
        await asyncio.wait_for(batcher.submit("block", 99), 0.1)  # at once, not after the hang
    assert refused.value.code == "overloaded" and refused.value.extra == {"waiting_max": 3}
    gate.opened.set()
    assert await asyncio.gather(*in_flight, *waiting) == [f"done:{n}" for n in range(5)]
    assert 99 not in [item for call in gate.received for item in call], "a refused request never reached the call"
    assert await batcher.submit("block", 5) == "done:5", "served again once the call answers"


async def test_the_bound_is_per_key():
    gate = Gate()
    batcher = Batcher(gate.call, batch_max=1, waiting_max=1)
    started = [asyncio.ensure_future(batcher.submit("a", 0))]
    await settle()
    started.append(asyncio.ensure_future(batcher.submit("a", 1)))
    await settle()
    with pytest.raises(Overloaded):
        await asyncio.wait_for(batcher.submit("a", 2), 0.1)
    other = asyncio.ensure_future(batcher.submit("b", 1))
    await settle()
    assert not other.done() and batcher.waiting("b") == 0, "b is at work, not refused for a's queue"
    gate.opened.set()
    await asyncio.gather(*started, other)


def holds(block: SeatBlock, count: int, first_member: int = 1) -> list:
    """``count`` one-seat holds decided by the domain, each a change that claims a seat."""
    return [block.hold(new_booking_id(), first_member + n, (BLOCK.first_seat_id + n,), 0.0) for n in range(count)]


async def test_a_group_committer_gives_up_claims_past_its_bound_while_the_store_hangs():
    gate, block = Gate(), SeatBlock(BLOCK, 60, 4)
    committer = GroupCommitter(gate.commit, changes_max=5)
    first = holds(block, 6)
    written = [asyncio.ensure_future(committer.write([change])) for change in first[:5]]
    await settle()
    assert committer.backlog == 5
    over = await asyncio.wait_for(committer.write([first[5]]), 0.1)
    assert over.failed == {first[5].booking.booking_id}, "past the bound a claim is given up at once"
    assert committer.backlog == 5 and committer.claims_refused == 1
    cancelled = block.cancel(first[0].booking.booking_id, 1.0, first[0].booking.member_id)
    released = asyncio.ensure_future(committer.write([cancelled]))
    await settle()
    assert committer.backlog == 6, "a release ends a claim already in memory: always taken"
    gate.opened.set()
    outcomes = await asyncio.gather(*written, released)
    assert all(not o.failed and not o.refused for o in outcomes)
    assert committer.backlog == 0 and committer.changes_written == 6
    assert not (await committer.write(holds(block, 1, first_member=50))).failed, "claims are taken again"


async def test_while_the_store_refuses_claims_are_given_up_at_once_and_releases_retried():
    block = SeatBlock(BLOCK, 60, 4)
    [held] = holds(block, 1)
    store_up = asyncio.Event()
    commits: list[int] = []

    async def commit(changes):
        commits.append(len(changes))
        if not store_up.is_set():
            raise ConnectionError("the store is down")
        return set()

    committer = GroupCommitter(commit)
    assert (await committer.write([held])).failed == {held.booking.booking_id}, "the claim was refused by the store"
    block.undo(held)
    [kept] = holds(block, 1, first_member=7)
    release = block.cancel(kept.booking.booking_id, 1.0, 7)
    pending_release = asyncio.ensure_future(committer.write([release]))
    await asyncio.sleep(0.01)
    assert committer.backlog == 1 and not committer.takes_claims(1), "a release waits for a retry: no claim now"
    attempts = len(commits)
    [claim] = holds(block, 1, first_member=20)
    refused = await asyncio.wait_for(committer.write([claim]), 0.05)
    assert refused.failed == {claim.booking.booking_id} and len(commits) == attempts, "refused without a commit"
    store_up.set()
    assert not (await asyncio.wait_for(pending_release, 5)).failed
    assert committer.backlog == 0 and committer.takes_claims(1)
