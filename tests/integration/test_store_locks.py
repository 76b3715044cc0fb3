"""Seat blocks write side by side: one block's release must not wait for another block's claims.

Each block is its own writer, so the store should let them commit in parallel. A release that
found its claim rows by booking id scanned (and locked) every claim in the table, so it waited
for every other block's transaction in flight, and two such blocks deadlocked
(``loadtest/bench_store.py`` counted the failed commits). Here another block's claim is left
uncommitted while this block releases: the release must commit at once.
"""

from __future__ import annotations

import asyncio

from domain.seat_block import SeatBlock
from domain.venue import Venue
from harness import mysql
from persistence import migrate, open_store

VENUE = Venue.grid(2, 4, 10, 2)
WAIT_SECONDS = 5


async def test_a_release_does_not_wait_for_another_blocks_claims_in_flight(make_mysql_database):
    db_url = make_mysql_database()
    store = open_store(db_url)
    await migrate(db_url)
    alice, bob = [(await store.create_member(f"user{i}", "nick", "hash", "user", 1.0)).id for i in range(2)]
    first, second = (SeatBlock(block, 60, 4) for block in VENUE.blocks()[:2])
    await store.commit_block_changes(0, [first.hold("a1", alice, [1, 2], 100.0)], 4)
    other = mysql.connect(db_url, autocommit=False)
    try:
        with other.cursor() as cursor:
            cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            cursor.execute("BEGIN")
            seat = second.block.first_seat_id
            cursor.execute("INSERT INTO seat_claims (seat_id, booking_id, member_id) VALUES (%s, 'b1', %s)", (seat, bob))
            release = first.cancel("a1", 110.0, alice)
            await asyncio.wait_for(store.commit_block_changes(0, [release], 4), WAIT_SECONDS)
        assert await store.claims() == {}
    finally:
        other.rollback()
        other.close()
        await store.close()
