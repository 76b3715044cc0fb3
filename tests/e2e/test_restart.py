"""A service killed with SIGKILL comes back by itself, on MariaDB.

Members hold seats (some early enough that their deadline passes while the service is
down), one pays; then every process of the service is killed at once, as a machine losing
power would leave it, except a few left alive on purpose, as a kill of the process group
may leave them: an nginx worker holding the public port, Serve's HAProxy holding Serve's
port, and a seat-block actor of the old Ray session. ``encore serve`` started
again on the same store with the same key must end those and be healthy within a minute,
with every hold and booking where the rules put it and no process of the first run left.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import pytest

from encore.leftovers import end_leftovers
from harness import mysql
from harness.service import PORT, ServiceProcess, kill_processes, restart_service, service_processes
from tests.e2e.conftest import Person, one_service_at_a_time, start_service, stop_service
from tests.e2e.helpers import admin, crowd, events_of

pytestmark = pytest.mark.slow

HOLD_SECONDS = 75
# the early holds' deadline comes this long after the kill: well before the restart can be healthy
EARLY_DEADLINE_AFTER_KILL = 10
HEALTHY_AFTER_KILL_MAX = 60


def survivors_on_purpose(marks: list[ServiceProcess]) -> list[ServiceProcess]:
    """An nginx worker (the public port), Serve's HAProxy (its port) and the actor that
    started it, and a seat-block actor of the old session (which would write to the store
    beside its new copy). Ray's raylet and GCS cannot be among them: Ray ends them with the
    driver that started them."""
    haproxy = max((m for m in marks if "haproxy-serve/" in m.command), key=lambda m: m.started)  # the one reloaded last
    return [next(m for m in marks if m.command.startswith("nginx: worker")),
            haproxy,
            next(m for m in marks if m.pid == haproxy.parent),
            next(m for m in marks if m.command.startswith("ray::SeatBlock"))]


def store_rows(db_url: str, sql: str) -> list[tuple]:
    connection = mysql.connect(db_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    finally:
        connection.close()


@pytest.fixture
def first_run(make_mysql_database, tmp_path):
    """The service, and at the end every process of either run gone, whatever the test did."""
    with one_service_at_a_time():
        service = start_service(make_mysql_database(), tmp_path / "first.log", hold_seconds=HOLD_SECONDS,
                                rate_limit_writes_per_minute=100_000)
        runs = {"first": service, "marks": service_processes(service.process.pid)}
        try:
            yield runs
        finally:
            second = runs.get("second")
            second_marks = service_processes(second.process.pid) if second and second.process.poll() is None else []
            for run in (second, service):
                if run is not None:
                    stop_service(run.process)
            kill_processes(runs["marks"] + second_marks)
            end_leftovers(PORT)


def held(person: Person, seats: list[int]) -> dict:
    answer = person.hold(seats)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_service_killed_with_everything_comes_back_by_itself(first_run, tmp_path):
    service = first_run["first"]
    boss = admin(service, f"boss{uuid.uuid4().hex[:8]}")
    early, late, payer = crowd(service, 3), crowd(service, 3), crowd(service, 1)[0]
    early_bookings = [held(person, [10 + 4 * i, 11 + 4 * i]) for i, person in enumerate(early)]
    early_deadline = max(datetime.fromisoformat(b["expires_at"]).timestamp() for b in early_bookings)

    paid = held(payer, [40, 41, 42])
    payment = payer.pay(paid["booking_id"])
    assert payment.status_code == 201, payment.text
    assert payer.checkout(payment.json(), "success").json()["status"] == "succeeded"
    assert payer.booking(paid["booking_id"])["status"] == "confirmed"

    time.sleep(max(0.0, early_deadline - EARLY_DEADLINE_AFTER_KILL - time.time()))
    late_bookings = [held(person, [100 + 3 * i, 101 + 3 * i]) for i, person in enumerate(late)]
    first_run["marks"] = marks = service_processes(service.process.pid)
    left_alive = survivors_on_purpose(marks)
    kill_processes([m for m in marks if m not in left_alive])
    killed_at = time.time()
    service.process.wait(10)
    assert killed_at < early_deadline, "the early holds expired before the kill: the test's timing is off"
    time.sleep(1)
    assert [m for m in left_alive if not m.alive()] == [], "the survivors left on purpose did not survive"

    first_run["second"] = again = restart_service(service, tmp_path / "second.log")
    healthy_after = time.time() - killed_at
    print(f"healthy again {healthy_after:.1f} s after the kill; survivors left on purpose: "
          f"{[m.command[:40] for m in left_alive]}")
    assert healthy_after < HEALTHY_AFTER_KILL_MAX, again.log_path.read_text()[-3000:]
    assert early_deadline < time.time()

    assert not [m for m in marks if m.alive()], "processes of the first run are still alive"

    for person, before in zip(late, late_bookings):
        now = person.booking(before["booking_id"])
        assert (now["status"], now["expires_at"]) == ("held", before["expires_at"]), now
    for person, before in zip(early, early_bookings):
        deadline = time.monotonic() + 10
        while (now := person.booking(before["booking_id"]))["status"] == "held" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert now["status"] == "expired", now
    expired = {e["booking_id"] for e in events_of(boss, type="hold_expired")}
    assert {b["booking_id"] for b in early_bookings} <= expired, expired
    assert not {b["booking_id"] for b in late_bookings} & expired
    assert payer.booking(paid["booking_id"])["status"] == "confirmed"

    twice = store_rows(service.db_url, """
        SELECT s.seat_id, COUNT(*) FROM booking_seats s JOIN bookings b ON b.booking_id = s.booking_id
        WHERE b.status IN ('held', 'confirmed') GROUP BY s.seat_id HAVING COUNT(*) > 1""")
    assert twice == []
    live = store_rows(service.db_url, "SELECT COUNT(*) FROM bookings WHERE status IN ('held', 'confirmed')")
    assert live == [(len(late_bookings) + 1,)]
    assert early[0].hold([10, 11]).status_code == 201  # expired seats are free again
