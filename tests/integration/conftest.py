"""Ray for the actor tests: one small local instance per test module, stopped by the fixture."""

from __future__ import annotations

import pytest
import ray

from harness import mysql


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(
        num_cpus=2,
        object_store_memory=80 * 1024 * 1024,
        include_dashboard=False,
        namespace="encore-tests",
        log_to_driver=False,
        configure_logging=False,
    )
    yield
    ray.shutdown()


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
