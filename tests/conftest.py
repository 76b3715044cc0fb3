"""Shared fixtures: a throwaway MariaDB database per run, and stores of both kinds.

MySQL is real here. Where ``CI=true`` and no MySQL answers, the run fails loudly; on a
laptop without one, MySQL tests skip with the reason.
"""

from __future__ import annotations

import os
import secrets

import pymysql
import pytest

from harness import mysql
from persistence import migrate, open_store


@pytest.fixture(scope="session")
def mysql_server() -> str:
    """The MySQL server URL, or a skip (a failure under CI) when none answers."""
    try:
        mysql.connect(connect_timeout=3).close()
    except pymysql.err.OperationalError as error:
        message = f"no MySQL/MariaDB at {mysql.SERVER_URL}: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: the MySQL suite must run; `make test` starts MariaDB)", pytrace=False)
        pytest.skip(message)
    return mysql.SERVER_URL


@pytest.fixture(scope="session")
def make_mysql_database(mysql_server):
    """A factory of fresh databases, all dropped when the run ends."""
    created: list[str] = []

    def make() -> str:
        name = f"encore_test_{secrets.token_hex(4)}"
        created.append(name)
        return mysql.create_database(name)

    yield make
    for name in created:
        mysql.drop_database(name)


@pytest.fixture(params=["sqlite", "mysql"])
def db_url(request, tmp_path) -> str:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/encore.db"
    return request.getfixturevalue("make_mysql_database")()


@pytest.fixture
async def store(db_url):
    await migrate(db_url)
    store = open_store(db_url)
    yield store
    await store.close()
