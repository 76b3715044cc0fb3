"""The queue actor on MariaDB: order, admissions and the published summary survive a restart."""

from __future__ import annotations

import asyncio
import time

import pytest
import ray

from actors.queue import start_queue
from encore.settings import Settings
from persistence import open_store

pytestmark = pytest.mark.mysql


@pytest.fixture(scope="module")
def queue_db(make_mysql_database, ray_instance):
    url = make_mysql_database()

    async def migrate():
        store = open_store(url)
        await store.migrate()
        await store.close()

    asyncio.run(migrate())
    return url


def wait_for(predicate, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_order_and_admissions_survive_a_restart(queue_db):
    settings = Settings(db_url=queue_db, queue_max_active=5, queue_admit_per_second=1000, admission_seconds=600)
    queue = start_queue(settings)
    standings = ray.get(queue.join_many.remote(list(range(1, 21))))
    numbers = {member: s.number for member, s in zip(range(1, 21), standings)}
    assert sorted(numbers.values()) == list(range(1, 21)), "first come, first served"
    assert ray.get(queue.join_many.remote([3]))[0].number == numbers[3], "joining again keeps the place"

    summary = wait_for(lambda: (s := ray.get(queue.summary.remote()))["active"] == 5 and s)
    assert summary["head"] == 6, "at most max_active admitted"
    time.sleep(1.5)  # one save interval

    ray.kill(queue, no_restart=False)
    after = wait_for(lambda: ray.get(queue.summary.remote()))
    assert after["head"] == 6 and after["active"] == 5 and after["next_number"] == 21
    assert after["checkpoints"] == summary["checkpoints"], "admission times are kept"
    restored = ray.get(queue.standings.remote(list(range(1, 21))))
    assert {m: s.number for m, s in zip(range(1, 21), restored)} == numbers
    assert [s.state for s in restored[:5]] == ["admitted"] * 5
    assert all(s.state == "waiting" for s in restored[5:])

    ray.get(queue.complete.remote(1))
    moved = wait_for(lambda: (s := ray.get(queue.summary.remote()))["head"] == 7 and s)
    assert moved["active"] == 5, "a completed booking frees its admitted place for the next person"
    ray.kill(queue)
