"""Fault runs during a sale: each fault injected in turn while buyers join, hold and pay, then audited.

    make bench-faults                               # = python -m loadtest.faults
    python -m loadtest.faults --faults store,block  # some of them
    python -m loadtest.faults --sections 3 --buyers 16   # a small hall while developing

One run, holding /tmp/encore-service.lock (one service on the machine):

1. starts a private MariaDB (its own datadir and port, never the machine's on 3306: this one
   gets killed), creates the members and their session tokens (loadtest/sellout.py);
2. starts the service on it (``encore serve``, harness/service.py), and a bounded crowd of
   async buyers: each joins the queue, reads the seat map, holds 1–2 seats, pays (a share
   walks away, so holds stay live across the faults) and reads its booking until confirmed;
3. in turn: kill -9 a seat block's worker, an ingress replica, the queue actor; kill -9
   MariaDB for ``--store-down`` seconds and start it again; kill -9 every process of the
   service and start it again on the same database (harness/service.py);
4. after each fault, with the buyers paused: the audit. Every confirmation a buyer saw is
   confirmed in the store with its seats; no seat is in two live (held or confirmed)
   bookings; the seat map equals the store; every hold a buyer saw kept its deadline (the
   store's is the one the buyer was given; none expired before it, none still held after
   it); every booking's status has its event in the log.

Printed per fault: the requests that failed (5xx or no answer) grouped by status and
``code``, and the seconds from the fault until service was back (the first hold answered
after the last failure). ``--report`` writes the figures as markdown (docs/bench/faults.md).
Load goes to 127.0.0.1 only, bounded by ``--buyers`` and the phases' timeouts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pymysql

from harness.service import (
    kill_processes, one_service_at_a_time, restart_service, service_processes, start_service, stop_service,
)
from loadtest import sellout
from loadtest.sellout import audit, create_database, create_members, log, migrate, write_sessions

ROOT = Path(__file__).resolve().parents[1]
FAULTS = ("block", "replica", "queue", "store", "service")
REQUEST_TIMEOUT_S = 10.0
BACK_WITHIN_MAX_S = 120.0  # a fault whose service is not back by then is reported so
AUDIT_TRIES = 8


# ---- a MariaDB of our own, to kill

class PrivateMariaDB:
    """``mariadbd`` on its own port and datadir, started and killed by this run only."""

    def __init__(self, folder: Path, port: int):
        self.folder, self.port = folder, port
        self.datadir = folder / "data"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}"

    def install(self) -> None:
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}", "--bind-address=127.0.0.1",
             f"--socket={self.folder}/mysqld.sock", f"--pid-file={self.folder}/mysqld.pid", "--user=root",
             "--skip-grant-tables", "--skip-name-resolve", "--innodb-buffer-pool-size=128M", "--max-connections=500",
             f"--log-error={self.folder}/error.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=1).close()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.2)
        raise RuntimeError(f"the private MariaDB did not answer; see {self.folder}/error.log")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


# ---- the buyers

@dataclass
class Records:
    requests: list[tuple[float, float, str, int, str]] = field(default_factory=list)  # start, end, route, status, code
    confirmed: dict[str, list[int]] = field(default_factory=dict)
    holds: dict[str, float] = field(default_factory=dict)  # booking id → the deadline its buyer was given

    def failures(self, since: float, until: float) -> list[tuple[float, float, str, int, str]]:
        return [r for r in self.requests if since <= r[0] < until and (r[3] == 0 or r[3] >= 500)]


class Crowd:
    """``buyers`` people at a time, each a session from ``sessions``; paused for the audits."""

    def __init__(self, url: str, sessions: list[str], buyers: int, abandon: float, records: Records):
        self.url, self.sessions, self.buyers, self.abandon, self.records = url, sessions, buyers, abandon, records
        self.running = asyncio.Event()
        self.stopping = False
        self.in_flight = 0
        self.seats = 0

    async def request(self, http: httpx.AsyncClient, method: str, path: str, route: str, **kwargs) -> httpx.Response | None:
        await self.running.wait()  # paused for an audit: between requests, never inside one
        started = time.time()
        self.in_flight += 1
        try:
            answer = await http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            self.records.requests.append((started, time.time(), route, 0, type(error).__name__))
            return None
        finally:
            self.in_flight -= 1
        code = ""
        if answer.status_code >= 400:
            try:
                code = answer.json().get("code", "")
            except ValueError:
                code = "not_json"
        self.records.requests.append((started, time.time(), route, answer.status_code, code))
        return answer

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=self.buyers * 2, max_keepalive_connections=self.buyers * 2)
        async with httpx.AsyncClient(base_url=self.url, timeout=REQUEST_TIMEOUT_S, limits=limits) as http:
            await asyncio.gather(*(self.buyer(http, n) for n in range(self.buyers)))

    async def buyer(self, http: httpx.AsyncClient, number: int) -> None:
        rng = random.Random(number)
        people = iter(self.sessions[number :: self.buyers])
        token, admission = next(people), None
        while not self.stopping:
            auth = {"Authorization": f"Bearer {token}"}
            if admission is None:
                admission = await self.admitted(http, auth)
                if admission is None:
                    await asyncio.sleep(0.5)
                    continue
            answer = await self.request(http, "GET", "/api/seats", "GET /api/seats")
            if answer is None or answer.status_code != 200:
                await asyncio.sleep(0.5)
                continue
            free = [i for i, state in enumerate(answer.json()["status"]) if state == "A"]
            if not free:
                return
            anchor = rng.choice(free)
            seats = [anchor] + ([anchor + 1] if anchor + 1 in free and rng.random() < 0.5 and (anchor + 1) % 50 else [])
            held = await self.hold(http, {**auth, "X-Admission-Token": admission}, seats)
            if held == "again":
                await asyncio.sleep(0.5)
                continue
            if held is not None:
                if rng.random() >= self.abandon:
                    await self.pay(http, {**auth, "X-Admission-Token": admission}, held)
                token, admission = next(people, None), None
                if token is None:
                    return
            await asyncio.sleep(rng.uniform(0.1, 0.4))

    async def admitted(self, http: httpx.AsyncClient, auth: dict) -> str | None:
        answer = await self.request(http, "POST", "/api/queue", "POST /api/queue", headers=auth)
        for _ in range(40):
            if answer is None or answer.status_code != 200:
                return None
            body = answer.json()
            if body["state"] == "admitted":
                return body["admission_token"]
            await asyncio.sleep(0.25)
            answer = await self.request(http, "GET", "/api/queue", "GET /api/queue", headers=auth,
                                        params={"ticket": body["ticket"]})
        return None

    async def hold(self, http: httpx.AsyncClient, headers: dict, seats: list[int]):
        """The booking on a 201; ``None`` when lost; ``"again"`` after a failure (retried with
        the same key, as a browser's retry would, so an answer lost in a fault is not a second hold)."""
        headers = {**headers, "Idempotency-Key": uuid.uuid4().hex}
        for _ in range(3):
            answer = await self.request(http, "POST", "/api/holds", "POST /api/holds", headers=headers, json={"seat_ids": seats})
            if answer is not None and answer.status_code == 201:
                booking = answer.json()
                self.records.holds[booking["booking_id"]] = datetime.fromisoformat(booking["expires_at"]).timestamp()
                return booking
            if answer is not None and answer.status_code < 500 and answer.json().get("code") != "idempotency_in_flight":
                return None
            await asyncio.sleep(1.0)
        return "again"

    async def pay(self, http: httpx.AsyncClient, headers: dict, held: dict) -> None:
        booking_id = held["booking_id"]
        payment = await self.request(http, "POST", f"/api/bookings/{booking_id}/payments", "POST payments",
                                     headers={**headers, "Idempotency-Key": uuid.uuid4().hex}, json={"provider": "mockpay"})
        if payment is None or payment.status_code != 201:
            return
        await self.request(http, "POST", payment.json()["redirect_url"], "POST checkout", json={"result": "success"})
        for attempt in range(10):
            answer = await self.request(http, "GET", f"/api/bookings/{booking_id}", "GET booking",
                                        headers={"Authorization": headers["Authorization"]})
            if answer is not None and answer.status_code == 200:
                booking = answer.json()
                if booking["status"] == "confirmed":
                    self.records.confirmed[booking_id] = booking["seat_ids"]
                    return
                if booking["status"] != "held":
                    return
            await asyncio.sleep(0.3 * (attempt + 1))


# ---- the faults

def kill_one(service_pid: int, command_start: str) -> str:
    """SIGKILL one process of the service whose command line starts with ``command_start``."""
    found = [p for p in service_processes(service_pid) if p.command.startswith(command_start)]
    if not found:
        raise RuntimeError(f"no process of the service starts with {command_start!r}")
    victim = random.choice(found)
    os.kill(victim.pid, signal.SIGKILL)
    return f"pid {victim.pid} ({victim.command[:60].strip()})"


@dataclass
class Run:
    service: object
    mariadb: PrivateMariaDB
    work: Path
    store_down_s: float

    def inject(self, fault: str) -> str:
        pid = self.service.process.pid
        if fault == "block":
            return kill_one(pid, "ray::SeatBlockActor")
        if fault == "replica":
            return kill_one(pid, "ray::ServeReplica:encore:encore-ingress")
        if fault == "queue":
            return kill_one(pid, "ray::QueueActor")
        if fault == "store":
            self.mariadb.kill()
            time.sleep(self.store_down_s)
            self.mariadb.start()
            return f"mariadbd killed, started again after {self.store_down_s:.0f} s"
        if fault == "service":
            marks = service_processes(pid)
            kill_processes(marks)
            self.service.process.wait(10)
            self.service = restart_service(self.service, self.work / f"service-{int(time.time())}.log")
            return f"{len(marks)} processes killed; `encore serve` started again"
        raise ValueError(fault)


def back_after(records: Records, fault_at: float, until: float) -> tuple[float, int]:
    """Seconds from the fault until the first hold answered (won or lost) after the last failure,
    and how many requests failed in between."""
    failed = records.failures(fault_at, until)
    last_failure = max((r[1] for r in failed), default=fault_at)
    answered = [r[1] for r in records.requests
                if r[2] == "POST /api/holds" and r[0] >= last_failure and r[3] in (201, 409)]
    return (min(answered, default=float("inf")) - fault_at, len(failed))


# ---- the audit beyond sellout.audit

def audit_faults(database: str, records: Records, work: Path, url: str) -> dict:
    """sellout.audit's checks, plus live bookings, deadlines and the log, read from MariaDB."""
    out = work / "out"
    out.mkdir(exist_ok=True)
    (out / "confirmed-faults.txt").write_text(
        "".join(f"{booking},{' '.join(map(str, seats))}\n" for booking, seats in records.confirmed.items()))
    for _ in range(AUDIT_TRIES):  # a hold expiring between reading the map and the store: read again
        time.sleep(1.5)
        status = httpx.get(f"{url}/api/seats", timeout=30).json()["status"]
        found = audit(database, status, out)
        if found["map_agrees_sold"] and found["map_agrees_held"]:
            break
    now = time.time()
    with pymysql.connect(**sellout.server_args(), database=database) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT bs.seat_id, COUNT(*) FROM booking_seats bs JOIN bookings b ON b.booking_id = bs.booking_id "
            "WHERE b.status IN ('held', 'confirmed') GROUP BY bs.seat_id HAVING COUNT(*) > 1")
        twice_live = cursor.fetchall()
        cursor.execute("SELECT booking_id, status, expires_at FROM bookings")
        bookings = {b: (status, expires_at) for b, status, expires_at in cursor.fetchall()}
        cursor.execute("SELECT booking_id, type, at FROM booking_log WHERE booking_id IS NOT NULL")
        events: dict[str, dict[str, float]] = {}
        for booking_id, kind, at in cursor.fetchall():
            events.setdefault(booking_id, {})[kind] = at
    deadline_moved = [b for b, deadline in records.holds.items() if b in bookings and abs(bookings[b][1] - deadline) > 0.002]  # shown in ms
    expired_early = [b for b, (status, deadline) in bookings.items()
                     if status == "expired" and events.get(b, {}).get("hold_expired", deadline) < deadline]
    held_past_deadline = [b for b, (status, deadline) in bookings.items() if status == "held" and deadline < now - 2]
    event_of_status = {"confirmed": "booking_confirmed", "expired": "hold_expired", "cancelled": "hold_cancelled",
                       "payment_failed": "payment_failed", "refunded": "payment_refunded", "held": "hold_created"}
    unlogged = [b for b, (status, _) in bookings.items()
                if "hold_created" not in events.get(b, {}) or event_of_status[status] not in events.get(b, {})]
    return {
        "confirmations_seen": found["client_confirmed_seen"],
        "confirmations_missing_in_store": found["client_confirmed_missing_in_store"] + found["client_confirmed_wrong_seats"],
        "seats_in_two_live_bookings": len(twice_live),
        "map_equals_store": found["map_agrees_sold"] and found["map_agrees_held"],
        "map_vs_store": {"sold": [found["map_sold"], found["seats_sold_in_store"]], "held": found["map_held_vs_store_held"]},
        "holds_seen": len(records.holds),
        "deadlines_moved": len(deadline_moved),
        "expired_before_deadline": len(expired_early),
        "held_past_deadline": len(held_past_deadline),
        "bookings": len(bookings),
        "bookings_without_their_events": len(unlogged),
        "bookings_by_status": found["bookings_by_status"],
    }


def audit_passed(found: dict) -> bool:
    return (found["confirmations_missing_in_store"] == 0 and found["seats_in_two_live_bookings"] == 0
            and found["map_equals_store"] and found["deadlines_moved"] == 0 and found["expired_before_deadline"] == 0
            and found["held_past_deadline"] == 0 and found["bookings_without_their_events"] == 0)


# ---- the run

def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"some of {','.join(FAULTS)}, in this order")
    parser.add_argument("--sections", type=int, default=15)
    parser.add_argument("--buyers", type=int, default=24, help="buyers at a time")
    parser.add_argument("--abandon", type=float, default=0.2, help="share of won holds never paid (live across faults)")
    parser.add_argument("--hold-seconds", type=float, default=90)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=15, help="seconds of sale before the first fault")
    parser.add_argument("--after", type=float, default=10, help="seconds of sale watched after service is back")
    parser.add_argument("--store-down", type=float, default=10, help="seconds MariaDB stays down")
    parser.add_argument("--mariadb-port", type=int, default=13306)
    parser.add_argument("--report", type=Path, default=None, help="write the figures as markdown here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: the finally below still ends MariaDB
    faults = [f for f in args.faults.split(",") if f]
    assert set(faults) <= set(FAULTS), f"faults are some of {FAULTS}"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    work = ROOT / "reports" / f"faults-{stamp}"
    work.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="encore-faults-mariadb-"))
    mariadb = PrivateMariaDB(folder, args.mariadb_port)
    log(f"private MariaDB on 127.0.0.1:{args.mariadb_port} in {folder}")
    sellout.MYSQL_SERVER = mariadb.url  # sellout's helpers (members, sessions, audit) read this server
    database = "encore_faults"
    results: list[dict] = []
    service = None
    try:
        mariadb.install()
        mariadb.start()
        db_url = create_database(database)
        migrate(db_url)
        members = args.sections * 1000 + 2000
        create_members(database, members)
        log("waiting for the service lock (/tmp/encore-service.lock) …")
        with one_service_at_a_time():
            service = start_service(db_url, work / "service.log", sections=args.sections, hold_seconds=args.hold_seconds,
                                    ingress_replicas=args.replicas, queue_admit_per_second=2000, queue_max_active=5000,
                                    admission_seconds=3600, rate_limit_writes_per_minute=100_000)
            write_sessions(database, service.env["ENCORE_SECRET_KEY"], work / "sessions.csv")
            sessions = [line.split(",", 1)[1] for line in (work / "sessions.csv").read_text().splitlines()]
            run = Run(service, mariadb, work, args.store_down)
            records = Records()
            results = asyncio.run(sale(run, faults, args, sessions, records, database))
            service = run.service
    finally:
        if service is not None:
            stop_service(service.process)
        mariadb.kill()
        shutil.rmtree(folder, ignore_errors=True)
    text = render(results, args)
    print(text, flush=True)
    if args.report:
        args.report.write_text(text)
        log(f"report: {args.report}")
    return 0 if all(r["passed"] for r in results) else 1


async def sale(run: Run, faults: list[str], args, sessions: list[str], records: Records, database: str) -> list[dict]:
    crowd = Crowd(run.service.url, sessions, args.buyers, args.abandon, records)
    crowd.running.set()
    buyers = asyncio.create_task(crowd.run())
    results = []
    log(f"sale: {args.buyers} buyers; {args.warmup:.0f} s before the first fault")
    await asyncio.sleep(args.warmup)
    for fault in faults:
        fault_at = time.time()
        what = await asyncio.to_thread(run.inject, fault)
        crowd.url = run.service.url
        log(f"{fault}: {what}")
        back, deadline = float("inf"), time.monotonic() + BACK_WITHIN_MAX_S
        while time.monotonic() < deadline:
            await asyncio.sleep(1)
            back, _ = back_after(records, fault_at, time.time())
            if back != float("inf") and time.time() - fault_at > back + args.after:
                break
        crowd.running.clear()
        while crowd.in_flight:
            await asyncio.sleep(0.2)
        ended = time.time()
        back, failed = back_after(records, fault_at, ended)
        by_code: dict[str, list] = {}  # "status code" → [count, the slowest of those answers in seconds]
        for started, answered, _, status, code in records.failures(fault_at, ended):
            seen = by_code.setdefault(f"{status} {code}".strip(), [0, 0.0])
            seen[0], seen[1] = seen[0] + 1, max(seen[1], answered - started)
        requests = sum(1 for r in records.requests if fault_at <= r[0] < ended)
        log(f"{fault}: {failed} of {requests} requests failed {dict(by_code)}; back after {back:.1f} s; auditing …")
        found = await asyncio.to_thread(audit_faults, database, records, run.work, run.service.url)
        results.append({"fault": fault, "what": what, "requests": requests, "failed": failed, "by_code": dict(by_code),
                        "back_s": back, "audit": found, "passed": audit_passed(found) and back != float("inf")})
        log(f"{fault}: audit {'passed' if results[-1]['passed'] else 'FAILED'} {found}")
        crowd.running.set()
        await asyncio.sleep(5)
    crowd.stopping = True
    crowd.running.set()
    buyers.cancel()
    return results


def render(results: list[dict], args) -> str:
    at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "python -m loadtest.faults " + " ".join(sys.argv[1:]) if sys.argv[1:] else "make bench-faults"
    lines = [
        "# Fault runs during a sale", "",
        f"`{command}`, {at}: {args.sections * 1000:,} seats, {args.buyers} buyers at a time (join, hold 1–2 seats, "
        f"pay; {args.abandon:.0%} of holds left to expire, holds of {args.hold_seconds:.0f} s), {args.replicas} ingress "
        f"replicas, a private MariaDB. Each fault in turn during the sale; failed = answered 5xx or not at all; "
        "(≤ s: the slowest of those answers); back = from the fault until the first hold answered after the last failure. The audit runs after "
        "each fault with the buyers paused, over everything sold so far.", "",
        "| fault | requests | failed | by status and code | back after | audit |",
        "|---|---:|---:|---|---:|---|",
    ]
    for r in results:
        codes = ", ".join(f"{k} ×{n} (≤ {slowest:.2f} s)" for k, (n, slowest) in sorted(r["by_code"].items())) or "—"
        lines.append(f"| {r['fault']}: {r['what']} | {r['requests']:,} | {r['failed']:,} | {codes} | "
                     f"{r['back_s']:.1f} s | {'passed' if r['passed'] else '**failed**'} |")
    lines += ["", "The audit after each fault:", "",
              "| fault | confirmations seen / missing in store | seats in two live bookings | map = store "
              "(sold, held: map/store) | holds seen / deadline moved / expired early / held past it | bookings / "
              "without their events |",
              "|---|---|---:|---|---|---|"]
    for r in results:
        a = r["audit"]
        lines.append(
            f"| {r['fault']} | {a['confirmations_seen']:,} / {a['confirmations_missing_in_store']} | "
            f"{a['seats_in_two_live_bookings']} | {'yes' if a['map_equals_store'] else '**no**'} "
            f"({a['map_vs_store']['sold'][0]}/{a['map_vs_store']['sold'][1]}, "
            f"{a['map_vs_store']['held'][0]}/{a['map_vs_store']['held'][1]}) | {a['holds_seen']:,} / {a['deadlines_moved']} / "
            f"{a['expired_before_deadline']} / {a['held_past_deadline']} | {a['bookings']:,} / "
            f"{a['bookings_without_their_events']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
