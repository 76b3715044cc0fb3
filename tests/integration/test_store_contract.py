"""One contract, two stores: every test here runs against SQLite and against MariaDB."""

from __future__ import annotations

import socket
from dataclasses import replace
import time
from unittest.mock import ANY

import pytest

from domain.booking import Booking, BookingChange, BookingStatus, EventType
from domain.seat_block import SeatBlock
from domain.venue import Venue
from domain.errors import StoreUnavailable
from persistence import Conflict, open_store
from domain.payment import Payment, PaymentStatus
from persistence.records import IdempotencyClaim, LogEvent, LogQuery

VENUE = Venue.grid(2, 4, 10, 2)
BLOCKS = VENUE.blocks()


async def members(store, count: int) -> list[int]:
    return [(await store.create_member(f"user{i}", f"nick{i}", "hash", "user", 1.0)).id for i in range(count)]


def block(index: int = 0, cap: int = 4) -> SeatBlock:
    return SeatBlock(BLOCKS[index], hold_seconds=60, seats_per_member_max=cap)


async def test_migrate_is_repeatable(store):
    assert await store.migrate() == await store.migrate()


async def test_members_have_unique_usernames(store):
    member = await store.create_member("alice", "Alice", "h", "user", 1.0)
    assert await store.member_by_username("alice") == member
    assert await store.member_by_id(member.id) == member
    assert await store.member_by_username("bob") is None
    with pytest.raises(Conflict):
        await store.create_member("alice", "Other", "h", "user", 2.0)


async def test_a_hold_is_stored_and_reloaded_with_its_deadline(store):
    [alice] = await members(store, 1)
    seats = block()
    change = seats.hold("b1", alice, [1, 2], now=100.0)
    assert await store.commit_block_changes(0, [change], 4) == set()
    assert await store.claims() == {1: "b1", 2: "b1"}
    [reloaded], payments = await store.load_block(0)
    assert reloaded == change.booking and payments == []
    assert reloaded.expires_at == 160.0
    assert await store.load_block(1) == ([], [])


async def test_confirm_release_and_expiry_update_claims_and_log(store):
    alice, bob = await members(store, 2)
    seats = block()
    changes = [seats.hold("b1", alice, [1], 100.0), seats.hold("b2", bob, [2], 100.0), seats.hold("b3", bob, [3], 100.0)]
    await store.commit_block_changes(0, changes, 4)
    later = [seats.confirm("b1", 110.0), seats.cancel("b2", 111.0, bob)] + seats.expire_due(170.0)
    await store.commit_block_changes(0, later, 4)
    assert await store.claims() == {1: "b1"}
    assert [b.booking_id for b in (await store.load_block(0))[0]] == ["b1"]
    assert (await store.booking("b3"))[0].status is BookingStatus.EXPIRED
    types = [e.type for e in await store.query_log(LogQuery(limit=100))]
    assert types == ["hold_expired", "hold_cancelled", "booking_confirmed", "hold_created", "hold_created", "hold_created"]


async def test_the_database_refuses_a_double_claim(store):
    alice, bob = await members(store, 2)
    first, second = block(), block()
    await store.commit_block_changes(0, [first.hold("b1", alice, [5], 100.0)], 4)
    with pytest.raises(Conflict):
        await store.commit_block_changes(0, [second.hold("b2", bob, [5, 6], 100.0)], 4)
    assert await store.claims() == {5: "b1"}
    assert await store.booking("b2") is None
    assert len(await store.query_log(LogQuery())) == 1


async def test_the_member_cap_holds_across_blocks(store):
    [alice] = await members(store, 1)
    one, two = block(0), block(1)
    assert await store.commit_block_changes(0, [one.hold("b1", alice, [1, 2, 3], 100.0)], 4) == set()
    refused = await store.commit_block_changes(1, [two.hold("b2", alice, [20, 21], 100.0)], 4)
    assert refused == {"b2"}
    assert await store.booking("b2") is None
    assert sorted(await store.claims()) == [1, 2, 3]


async def test_a_seat_released_and_retaken_in_one_batch(store):
    alice, bob = await members(store, 2)
    seats = block()
    await store.commit_block_changes(0, [seats.hold("b1", alice, [7], 100.0)], 4)
    batch = [seats.cancel("b1", 101.0, alice), seats.hold("b2", bob, [7], 101.0)]
    assert await store.commit_block_changes(0, batch, 4) == set()
    assert await store.claims() == {7: "b2"}


async def test_late_success_regrant_is_stored(store):
    [alice] = await members(store, 1)
    seats = block()
    await store.commit_block_changes(0, [seats.hold("b1", alice, [4], 100.0)], 4)
    expired = seats.expire_due(200.0)
    regrant = seats.confirm("b1", 201.0)
    await store.commit_block_changes(0, expired + [regrant], 4)
    assert await store.claims() == {4: "b1"}
    assert (await store.booking("b1"))[0].status is BookingStatus.CONFIRMED
    [event] = await store.query_log(LogQuery(type="booking_confirmed"))
    assert event.detail["regranted_from"] == "expired"


async def test_member_bookings_newest_first(store):
    [alice] = await members(store, 1)
    seats = block()
    await store.commit_block_changes(0, [seats.hold("b1", alice, [1], 100.0)], 4)
    await store.commit_block_changes(0, [seats.hold("b2", alice, [2, 3], 200.0)], 4)
    assert [(b.booking_id, b.seat_ids) for b in await store.member_bookings(alice)] == [("b2", (2, 3)), ("b1", (1,))]
    assert (await store.booking("b2"))[1] == 0


async def test_every_booking_gets_its_own_sequence_number_for_its_booking_number(store):
    """Migration 4: bookings are numbered as they are written (upserts keep the number), so
    their short booking numbers (domain.booking.booking_number) never repeat."""
    alice, bob = await members(store, 2)
    seats = block()
    await store.commit_block_changes(0, [seats.hold("b1", alice, [1], 100.0), seats.hold("b2", bob, [2], 100.0)], 4)
    await store.commit_block_changes(0, [seats.hold("b3", alice, [3], 101.0), seats.confirm("b1", 101.0)], 4)
    seqs = await store.booking_seqs(["b1", "b2", "b3", "nope"])
    assert set(seqs) == {"b1", "b2", "b3"} and len(set(seqs.values())) == 3
    assert seqs["b3"] > max(seqs["b1"], seqs["b2"]), "numbered in the order written"
    assert (await store.booking_seqs(["b1"]))["b1"] == seqs["b1"], "a later change of the booking keeps its number"
    assert await store.booking_seqs([]) == {}


async def test_log_filters_and_cursor(store):
    alice, bob = await members(store, 2)
    seats = block()
    await store.commit_block_changes(0, [seats.hold("b1", alice, [1, 2], 100.0), seats.hold("b2", bob, [3], 101.0)], 4)
    await store.append_log([LogEvent(102.0, "queue_joined", None, alice, (), {"ticket": 1})])
    assert [e.booking_id for e in await store.query_log(LogQuery(member_id=alice))] == [None, "b1"]
    assert [e.booking_id for e in await store.query_log(LogQuery(seat_id=3))] == ["b2"]
    assert [e.type for e in await store.query_log(LogQuery(since=100.5, until=101.5))] == ["hold_created"]
    first_page = await store.query_log(LogQuery(limit=2))
    second_page = await store.query_log(LogQuery(limit=2, before_id=first_page[-1].id))
    assert [e.id for e in first_page + second_page] == sorted({e.id for e in first_page + second_page}, reverse=True)
    assert len(first_page + second_page) == 3
    assert first_page[0].detail == {"ticket": 1}
    assert (await store.query_log(LogQuery(booking_id="b1")))[0].seat_ids == (1, 2)


def payment(payment_id: str, booking_id: str, member_id: int, provider: str = "mockpay") -> Payment:
    return Payment(payment_id, booking_id, member_id, provider, 110000, PaymentStatus.PENDING, 0.0, 0.0)


async def test_payments_are_written_with_their_blocks_changes_once(store):
    [alice] = await members(store, 1)
    seats = block()
    await store.commit_block_changes(0, [seats.hold("b1", alice, [1], 100.0)], 4)
    started = seats.start_payment(payment("p1", "b1", alice), 100.5)
    await store.commit_block_changes(0, [started], 4)
    assert await store.payment("p1") == started.payment == replace(payment("p1", "b1", alice), created_at=100.5, updated_at=100.5)
    assert await store.latest_payment("b1") == started.payment
    assert (await store.load_block(0))[1] == [started.payment], "a live booking's payments come back with it"

    settled = seats.settle_payment("p1", PaymentStatus.SUCCEEDED, "evt-1", 101.0)
    await store.commit_block_changes(0, settled, 4)
    assert (await store.payment("p1")).status is PaymentStatus.SUCCEEDED
    assert (await store.booking("b1"))[0].status is BookingStatus.CONFIRMED
    assert [e.type for e in await store.query_log(LogQuery())] == [
        "booking_confirmed", "payment_succeeded", "payment_started", "hold_created"]
    assert seats.settle_payment("p1", PaymentStatus.FAILED, "evt-2", 102.0) == [], "the first verdict wins"
    with pytest.raises(Conflict):  # the last-line guard: an event applied twice
        await store.commit_block_changes(0, settled[:1], 4)
    assert await store.payments_of("b1") == [await store.payment("p1")]


async def test_a_booking_is_paid_at_most_once(store):
    [alice] = await members(store, 1)
    seats = block()
    await store.commit_block_changes(0, [seats.hold("b2", alice, [2], 100.0)], 4)
    await store.commit_block_changes(0, [seats.start_payment(payment("p2", "b2", alice), 100.2),
                                         seats.start_payment(payment("p3", "b2", alice, "fakecard"), 100.5)], 4)
    await store.commit_block_changes(0, seats.settle_payment("p2", PaymentStatus.SUCCEEDED, "evt-2", 101.0), 4)
    second = seats.settle_payment("p3", PaymentStatus.SUCCEEDED, "evt-3", 102.0)
    await store.commit_block_changes(0, second, 4)
    assert [(await store.payment(p)).status for p in ("p2", "p3")] == [PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED]
    assert (await store.latest_payment("b2")).payment_id == "p2", "the booking shows the payment that paid for it"
    assert {b: p.payment_id for b, p in (await store.latest_payments(["b2", "none"])).items()} == {"b2": "p2"}
    [refund] = await store.query_log(LogQuery(type="payment_refunded"))
    assert refund.detail == {"payment_id": "p3", "provider": "fakecard", "refunded_from": "already_paid", "paid_by": "p2"}
    forged = replace(second[0], payment=replace(second[0].payment, event_id="evt-4"))
    with pytest.raises(Conflict):  # the last-line guard: a second payment settling the booking
        await store.commit_block_changes(0, [forged], 4)
    assert (await store.payment("p3")).status is PaymentStatus.REFUNDED


async def test_idempotency_keys(store):
    [alice] = await members(store, 1)
    first, twin = IdempotencyClaim(alice, "k1", "hash-a", "c1"), IdempotencyClaim(alice, "k1", "hash-a", "c2")
    other_member = IdempotencyClaim(alice + 1, "k1", "hash-a", "c3")
    assert await store.claim_idempotency_keys([first, twin, other_member], 100.0) == [None, ANY, None]
    running = (await store.claim_idempotency_keys([IdempotencyClaim(alice, "k1", "hash-a", "c4")], 101.0))[0]
    assert (running.state, running.request_hash) == ("running", "hash-a")
    await store.finish_idempotency_keys([(first, 201, '{"ok":true}')], 102.0)
    done = (await store.claim_idempotency_keys([IdempotencyClaim(alice, "k1", "hash-b", "c5")], 103.0))[0]
    assert (done.state, done.response_status, done.response_body, done.request_hash) == ("done", 201, '{"ok":true}', "hash-a")
    await store.abandon_idempotency_key(other_member)
    assert await store.claim_idempotency_keys([IdempotencyClaim(alice + 1, "k1", "hash-c", "c6")], 104.0) == [None]
    refused = IdempotencyClaim(alice, "k2", "hash-e", "c8", (409, '{"code":"seat_unavailable"}'))
    assert await store.claim_idempotency_keys([refused], 105.0) == [None], "decided before the claim: stored done at once"
    replay = (await store.claim_idempotency_keys([IdempotencyClaim(alice, "k2", "hash-e", "c9")], 106.0))[0]
    assert (replay.state, replay.response_status, replay.response_body) == ("done", 409, '{"code":"seat_unavailable"}')
    a_day_later = 103.0 + 25 * 3600
    assert await store.claim_idempotency_keys([IdempotencyClaim(alice, "k1", "hash-d", "c7")], a_day_later) == [None]
    assert await store.purge_idempotency(a_day_later) == 2, "alice's k1 was claimed again; her k2 and the other member's k1 age out"


async def test_queue_snapshot_round_trip(store):
    assert await store.load_queue() is None
    await store.save_queue({"next": 3, "tickets": [[1, 2]]}, 1.0)
    await store.save_queue({"next": 4, "tickets": [[1, 2], [2, 3]]}, 2.0)
    assert await store.load_queue() == {"next": 4, "tickets": [[1, 2], [2, 3]]}


def test_changes_know_whether_they_take_or_free_seats():
    held = Booking("b", 1, (1,), BookingStatus.HELD, 0, 60)
    assert BookingChange(EventType.HOLD_CREATED, held, None, 0).claims_seats
    confirmed = Booking("b", 1, (1,), BookingStatus.CONFIRMED, 0, 60)
    change = BookingChange(EventType.BOOKING_CONFIRMED, confirmed, BookingStatus.HELD, 1)
    assert not change.claims_seats and not change.releases_seats


def port_where_nothing_listens() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("kind", ["sqlite", "mysql"])
async def test_a_store_that_cannot_be_reached_is_unavailable_at_once(kind, tmp_path):
    """Not a driver's error (a 500): the store says "try again shortly" (a 503), within seconds."""
    url = {"sqlite": f"sqlite:///{tmp_path}",  # a folder: "unable to open database file"
           "mysql": f"mysql://root@127.0.0.1:{port_where_nothing_listens()}/encore"}[kind]
    store = open_store(url)
    started = time.monotonic()
    for _ in range(2):
        with pytest.raises(StoreUnavailable):
            await store.member_by_username("alice")
    assert time.monotonic() - started < 2 * 3 + 1
    await store.close()


async def test_statement_errors_are_not_called_unavailable(store):
    async with store.transaction() as tx:
        with pytest.raises(Exception) as raised:
            await tx.execute("SELECT no_such_column FROM members")
    assert not isinstance(raised.value, StoreUnavailable)


async def test_idempotency_keys_are_compared_exactly(store):
    [alice] = await members(store, 1)
    keys = ["casekey-x", "CASEKEY-x", "Casekey-X", "casekey-x "]
    claims = [IdempotencyClaim(alice, key, f"hash-{n}", f"c{n}") for n, key in enumerate(keys)]
    assert await store.claim_idempotency_keys(claims[:1], 100.0) == [None]
    assert await store.claim_idempotency_keys([IdempotencyClaim(alice, "casekey-x", "hash-0", "again"), *claims[1:]], 101.0) == [
        ANY, None, None, None]
    await store.finish_idempotency_keys([(claim, 201, claim.key) for claim in claims], 102.0)
    replays = await store.claim_idempotency_keys([IdempotencyClaim(alice, key, "h", f"r{n}") for n, key in enumerate(keys)], 103.0)
    assert [replay.response_body for replay in replays] == keys


async def test_idempotency_keys_stored_before_the_migration_stay_and_compare_exactly(db_url, monkeypatch):
    import persistence.store

    store = open_store(db_url)
    monkeypatch.setattr(persistence.store, "MIGRATIONS", persistence.store.MIGRATIONS[:2])
    await store.migrate()
    [alice] = await members(store, 1)
    before = IdempotencyClaim(alice, "casekey-x", "hash-a", "c1")
    await store.claim_idempotency_keys([before], 100.0)
    await store.finish_idempotency_keys([(before, 201, "first")], 100.0)
    monkeypatch.undo()
    await store.migrate()
    [replay, variant] = await store.claim_idempotency_keys(
        [IdempotencyClaim(alice, "casekey-x", "hash-a", "c2"), IdempotencyClaim(alice, "CASEKEY-x", "hash-b", "c3")], 101.0)
    assert (replay.state, replay.response_body) == ("done", "first") and variant is None
    await store.close()
