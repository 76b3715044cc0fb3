"""While the store does not answer, what waits for it in memory stays bounded, refusals come
at once and change nothing, and service comes back when the store does (issue 14, "Faults").

The seat block and queue actors run in this process (their plain classes, no Ray): on SQLite
with the store's writes behind a gate the test holds shut (a store that hangs), and on
MariaDB through a TCP proxy the test cuts (a store that went away, as the driver sees it: the
machine's MariaDB is shared, so it is never the one stopped).
"""

from __future__ import annotations

import asyncio
import time

import pytest

import actors.seat_block as seat_block_module
from actors.queue import QueueActor
from actors.seat_block import HoldRequest, SeatBlockActor
from domain.booking import Booking, new_booking_id
from domain.errors import StoreUnavailable
from domain.venue import Venue
from encore.settings import Settings
from persistence import migrate, open_store
from tests.integration.conftest import insert_members, payment_for, success
from tests.integration.test_block_race import stored_claims

BLOCK = Venue.grid(sections=1, rows=4, cols=10, block_rows=4).blocks()[0]
COMMIT_BACKLOG = 6


class Gate:
    """Wraps a store method: while shut, calls hang (or fail, with ``failing``) until opened."""

    def __init__(self, write):
        self._write = write
        self.open = asyncio.Event()
        self.open.set()
        self.failing = False
        self.waiting = 0

    def shut(self) -> None:
        self.open.clear()

    async def __call__(self, *args):
        self.waiting += 1
        try:
            await self.open.wait()
        finally:
            self.waiting -= 1
        if self.failing:
            raise StoreUnavailable("the store went away")
        return await self._write(*args)


async def members(db_url: str, count: int) -> list[int]:
    store = open_store(db_url)
    await store.migrate()
    made = [await store.create_member(f"m{n}", f"m{n}", "-", "user", 0.0) for n in range(count)]
    await store.close()
    return [member.id for member in made]


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/encore.db"


async def block_with_gate(db: str) -> tuple[SeatBlockActor, Gate]:
    actor = SeatBlockActor(BLOCK, 60, 4, db, commit_backlog_max=COMMIT_BACKLOG)
    await actor.stats()  # loaded from the store
    gate = Gate(actor._store.commit_block_changes)
    actor._store.commit_block_changes = gate
    return actor, gate


def one_seat_holds(member_ids: list[int], first_seat: int) -> list[HoldRequest]:
    return [HoldRequest(new_booking_id(), member, (BLOCK.first_seat_id + first_seat + n,)) for n, member in enumerate(member_ids)]


def seats_taken(actor: SeatBlockActor) -> int:
    return sum(1 for state in actor._block.status() if state != ord("A"))


async def test_a_block_keeps_its_bound_while_the_store_hangs_and_serves_again_after(db):
    people = await members(db, 20)
    actor, gate = await block_with_gate(db)
    gate.shut()
    waiting = asyncio.ensure_future(actor.hold_many(one_seat_holds(people[:COMMIT_BACKLOG], 0)))
    await asyncio.sleep(0.05)
    assert gate.waiting == 1 and actor._committer.backlog == COMMIT_BACKLOG

    started = time.monotonic()
    refused = await actor.hold_many(one_seat_holds(people[COMMIT_BACKLOG:COMMIT_BACKLOG + 4], COMMIT_BACKLOG))
    assert time.monotonic() - started < 0.5, "refused at once, not after the store's hang"
    assert all(isinstance(r, StoreUnavailable) and r.code == "store_unavailable" for r in refused)
    assert actor._committer.backlog == COMMIT_BACKLOG, "nothing more waits for the store"
    assert seats_taken(actor) == COMMIT_BACKLOG, "a refused hold holds nothing in memory"

    gate.open.set()
    assert all(isinstance(r, Booking) for r in await asyncio.wait_for(waiting, 5))
    [again] = await actor.hold_many(one_seat_holds(people[15:16], 15))
    assert isinstance(again, Booking), "served again once the store answers"
    assert len(await stored_claims(db)) == seats_taken(actor) == COMMIT_BACKLOG + 1, "memory equals the store"


async def test_a_hold_answered_late_and_then_refused_by_the_store_is_undone(db, monkeypatch):
    """The caller had its 503 at the timeout; the claim must not stay in memory when the
    commit later fails, or the block would show a seat held that the store never had."""
    monkeypatch.setattr(seat_block_module, "ACK_TIMEOUT_SECONDS", 0.2)
    people = await members(db, 2)
    actor, gate = await block_with_gate(db)
    gate.shut()
    [answer] = await actor.hold_many(one_seat_holds(people[:1], 0))
    assert isinstance(answer, StoreUnavailable)
    assert seats_taken(actor) == 1, "still waiting for its commit"
    gate.failing = True
    gate.open.set()
    for _ in range(50):
        if seats_taken(actor) == 0:
            break
        await asyncio.sleep(0.02)
    assert seats_taken(actor) == 0 and actor._committer.backlog == 0
    assert await stored_claims(db) == {}
    gate.failing = False
    [again] = await actor.hold_many(one_seat_holds(people[1:2], 0))
    assert isinstance(again, Booking), "the seat is free for the next person"


async def test_the_queue_stands_still_at_its_log_bound_and_moves_again_after(db):
    people = await members(db, 12)
    actor = QueueActor(Settings(db_url=db, queue_events_max=5, queue_admit_per_second=1000, queue_max_active=2))
    await actor.summary()
    gate = Gate(actor._store.append_log)
    gate.failing = True
    actor._store.append_log = gate

    joined = await actor.join_many(people[:5])
    assert not any(isinstance(j, StoreUnavailable) for j in joined)
    await asyncio.sleep(0.3)  # ticks: admissions would add events; the bound stops the room
    events = len(actor._events)
    assert 5 <= events <= 5 + 2, events
    refused = await actor.join_many(people[5:8])
    assert all(isinstance(r, StoreUnavailable) for r in refused), refused
    assert (await actor.summary())["waiting"] + (await actor.summary())["active"] == 5, "nobody joined"
    await asyncio.sleep(0.3)
    assert len(actor._events) == events, "the room stood still"

    gate.failing = False
    for _ in range(50):
        if not actor._events:
            break
        await asyncio.sleep(0.05)
    assert actor._events == []
    assert not any(isinstance(j, StoreUnavailable) for j in await actor.join_many(people[5:8])), "joins again"
    actor._loop.cancel()


class CuttableProxy:
    """127.0.0.1:<port> → the MariaDB server; ``cut()`` drops every connection and refuses new
    ones until ``restore()``, as a killed server looks to its clients."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.up = True
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader, writer) -> None:
        if not self.up:
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers |= {writer, upstream_writer}
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    async def _pipe(self, reader, writer) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)

    def cut(self) -> None:
        self.up = False
        for writer in list(self._writers):
            writer.transport.abort()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self._server.close()


@pytest.mark.mysql
async def test_on_mariadb_a_store_gone_refuses_holds_fast_keeps_confirmations_and_comes_back(make_mysql_database):
    from urllib.parse import urlparse

    url = make_mysql_database()
    await migrate(url)
    people = await asyncio.to_thread(insert_members, url, 3)
    server = urlparse(url)
    proxy = CuttableProxy(server.port or 3306)
    through_proxy = url.replace(f"{server.hostname}:{server.port or 3306}", f"127.0.0.1:{await proxy.start()}")
    actor = SeatBlockActor(BLOCK, 60, 4, through_proxy, commit_backlog_max=COMMIT_BACKLOG)
    try:
        [paid] = await actor.hold_many(one_seat_holds(people[:1], 0))
        assert isinstance(paid, Booking)
        payment = await actor.start_payment(payment_for(paid))

        proxy.cut()
        started = time.monotonic()
        [refused] = await actor.hold_many(one_seat_holds(people[1:2], 1))
        assert isinstance(refused, StoreUnavailable) and time.monotonic() - started < 5, refused
        assert seats_taken(actor) == 1, "the refused hold holds nothing"
        confirming = asyncio.ensure_future(actor.settle_payment(success(payment)))
        await asyncio.sleep(1.0)
        assert not confirming.done(), "a payment that succeeded waits for the store, kept in memory"
        [while_retrying] = await asyncio.wait_for(actor.hold_many(one_seat_holds(people[2:3], 2)), 3.0)
        assert isinstance(while_retrying, StoreUnavailable) and seats_taken(actor) == 1

        proxy.restore()
        confirmed = await asyncio.wait_for(confirming, 10)
        assert (confirmed.booking.status.value, confirmed.payment.status.value) == ("confirmed", "succeeded")
        [again] = await asyncio.wait_for(actor.hold_many(one_seat_holds(people[1:2], 1)), 10)
        assert isinstance(again, Booking), "served again once the store is back"
        claims = await stored_claims(url)
        assert claims == {BLOCK.first_seat_id: paid.booking_id, BLOCK.first_seat_id + 1: again.booking_id}
    finally:
        actor._expiry.cancel()
        await actor._store.close()
        proxy.close()
