"""The tables, written once and rendered for each SQL dialect, and the migrations that create them.

Times are epoch seconds (``DOUBLE``) so both dialects compare them the same way.
``seat_claims`` is the last line of defence: its primary key is the seat id, and a row
exists exactly while a seat is held or sold, so the database itself refuses a double sale.
"""

from __future__ import annotations

# a statement for every dialect, or a {dialect: statement} for the dialects it concerns
MIGRATIONS: list[list[str | dict[str, str]]] = [
    [
        """CREATE TABLE IF NOT EXISTS members (
            id {BIGINT_PK},
            username VARCHAR(32) NOT NULL UNIQUE,
            nickname VARCHAR(64) NOT NULL,
            password_hash VARCHAR(255) NOT NULL,
            role VARCHAR(8) NOT NULL,
            created_at DOUBLE NOT NULL
        ){TABLE}""",
        """CREATE TABLE IF NOT EXISTS bookings (
            booking_id VARCHAR(32) NOT NULL PRIMARY KEY,
            member_id BIGINT NOT NULL,
            block_index INT NOT NULL,
            status VARCHAR(16) NOT NULL,
            created_at DOUBLE NOT NULL,
            expires_at DOUBLE NOT NULL,
            updated_at DOUBLE NOT NULL
        ){TABLE}""",
        "CREATE INDEX bookings_by_member ON bookings (member_id, created_at)",
        "CREATE INDEX bookings_by_block ON bookings (block_index, status)",
        """CREATE TABLE IF NOT EXISTS booking_seats (
            booking_id VARCHAR(32) NOT NULL,
            seat_id INT NOT NULL,
            PRIMARY KEY (booking_id, seat_id)
        ){TABLE}""",
        "CREATE INDEX booking_seats_by_seat ON booking_seats (seat_id)",
        """CREATE TABLE IF NOT EXISTS seat_claims (
            seat_id INT NOT NULL PRIMARY KEY,
            booking_id VARCHAR(32) NOT NULL,
            member_id BIGINT NOT NULL
        ){TABLE}""",
        "CREATE INDEX seat_claims_by_member ON seat_claims (member_id)",
        """CREATE TABLE IF NOT EXISTS payments (
            payment_id VARCHAR(32) NOT NULL PRIMARY KEY,
            booking_id VARCHAR(32) NOT NULL,
            member_id BIGINT NOT NULL,
            provider VARCHAR(16) NOT NULL,
            amount BIGINT NOT NULL,
            status VARCHAR(16) NOT NULL,
            created_at DOUBLE NOT NULL,
            updated_at DOUBLE NOT NULL
        ){TABLE}""",
        "CREATE INDEX payments_by_booking ON payments (booking_id, created_at)",
        """CREATE TABLE IF NOT EXISTS payment_events (
            event_id VARCHAR(64) NOT NULL PRIMARY KEY,
            payment_id VARCHAR(32) NOT NULL,
            received_at DOUBLE NOT NULL
        ){TABLE}""",
        """CREATE TABLE IF NOT EXISTS booking_log (
            id {BIGINT_PK},
            at DOUBLE NOT NULL,
            type VARCHAR(32) NOT NULL,
            booking_id VARCHAR(32),
            member_id BIGINT,
            seat_ids VARCHAR(255) NOT NULL,
            detail TEXT NOT NULL
        ){TABLE}""",
        "CREATE INDEX log_by_booking ON booking_log (booking_id)",
        "CREATE INDEX log_by_member ON booking_log (member_id, id)",
        "CREATE INDEX log_by_type ON booking_log (type, id)",
        "CREATE INDEX log_by_time ON booking_log (at)",
        """CREATE TABLE IF NOT EXISTS idempotency_keys (
            member_id BIGINT NOT NULL,
            idem_key VARCHAR(64) NOT NULL,
            request_hash CHAR(64) NOT NULL,
            claim CHAR(32) NOT NULL,
            state VARCHAR(8) NOT NULL,
            response_status INT,
            response_body TEXT,
            created_at DOUBLE NOT NULL,
            PRIMARY KEY (member_id, idem_key)
        ){TABLE}""",
        "CREATE INDEX idempotency_by_age ON idempotency_keys (created_at)",
        """CREATE TABLE IF NOT EXISTS queue_state (
            id INT NOT NULL PRIMARY KEY,
            snapshot {LONGTEXT} NOT NULL,
            updated_at DOUBLE NOT NULL
        ){TABLE}""",
    ],
    [
        # the booking a successful payment paid for: unique, so a booking is paid at most once
        # even when two payments for it both succeed (the second is refunded)
        "ALTER TABLE payments ADD COLUMN settles_booking VARCHAR(32)",
        "CREATE UNIQUE INDEX payments_one_success ON payments (settles_booking)",
    ],
    [
        # an Idempotency-Key is an opaque string compared exactly: MySQL's default collation took
        # "casekey-x" and "CASEKEY-x" for one key. Keys are printable ASCII of at most 64
        # characters, so each converts byte for byte, and keys distinct before stay distinct.
        # SQLite compares TEXT exactly already.
        {"mysql": "ALTER TABLE idempotency_keys MODIFY idem_key VARBINARY(64) NOT NULL"},
    ],
    [
        # every booking's sequence number, unique, from which its short booking number is made
        # (domain.booking.booking_number, e.g. T2612-4821-93). Existing bookings are numbered
        # in the order they were written. MySQL counts with AUTO_INCREMENT (which must be a key);
        # SQLite, whose AUTOINCREMENT belongs to an INTEGER PRIMARY KEY only, numbers a new row
        # in a trigger (SQLite's writes are serialized, so MAX + 1 is never taken twice).
        {"mysql": "ALTER TABLE bookings ADD COLUMN seq BIGINT NOT NULL AUTO_INCREMENT UNIQUE"},
        {"sqlite": "ALTER TABLE bookings ADD COLUMN seq INTEGER"},
        {"sqlite": "UPDATE bookings SET seq = rowid"},
        {"sqlite": "CREATE UNIQUE INDEX bookings_by_seq ON bookings (seq)"},
        {"sqlite": """CREATE TRIGGER bookings_numbered AFTER INSERT ON bookings WHEN NEW.seq IS NULL
            BEGIN
                UPDATE bookings SET seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM bookings) WHERE rowid = NEW.rowid;
            END"""},
    ],
]

DIALECTS = {
    "mysql": {
        "BIGINT_PK": "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
        "TABLE": " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "LONGTEXT": "LONGTEXT",
    },
    "sqlite": {
        "BIGINT_PK": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "TABLE": "",
        "LONGTEXT": "TEXT",
    },
}

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL)"


def render(dialect: str, statement: str | dict[str, str]) -> str | None:
    """The statement in ``dialect``; ``None`` if it has nothing to do there."""
    if isinstance(statement, dict):
        statement = statement.get(dialect)
        if statement is None:
            return None
    return statement.format(**DIALECTS[dialect])
