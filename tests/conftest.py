"""Shared fixtures: a throwaway MariaDB database per run, and stores of both kinds.

MySQL is real here. Where ``CI=true`` and no MySQL answers, the run fails loudly; on a
laptop without one, MySQL tests skip with the reason.
"""

from __future__ import annotations

import os
import secrets

import pymysql
import pytest

from persistence import open_store

MYSQL_SERVER_URL = os.environ.get("ENCORE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306")


def _server_args() -> dict:
    from urllib.parse import urlparse

    url = urlparse(MYSQL_SERVER_URL)
    return {"host": url.hostname, "port": url.port or 3306, "user": url.username or "root", "password": url.password or ""}


@pytest.fixture(scope="session")
def mysql_server() -> str:
    """The MySQL server URL, or a skip (a failure under CI) when none answers."""
    try:
        pymysql.connect(**_server_args(), connect_timeout=3).close()
    except pymysql.err.OperationalError as error:
        message = f"no MySQL/MariaDB at {MYSQL_SERVER_URL}: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: the MySQL suite must run; `make test` starts MariaDB)", pytrace=False)
        pytest.skip(message)
    return MYSQL_SERVER_URL


@pytest.fixture(scope="session")
def make_mysql_database(mysql_server):
    """A factory of fresh databases, all dropped when the run ends."""
    created: list[str] = []

    def make() -> str:
        name = f"encore_test_{secrets.token_hex(4)}"
        connection = pymysql.connect(**_server_args())
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        connection.close()
        created.append(name)
        return f"{mysql_server.rstrip('/')}/{name}"

    yield make
    connection = pymysql.connect(**_server_args())
    with connection.cursor() as cursor:
        for name in created:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
    connection.close()


@pytest.fixture(params=["sqlite", "mysql"])
def db_url(request, tmp_path) -> str:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/encore.db"
    return request.getfixturevalue("make_mysql_database")()


@pytest.fixture
async def store(db_url):
    store = open_store(db_url)
    await store.migrate()
    yield store
    await store.close()
