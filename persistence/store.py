"""The store: every query Encore makes, written once in portable SQL.

``SqlStore`` holds the queries; the MySQL (aiomysql) and SQLite adapters only supply a
transaction, the placeholder style and the upsert clause. Each public method is one
transaction, so a caller never sees half of a change.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import AsyncContextManager, Iterable, Sequence

from domain.booking import Booking, BookingChange, BookingStatus, EventType
from domain.payment import Payment, PaymentStatus
from domain.seat_block import within_cap
from persistence.records import LOG_PAGE_MAX, IdempotencyClaim, IdempotencyRecord, LogEvent, LogQuery, Member
from persistence.schema import MIGRATIONS, VERSION_TABLE, render

UNAVAILABLE = "the booking store cannot be reached; try again in a moment"
IDEMPOTENCY_SECONDS = 24 * 3600


class Conflict(Exception):
    """A uniqueness constraint refused a write (a taken username, a claimed seat, a seen event).

    A store that cannot be reached raises ``domain.errors.StoreUnavailable`` instead of its
    driver's error, so every caller can tell "try again shortly" from a fault of its own.
    """


class Transaction(ABC):
    """One open transaction: statements use ``?`` placeholders in every dialect."""

    @abstractmethod
    async def execute(self, sql: str, params: Sequence = ()) -> int: ...

    @abstractmethod
    async def executemany(self, sql: str, rows: Sequence[Sequence]) -> int:
        """Returns the number of rows changed (an ignored duplicate changes none)."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Sequence = ()) -> list[tuple]: ...

    @abstractmethod
    async def insert_id(self, sql: str, params: Sequence = ()) -> int: ...

    async def fetchone(self, sql: str, params: Sequence = ()) -> tuple | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None


def _marks(count: int) -> str:
    return ",".join("?" * count)


class SqlStore(ABC):
    dialect: str
    lock_suffix: str = ""
    insert_ignore: str = "INSERT IGNORE"

    @abstractmethod
    def transaction(self) -> AsyncContextManager[Transaction]: ...

    @abstractmethod
    def upsert(self, key: str, columns: Iterable[str]) -> str:
        """The clause that turns an INSERT into an update of ``columns`` when ``key`` exists."""

    @abstractmethod
    async def close(self) -> None: ...

    async def migrate(self) -> int:
        """Bring the schema to the newest version; returns that version.

        Under the store's migration lock, so two processes starting at once migrate once;
        every statement is re-runnable (``apply``), so a run that stopped halfway is finished
        by the next one.
        """
        async with self.migration_lock(), self.transaction() as tx:
            await tx.execute(VERSION_TABLE)
            row = await tx.fetchone("SELECT MAX(version) FROM schema_version")
            current = (row[0] or 0) if row else 0
            for version, statements in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in statements:
                    await self.apply(tx, statement)
                await tx.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        return len(MIGRATIONS)

    async def apply(self, tx: Transaction, statement: str | dict[str, str]) -> None:
        """Run one migration statement; one whose table, column, index or trigger is already
        there (left by a run that stopped between two statements) has nothing left to do."""
        rendered = render(self.dialect, statement)
        if rendered is None:
            return
        try:
            await tx.execute(rendered)
        except Exception as error:
            if not self.already_applied(error):
                raise

    @abstractmethod
    def migration_lock(self) -> AsyncContextManager[None]:
        """Held from before the schema version is read until the migration has committed, so
        one process migrates and the others then find it done."""

    @abstractmethod
    def already_applied(self, error: Exception) -> bool:
        """Whether ``error`` says a migration statement's work exists already."""

    # ---- members

    async def create_member(self, username: str, nickname: str, password_hash: str, role: str, now: float) -> Member:
        async with self.transaction() as tx:
            member_id = await tx.insert_id(
                "INSERT INTO members (username, nickname, password_hash, role, created_at) VALUES (?,?,?,?,?)",
                (username, nickname, password_hash, role, now),
            )
        return Member(member_id, username, nickname, role, password_hash)

    async def member_by_username(self, username: str) -> Member | None:
        return await self._member("username = ?", username)

    async def member_by_id(self, member_id: int) -> Member | None:
        return await self._member("id = ?", member_id)

    async def usernames(self, member_ids: Iterable[int]) -> dict[int, str]:
        """Member id → username, for the ids that exist (the log shows people by name)."""
        ids = sorted({i for i in member_ids if i is not None})
        if not ids:
            return {}
        async with self.transaction() as tx:
            rows = await tx.fetchall(f"SELECT id, username FROM members WHERE id IN ({_marks(len(ids))})", ids)
        return dict(rows)

    async def _member(self, where: str, value) -> Member | None:
        async with self.transaction() as tx:
            row = await tx.fetchone(f"SELECT id, username, nickname, role, password_hash FROM members WHERE {where}", (value,))
        return Member(*row) if row else None

    # ---- seat blocks

    async def load_block(self, block_index: int) -> tuple[list[Booking], list[Payment]]:
        """Live (held or confirmed) bookings of a block, with their original deadlines, and their payments."""
        live = "b.block_index = ? AND b.status IN ('held', 'confirmed')"
        async with self.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT b.booking_id, b.member_id, b.status, b.created_at, b.expires_at, s.seat_id "
                f"FROM bookings b JOIN booking_seats s ON s.booking_id = b.booking_id WHERE {live} "
                "ORDER BY b.booking_id, s.seat_id",
                (block_index,),
            )
            payments = await tx.fetchall(
                f"SELECT {', '.join('p.' + c for c in PAYMENT_COLUMNS.split(', '))} "
                f"FROM payments p JOIN bookings b ON b.booking_id = p.booking_id WHERE {live}",
                (block_index,),
            )
        return _bookings_from_rows(rows), [_payment(row) for row in payments]

    async def commit_block_changes(
        self, block_index: int, changes: Sequence[BookingChange], seats_per_member_max: int
    ) -> set[str]:
        """Write one batch of a block's decisions in one transaction (group commit): bookings,
        seat claims, payments and one log event per change.

        New claims are re-checked against the member's seats in *every* block, under a lock
        on the member rows taken in id order (so two blocks never deadlock); the ids of
        bookings refused by that cap are returned and nothing of them is written.
        Raises ``Conflict`` if a seat is already claimed (the database refuses a double sale),
        if a booking would be paid twice, or if a provider's event were applied twice.
        """
        if not changes:
            return set()
        by_booking: dict[str, list[BookingChange]] = {}
        for change in changes:
            by_booking.setdefault(change.booking.booking_id, []).append(change)
        async with self.transaction() as tx:
            releasing = [c[0].booking for c in by_booking.values() if _held_before(c) and not _holds_after(c)]
            if releasing:
                # by primary key: a scan for the booking ids would lock every claim row it passes,
                # and releases in two blocks then deadlock with each other's claims (bench_store)
                ids = [b.booking_id for b in releasing]
                seats = [s for b in releasing for s in b.seat_ids]
                await tx.execute(
                    f"DELETE FROM seat_claims WHERE seat_id IN ({_marks(len(seats))}) AND booking_id IN ({_marks(len(ids))})",
                    [*seats, *ids],
                )
            claiming = [c[-1].booking for c in by_booking.values() if _holds_after(c) and not _held_before(c)]
            refused = await self._refused_by_cap(tx, claiming, seats_per_member_max)
            claiming = [b for b in claiming if b.booking_id not in refused]
            if claiming:
                await tx.executemany(
                    "INSERT INTO seat_claims (seat_id, booking_id, member_id) VALUES (?,?,?)",
                    [(s, b.booking_id, b.member_id) for b in claiming for s in b.seat_ids],
                )
            kept = {k: v for k, v in by_booking.items() if k not in refused}
            new = [c[0].booking for c in kept.values() if c[0].previous is None]
            if new:
                await tx.executemany(
                    "INSERT INTO booking_seats (booking_id, seat_id) VALUES (?,?)",
                    [(b.booking_id, s) for b in new for s in b.seat_ids],
                )
            changed = [c for c in kept.values() if c[0].previous is not c[-1].booking.status]
            if changed:
                await tx.executemany(
                    "INSERT INTO bookings (booking_id, member_id, block_index, status, created_at, expires_at, updated_at) "
                    "VALUES (?,?,?,?,?,?,?) " + self.upsert("booking_id", ["status", "updated_at"]),
                    [
                        (b.booking_id, b.member_id, block_index, b.status.value, b.created_at, b.expires_at, c[-1].at)
                        for c in changed
                        for b in [c[-1].booking]
                    ],
                )
            await self._write_payments(tx, [c for cs in kept.values() for c in cs if c.payment is not None])
            await self._append_log(tx, [_log_event(c) for cs in kept.values() for c in cs])
        return refused

    async def _write_payments(self, tx: Transaction, changes: list[BookingChange]) -> None:
        """Each payment as the batch's last change of it leaves it, and the provider events that
        settled them: ``payment_events`` and ``settles_booking`` are unique, last-line guards
        against applying an event twice or paying for a booking twice."""
        latest = {c.payment.payment_id: c.payment for c in changes}
        started = {c.payment.payment_id for c in changes if c.type is EventType.PAYMENT_STARTED}
        new = [p for p in latest.values() if p.payment_id in started]
        if new:
            await tx.executemany(
                f"INSERT INTO payments ({PAYMENT_COLUMNS}, settles_booking) VALUES (?,?,?,?,?,?,?,?,?)",
                [(*_payment_row(p), _settles(p)) for p in new],
            )
        settled = [p for p in latest.values() if p.payment_id not in started]
        if settled:
            await tx.executemany(  # not an upsert: MySQL's would update the other row of a unique clash
                "UPDATE payments SET status = ?, updated_at = ?, settles_booking = ? WHERE payment_id = ?",
                [(p.status.value, p.updated_at, _settles(p), p.payment_id) for p in settled],
            )
        verdicts = [c.payment for c in changes if c.type in (EventType.PAYMENT_SUCCEEDED, EventType.PAYMENT_FAILED)]
        if verdicts:
            await tx.executemany(
                "INSERT INTO payment_events (event_id, payment_id, received_at) VALUES (?,?,?)",
                [(p.event_id, p.payment_id, p.updated_at) for p in verdicts],
            )

    async def _refused_by_cap(self, tx: Transaction, claiming: list[Booking], cap: int) -> set[str]:
        if not claiming:
            return set()
        members = sorted({b.member_id for b in claiming})
        await tx.fetchall(f"SELECT id FROM members WHERE id IN ({_marks(len(members))}) ORDER BY id{self.lock_suffix}", members)
        owned = dict(
            await tx.fetchall(
                f"SELECT member_id, COUNT(*) FROM seat_claims WHERE member_id IN ({_marks(len(members))}) GROUP BY member_id",
                members,
            )
        )
        refused: set[str] = set()
        for booking in claiming:
            seats = owned.get(booking.member_id, 0)
            if within_cap(seats, len(booking.seat_ids), cap):
                owned[booking.member_id] = seats + len(booking.seat_ids)
            else:
                refused.add(booking.booking_id)
        return refused

    async def claims(self) -> dict[int, str]:
        """Every claimed seat and the booking that holds or bought it (for audits and tests)."""
        async with self.transaction() as tx:
            return dict(await tx.fetchall("SELECT seat_id, booking_id FROM seat_claims"))

    async def payment_counts(self) -> dict[str, tuple[int, int]]:
        """Payment status → (how many, their amounts added up in KRW)."""
        async with self.transaction() as tx:
            rows = await tx.fetchall("SELECT status, COUNT(*), COALESCE(SUM(amount), 0) FROM payments GROUP BY status")
        return {status: (int(count), int(total)) for status, count, total in rows}

    async def booking_counts(self) -> dict[str, int]:
        async with self.transaction() as tx:
            return dict(await tx.fetchall("SELECT status, COUNT(*) FROM bookings GROUP BY status"))

    # ---- reading bookings

    async def booking(self, booking_id: str) -> tuple[Booking, int] | None:
        """A booking and the block that owns it."""
        async with self.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT b.booking_id, b.member_id, b.status, b.created_at, b.expires_at, s.seat_id, b.block_index "
                "FROM bookings b JOIN booking_seats s ON s.booking_id = b.booking_id WHERE b.booking_id = ? ORDER BY s.seat_id",
                (booking_id,),
            )
        if not rows:
            return None
        return _bookings_from_rows([r[:6] for r in rows])[0], rows[0][6]

    async def member_bookings(self, member_id: int, limit: int = 100) -> list[Booking]:
        """A member's bookings, newest first."""
        async with self.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT b.booking_id, b.member_id, b.status, b.created_at, b.expires_at, s.seat_id "
                "FROM (SELECT * FROM bookings WHERE member_id = ? ORDER BY created_at DESC LIMIT ?) b "
                "JOIN booking_seats s ON s.booking_id = b.booking_id ORDER BY b.created_at DESC, b.booking_id, s.seat_id",
                (member_id, limit),
            )
        return _bookings_from_rows(rows)

    async def booking_seqs(self, booking_ids: Sequence[str]) -> dict[str, int]:
        """Each booking's sequence number (migration 4), from which its booking number is made."""
        if not booking_ids:
            return {}
        async with self.transaction() as tx:
            rows = await tx.fetchall(
                f"SELECT booking_id, seq FROM bookings WHERE booking_id IN ({_marks(len(booking_ids))})", list(booking_ids)
            )
        return {booking_id: seq for booking_id, seq in rows if seq is not None}

    # ---- payments (written by their booking's seat block, in ``commit_block_changes``)

    async def payment(self, payment_id: str) -> Payment | None:
        async with self.transaction() as tx:
            row = await tx.fetchone(f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE payment_id = ?", (payment_id,))
        return _payment(row) if row else None

    async def payments_of(self, booking_id: str) -> list[Payment]:
        async with self.transaction() as tx:
            rows = await tx.fetchall(f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE booking_id = ?", (booking_id,))
        return [_payment(row) for row in rows]

    async def latest_payment(self, booking_id: str) -> Payment | None:
        """The payment that paid for the booking, or else the newest one started for it."""
        return (await self.latest_payments([booking_id])).get(booking_id)

    async def latest_payments(self, booking_ids: Sequence[str]) -> dict[str, Payment]:
        """``latest_payment`` for many bookings in one query."""
        if not booking_ids:
            return {}
        async with self.transaction() as tx:
            rows = await tx.fetchall(
                f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE booking_id IN ({_marks(len(booking_ids))}) "
                "ORDER BY settles_booking IS NULL DESC, created_at",
                list(booking_ids),
            )
        latest: dict[str, Payment] = {}
        for row in rows:  # the last row of each booking wins: its settling payment, else its newest
            latest[row[1]] = _payment(row)
        return latest

    # ---- the booking log

    async def append_log(self, events: Sequence[LogEvent]) -> None:
        async with self.transaction() as tx:
            await self._append_log(tx, events)

    async def _append_log(self, tx: Transaction, events: Sequence[LogEvent]) -> None:
        if events:
            await tx.executemany(
                "INSERT INTO booking_log (at, type, booking_id, member_id, seat_ids, detail) VALUES (?,?,?,?,?,?)",
                [(e.at, e.type, e.booking_id, e.member_id, ",".join(map(str, e.seat_ids)),
                  json.dumps(e.detail, separators=(",", ":"))) for e in events],
            )

    async def query_log(self, query: LogQuery) -> list[LogEvent]:
        """Events matching every given filter, newest first, at most ``query.limit``."""
        where, params = ["1 = 1"], []
        for column, value in (("booking_id", query.booking_id), ("member_id", query.member_id), ("type", query.type)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.seat_id is not None:
            where.append("booking_id IN (SELECT booking_id FROM booking_seats WHERE seat_id = ?)")
            params.append(query.seat_id)
        for clause, value in (("at >= ?", query.since), ("at < ?", query.until), ("id < ?", query.before_id)):
            if value is not None:
                where.append(clause)
                params.append(value)
        limit = max(1, min(query.limit, LOG_PAGE_MAX))
        async with self.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT id, at, type, booking_id, member_id, seat_ids, detail FROM booking_log "
                f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT {limit}",
                params,
            )
        return [
            LogEvent(at, type_, booking_id, member_id, tuple(int(s) for s in seats.split(",") if s), json.loads(detail), id_)
            for id_, at, type_, booking_id, member_id, seats, detail in rows
        ]

    # ---- idempotency keys

    async def claim_idempotency_keys(self, requests: Sequence[IdempotencyClaim], now: float) -> list[IdempotencyRecord | None]:
        """Claim many keys in one transaction; ``None`` where the key is now the caller's to run.

        Each request carries a unique ``claim`` token: after ``INSERT IGNORE`` the stored row
        names the request that got there first, so two requests with one key (a double click
        in the same batch, or on two replicas) never both run. A key older than
        ``IDEMPOTENCY_SECONDS`` is forgotten and claimed afresh.
        """
        if not requests:
            return []
        pairs = [(r.member_id, r.key) for r in requests]
        async with self.transaction() as tx:
            inserted = await tx.executemany(
                f"{self.insert_ignore} INTO idempotency_keys (member_id, idem_key, request_hash, claim, state, "
                "response_status, response_body, created_at) "
                "VALUES (?,?,?,?,?,?,?,?)",  # placeholders only: the driver then sends one multi-row INSERT
                [(r.member_id, r.key, r.request_hash, r.claim, *_claimed_state(r), now) for r in requests],
            )
            if inserted == len(requests):
                return [None] * len(requests)  # every key was new: nothing to read back
            rows = await tx.fetchall(
                "SELECT member_id, idem_key, request_hash, claim, state, response_status, response_body, created_at "
                f"FROM idempotency_keys WHERE {' OR '.join(['(member_id = ? AND idem_key = ?)'] * len(pairs))}",
                [value for pair in pairs for value in pair],
            )
            stored = {(row[0], _key_text(row[1])): row for row in rows}
            stale = [r for r in requests if stored[(r.member_id, r.key)][7] < now - IDEMPOTENCY_SECONDS]
            for request in stale:
                await tx.execute(
                    "UPDATE idempotency_keys SET request_hash = ?, claim = ?, state = ?, response_status = ?, "
                    "response_body = ?, created_at = ? WHERE member_id = ? AND idem_key = ?",
                    (request.request_hash, request.claim, *_claimed_state(request), now, request.member_id, request.key),
                )
                stored[(request.member_id, request.key)] = (request.member_id, request.key, request.request_hash, request.claim)
        answers: list[IdempotencyRecord | None] = []
        for request in requests:
            row = stored[(request.member_id, request.key)]
            answers.append(None if row[3] == request.claim else IdempotencyRecord(row[2], row[4], row[5], row[6], row[7]))
        return answers

    async def finish_idempotency_keys(self, answers: Sequence[tuple[IdempotencyClaim, int, str]], now: float) -> None:
        """Store the first answer of many claimed keys, in one statement of one transaction."""
        async with self.transaction() as tx:
            await tx.executemany(
                "INSERT INTO idempotency_keys (member_id, idem_key, request_hash, claim, state, response_status, "
                "response_body, created_at) VALUES (?,?,?,?,?,?,?,?) "
                + self.upsert("member_id, idem_key", ["state", "response_status", "response_body"]),
                [(c.member_id, c.key, c.request_hash, c.claim, "done", status, body, now) for c, status, body in answers],
            )

    async def abandon_idempotency_key(self, claim: IdempotencyClaim) -> None:
        """Forget a key whose request failed without an answer worth replaying, so a retry can run."""
        async with self.transaction() as tx:
            await tx.execute(
                "DELETE FROM idempotency_keys WHERE member_id = ? AND idem_key = ? AND claim = ?",
                (claim.member_id, claim.key, claim.claim),
            )

    async def purge_idempotency(self, now: float) -> int:
        async with self.transaction() as tx:
            return await tx.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (now - IDEMPOTENCY_SECONDS,))

    # ---- the waiting room

    async def save_queue(self, snapshot: dict, now: float) -> None:
        async with self.transaction() as tx:
            await tx.execute(
                "INSERT INTO queue_state (id, snapshot, updated_at) VALUES (1, ?, ?) "
                + self.upsert("id", ["snapshot", "updated_at"]),
                (json.dumps(snapshot, separators=(",", ":")), now),
            )

    async def load_queue(self) -> dict | None:
        async with self.transaction() as tx:
            row = await tx.fetchone("SELECT snapshot FROM queue_state WHERE id = 1")
        return json.loads(row[0]) if row else None


PAYMENT_COLUMNS = "payment_id, booking_id, member_id, provider, amount, status, created_at, updated_at"


def _payment(row: tuple) -> Payment:
    payment_id, booking_id, member_id, provider, amount, status, created_at, updated_at = row
    return Payment(payment_id, booking_id, member_id, provider, amount, PaymentStatus(status), created_at, updated_at)


def _settles(payment: Payment) -> str | None:
    return payment.booking_id if payment.settles_booking else None


def _payment_row(payment: Payment) -> tuple:
    return (payment.payment_id, payment.booking_id, payment.member_id, payment.provider, payment.amount,
            payment.status.value, payment.created_at, payment.updated_at)


def _held_before(changes: list[BookingChange]) -> bool:
    previous = changes[0].previous
    return bool(previous and previous.claims_seats)


def _holds_after(changes: list[BookingChange]) -> bool:
    return changes[-1].booking.status.claims_seats


def _log_event(change: BookingChange) -> LogEvent:
    booking = change.booking
    detail = dict(change.detail)
    if change.type is EventType.HOLD_CREATED:
        detail["expires_at"] = booking.expires_at
    return LogEvent(change.at, change.type.value, booking.booking_id, booking.member_id, booking.seat_ids, detail)


def _bookings_from_rows(rows: Iterable[tuple]) -> list[Booking]:
    """Fold (booking columns…, seat_id) rows, grouped by booking, into bookings in row order."""
    grouped: dict[str, list] = {}
    for booking_id, member_id, status, created_at, expires_at, seat_id in rows:
        entry = grouped.setdefault(booking_id, [member_id, status, created_at, expires_at, []])
        entry[4].append(seat_id)
    return [
        Booking(booking_id, member_id, tuple(seats), BookingStatus(status), created_at, expires_at)
        for booking_id, (member_id, status, created_at, expires_at, seats) in grouped.items()
    ]


def _key_text(stored_key: str | bytes) -> str:
    """An idempotency key as it was sent: MySQL keeps it as bytes, so that it compares exactly."""
    return stored_key.decode() if isinstance(stored_key, bytes) else stored_key


def _claimed_state(claim: IdempotencyClaim) -> tuple[str, int | None, str | None]:
    """A claim whose answer is known is stored done with it; any other is running."""
    return ("done", *claim.answer) if claim.answer else ("running", None, None)
