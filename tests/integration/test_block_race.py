"""Thirteen people reach for every seat at once, through the real actors and MariaDB.

The race test must be able to fail, so beside it run two canaries with the serialization
bypassed: two actors own the same seats (a split brain). With the database's uniqueness
guard in place nobody is told they won a seat someone else won; with that guard dropped
too, the very same checker finds double sales.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

import pytest
import ray

from actors.seat_block import HoldRequest, SeatBlockRemote, block_actor_name, start_block
from domain.booking import Booking, new_booking_id
from domain.venue import Venue
from persistence import migrate, open_store
from tests.integration.conftest import insert_members, payment_for, run_sql, success

pytestmark = pytest.mark.mysql

VENUE = Venue.grid(sections=2, rows=10, cols=50, block_rows=5)  # 1,000 seats, 4 blocks
CONTENDERS_PER_SEAT = 13
BATCH = 100
CAP = 4


@pytest.fixture(scope="module")
def race_db(make_mysql_database, ray_instance):
    url = make_mysql_database()
    asyncio.run(migrate(url))
    return url


def contenders(member_ids: list[int], rng: random.Random) -> list[HoldRequest]:
    """13 requests per seat; a third of them ask for the seat and its right neighbour, all or nothing."""
    requests, people = [], iter(member_ids)
    for seat in range(VENUE.seats):
        for _ in range(CONTENDERS_PER_SEAT):
            seats = (seat,)
            if rng.random() < 0.33 and (seat + 1) % 50 and VENUE.block_index_of(seat) == VENUE.block_index_of(seat + 1):
                seats = (seat, seat + 1)
            requests.append(HoldRequest(new_booking_id(), next(people), seats))
    rng.shuffle(requests)
    return requests


def race(requests: list[HoldRequest], actors_for_block) -> dict[int, list[str]]:
    """Send every request in batches to the owning block (or one of its owners); seat → winners."""
    batches: dict[int, list[list[HoldRequest]]] = defaultdict(list)
    for request in requests:
        block = VENUE.block_index_of(request.seat_ids[0])
        open_batches = batches[block]
        if not open_batches or len(open_batches[-1]) == BATCH:
            open_batches.append([])
        open_batches[-1].append(request)
    calls = []
    for block, block_batches in batches.items():
        for number, batch in enumerate(block_batches):
            owners = actors_for_block(block)
            calls.append((batch, owners[number % len(owners)].hold_many.remote(batch)))
    winners: dict[int, list[str]] = defaultdict(list)
    for batch, ref in calls:
        for request, result in zip(batch, ray.get(ref)):
            if isinstance(result, Booking):
                assert result.booking_id == request.booking_id
                for seat in result.seat_ids:
                    winners[seat].append(result.booking_id)
    return winners


async def stored_claims(url: str) -> dict[int, str]:
    store = open_store(url)
    try:
        return await store.claims()
    finally:
        await store.close()


def double_sales(winners: dict[int, list[str]]) -> dict[int, list[str]]:
    return {seat: ids for seat, ids in winners.items() if len(ids) > 1}


def test_thirteen_contenders_per_seat_never_double_sell(race_db):
    members = insert_members(race_db, VENUE.seats * CONTENDERS_PER_SEAT)
    actors = [start_block(b, 120, CAP, race_db) for b in VENUE.blocks()]
    winners = race(contenders(members, random.Random(7)), lambda block: [actors[block]])

    assert double_sales(winners) == {}
    assert len(winners) > VENUE.seats * 0.9, "nearly every seat is won by someone"

    owners = {ids[0]: actors[VENUE.block_index_of(seat)] for seat, ids in winners.items()}
    held = dict(zip(owners, ray.get([actor.booking.remote(booking_id) for booking_id, actor in owners.items()])))
    payments = ray.get([actor.start_payment.remote(payment_for(held[booking_id])) for booking_id, actor in owners.items()])
    settled = ray.get([owners[p.booking_id].settle_payment.remote(success(p)) for p in payments])
    assert all(s.booking.status.value == "confirmed" for s in settled)

    memory = b"".join(ray.get(a.status.remote()).status for a in actors)
    claims = asyncio.run(stored_claims(race_db))
    assert {seat for seat, state in enumerate(memory) if state != ord("A")} == set(claims)
    assert all(memory[seat] == ord("S") for seat in claims)
    assert {seat: ids[0] for seat, ids in winners.items()} == claims
    for actor in actors:
        ray.kill(actor)


def split_brain(race_db, tag: str):
    """Two actors per block, both believing they own its seats: the serialization bypassed.

    Both copies load the empty store before the race: a copy that started late would read
    the other's claims from the store and agree with it, and no race would happen in memory.
    """
    run_sql(race_db, "DELETE FROM seat_claims")
    run_sql(race_db, "DELETE FROM booking_seats")
    run_sql(race_db, "DELETE FROM bookings")
    copies = [
        [SeatBlockRemote.options(name=f"{block_actor_name(b)}-{tag}-{copy}").remote(b, 120, CAP, race_db) for copy in (1, 2)]
        for b in VENUE.blocks()
    ]
    assert all(stats["live_bookings"] == 0 for stats in ray.get([a.stats.remote() for pair in copies for a in pair]))
    return copies


def test_canary_split_brain_is_stopped_by_the_database(race_db):
    members = insert_members(race_db, VENUE.seats * CONTENDERS_PER_SEAT)
    copies = split_brain(race_db, "guarded")
    winners = race(contenders(members, random.Random(8)), lambda block: copies[block])

    assert double_sales(winners) == {}, "the uniqueness constraint refused every second claim"
    memories = [[ray.get(a.status.remote()).status for a in pair] for pair in copies]
    disagreeing = sum(1 for one, two in memories for x, y in zip(one, two) if x != y)
    assert disagreeing > 0, "the two copies did disagree: the race really happened in memory"
    for pair in copies:
        for actor in pair:
            ray.kill(actor)


def test_canary_without_any_guard_double_sells(race_db):
    run_sql(race_db, "ALTER TABLE seat_claims DROP PRIMARY KEY, ADD INDEX seat_claims_seat (seat_id)")
    try:
        members = insert_members(race_db, VENUE.seats * CONTENDERS_PER_SEAT)
        copies = split_brain(race_db, "unguarded")
        winners = race(contenders(members, random.Random(9)), lambda block: copies[block])
        assert len(double_sales(winners)) > 0, "with both guards off the checker must see double sales"
        for pair in copies:
            for actor in pair:
                ray.kill(actor)
    finally:
        run_sql(race_db, "DELETE FROM seat_claims")
        run_sql(race_db, "ALTER TABLE seat_claims DROP INDEX seat_claims_seat, ADD PRIMARY KEY (seat_id)")
