"""Holds refused before their block is asked, and how the idempotency ledger remembers them.

Under contention most attempts are on seats already taken: the replica refuses those from its
seat map while the map is current for their block (the block holds the map's open question),
and a block the map cannot follow decides itself. A refusal decided before the key is claimed
is stored with the claim, and a retry replays it.
"""

from __future__ import annotations

import asyncio

import pytest

from actors.seat_block import BlockStatus
from api.idempotency import IdempotencyLedger
from api.metrics import Metrics
from domain.errors import InvalidSeats, SeatsSpanBlocks, SeatUnavailable
from domain.seat_block import SeatBlock, hold_refusal
from domain.venue import Venue, distinct_seats
from encore.settings import Settings
from persistence import open_store
from serve_app import wire

VENUE = Venue.grid(sections=2, rows=10, cols=50, block_rows=10)  # blocks: seats 0–499 and 500–999


SETTINGS = Settings(db_url="sqlite:///:memory:", secret_key="hold-refusal-secret", sections=2, rows=10, cols=50)


class BlockAnswering:
    """A seat block's handle as the seat map uses it (``handle.status.remote``): it answers the
    map's first question with ``seats``, then holds the next one open; ``seats=None`` is a block
    that cannot be reached."""

    def __init__(self, first_seat_id: int, seats: bytes | None):
        self.status = self
        self._first_seat_id, self._seats = first_seat_id, seats

    async def remote(self, known_version: int, wait_seconds: float, settle_seconds: float) -> BlockStatus:
        if self._seats is None:
            raise ConnectionError("the block is down")
        if known_version < 0:
            return BlockStatus(self._first_seat_id, 1, self._seats)
        await asyncio.Event().wait()


async def refusals_of_a_replica(reachable: bool, *holds: list[int]) -> tuple[list, int]:
    """What a replica wired as in the service refuses once its map followed block 0 (seats 3
    held, 4 sold) or failed to (``reachable=False``); block 1 is never reachable."""
    block_zero = bytearray(b"A" * 500)
    block_zero[3:5] = b"HS"
    blocks = [BlockAnswering(0, bytes(block_zero) if reachable else None), BlockAnswering(500, None)]
    service = wire(SETTINGS, None, blocks, None, metrics=Metrics())
    following = asyncio.ensure_future(service.seat_map.run_forever())
    await asyncio.sleep(0.05)
    try:
        return [service.hold_refusal(seats) for seats in holds], service.metrics.holds.get("refused_by_map", 0)
    finally:
        following.cancel()


def test_a_current_map_refuses_seats_it_shows_taken():
    refusals, counted = asyncio.run(refusals_of_a_replica(True, [5, 4, 3], [5, 6]))
    assert refusals == [SeatUnavailable.of([3, 4]), None], "free on the map: the block decides"
    assert counted == 1


def test_a_block_the_map_cannot_follow_decides_even_seats_the_map_shows_taken():
    assert asyncio.run(refusals_of_a_replica(False, [3])) == ([None], 0)


@pytest.mark.parametrize("seat_ids, refused", [
    ([], InvalidSeats), ([1000], InvalidSeats), ([-1, 2], InvalidSeats), ([499, 500], SeatsSpanBlocks),
])
def test_seats_outside_the_hall_or_one_block_are_refused_current_or_not(seat_ids, refused):
    for reachable in (True, False):
        [refusal], counted = asyncio.run(refusals_of_a_replica(reachable, seat_ids))
        assert isinstance(refusal, refused) and counted == 0


@pytest.mark.parametrize("seat_ids, refusal", [
    ([], InvalidSeats("choose at least one seat", seats=[])),
    ([1000, 3], InvalidSeats("seat ids run from 0 to 999", seats=[1000])),
    ([501, 499, 500, 499], SeatsSpanBlocks("the seats of one booking must lie in one block (see block_rows)", seats=[500, 501])),
    ([5, 4, 3, 4], SeatUnavailable.of([3, 4])),
    ([5, 6], None),
])
def test_the_hold_refusal_by_the_map_is_one_pure_decision(seat_ids, refusal):
    status = bytearray(b"A" * VENUE.seats)
    status[3:5] = b"HS"
    assert hold_refusal(VENUE, status, [True, False], seat_ids) == refusal
    assert hold_refusal(VENUE, status, [False, False], [3]) is None, "a block the map cannot follow decides itself"


def test_a_block_refuses_seats_outside_it_as_the_replica_does():
    block = SeatBlock(VENUE.blocks()[0], hold_seconds=60, seats_per_member_max=4)
    with pytest.raises(SeatsSpanBlocks) as refused:
        block.hold("b1", 7, [499, 500], 0.0)
    assert refused.value == VENUE.layout_refusal(distinct_seats([500, 499]))


async def test_a_refusal_is_stored_with_its_claim_and_replayed(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/ledger.db")
    await store.migrate()
    ledger = IdempotencyLedger(store)
    ran = []

    async def work():
        ran.append(True)
        return 201, {"booking_id": "b1"}

    first = await ledger.run_once(7, "k1", "fingerprint", work, SeatUnavailable.of([3]))
    again = await ledger.run_once(7, "k1", "fingerprint", work)
    assert ran == [], "a refused request runs nothing, then or on its retry"
    assert (first.status_code, again.status_code) == (409, 409)
    assert first.body == again.body and b'"code":"seat_unavailable"' in first.body
    assert again.headers["idempotency-replayed"] == "true"
    other = await ledger.run_once(7, "k2", "fingerprint", work)
    assert other.status_code == 201 and ran == [True]
    await store.close()
