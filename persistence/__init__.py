"""The durable store behind one interface: MySQL/MariaDB in production, SQLite embedded."""

from persistence.store import Conflict, SqlStore


def open_store(db_url: str, pool_size: int = 4) -> SqlStore:
    """The store for ``ENCORE_DB_URL``; connections open lazily on first use."""
    if db_url.startswith("sqlite:///"):
        from persistence.sqlite import SQLiteStore

        return SQLiteStore(db_url.removeprefix("sqlite:///"))
    if db_url.startswith("mysql://"):
        from persistence.mysql import MySQLStore

        return MySQLStore(db_url, pool_size)
    raise ValueError(f"unsupported ENCORE_DB_URL {db_url!r}")


async def migrate(db_url: str) -> int:
    """Bring the database at ``db_url`` to the newest schema version (see ``SqlStore.migrate``);
    the one way every command, benchmark and test migrates."""
    store = open_store(db_url)
    try:
        return await store.migrate()
    finally:
        await store.close()


__all__ = ["Conflict", "SqlStore", "migrate", "open_store"]
