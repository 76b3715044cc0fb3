"""The seat map follows the blocks by long poll: a block answers a reader at its next change.

Seats taken are answered after the reader's settle time, seats released at once: a replica
refuses holds from its map while its question is open, so it must hear of a release first.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import ray

from actors.seat_block import HoldRequest, start_block
from api.seatmap import SeatMap
from domain.booking import Booking, new_booking_id
from domain.venue import Venue
from persistence import migrate
from tests.integration.conftest import insert_members

pytestmark = pytest.mark.mysql

VENUE = Venue.grid(sections=2, rows=2, cols=10, block_rows=2)  # two blocks of 20 seats
WAITS_LONGER_THAN_ANY_TEST = 60.0
SETTLES_LONGER_THAN_ANY_TEST = 60.0


@pytest.fixture(scope="module")
def blocks(make_mysql_database, ray_instance):
    url = make_mysql_database()
    asyncio.run(migrate(url))
    members = insert_members(url, 10)
    return [start_block(block, 300, 4, url) for block in VENUE.blocks()], members


def hold(actor, member: int, seat: int) -> Booking:
    [answer] = ray.get(actor.hold_many.remote([HoldRequest(new_booking_id(), member, (seat,))]))
    assert isinstance(answer, Booking)
    return answer


def test_an_unchanged_block_answers_nothing_when_the_wait_is_over(blocks):
    [actor, _], _ = blocks
    version = ray.get(actor.status.remote()).version
    assert ray.get(actor.status.remote(version, 0.3), timeout=30) is None


def test_a_waiting_reader_is_answered_at_the_next_change(blocks):
    [actor, _], members = blocks
    before = ray.get(actor.status.remote())
    waiting = actor.status.remote(before.version, WAITS_LONGER_THAN_ANY_TEST)
    time.sleep(0.2)
    assert ray.wait([waiting], timeout=0)[0] == [], "nothing changed yet"
    hold(actor, members[0], 3)
    after = ray.get(waiting, timeout=WAITS_LONGER_THAN_ANY_TEST / 2)  # woken, not timed out
    assert after.version > before.version and after.status[3:4] == b"H"


def test_the_replica_map_shows_a_hold_without_being_asked(blocks):
    actors, members = blocks

    async def follow() -> bytes:
        seat_map = SeatMap(VENUE, actors, interval_ms=50)
        following = asyncio.create_task(seat_map.run_forever())
        try:
            await asyncio.wait_for(seat_map.fresh.wait(), 30)
            etag = seat_map.etag
            await asyncio.to_thread(hold, actors[1], members[1], VENUE.blocks()[1].first_seat_id + 7)
            for _ in range(200):
                if seat_map.etag != etag:
                    break
                await asyncio.sleep(0.05)
            return bytes(seat_map.seats)
        finally:
            following.cancel()

    status = asyncio.run(follow())
    assert status[20 + 7 : 20 + 8] == b"H"


def test_seats_taken_wait_for_the_settle_time_and_seats_released_do_not(blocks):
    [actor, _], members = blocks
    before = ray.get(actor.status.remote())
    waiting = actor.status.remote(before.version, WAITS_LONGER_THAN_ANY_TEST, SETTLES_LONGER_THAN_ANY_TEST)
    held = hold(actor, members[2], 9)
    assert ray.wait([waiting], timeout=1.0)[0] == [], "a seat taken is news that can wait"
    ray.get(actor.cancel.remote(held.booking_id, members[2]))
    after = ray.get(waiting, timeout=WAITS_LONGER_THAN_ANY_TEST / 4)  # answered long before the settle time
    assert after.status[9:10] == b"A"


def test_the_replica_map_hears_of_a_release_at_once(blocks):
    actors, members = blocks
    seat = VENUE.blocks()[1].first_seat_id + 11
    held = hold(actors[1], members[3], seat)

    async def follow() -> tuple[bytes, bool, bytes]:
        seat_map = SeatMap(VENUE, actors, interval_ms=int(SETTLES_LONGER_THAN_ANY_TEST * 1000))
        following = asyncio.create_task(seat_map.run_forever())
        try:
            await asyncio.wait_for(seat_map.fresh.wait(), 30)
            before, current = bytes(seat_map.seats), seat_map.blocks_current[1]
            await actors[1].cancel.remote(held.booking_id, members[3])
            for _ in range(100):
                if seat_map.seats[seat] == ord("A"):
                    break
                await asyncio.sleep(0.1)
            return before, current, bytes(seat_map.seats)
        finally:
            following.cancel()

    before, current, after = asyncio.run(follow())
    assert before[seat] == ord("H") and current, "the block holds the map's open question"
    assert after[seat] == ord("A"), "the release reached the map long before the settle time"
