"""``persistence.migrate`` on both stores: a run that stopped halfway is finished by the next,
and processes starting at once migrate once."""

from __future__ import annotations

import asyncio

import pytest

from persistence import migrate, open_store
from persistence.schema import MIGRATIONS, render


async def versions(db_url: str) -> list[tuple[int, int]]:
    """(version, times recorded), in order."""
    store = open_store(db_url)
    try:
        async with store.transaction() as tx:
            return await tx.fetchall("SELECT version, COUNT(*) FROM schema_version GROUP BY version ORDER BY version")
    finally:
        await store.close()


NEWEST = [(version, 1) for version in range(1, len(MIGRATIONS) + 1)]


async def test_every_migration_re_runs_over_its_own_work(db_url):
    """As if each run had stopped after its last statement, before writing its version down."""
    await migrate(db_url)
    store = open_store(db_url)
    try:
        for version in range(len(MIGRATIONS), 0, -1):
            async with store.transaction() as tx:
                await tx.execute("DELETE FROM schema_version WHERE version >= ?", (version,))
            assert await store.migrate() == len(MIGRATIONS)
    finally:
        await store.close()
    assert await versions(db_url) == NEWEST


@pytest.mark.parametrize("version", range(1, len(MIGRATIONS) + 1))
async def test_a_migration_stopped_halfway_is_finished_by_the_next_start(db_url, version, monkeypatch):
    import persistence.store

    monkeypatch.setattr(persistence.store, "MIGRATIONS", MIGRATIONS[: version - 1])
    await migrate(db_url)
    monkeypatch.undo()
    store = open_store(db_url)
    try:
        statements = [s for s in (render(store.dialect, s) for s in MIGRATIONS[version - 1]) if s is not None]
        async with store.transaction() as tx:
            for statement in statements[: max(1, len(statements) // 2)]:
                await tx.execute(statement)
    finally:
        await store.close()
    await migrate(db_url)
    assert await versions(db_url) == NEWEST


async def test_processes_starting_at_once_migrate_once(db_url):
    assert await asyncio.gather(*(migrate(db_url) for _ in range(3))) == [len(MIGRATIONS)] * 3
    assert await versions(db_url) == NEWEST


async def test_new_sqlite_files_opened_by_three_at_once_all_migrate(tmp_path):
    """Only one connection can turn a new file to WAL, and SQLite refuses the others at once
    instead of making them wait: each must try again (about one round in five failed when
    they did not)."""
    for round_ in range(20):
        url = f"sqlite:///{tmp_path}/round-{round_}.db"
        assert await asyncio.gather(*(migrate(url) for _ in range(3))) == [len(MIGRATIONS)] * 3
