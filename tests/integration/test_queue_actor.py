"""The queue actor on MariaDB: order, admissions and the published summary survive a restart."""

from __future__ import annotations

import asyncio
import time

import pytest
import ray

from actors.queue import start_queue
from api.queue_view import QueueView
from encore.settings import Settings
from persistence import migrate
from tests.integration.conftest import restart

pytestmark = pytest.mark.mysql


@pytest.fixture
def queue_db(make_mysql_database, ray_instance):
    """A database of its own per test: the queue actor restores its room from it."""
    url = make_mysql_database()
    asyncio.run(migrate(url))
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
    settings = Settings(db_url=queue_db, queue_active_max=5, queue_admit_per_second=1000, admission_seconds=600)
    queue = start_queue(settings)
    standings = ray.get(queue.join_many.remote(list(range(1, 21))))
    numbers = {member: s.number for member, s in zip(range(1, 21), standings)}
    assert sorted(numbers.values()) == list(range(1, 21)), "first come, first served"
    assert ray.get(queue.join_many.remote([3]))[0].number == numbers[3], "joining again keeps the place"

    summary = wait_for(lambda: (s := ray.get(queue.summary.remote()))["active"] == 5 and s)
    assert summary["head"] == 6, "at most active_max admitted"
    time.sleep(1.5)  # one save interval

    restart(queue)
    after = ray.get(queue.summary.remote())
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


def test_a_refreshing_view_is_sent_only_new_checkpoints_and_answers_as_a_full_one(queue_db):
    settings = Settings(db_url=queue_db, queue_active_max=10_000, queue_admit_per_second=50, admission_seconds=600)
    queue = start_queue(settings)
    members = list(range(100, 400))
    numbers = [standing.number for standing in ray.get(queue.join_many.remote(members))]
    view, sent = QueueView(queue, settings), []

    def refresh() -> None:
        asyncio.run(view.refresh())
        sent.append(len(view.summary["checkpoints"]))

    def full_view() -> QueueView:
        full = QueueView(None, settings)
        full.update(ray.get(queue.summary.remote()))
        return full

    for _ in range(10):  # while people are being admitted, 50 a second
        refresh()
        time.sleep(0.2)
    wait_for(lambda: ray.get(queue.summary.remote())["waiting"] == 0)
    refresh()
    full, now = full_view(), time.time()
    assert sum(sent) == len(full.summary["checkpoints"]) > 10, f"each checkpoint is sent once: {sent}"
    assert [view.position(n, now) for n in numbers] == [full.position(n, now) for n in numbers]

    restart(queue)  # a restart may forget the newest checkpoints: then all are sent
    refresh()
    full, now = full_view(), time.time()
    assert [view.position(n, now) for n in numbers] == [full.position(n, now) for n in numbers]
    ray.kill(queue)
