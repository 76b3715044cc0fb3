"""Benchmark of the store at the sale's scale: commits/s per seat block, and per MariaDB core.

Each simulated block is what a seat-block actor does to the store, without Ray: its own
``SeatBlock`` decides, its own ``GroupCommitter`` group-commits, through its own connection pool
(``pool_size=2``, as the actor's). Writers per block keep changes coming: each holds two
seats, then pays (confirmed) or lets the hold go (released), half and half while the block
has seats left, so a block writes the sale's three kinds of change. One writer per block
is the latency-bound case (a commit per change); many writers show group commit.
The last two rows add the replicas' key ledger (two replicas, each writing a claim and an
answer per hold attempt, in batches of ``IDEMPOTENCY_BATCH`` as a busy replica's batcher
gathers them): alone, then beside 15 busy blocks.

MariaDB's CPU is sampled from its own process with psutil, so the figures read as commits
per MariaDB core-second. By default the benchmark starts its own MariaDB (the machine's
``mariadbd`` binary, a throwaway data directory on the same disk as ``/var/lib/mysql``,
durable commits as there: ``innodb_flush_log_at_trx_commit=1``), so other work on the shared
server does not count as ours; ``--server shared`` uses ``ENCORE_BENCH_MYSQL_URL`` instead.

    python -m loadtest.bench_store [--seconds 10] [--blocks 1,4,15] [--writers 1,32]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pymysql

from actors.seat_block import GroupCommitter
from domain.booking import new_booking_id
from domain.errors import BookingError
from domain.seat_block import AVAILABLE, SeatBlock
from domain.venue import Venue
from harness import mysql
from persistence import migrate, open_store
from persistence.records import IdempotencyClaim

OWN_SERVER_PORT = 3417
MEMBERS = 60_000
SEATS_PER_HOLD = 2
IDEMPOTENCY_BATCH = 32  # claims per transaction, about what a busy replica's batcher gathers
DATA_PARENT = Path("/var/tmp")  # the same disk as /var/lib/mysql: fsync costs what it costs there


@dataclass
class Tally:
    commits: int = 0
    changes: int = 0
    holds: int = 0
    confirms: int = 0
    releases: int = 0
    refused: int = 0
    failed_commits: int = 0  # deadlocks and other refusals of a whole batch (the journal retries them)
    idempotency_keys: int = 0
    idempotency_commits: int = 0


@contextmanager
def own_mariadb():
    """A MariaDB of our own on ``OWN_SERVER_PORT``: started here, stopped here, its data removed."""
    datadir = Path(tempfile.mkdtemp(prefix="encore-bench-store-", dir=DATA_PARENT))
    common = ["--no-defaults", f"--datadir={datadir}/data", "--user=root"]
    subprocess.run(["mariadb-install-db", *common, "--auth-root-authentication-method=normal", "--skip-test-db"],
                   check=True, capture_output=True)
    server = subprocess.Popen(
        ["/usr/sbin/mariadbd", *common, f"--port={OWN_SERVER_PORT}", "--bind-address=127.0.0.1",
         f"--socket={datadir}/mysqld.sock", f"--pid-file={datadir}/mysqld.pid", "--skip-log-bin",
         "--innodb-flush-log-at-trx-commit=1", "--innodb-buffer-pool-size=128M", "--max-connections=500",
         f"--log-error={datadir}/error.log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        args = {"host": "127.0.0.1", "port": OWN_SERVER_PORT, "user": "root", "password": ""}
        deadline = time.monotonic() + 60
        while True:
            try:
                pymysql.connect(**args, connect_timeout=1).close()
                break
            except pymysql.err.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"our MariaDB did not start; see {datadir}/error.log") from None
                time.sleep(0.3)
        yield args, psutil.Process(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(datadir, ignore_errors=True)


@contextmanager
def shared_mariadb():
    args = mysql.server_args()
    pids = [p for p in psutil.process_iter(["name"]) if p.info["name"] in ("mariadbd", "mysqld")]
    if len(pids) != 1:
        raise RuntimeError(f"cannot tell which process is the shared server's ({len(pids)} candidates)")
    yield args, pids[0]


def fresh_database(args: dict) -> str:
    name = f"encore_bench_store_{os.getpid()}"
    with pymysql.connect(**args) as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    return f"mysql://{args['user']}@{args['host']}:{args['port']}/{name}"


def prepare(db_url: str, args: dict) -> list[int]:
    """The schema and the members who buy (one multi-row insert, as the driver sends it)."""

    asyncio.run(migrate(db_url))
    with pymysql.connect(**args, database=db_url.rsplit("/", 1)[1], autocommit=True) as connection:
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO members (username, nickname, password_hash, role, created_at) VALUES (%s,%s,%s,%s,%s)",
                [(f"b{i}", f"b{i}", "-", "user", 0) for i in range(MEMBERS)],
            )
            cursor.execute("SELECT id FROM members")
            return [row[0] for row in cursor.fetchall()]


async def run_block(block, db_url: str, writers: int, until: float, members, tally: Tally) -> None:
    """One block's decisions and group commits, from ``writers`` concurrent buyers."""
    seat_block = SeatBlock(block, 600, 4)
    store = open_store(db_url, pool_size=2)

    async def commit(changes):
        try:
            refused = await store.commit_block_changes(block.index, changes, seat_block.seats_per_member_max)
        except Exception:
            tally.failed_commits += 1
            raise
        tally.commits += 1
        tally.changes += len(changes)
        return refused

    journal = GroupCommitter(commit)
    rng = random.Random(block.index)
    seats = len(block.seat_ids)

    async def write(change) -> bool:
        outcome = await journal.write([change])
        if outcome.refused or outcome.failed:
            seat_block.undo(change)
            tally.refused += 1
            return False
        return True

    async def buyer() -> None:
        while time.monotonic() < until:
            status = seat_block.status()
            free = [i for i in range(0, seats - 1, 2) if status[i] == AVAILABLE and status[i + 1] == AVAILABLE]
            if not free:
                return
            first = block.first_seat_id + rng.choice(free)
            booking_id = new_booking_id()
            try:
                change = seat_block.hold(booking_id, next(members), range(first, first + SEATS_PER_HOLD), time.time())
            except BookingError:
                continue
            if not await write(change):
                continue
            tally.holds += 1
            if len(free) > seats // 10 and rng.random() < 0.5:
                await write(seat_block.confirm(booking_id, time.time(), {"payment_id": "bench"}))
                tally.confirms += 1
            else:
                await write(seat_block.fail_payment(booking_id, time.time(), {"reason": "bench"}))
                tally.releases += 1

    try:
        await asyncio.gather(*(buyer() for _ in range(writers)))
    finally:
        await store.close()


async def run_idempotency(db_url: str, writers: int, until: float, members, tally: Tally) -> None:
    """The replicas' key ledger: a claim, then the answer, per hold attempt, in batches."""
    store = open_store(db_url, pool_size=writers)

    async def replica_batcher(number: int) -> None:
        sequence = 0
        while time.monotonic() < until:
            claims = []
            for _ in range(IDEMPOTENCY_BATCH):
                sequence += 1
                claims.append(IdempotencyClaim(next(members), f"k{number}-{sequence}", "h" * 64, f"c{number}-{sequence}"))
            await store.claim_idempotency_keys(claims, time.time())
            await store.finish_idempotency_keys([(c, 200, '{"ok":true}') for c in claims], time.time())
            tally.idempotency_keys += len(claims)
            tally.idempotency_commits += 2

    try:
        await asyncio.gather(*(replica_batcher(n) for n in range(writers)))
    finally:
        await store.close()


def measure(db_url: str, server: psutil.Process, blocks: int, writers: int, seconds: float, idempotency: bool,
            member_ids: list[int]) -> dict:
    venue = Venue.grid(15, 20, 50, 20)
    members = iter(member_ids * 2)  # a member holds 2 seats at a time, 4 at most
    tally = Tally()
    server_before, client_before = server.cpu_times(), psutil.Process().cpu_times()
    started = time.monotonic()
    until = started + seconds

    async def everything():
        work = [run_block(block, db_url, writers, until, members, tally) for block in list(venue.blocks())[:blocks]]
        if idempotency:
            work.append(run_idempotency(db_url, 2, until, members, tally))
        await asyncio.gather(*work)

    asyncio.run(everything())
    elapsed = time.monotonic() - started
    server_after, client_after = server.cpu_times(), psutil.Process().cpu_times()
    server_cores = (server_after.user + server_after.system - server_before.user - server_before.system) / elapsed
    client_cores = (client_after.user + client_after.system - client_before.user - client_before.system) / elapsed
    commits = tally.commits + tally.idempotency_commits
    return {
        "blocks": blocks, "writers": writers, "idempotency": idempotency, "seconds": elapsed,
        "block_commits_per_s": tally.commits / elapsed,
        "block_commits_per_s_per_block": tally.commits / elapsed / max(blocks, 1),
        "changes_per_s": tally.changes / elapsed,
        "changes_per_commit": tally.changes / max(tally.commits, 1),
        "holds_per_s": tally.holds / elapsed, "confirms_per_s": tally.confirms / elapsed,
        "releases_per_s": tally.releases / elapsed, "refused": tally.refused, "failed_commits": tally.failed_commits,
        "idempotency_keys_per_s": tally.idempotency_keys / elapsed,
        "mariadb_cores": server_cores, "client_cores": client_cores,
        "commits_per_mariadb_core_s": commits / elapsed / server_cores if server_cores else float("nan"),
        "idempotency_keys_per_mariadb_core_s": tally.idempotency_keys / elapsed / server_cores if server_cores else float("nan"),
        "changes_per_mariadb_core_s": tally.changes / elapsed / server_cores if server_cores else float("nan"),
    }


def print_row(row: dict) -> None:
    print(
        f"blocks={row['blocks']:2d} writers/block={row['writers']:3d} idem={'yes' if row['idempotency'] else 'no ':3} "
        f"commits/s={row['block_commits_per_s']:7,.0f} (per block {row['block_commits_per_s_per_block']:6,.0f})  "
        f"changes/s={row['changes_per_s']:7,.0f} ({row['changes_per_commit']:4.1f}/commit; "
        f"holds {row['holds_per_s']:,.0f} confirms {row['confirms_per_s']:,.0f} releases {row['releases_per_s']:,.0f})  "
        f"idem keys/s={row['idempotency_keys_per_s']:6,.0f} ({row['idempotency_keys_per_mariadb_core_s']:6,.0f} per MariaDB core-s)  "
        f"MariaDB {row['mariadb_cores']:.2f} cores → {row['commits_per_mariadb_core_s']:6,.0f} commits "
        f"and {row['changes_per_mariadb_core_s']:6,.0f} changes per core-s  client {row['client_cores']:.2f} cores  "
        f"failed commits={row['failed_commits']} holds given up={row['refused']}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--blocks", default="1,4,15", help="blocks writing at once, comma separated")
    parser.add_argument("--writers", default="1,32", help="concurrent buyers per block, comma separated")
    parser.add_argument("--server", choices=("own", "shared"), default="own")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so our MariaDB is stopped on the way out
    print(f"bench_store {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {psutil.cpu_count()} cores", flush=True)
    logging.getLogger("actors.seat_block").setLevel(logging.ERROR)  # failed commits are counted in the rows
    with (own_mariadb() if args.server == "own" else shared_mariadb()) as (server_args, server):
        for writers in map(int, args.writers.split(",")):
            for blocks in map(int, args.blocks.split(",")):
                db_url = fresh_database(server_args)
                member_ids = prepare(db_url, server_args)
                print_row(measure(db_url, server, blocks, writers, args.seconds, False, member_ids))
        for blocks in (0, 15):  # the ledger alone, then beside every block at its busiest
            db_url = fresh_database(server_args)
            member_ids = prepare(db_url, server_args)
            print_row(measure(db_url, server, blocks, max(map(int, args.writers.split(","))), args.seconds, True, member_ids))


if __name__ == "__main__":
    main()
