"""Benchmark of the booking core: hold decisions and confirms per second through the actors.

Sells the whole hall (15,000 seats in 15 blocks) to 13 contenders per seat, every won hold
committed to the store before its answer, then confirms every winner. Runs on MariaDB and
on SQLite, with several batch sizes (requests per actor call). Prints figures, not verdicts
of a timed test: the machine is shared, so read the ratios between rows of one run.

    python -m loadtest.bench_core [--batches 50,200,1000] [--stores mysql,sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import ray

from actors.seat_block import HoldRequest, SeatBlockRemote
from domain.booking import Booking, new_booking_id
from domain.venue import Venue
from harness import mysql
from persistence import migrate, open_store

CONTENDERS_PER_SEAT = 13
IN_FLIGHT_PER_BLOCK = 4


def make_requests(venue: Venue, members: list[int], rng: random.Random) -> list[HoldRequest]:
    """13 requests per seat from distinct people; each person asks for one seat at a time."""
    requests = []
    for seat in range(venue.seats):
        for _ in range(CONTENDERS_PER_SEAT):
            requests.append(HoldRequest(new_booking_id(), rng.choice(members), (seat,)))
    rng.shuffle(requests)
    return requests


def run_pipelined(calls_by_block: dict[int, list], submit) -> list:
    """Keep ``IN_FLIGHT_PER_BLOCK`` calls outstanding per block; results in submission order per block."""
    pending, results = {}, []
    queues = {block: list(calls) for block, calls in calls_by_block.items()}
    for block, queue in queues.items():
        for _ in range(min(IN_FLIGHT_PER_BLOCK, len(queue))):
            payload = queue.pop(0)
            pending[submit(block, payload)] = (block, payload)
    while pending:
        [ready], _ = ray.wait(list(pending), num_returns=1)
        block, payload = pending.pop(ready)
        results.append((payload, ray.get(ready)))
        if queues[block]:
            nxt = queues[block].pop(0)
            pending[submit(block, nxt)] = (block, nxt)
    return results


def sell_out(venue: Venue, db_url: str, members: list[int], batch: int) -> dict:
    actors = [SeatBlockRemote.remote(b, 600, 4, db_url) for b in venue.blocks()]
    ray.get([a.stats.remote() for a in actors])
    requests = make_requests(venue, members, random.Random(batch))
    by_block: dict[int, list[list[HoldRequest]]] = defaultdict(list)
    for request in requests:
        calls = by_block[venue.block_index_of(request.seat_ids[0])]
        if not calls or len(calls[-1]) >= batch:
            calls.append([])
        calls[-1].append(request)

    started = time.perf_counter()
    results = run_pipelined(by_block, lambda block, payload: actors[block].hold_many.remote(payload))
    hold_seconds = time.perf_counter() - started
    won = [r for _, answers in results for r in answers if isinstance(r, Booking)]

    to_confirm: dict[int, list[list]] = defaultdict(list)
    for booking in won:
        calls = to_confirm[venue.block_index_of(booking.seat_ids[0])]
        if not calls or len(calls[-1]) >= batch:
            calls.append([])
        calls[-1].append((booking.booking_id, {"payment_id": "bench"}))
    started = time.perf_counter()
    confirmed = run_pipelined(to_confirm, lambda block, payload: actors[block].confirm_many.remote(payload))
    confirm_seconds = time.perf_counter() - started
    sold = sum(1 for _, answers in confirmed for r in answers if isinstance(r, Booking))

    claims = asyncio.run(_claims(db_url))
    seats_won = [s for b in won for s in b.seat_ids]
    batches = sum(ray.get(a.stats.remote())["commit_batches"] for a in actors)
    for actor in actors:
        ray.kill(actor)
    return {
        "batch": batch,
        "decisions": len(requests),
        "won": len(won),
        "hold_s": hold_seconds,
        "holds_per_s": len(requests) / hold_seconds,
        "confirms_per_s": sold / confirm_seconds,
        "commits": batches,
        "double_sales": len(seats_won) - len(set(seats_won)),
        "store_agrees": set(claims) == set(seats_won) and len(claims) == sold,
    }


async def _claims(db_url: str) -> dict[int, str]:
    store = open_store(db_url)
    try:
        return await store.claims()
    finally:
        await store.close()


@contextmanager
def bench_database(sqlite: bool, folder: Path):
    """The store of one benchmark: an SQLite file in ``folder``, or a MariaDB database dropped afterwards."""
    if sqlite:
        yield f"sqlite:///{folder}/encore.db"
        return
    with MySQLBench() as db_url:
        yield db_url


class MySQLBench:
    """A throwaway database on the MariaDB server, dropped afterwards."""

    def __init__(self):
        self.name = f"encore_bench_{os.getpid()}"

    def __enter__(self) -> str:
        return mysql.create_database(self.name)

    def __exit__(self, *exc):
        mysql.drop_database(self.name)

    def reset(self, db_url: str, members: int) -> list[int]:
        with mysql.connect(self.name, autocommit=True) as connection, connection.cursor() as cursor:
            for table in ("seat_claims", "booking_seats", "bookings", "booking_log"):
                cursor.execute(f"DELETE FROM {table}")
            cursor.execute("SELECT COUNT(*) FROM members")
            if cursor.fetchone()[0] < members:
                cursor.executemany(
                    "INSERT INTO members (username, nickname, password_hash, role, created_at) VALUES (%s,%s,%s,'user',0)",
                    [(f"bench{i}", f"bench{i}", "-") for i in range(members)],
                )
            cursor.execute("SELECT id FROM members")
            return [row[0] for row in cursor.fetchall()]


def sqlite_reset(path: str, members: int) -> list[int]:
    connection = sqlite3.connect(path, isolation_level=None)
    for table in ("seat_claims", "booking_seats", "bookings", "booking_log"):
        connection.execute(f"DELETE FROM {table}")
    if connection.execute("SELECT COUNT(*) FROM members").fetchone()[0] < members:
        connection.executemany(
            "INSERT INTO members (username, nickname, password_hash, role, created_at) VALUES (?,?,?,'user',0)",
            [(f"bench{i}", f"bench{i}", "-") for i in range(members)],
        )
    ids = [row[0] for row in connection.execute("SELECT id FROM members")]
    connection.close()
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="50,200,1000", help="requests per actor call, comma separated")
    parser.add_argument("--stores", default="mysql,sqlite")
    parser.add_argument("--members", type=int, default=60_000)
    args = parser.parse_args()
    venue = Venue.grid(15, 20, 50, 20)
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 * 1024, log_to_driver=False)
    rows = []
    try:
        for store in args.stores.split(","):
            for batch in map(int, args.batches.split(",")):
                if store == "mysql":
                    bench = MySQLBench()
                    with bench as db_url:
                        asyncio.run(migrate(db_url))
                        members = bench.reset(db_url, args.members)
                        rows.append({"store": "mariadb", **sell_out(venue, db_url, members, batch)})
                else:
                    with tempfile.TemporaryDirectory() as folder:
                        db_url = f"sqlite:///{folder}/bench.db"
                        asyncio.run(migrate(db_url))
                        members = sqlite_reset(f"{folder}/bench.db", args.members)
                        rows.append({"store": "sqlite", **sell_out(venue, db_url, members, batch)})
                print_row(rows[-1])
    finally:
        ray.shutdown()


def print_row(row: dict) -> None:
    print(
        f"{row['store']:8} batch={row['batch']:5d}  decisions={row['decisions']:,}  won={row['won']:,}  "
        f"holds/s={row['holds_per_s']:,.0f}  confirms/s={row['confirms_per_s']:,.0f}  commits={row['commits']:,}  "
        f"double_sales={row['double_sales']}  store_agrees={row['store_agrees']}",
        flush=True,
    )


if __name__ == "__main__":
    main()
