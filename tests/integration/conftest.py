"""Ray for the actor tests: one small local instance per test module, stopped by the fixture."""

from __future__ import annotations

import os
import secrets
import time

import pytest
import ray

from actors.seat_block import Verdict
from domain.booking import Booking
from domain.payment import Payment, PaymentStatus
from harness import mysql


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(
        address="local",  # a fresh instance of our own, even beside a cluster started by `ray start`
        num_cpus=2,
        object_store_memory=80 * 1024 * 1024,
        include_dashboard=False,
        namespace="encore-tests",
        log_to_driver=False,
        configure_logging=False,
    )
    yield
    ray.shutdown()


def restart(actor, seconds: float = 10.0) -> None:
    """Kill ``actor`` and return once its next incarnation answers. ``ray.kill`` only asks for
    the kill: calls sent right after it are often still answered by the old process."""
    before = ray.get(actor.__ray_call__.remote(process_id))
    ray.kill(actor, no_restart=False)
    deadline = time.monotonic() + seconds
    while ray.get(actor.__ray_call__.remote(process_id)) == before:
        assert time.monotonic() < deadline, "the actor was not restarted in time"
        time.sleep(0.05)


def process_id(_actor) -> int:
    return os.getpid()


def insert_members(db_url: str, count: int) -> list[int]:
    """Many members at once (a race needs thousands of distinct people); returns their ids."""
    connection = mysql.connect(db_url, autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM members")
        start = cursor.fetchone()[0]
        cursor.executemany(
            "INSERT INTO members (username, nickname, password_hash, role, created_at) VALUES (%s,%s,%s,%s,%s)",
            [(f"racer{start + i}", f"racer{start + i}", "-", "user", 0.0) for i in range(count)],
        )
        cursor.execute("SELECT id FROM members WHERE id > %s ORDER BY id", (start,))
        ids = [row[0] for row in cursor.fetchall()]
    connection.close()
    return ids


def run_sql(db_url: str, statement: str) -> None:
    connection = mysql.connect(db_url, autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute(statement)
    connection.close()


def payment_for(booking: Booking) -> Payment:
    """A new payment for ``booking``, as the service asks its block to start one."""
    return Payment(f"pay_{secrets.token_hex(10)}", booking.booking_id, booking.member_id, "mockpay", 1,
                   PaymentStatus.PENDING, 0.0, 0.0)


def start_paying(actor, booking: Booking) -> Payment:
    return ray.get(actor.start_payment.remote(payment_for(booking)))


def success(payment: Payment) -> Verdict:
    return Verdict(payment.payment_id, payment.booking_id, PaymentStatus.SUCCEEDED, f"evt_{payment.payment_id}")
