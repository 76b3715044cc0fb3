"""What remembering a refused hold costs: the replica's and MariaDB's CPU per refused hold.

Most hold attempts of a busy sale are refused from the replica's seat map before any state
changes (13-17 attempts per seat sold). Each is still remembered under its Idempotency-Key,
so that the same key and body get the same answer (docs/API.md): one row in one batched
INSERT. This benchmark answers the same refusals in one process, in turn, with the ledger
(``IdempotencyLedger.run_once`` with the refusal, as ``api.hot_routes.hold_once`` does) and
without it (the refusal's bytes alone), in waves of concurrent requests as a replica sees
them, and prints the process's CPU and mariadbd's per refusal, medians over the rounds.

    python -m loadtest.bench_refusals [--refusals 4000] [--wave 256] [--rounds 5] [--sqlite]

mariadbd is shared with whatever else runs on the machine: its figure is an upper bound.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psutil
from fastapi.responses import Response

from api.idempotency import IdempotencyLedger, _answer, _json, request_fingerprint
from domain.errors import SeatUnavailable
from loadtest.bench_core import bench_database
from persistence import migrate, open_store

MEMBERS = 2000


def mariadb() -> psutil.Process | None:
    return next((p for p in psutil.process_iter(["name"]) if p.info["name"] in ("mariadbd", "mysqld")
                 and any(c.laddr.port == 3306 for c in p.net_connections("tcp") if c.status == "LISTEN")), None)


def cpu(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    times = process.cpu_times()
    return times.user + times.system


async def refused(ledger: IdempotencyLedger | None, member_id: int, seat: int) -> Response:
    """One hold refused from the map, as ``hold_once`` answers it."""
    fingerprint = request_fingerprint("POST", "/api/holds", {"seat_ids": [seat]})
    refusal = SeatUnavailable.of([seat])
    if ledger is None:
        status, body = _answer(refusal)
        return Response(_json(body), status_code=status, media_type="application/json")

    async def work():
        raise AssertionError("a refused hold runs no work")

    return await ledger.run_once(member_id, uuid.uuid4().hex, fingerprint, work, refusal)


async def one_run(ledger, count: int, wave: int, database) -> tuple[float, float]:
    """CPU seconds of this process and of mariadbd per refusal, over ``count`` refusals."""
    own, db = time.process_time(), cpu(database)
    for first in range(0, count, wave):
        answers = await asyncio.gather(*(refused(ledger, 1 + (first + i) % MEMBERS, (first + i) % 15000)
                                         for i in range(min(wave, count - first))))
        assert all(a.status_code == 409 for a in answers)
    return (time.process_time() - own) / count, (cpu(database) - db) / count


async def run(db_url: str, args) -> None:
    await migrate(db_url)
    store = open_store(db_url)
    ledger = IdempotencyLedger(store)
    database = None if args.sqlite else mariadb()
    await one_run(ledger, args.wave, args.wave, database)  # the pool's connections, opened once
    rows: dict[str, list[tuple[float, float]]] = {"with the ledger": [], "without": []}
    for round_number in range(1, args.rounds + 1):
        for name, used in (("with the ledger", ledger), ("without", None)):
            rows[name].append(await one_run(used, args.refusals, args.wave, database))
            own, db = rows[name][-1]
            print(f"round {round_number}  {name:16} this process {own * 1e6:6.0f} µs, mariadbd {db * 1e6:6.0f} µs per refusal",
                  flush=True)
    await store.close()
    print(f"\n{args.refusals:,} refused holds per run in waves of {args.wave}, {args.rounds} rounds, in turn; medians:")
    for name, runs in rows.items():
        print(f"  {name:16} replica {statistics.median(r[0] for r in runs) * 1e6:6.0f} µs, "
              f"mariadbd {statistics.median(r[1] for r in runs) * 1e6:6.0f} µs per refused hold")
    saved = [a[0] - b[0] for a, b in zip(rows["with the ledger"], rows["without"])]
    print(f"  the ledger's share: replica {statistics.median(saved) * 1e6:.0f} µs per refused hold (median of the pairs)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--refusals", type=int, default=4000)
    parser.add_argument("--wave", type=int, default=256, help="refusals in flight at once")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args(argv)
    with bench_database(args.sqlite, Path(tempfile.mkdtemp(prefix="encore-bench-refusals-"))) as db_url:
        asyncio.run(run(db_url, args))


if __name__ == "__main__":
    main()
