"""Throwaway databases on the MariaDB server the tests and benchmarks use."""

from __future__ import annotations

import os
from urllib.parse import urlparse

import pymysql

SERVER_URL = os.environ.get("ENCORE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306")


def server_args() -> dict:
    """pymysql's keyword arguments for the server (no database)."""
    url = urlparse(SERVER_URL)
    return {"host": url.hostname, "port": url.port or 3306, "user": url.username or "root", "password": url.password or ""}


def connect(database: str | None = None, **options) -> pymysql.Connection:
    """A plain connection to the server, or to one of its databases (a name or a ``mysql://`` URL)."""
    if database and "/" in database:
        database = database.rsplit("/", 1)[1]
    return pymysql.connect(**server_args(), **({"database": database} if database else {}), **options)


def create_database(name: str) -> str:
    """A new empty database; returns its ``ENCORE_DB_URL``."""
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    return f"{SERVER_URL.rstrip('/')}/{name}"


def drop_database(name: str) -> None:
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
