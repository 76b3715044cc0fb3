"""The embedded store: one SQLite file, so ``make run`` needs no database server.

Every process (actors, replicas) opens the file itself; WAL mode lets readers run beside
the one writer, and ``BEGIN IMMEDIATE`` takes the write lock up front so two writers wait
for each other instead of failing halfway. sqlite3 blocks, so each connection lives on one
worker thread and the event loop only awaits it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Sequence

from domain.errors import StoreUnavailable
from persistence.store import UNAVAILABLE, Conflict, SqlStore, Transaction

BUSY_TIMEOUT_MS = 10_000
WAL_RETRY_SECONDS = 0.01
# the file cannot be used at the moment, rather than the statement wrong
UNAVAILABLE_MESSAGES = ("database is locked", "database table is locked", "unable to open database file", "disk i/o error")


def is_unavailable(error: sqlite3.OperationalError) -> bool:
    return str(error).lower().startswith(UNAVAILABLE_MESSAGES)


def _turn_to_wal(connection: sqlite3.Connection) -> None:
    """Turning a new file to WAL needs it alone, and while other processes open it too SQLite
    answers "locked" at once instead of waiting (it skips its busy handler where waiting could
    deadlock): so the switch is tried again until the busy timeout. Once one has switched, the
    file stays WAL and the others' switch is a read."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if not is_unavailable(error) or time.monotonic() > deadline:
                raise
            time.sleep(WAL_RETRY_SECONDS)


class _SQLiteTransaction(Transaction):
    def __init__(self, store: "SQLiteStore"):
        self._store = store

    async def execute(self, sql: str, params: Sequence = ()) -> int:
        return await self._store._run(lambda c: c.execute(sql, tuple(params)).rowcount)

    async def executemany(self, sql: str, rows: Sequence[Sequence]) -> int:
        if not rows:
            return 0
        return await self._store._run(lambda c: c.executemany(sql, [tuple(r) for r in rows]).rowcount)

    async def fetchall(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return await self._store._run(lambda c: c.execute(sql, tuple(params)).fetchall())

    async def insert_id(self, sql: str, params: Sequence = ()) -> int:
        return await self._store._run(lambda c: c.execute(sql, tuple(params)).lastrowid)


class SQLiteStore(SqlStore):
    dialect = "sqlite"
    insert_ignore = "INSERT OR IGNORE"

    def __init__(self, path: str):
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._lock = asyncio.Lock()
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        _turn_to_wal(connection)
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return connection

    async def _run(self, work):
        def call():
            try:
                if self._connection is None:
                    self._connection = self._connect()
                return work(self._connection)
            except sqlite3.IntegrityError as error:
                raise Conflict(str(error)) from error
            except sqlite3.OperationalError as error:
                if is_unavailable(error):
                    raise StoreUnavailable(UNAVAILABLE) from error
                raise

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._lock:
            await self._run(lambda c: c.execute("BEGIN IMMEDIATE"))
            try:
                yield _SQLiteTransaction(self)
            except BaseException:
                await self._run(lambda c: c.execute("ROLLBACK"))
                raise
            await self._run(lambda c: c.execute("COMMIT"))

    @asynccontextmanager
    async def migration_lock(self) -> AsyncIterator[None]:
        """Nothing more than the migration's own transaction: its ``BEGIN IMMEDIATE`` takes the
        file's write lock before the version is read, so a second process waits there and then
        finds the newest version; and SQLite's DDL is transactional, so a run that stops
        halfway leaves nothing behind."""
        yield

    def already_applied(self, error: Exception) -> bool:
        message = str(error)
        return isinstance(error, sqlite3.OperationalError) and (
            message.startswith("duplicate column name") or message.endswith("already exists")
        )

    def upsert(self, key: str, columns) -> str:
        return f"ON CONFLICT ({key}) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in columns)

    async def close(self) -> None:
        if self._connection is not None:
            await self._run(lambda c: c.close())
            self._connection = None
        self._executor.shutdown(wait=False)
