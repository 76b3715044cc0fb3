"""The actors' timers sleep while there is nothing to do, and still act on time.

A seat block's expiry timer sleeps until the next deadline (or until a hold arrives in an
empty block); the queue's timer sleeps while nobody waits or is admitted, and a join wakes
it; the queue's summary is long-polled like a block's seats.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import ray

from actors.queue import start_queue
from actors.seat_block import HoldRequest, start_block
from domain.booking import Booking, BookingStatus, new_booking_id
from domain.venue import Venue
from encore.settings import Settings
from persistence import migrate
from tests.integration.conftest import insert_members

pytestmark = pytest.mark.mysql

VENUE = Venue.grid(sections=1, rows=2, cols=10, block_rows=2)
HOLD_SECONDS = 1.0
EXPIRY_LATENESS_MAX = 0.25
IDLE_SECONDS = 1.5  # longer than any tick the timers had


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


def test_an_idle_queue_admits_a_joiner_at_once_and_takes_back_a_lapsed_admission(db):
    settings = Settings(db_url=db, queue_active_max=10, queue_admit_per_second=100)
    settings = settings.model_copy(update={"admission_seconds": 1.0})  # below the setting's floor of 10 s, to be quick
    queue = start_queue(settings)
    ray.get(queue.join_many.remote([5]))
    while ray.get(queue.standings.remote([5]))[0].state != "admitted":
        time.sleep(0.02)
    ray.get(queue.complete.remote(5))  # nobody waits or is admitted any more: the timer sleeps
    rate_before = ray.get(queue.summary.remote())["rate"]
    time.sleep(2 * IDLE_SECONDS)  # the room is saved in the first second; then it sleeps

    joined_at = time.monotonic()
    [standing] = ray.get(queue.join_many.remote([7]))
    while ray.get(queue.standings.remote([7]))[0].state != "admitted":
        assert time.monotonic() - joined_at < 1.0, "not admitted promptly"
        time.sleep(0.02)
    admitted = ray.get(queue.summary.remote())
    assert admitted["rate"] >= 0.95 * rate_before, "the time nobody waited is not counted as a line standing still"

    deadline = ray.get(queue.standings.remote([7]))[0].deadline
    while ray.get(queue.standings.remote([7]))[0].number == standing.number:
        assert time.time() < deadline + 1.0, "the lapsed admission was not taken back"
        time.sleep(0.02)
    assert time.time() - deadline <= 0.5
    ray.kill(queue)


def test_the_summary_is_answered_at_the_next_change_or_not_at_all(db):
    settings = Settings(db_url=db, queue_active_max=10, queue_admit_per_second=100, admission_seconds=600)
    queue = start_queue(settings)
    first = ray.get(queue.summary.remote())
    assert ray.get(queue.summary.remote(None, first["revision"], 0.3, 0.05), timeout=30) is None

    waiting = queue.summary.remote(None, first["revision"], 60.0, 0.05)
    time.sleep(0.3)
    assert ray.wait([waiting], timeout=0)[0] == [], "nothing changed yet"
    ray.get(queue.join_many.remote([11]))
    changed = ray.get(waiting, timeout=5)  # woken, not timed out
    assert changed["revision"] > first["revision"] and changed["next_number"] == first["next_number"] + 1
    ray.kill(queue)
