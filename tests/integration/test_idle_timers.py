"""The actors' timers sleep while there is nothing to do, and still act on time.

A seat block's expiry timer sleeps until the next deadline (or until a hold arrives in an
empty block).
"""

from __future__ import annotations

import asyncio
import time

import pytest
import ray

from actors.seat_block import HoldRequest, start_block
from domain.booking import Booking, BookingStatus, new_booking_id
from domain.venue import Venue
from persistence import open_store
from tests.integration.conftest import insert_members

pytestmark = pytest.mark.mysql

VENUE = Venue.grid(sections=1, rows=2, cols=10, block_rows=2)
HOLD_SECONDS = 1.0
EXPIRY_LATENESS_MAX = 0.25
IDLE_SECONDS = 1.5  # longer than any tick the timers had


async def migrate(url: str) -> None:
    store = open_store(url)
    await store.migrate()
    await store.close()


@pytest.fixture
def db(make_mysql_database, ray_instance):
    url = make_mysql_database()
    asyncio.run(migrate(url))
    return url


def hold(actor, member: int, seat: int) -> Booking:
    [answer] = ray.get(actor.hold_many.remote([HoldRequest(new_booking_id(), member, (seat,))]))
    assert isinstance(answer, Booking), answer
    return answer


def seconds_until_expired(actor, booking: Booking) -> float:
    """When the block says ``booking`` expired, relative to its deadline."""
    while True:
        status = ray.get(actor.booking.remote(booking.booking_id)).status
        now = time.time()
        if status is BookingStatus.EXPIRED:
            return now - booking.expires_at
        assert now < booking.expires_at + 5, "the hold never expired"
        time.sleep(0.02)


def test_holds_expire_on_time_after_the_block_slept(db):
    members = insert_members(db, 3)
    [block] = VENUE.blocks()
    actor = start_block(block, HOLD_SECONDS, 4, db)
    ray.get(actor.stats.remote())
    time.sleep(IDLE_SECONDS)

    first = hold(actor, members[0], 1)
    time.sleep(HOLD_SECONDS / 2)
    second = hold(actor, members[1], 2)  # due after the deadline the timer sleeps until
    late_first = seconds_until_expired(actor, first)
    late_second = seconds_until_expired(actor, second)
    assert 0 <= late_first <= EXPIRY_LATENESS_MAX, f"{late_first:.3f} s after its deadline"
    assert 0 <= late_second <= EXPIRY_LATENESS_MAX, f"{late_second:.3f} s after its deadline"

    time.sleep(IDLE_SECONDS)  # no hold left: the timer sleeps until the next one
    third = hold(actor, members[2], 3)
    late_third = seconds_until_expired(actor, third)
    assert 0 <= late_third <= EXPIRY_LATENESS_MAX, f"{late_third:.3f} s after its deadline"
    ray.kill(actor)
