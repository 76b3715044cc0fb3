"""The production store: MySQL / MariaDB through an aiomysql connection pool (InnoDB)."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import AsyncIterator, Sequence
from urllib.parse import unquote, urlparse

import aiomysql
import pymysql

from domain.errors import StoreUnavailable
from persistence.store import UNAVAILABLE, Conflict, SqlStore, Transaction

POOL_SIZE_MAX = 8
CONNECT_TIMEOUT_SECONDS = 3
# the server is down, unreachable, restarting or full, rather than the statement wrong: can't
# connect (2002, 2003), gone away (2006), lost during a query (2013, 2055), too many
# connections (1040), shutting down (1053), connection killed (1927)
UNREACHABLE_CODES = frozenset({2002, 2003, 2006, 2013, 2055, 1040, 1053, 1927})
# a migration statement's work is there already: table (1050), column (1060), index (1061)
ALREADY_APPLIED_CODES = frozenset({1050, 1060, 1061})
MIGRATION_LOCK_SECONDS = 120


@lru_cache(maxsize=512)
def _mysql_sql(sql: str) -> str:
    """Our portable ``?`` placeholders in the pyformat style the driver expects."""
    assert "%" not in sql, "literal % in SQL would be read as a placeholder"
    return sql.replace("?", "%s")


class _MySQLTransaction(Transaction):
    def __init__(self, cursor: aiomysql.Cursor):
        self._cursor = cursor

    async def execute(self, sql: str, params: Sequence = ()) -> int:
        try:
            return await self._cursor.execute(_mysql_sql(sql), tuple(params))
        except pymysql.err.IntegrityError as error:
            raise Conflict(str(error)) from error

    async def executemany(self, sql: str, rows: Sequence[Sequence]) -> int:
        if not rows:
            return 0
        try:
            return await self._cursor.executemany(_mysql_sql(sql), [tuple(r) for r in rows])
        except pymysql.err.IntegrityError as error:
            raise Conflict(str(error)) from error

    async def fetchall(self, sql: str, params: Sequence = ()) -> list[tuple]:
        await self.execute(sql, params)
        return list(await self._cursor.fetchall())

    async def insert_id(self, sql: str, params: Sequence = ()) -> int:
        await self.execute(sql, params)
        return self._cursor.lastrowid


def is_unreachable(error: pymysql.err.Error) -> bool:
    """Whether ``error`` says the server cannot be talked to, not that a statement is wrong."""
    if isinstance(error, pymysql.err.InterfaceError):  # a connection already closed under us
        return True
    return isinstance(error, pymysql.err.OperationalError) and bool(error.args) and error.args[0] in UNREACHABLE_CODES


def connection_args(db_url: str) -> dict:
    """``mysql://user:pass@host:port/db`` → aiomysql keyword arguments."""
    url = urlparse(db_url)
    if url.scheme != "mysql" or not re.fullmatch(r"/\w+", url.path or ""):
        raise ValueError("expected mysql://user:pass@host:port/database")
    return {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or 3306,
        "user": unquote(url.username or "root"),
        "password": unquote(url.password or ""),
        "db": url.path[1:],
    }


class MySQLStore(SqlStore):
    dialect = "mysql"
    lock_suffix = " FOR UPDATE"

    def __init__(self, db_url: str, pool_size: int = 4):
        self._args = connection_args(db_url)
        self._pool_size = min(pool_size, POOL_SIZE_MAX)
        self._pool: aiomysql.Pool | None = None

    async def _get_pool(self) -> aiomysql.Pool:
        if self._pool is None:
            self._pool = await aiomysql.create_pool(
                minsize=1, maxsize=self._pool_size, autocommit=False, charset="utf8mb4",
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", **self._args,
            )
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One transaction; a server that cannot be reached is ``StoreUnavailable``."""
        try:
            pool = await self._get_pool()
            async with pool.acquire() as connection:
                # no BEGIN: with autocommit off the first statement opens the transaction, which
                # saves a round trip on every commit (the group committer's and the ledger's included)
                try:
                    async with connection.cursor() as cursor:
                        yield _MySQLTransaction(cursor)
                except BaseException:
                    await connection.rollback()
                    raise
                await connection.commit()
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as error:
            if not is_unreachable(error):
                raise
            raise StoreUnavailable(UNAVAILABLE) from error

    @asynccontextmanager
    async def migration_lock(self) -> AsyncIterator[None]:
        """``GET_LOCK`` on a connection of its own, named after the database: MySQL commits
        each DDL statement by itself, so no transaction can keep a second process from
        reading the old version while the first one is half way."""
        async with self.transaction() as tx:
            name = f"encore_migrate:{self._args['db']}"
            (granted,) = await tx.fetchone("SELECT GET_LOCK(?, ?)", (name, MIGRATION_LOCK_SECONDS))
            if granted != 1:
                raise RuntimeError(f"another process has been migrating {self._args['db']} for {MIGRATION_LOCK_SECONDS} s")
            try:
                yield
            finally:
                await tx.execute("SELECT RELEASE_LOCK(?)", (name,))

    def already_applied(self, error: Exception) -> bool:
        return isinstance(error, pymysql.err.OperationalError) and bool(error.args) and error.args[0] in ALREADY_APPLIED_CODES

    def upsert(self, key: str, columns) -> str:
        return "ON DUPLICATE KEY UPDATE " + ", ".join(f"{c} = VALUES({c})" for c in columns)

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed()
            self._pool = None
