"""Many clients at once over real HTTP, on MariaDB: no double sale, the per-member cap, idempotency.

One service for the module, with two ingress replicas behind HAProxy, so that racing requests
are decided by two replicas' batchers at once (and the default 180-second hold, so nothing
expires under the test). Each test uses its own section of the hall, so the tests do not see
each other's seats. The last tests show what two replicas share about one member: each checks
a waiting person's tokens once, and together they keep the member's write limit.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import httpx
import pymysql
import pytest

from harness.metrics import by_label
from harness.service import service_processes
from tests.e2e.conftest import Person
from tests.e2e.helpers import admin, all_at_once, crowd, events_of, my_events, section_starts, settled_seat_status, wait_for_seats

pytestmark = pytest.mark.slow

RACERS = 30
REPLICAS = 2
WRITES_PER_MINUTE = 120
SERVICE_SETTINGS = {"ingress_replicas": REPLICAS, "rate_limit_writes_per_minute": WRITES_PER_MINUTE}


@pytest.fixture(scope="module")
def service(mysql_service):
    return mysql_service


@pytest.fixture(scope="module")
def racers(service):
    return crowd(service, RACERS)


@pytest.fixture(scope="module")
def boss(service):
    return admin(service, f"boss{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def starts(racers):
    return section_starts(racers[0].http)


# ---- many people, the same seats


def test_thirty_people_one_seat_exactly_one_wins(service, racers, starts, boss):
    seat = starts[0] + 500
    answers = all_at_once([lambda p=p: p.hold([seat]) for p in racers])

    won = [(p, a) for p, a in zip(racers, answers) if a.status_code == 201]
    lost = [(p, a) for p, a in zip(racers, answers) if a.status_code != 201]
    assert len(won) == 1, [a.status_code for a in answers]
    for _, answer in lost:
        assert answer.status_code == 409, answer.text
        assert answer.json()["code"] == "seat_unavailable"
        assert answer.json()["seats"] == [seat]

    winner, held = won[0]
    booking = winner.booking(held.json()["booking_id"])
    assert booking["status"] == "held" and booking["seat_ids"] == [seat] and booking["member_id"] == winner.id
    wait_for_seats(winner.http, {seat: "H", seat - 1: "A", seat + 1: "A"})
    # the log names exactly one booking for the seat, and every loser has no booking at all
    assert {e["booking_id"] for e in events_of(boss, seat_id=seat)} == {held.json()["booking_id"]}
    for person, _ in lost:
        assert person.http.get("/api/me/bookings").json()["bookings"] == []

    # once the winner pays, the seat is sold; a second wave of contenders still cannot get it
    payment = winner.pay(held.json()["booking_id"])
    assert payment.status_code == 201, payment.text
    assert winner.checkout(payment.json(), "success").json()["delivered"] is True
    assert winner.booking(held.json()["booking_id"])["status"] == "confirmed"
    wait_for_seats(winner.http, {seat: "S"})
    again = all_at_once([lambda p=p: p.hold([seat]) for p, _ in lost[:10]])
    assert [a.status_code for a in again] == [409] * 10, [a.text for a in again]
    assert all(a.json()["code"] == "seat_unavailable" and a.json()["seats"] == [seat] for a in again)


def test_overlapping_pairs_no_seat_is_sold_twice(service, racers, starts, boss):
    """Everyone asks for two of ten seats, the pairs overlapping; holds are all or nothing."""
    pool = [starts[1] + 100 + i for i in range(10)]
    wanted = {p.id: sorted({pool[i % 10], pool[(i * 3 + 1) % 10]}) for i, p in enumerate(racers)}
    answers = all_at_once([lambda p=p: p.hold(wanted[p.id]) for p in racers])

    owner: dict[int, tuple[Person, str]] = {}
    losers = []
    for person, answer in zip(racers, answers):
        if answer.status_code == 201:
            body = answer.json()
            assert body["status"] == "held" and body["seat_ids"] == wanted[person.id]
            for seat in body["seat_ids"]:
                assert seat not in owner, f"seat {seat} held by two bookings: {owner[seat][1]} and {body['booking_id']}"
                owner[seat] = (person, body["booking_id"])
        else:
            assert answer.status_code == 409, answer.text
            assert answer.json()["code"] == "seat_unavailable", answer.text
            losers.append((person, answer.json()["seats"]))
    assert owner, "nobody won anything"
    for person, refused in losers:
        # a refusal names only seats the person asked for, and each really was taken by a winner
        assert refused and set(refused) <= set(wanted[person.id]), (refused, wanted[person.id])
        assert all(seat in owner for seat in refused), (refused, sorted(owner))

    # the seat map, each winner's booking and the log all tell the same story
    expected = {seat: ("H" if seat in owner else "A") for seat in pool}
    wait_for_seats(racers[0].http, expected)
    for seat, (person, booking_id) in owner.items():
        booking = person.booking(booking_id)
        assert booking["status"] == "held" and seat in booking["seat_ids"]
        assert {e["booking_id"] for e in events_of(boss, seat_id=seat)} == {booking_id}
    for seat in set(pool) - set(owner):
        assert events_of(boss, seat_id=seat) == []
    bookings_now = sum(len([b for b in p.http.get("/api/me/bookings").json()["bookings"] if set(b["seat_ids"]) <= set(pool)])
                       for p in racers)
    assert bookings_now == len({b for _, b in owner.values()})


# ---- the per-member cap under concurrent requests


def test_cap_holds_across_sections_at_once(service, starts):
    """One member, five single-seat holds in five sections at the same moment; the cap is 4."""
    [member] = crowd(service, 1)
    seats = [starts[2 + i] + 7 for i in range(5)]
    answers = all_at_once([lambda s=s: member.hold([s]) for s in seats])
    codes = sorted(a.status_code for a in answers)
    assert codes == [201, 201, 201, 201, 422], [a.text for a in answers]
    refused = [a for a in answers if a.status_code == 422][0]
    assert refused.json()["code"] == "too_many_seats", refused.text

    held = {s for s, a in zip(seats, answers) if a.status_code == 201}
    mine = member.http.get("/api/me/bookings").json()["bookings"]
    assert sorted(s for b in mine for s in b["seat_ids"]) == sorted(held)
    assert all(b["status"] == "held" for b in mine)
    wait_for_seats(member.http, {s: ("H" if s in held else "A") for s in seats})
    # and one more, anywhere, is still refused
    extra = member.hold([starts[9] + 1])
    assert extra.status_code == 422 and extra.json()["code"] == "too_many_seats", extra.text


def test_cap_holds_within_one_section_and_with_pairs(service, starts):
    one_section, pairs = crowd(service, 2)
    seats = [starts[7] + 20 + i for i in range(6)]
    answers = all_at_once([lambda s=s: one_section.hold([s]) for s in seats])
    assert sorted(a.status_code for a in answers) == [201] * 4 + [422] * 2, [a.text for a in answers]
    assert all(a.json()["code"] == "too_many_seats" for a in answers if a.status_code == 422)

    # three pairs in three sections: only two pairs fit under a cap of four
    requests = [[starts[10 + i] + 40, starts[10 + i] + 41] for i in range(3)]
    answers = all_at_once([lambda r=r: pairs.hold(r) for r in requests])
    assert sorted(a.status_code for a in answers) == [201, 201, 422], [a.text for a in answers]
    mine = pairs.http.get("/api/me/bookings").json()["bookings"]
    assert sum(len(b["seat_ids"]) for b in mine) == 4
    expected = {}
    for request, answer in zip(requests, answers):
        expected.update({s: ("H" if answer.status_code == 201 else "A") for s in request})
    wait_for_seats(pairs.http, expected)


# ---- Idempotency-Key


def test_same_key_same_body_replays_the_first_answer(service, starts):
    buyer, other = crowd(service, 2)
    seat = starts[13] + 1
    key = uuid.uuid4().hex
    first = buyer.hold([seat], key=key)
    assert first.status_code == 201, first.text
    again = buyer.hold([seat], key=key)
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers.get("Idempotency-Replayed") == "true"
    bookings = buyer.http.get("/api/me/bookings").json()["bookings"]
    assert [b["booking_id"] for b in bookings] == [first.json()["booking_id"]]
    assert [e["type"] for e in my_events(buyer, type="hold_created")] == ["hold_created"]

    # the same for a payment: one payment, one payment_started
    booking_id = first.json()["booking_id"]
    pay_key = uuid.uuid4().hex
    paid = buyer.pay(booking_id, key=pay_key)
    assert paid.status_code == 201, paid.text
    paid_again = buyer.pay(booking_id, key=pay_key)
    assert (paid_again.status_code, paid_again.json()) == (201, paid.json())
    assert paid_again.headers.get("Idempotency-Replayed") == "true"
    assert len(my_events(buyer, type="payment_started")) == 1

    # keys belong to a member: another member's request with the same key really runs
    theirs = other.hold([seat], key=key)
    assert theirs.status_code == 409 and theirs.json()["code"] == "seat_unavailable", theirs.text
    assert theirs.headers.get("Idempotency-Replayed") is None
    # and a refusal is replayed just like a success
    theirs_again = other.hold([seat], key=key)
    assert (theirs_again.status_code, theirs_again.json()) == (409, theirs.json())
    assert theirs_again.headers.get("Idempotency-Replayed") == "true"


def test_same_key_different_body_is_refused(service, starts):
    [buyer] = crowd(service, 1)
    key = uuid.uuid4().hex
    first = buyer.hold([starts[13] + 10], key=key)
    assert first.status_code == 201, first.text
    before = settled_seat_status(buyer.http)
    reused = buyer.hold([starts[13] + 11], key=key)
    assert reused.status_code == 422, reused.text
    assert reused.json()["code"] == "idempotency_key_reused"
    assert [b["booking_id"] for b in buyer.http.get("/api/me/bookings").json()["bookings"]] == [first.json()["booking_id"]]
    assert settled_seat_status(buyer.http)[starts[13] + 11] == "A"
    assert settled_seat_status(buyer.http) == before

    pay_key = uuid.uuid4().hex
    assert buyer.pay(first.json()["booking_id"], "mockpay", key=pay_key).status_code == 201
    other_provider = buyer.pay(first.json()["booking_id"], "fakecard", key=pay_key)
    assert other_provider.status_code == 422 and other_provider.json()["code"] == "idempotency_key_reused", other_provider.text
    assert len(my_events(buyer, type="payment_started")) == 1


def test_same_key_raced_makes_one_booking(service, starts):
    """Eight copies of one request at once: one runs; each other copy is its replay or a 409."""
    [buyer] = crowd(service, 1)
    seat = starts[14] + 3
    key = uuid.uuid4().hex
    answers = all_at_once([lambda: buyer.hold([seat], key=key) for _ in range(8)])
    created = [a for a in answers if a.status_code == 201]
    in_flight = [a for a in answers if a.status_code == 409]
    assert len(created) + len(in_flight) == len(answers), [a.text for a in answers]
    assert created, [a.text for a in answers]
    assert all(a.json() == created[0].json() for a in created)
    assert all(a.json()["code"] == "idempotency_in_flight" for a in in_flight), [a.text for a in in_flight]
    assert len([a for a in created if a.headers.get("Idempotency-Replayed") != "true"]) == 1
    bookings = buyer.http.get("/api/me/bookings").json()["bookings"]
    assert [b["booking_id"] for b in bookings] == [created[0].json()["booking_id"]]
    wait_for_seats(buyer.http, {seat: "H"})


def test_a_key_differing_only_in_case_is_another_key_and_fails_no_one_else(service, starts):
    """Keys are compared exactly: MariaDB's default collation once took the two for one key,
    and the hold failed with 500 together with every other member's hold batched with it."""
    first, *others = crowd(service, 12)
    key = f"casekey-{uuid.uuid4().hex[:8]}"
    earlier = first.hold([starts[8] + 1], key=key)
    assert earlier.status_code == 201, earlier.text
    calls = [lambda: first.hold([starts[8] + 2], key=key.upper())]
    calls += [lambda person=person, n=n: person.hold([starts[8] + 3 + n]) for n, person in enumerate(others)]
    answers = all_at_once(calls)
    assert [a.status_code for a in answers] == [201] * len(calls), [a.text for a in answers if a.status_code != 201]
    assert answers[0].headers.get("Idempotency-Replayed") is None, "the case variant ran as a key of its own"
    assert answers[0].json()["booking_id"] != earlier.json()["booking_id"]
    for sent, seat, answer in ((key, starts[8] + 1, earlier), (key.upper(), starts[8] + 2, answers[0])):
        replay = first.hold([seat], key=sent)
        assert (replay.status_code, replay.json(), replay.headers.get("Idempotency-Replayed")) == (201, answer.json(), "true")


def _mysql(db_url: str) -> pymysql.connections.Connection:
    url = urlparse(db_url)
    return pymysql.connect(host=url.hostname, port=url.port or 3306, user=url.username or "root",
                           password=url.password or "", database=url.path.lstrip("/"), autocommit=True)


def test_same_key_while_the_first_still_runs_is_409(service, starts):
    """Deterministic: the test locks the payments table, so the first payment request stays
    in flight (its key is claimed, its work waits on the database) while the copies arrive."""
    [buyer] = crowd(service, 1)
    held = buyer.hold([starts[14] + 30])
    assert held.status_code == 201, held.text
    booking_id = held.json()["booking_id"]
    key = uuid.uuid4().hex

    locker, watcher = _mysql(service.db_url), _mysql(service.db_url)
    pool = ThreadPoolExecutor(1)
    try:
        with locker.cursor() as cursor:
            cursor.execute("LOCK TABLES payments WRITE")
        first = pool.submit(buyer.pay, booking_id, "mockpay", key)
        deadline = time.monotonic() + 30
        while True:
            with watcher.cursor() as cursor:
                cursor.execute("SELECT state FROM idempotency_keys WHERE member_id = %s AND idem_key = %s", (buyer.id, key))
                row = cursor.fetchone()
            if row is not None:
                break
            assert time.monotonic() < deadline, "the first request never claimed its key"
            time.sleep(0.05)
        assert row[0] == "running"
        copy = buyer.pay(booking_id, "mockpay", key=key)
        assert copy.status_code == 409, copy.text
        assert copy.json()["code"] == "idempotency_in_flight"
        different = buyer.pay(booking_id, "fakecard", key=key)
        assert different.status_code == 422, different.text
        assert different.json()["code"] == "idempotency_key_reused"
        assert not first.done(), first.result().text
    finally:
        with locker.cursor() as cursor:
            cursor.execute("UNLOCK TABLES")  # always, before waiting for the first request
        locker.close()
        watcher.close()
        pool.shutdown(wait=True)
    answer = first.result(timeout=60)

    assert answer.status_code == 201, answer.text
    replay = buyer.pay(booking_id, "mockpay", key=key)
    assert (replay.status_code, replay.json()) == (201, answer.json())
    assert replay.headers.get("Idempotency-Replayed") == "true"
    assert len(my_events(buyer, type="payment_started")) == 1
    assert buyer.booking(booking_id)["payment"]["payment_id"] == answer.json()["payment_id"]


# ---- one member, two replicas


def test_each_replica_checks_a_waiting_persons_tokens_once(service):
    person = Person(service)
    ticket = person.http.post("/api/queue").json()["ticket"]
    before = service.poll_counters(REPLICAS)
    for _ in range(10):
        assert person.http.get("/api/queue", params={"ticket": ticket}).status_code == 200
    after = service.poll_counters(REPLICAS)
    verified = [after[pid]["verified"] - before[pid]["verified"] for pid in after]
    remembered = [after[pid]["remembered"] - before[pid]["remembered"] for pid in after]
    assert sum(verified) + sum(remembered) == 10
    assert 1 <= sum(verified) and max(verified) <= 1, f"tokens checked {verified} times per replica"


def test_a_members_write_limit_holds_across_replicas(service):
    person = Person(service)
    person.queue_until_admitted(60)
    burst = WRITES_PER_MINUTE // 6
    started = time.monotonic()
    answers = [person.hold([]) for _ in range(3 * burst)]  # refused as invalid, but counted first
    refilled = (time.monotonic() - started) * WRITES_PER_MINUTE / 60
    allowed = [a for a in answers if a.status_code != 429]
    assert all(a.status_code == 422 for a in allowed), [a.text for a in allowed]
    assert burst // REPLICAS <= len(allowed) <= burst + refilled + 1, f"{len(allowed)} writes passed a burst of {burst}"
    assert answers[-1].status_code == 429 and int(answers[-1].headers["Retry-After"]) >= 1


# ---- a replica killed


def replica_pids(upstream: str) -> set[str]:
    """The replicas on ``/metrics``: every one that reported to the metrics board lately."""
    return set(by_label(httpx.get(f"{upstream}/metrics", timeout=10).text, "encore_replica_info", "pid"))


def test_a_replica_killed_with_sigkill_is_replaced_and_never_answers_a_map_without_the_holds(service, starts):
    """Straight to Serve's front (no cache): the other replica answers meanwhile, a new one
    takes the dead one's place, and no answer ever shows a held seat free (a new replica's map
    shows every seat free until it is loaded; tests/unit/test_replica_health.py checks that
    its health check waits for it)."""
    person = Person(service)
    person.queue_until_admitted(60)
    seats = [starts[14] + 600, starts[14] + 601]
    assert person.hold(seats).status_code == 201
    upstream = f"http://127.0.0.1:{urlparse(service.url).port + 100}"
    replicas = [p for p in service_processes(service.process.pid)
                if p.command.startswith("ray::ServeReplica:encore:encore-ingress")]
    assert len(replicas) == REPLICAS, [p.command for p in replicas]
    os.kill(replicas[0].pid, signal.SIGKILL)
    killed_at = time.monotonic()

    before = {str(p.pid) for p in replicas}
    failed, maps, replaced_at = [], 0, None
    with httpx.Client(base_url=upstream, timeout=10) as http:
        while time.monotonic() - killed_at < 90 and (replaced_at is None or time.monotonic() - replaced_at < 5):
            try:
                answer = http.get("/api/seats", headers={"Connection": "close"})
            except httpx.TransportError as error:  # the front's connection to the killed replica dropped
                failed.append(type(error).__name__)
                continue
            if answer.status_code != 200:
                failed.append(answer.status_code)
                continue
            status = answer.json()["status"]
            maps += 1
            assert [status[s] for s in seats] == ["H", "H"], f"a map without the hold, {time.monotonic() - killed_at:.1f} s after the kill"
            if replaced_at is None and maps % 20 == 0 and replica_pids(upstream) - before:
                replaced_at = time.monotonic()
    assert replaced_at is not None, "no new replica answered within 90 s"
    print(f"replaced after {replaced_at - killed_at:.1f} s; {maps} maps read, failed: {failed}")
    assert len(failed) <= 3, failed
    other = Person(service)
    other.queue_until_admitted(60)
    assert other.hold([starts[14] + 602]).status_code == 201, "holds go on"
# ---- one scrape, every replica and actor


def test_one_scrape_shows_every_replica_and_every_block_whichever_replica_answers(service):
    """Whichever replica the front picks, ``/metrics`` shows both replicas' counters, labelled, and
    each replica's counters only grow from one scrape to the next (they never jump to another
    replica's), with every block's seats and the queue's figures beside them."""
    person = Person(service)
    for _ in range(20):
        assert person.http.get("/api/venue").status_code == 200  # both replicas serve some of them
    scrapes = [service.scrape(settle_seconds=2.0 if i == 0 else 0.2) for i in range(6)]
    previous: dict[tuple, float] = {}
    for families in scrapes:
        replicas = {s.labels["replica"]: s.labels for s in families["encore_replica_info"].samples}
        assert len(replicas) == REPLICAS, replicas
        assert len({labels["pid"] for labels in replicas.values()}) == REPLICAS
        assert all(labels["node"] for labels in replicas.values())
        served = {s.labels["replica"] for s in families["encore_http_requests"].samples if s.value > 0}
        assert served == set(replicas), f"counters of {sorted(served)} of replicas {sorted(replicas)}"
        for sample in families["encore_http_requests"].samples:
            key = tuple(sorted(sample.labels.items()))
            assert sample.value >= previous.get(key, 0), f"a counter went back: {key}"
            previous[key] = sample.value
    families = scrapes[-1]
    blocks = families["encore_block_up"].samples
    assert len(blocks) == 15 and all(s.value == 1 for s in blocks), blocks
    seats = families["encore_seats"].samples
    assert {s.labels["block"] for s in seats} == {s.labels["block"] for s in blocks}
    assert sum(s.value for s in seats) == 15_000
    assert [s.value for s in families["encore_queue_up"].samples] == [1]
    people = {s.labels["state"]: s.value for s in families["encore_queue_people"].samples}
    assert set(people) == {"waiting", "active", "drawing"} and people["active"] >= 1
    outcomes = {s.labels["outcome"] for s in families["encore_holds"].samples}
    assert "won" in outcomes and outcomes & {"seat_unavailable", "refused_by_map"}, outcomes
