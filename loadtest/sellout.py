"""The sellout benchmark: the whole service on MariaDB, sold out by a locust crowd, then audited.

    make bench                                   # = python -m loadtest.sellout (also: encore bench)
    python -m loadtest.sellout --sections 2      # a small hall (2,000 seats) while developing
    python -m loadtest.sellout --workers 2       # locust master + 2 worker processes
    python -m loadtest.sellout --report-dir docs/bench   # the report that is committed

What one run does, in order, holding /tmp/encore-service.lock (one service on the machine):

1. creates a throwaway MariaDB database, migrates it, and bulk-inserts the members with one
   precomputed argon2id hash of a shared password (signing 100k people up through the API
   would cost the 2-core machine minutes of hashing);
2. starts the service exactly as an operator does (``encore serve`` as a subprocess, the
   helpers of tests/e2e/conftest.py), with the queue wide open so admission is not the
   bottleneck, and samples the memory and CPU of the whole service (its process group: Ray,
   actors, HAProxy), of mariadbd and of locust every second;
3. measures what the service costs at rest (CPU by process, no load), then the ceilings: the constant route ``/static-ceiling`` and the full seat map, each
   alone and as fast as locust can ask, through the same front;
4. runs the sellout: headless locust (``Buyer``, ``Reader``, ``StaticProbe`` of
   loadtest/locustfile.py) until every seat reads S, or the time limit passes;
5. measures the static ceiling again, on the sold-out (quiet) service;
6. audits the store directly in MariaDB: no seat sold twice, the store agrees with the final
   seat map, every booking a client saw confirmed is confirmed in the store;
7. stops the service and everything it started, drops the database, and writes the report
   (loadtest/report.py): report.md, PNG plots and summary.json in the report folder.

Everything is bounded: the sellout by ``--time-limit``, every phase by a timeout, and the
service is stopped in a ``finally``. Load goes to 127.0.0.1 only.

Locust's distributed mode: ``--workers N`` starts one ``locust --master`` (which aggregates
the stats, writes the CSVs and watches for the sellout) and N ``locust --worker`` processes
that run the users; without it one locust process does everything. By hand, the same is

    locust -f loadtest/locustfile.py --master --headless --expect-workers 2 -u 800 -r 50 \\
           -H http://127.0.0.1:8000 --csv out/sellout --csv-full-history Buyer Reader StaticProbe
    locust -f loadtest/locustfile.py --worker --master-host 127.0.0.1     # twice, anywhere

On one 2-core machine workers only help while locust itself is the bottleneck (they take
cores from the service); on a second machine they add load the service has to absorb.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import psutil

from harness import mysql
from harness.service import end_group
from persistence import migrate

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
PASSWORD = "bench-password-1"
PREFIX = "bench"
PHASE_GRACE_S = 90  # beyond a phase's run time before its locust is stopped by force


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


# ---- the database

def create_members(database: str, count: int) -> float:
    """``bench0 … bench{count-1}``, all with one argon2id hash of PASSWORD; returns the seconds it took."""
    from api.auth import HASHER

    started = time.monotonic()
    password_hash = HASHER.hash(PASSWORD)
    now = time.time()
    with mysql.connect(database) as connection, connection.cursor() as cursor:
        for first in range(0, count, 5000):
            cursor.executemany(
                "INSERT INTO members (username, nickname, password_hash, role, created_at) VALUES (%s,%s,%s,'user',%s)",
                [(f"{PREFIX}{i}", f"{PREFIX}{i}", password_hash, now) for i in range(first, min(count, first + 5000))],
            )
        connection.commit()
    return time.monotonic() - started


def write_sessions(database: str, secret_key: str, path: Path) -> None:
    """A session token for every member, as if each had logged in while waiting for the sale to open.

    Signed with the service's own key and code (api.auth.Tokens), so the service cannot tell them
    from the tokens its login hands out. Only later persons of a locust user use them; the first
    logs in for real, so logins (argon2id) are still part of the load, at the ramp-up.
    """
    from api.auth import Tokens
    from encore.settings import Settings

    defaults = Settings(secret_key=secret_key, db_url="sqlite:///unused")
    tokens = Tokens(secret_key, defaults.token_seconds, defaults.admission_seconds)
    with mysql.connect(database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id, username FROM members WHERE role = 'user'")
        rows = cursor.fetchall()
    with open(path, "w") as file:
        for member_id, username in rows:
            file.write(f"{username},{tokens.session(member_id, 'user')}\n")


# ---- sampling memory and CPU of the service, MariaDB and locust

class Sampler(threading.Thread):
    """Every second: RSS (and every 5 s PSS) and CPU of three groups of processes, into resources.csv."""

    def __init__(self, path: Path, service_pid: int):
        super().__init__(daemon=True, name="sampler")
        self.path = path
        self.service_pid = service_pid
        self.locust_pids: set[int] = set()
        self.stopping = threading.Event()
        self.peak = {"service_rss": 0, "service_pss": 0, "mariadb_rss": 0, "total_rss": 0, "total_pss": 0, "service_processes": 0}
        self._known: dict[int, psutil.Process] = {}
        self._cpu: dict[int, float] = {}
        self.cpu_seconds = {"service": 0.0, "mariadb": 0.0, "locust": 0.0}
        self._rescanned = 0.0
        self.began = time.time()
        self._kinds: dict[int, str] = {}
        self.kinds_path = path.with_name("by-process.jsonl")  # per second: CPU seconds and RSS by kind of service process

    def service_processes(self) -> list[psutil.Process]:
        """The `encore serve` process, its descendants, and anything left in its session (HAProxy, Ray daemons)."""
        found: dict[int, psutil.Process] = {}
        try:
            root = psutil.Process(self.service_pid)
            found[root.pid] = root
            for child in root.children(recursive=True):
                found[child.pid] = child
        except psutil.NoSuchProcess:
            pass
        now = time.monotonic()
        if now - self._rescanned > 5:
            self._rescanned = now
            for process in psutil.process_iter(["pid"]):
                try:
                    if os.getsid(process.pid) == self.service_pid:
                        found[process.pid] = process
                except (ProcessLookupError, PermissionError, psutil.Error):
                    pass
            self._session = set(found)
        for pid in getattr(self, "_session", set()):
            if pid not in found and psutil.pid_exists(pid):
                try:
                    found[pid] = psutil.Process(pid)
                except psutil.NoSuchProcess:
                    pass
        return list(found.values())

    def _mariadb(self) -> list[psutil.Process]:
        return [p for p in psutil.process_iter(["name"]) if p.info["name"] in ("mariadbd", "mysqld")]

    def _locust(self) -> list[psutil.Process]:
        found = []
        for pid in list(self.locust_pids):
            try:
                process = psutil.Process(pid)
                found.append(process)
                found.extend(process.children(recursive=True))
            except psutil.NoSuchProcess:
                self.locust_pids.discard(pid)
        return found

    def kind(self, process: psutil.Process) -> str:
        """A short name for a service process: ray::ServeReplica, haproxy, ray::SeatBlockActor, raylet …"""
        kind = self._kinds.get(process.pid)
        if kind is None or kind.startswith("ray::IDLE"):
            try:
                argv = process.cmdline()
                first = argv[0] if argv else process.name()
            except psutil.Error:
                return "gone"
            if first.startswith("ray::"):
                kind = first.split(":")[2].split(".")[0] if first.count(":") >= 2 else first
                kind = "ray::" + kind.split(" ")[0]
            elif "python" in os.path.basename(first) and len(argv) > 1:
                script = next((a for a in argv[1:] if not a.startswith("-")), argv[1])
                kind = "python " + os.path.basename(script)
            else:
                kind = os.path.basename(first.split(" ")[0])
            self._kinds[process.pid] = kind
        return kind

    def _measure(self, processes, with_pss: bool, kinds: dict | None = None, rss_kinds: dict | None = None) -> tuple[int, int, float]:
        rss = pss = 0
        cpu_delta = 0.0
        for process in processes:
            try:
                pid = process.pid
                if pid not in self._known:
                    self._known[pid] = process
                process = self._known[pid]
                with process.oneshot():
                    own_rss = process.memory_info().rss
                    times = process.cpu_times()
                rss += own_rss
                if rss_kinds is not None:
                    kind = self.kind(process)
                    rss_kinds[kind] = rss_kinds.get(kind, 0) + own_rss
                if with_pss:
                    pss += process.memory_full_info().pss
                total = times.user + times.system
                if pid not in self._cpu:  # a process born since sampling began counts from zero
                    self._cpu[pid] = total if process.create_time() < self.began else 0.0
                cpu_delta += total - self._cpu[pid]
                if kinds is not None and total > self._cpu[pid]:
                    kind = self.kind(process)
                    kinds[kind] = kinds.get(kind, 0.0) + total - self._cpu[pid]
                self._cpu[pid] = total
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass
        return rss, pss, cpu_delta

    def run(self) -> None:
        with open(self.path, "w") as out, open(self.kinds_path, "w") as kinds_out:
            out.write("t,dt,service_rss,service_pss,mariadb_rss,locust_rss,service_cpu,mariadb_cpu,locust_cpu,machine_cpu,service_processes\n")
            psutil.cpu_percent()
            tick = 0
            last = time.monotonic()
            while not self.stopping.wait(1.0):
                tick += 1
                now = time.monotonic()
                dt, last = now - last, now
                with_pss = tick % 5 == 1
                service = self.service_processes()
                kinds: dict[str, float] = {}
                rss_kinds: dict[str, int] = {}
                s_rss, s_pss, s_cpu = self._measure(service, with_pss, kinds, rss_kinds)
                kinds_out.write(json.dumps({"t": round(time.time(), 1), "cpu": {k: round(v, 3) for k, v in kinds.items()},
                                            "rss": rss_kinds}) + "\n")
                kinds_out.flush()
                m_rss, _, m_cpu = self._measure(self._mariadb(), False)
                l_rss, _, l_cpu = self._measure(self._locust(), False)
                machine = psutil.cpu_percent()
                self.cpu_seconds["service"] += s_cpu
                self.cpu_seconds["mariadb"] += m_cpu
                self.cpu_seconds["locust"] += l_cpu
                out.write(f"{time.time():.1f},{dt:.3f},{s_rss},{s_pss if with_pss else ''},{m_rss},{l_rss},{s_cpu:.2f},{m_cpu:.2f},{l_cpu:.2f},{machine:.1f},{len(service)}\n")
                out.flush()
                peak = self.peak
                peak["service_rss"] = max(peak["service_rss"], s_rss)
                peak["mariadb_rss"] = max(peak["mariadb_rss"], m_rss)
                peak["total_rss"] = max(peak["total_rss"], s_rss + m_rss)
                peak["service_processes"] = max(peak["service_processes"], len(service))
                if with_pss:
                    peak["service_pss"] = max(peak["service_pss"], s_pss)
                    peak["total_pss"] = max(peak["total_pss"], s_pss + m_rss)


# ---- running locust

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_locust(name: str, classes: list[str], users: int, spawn_rate: float, run_seconds: int, url: str,
               work: Path, env: dict, workers: int, sampler: Sampler | None) -> dict:
    """One headless locust run (master + workers with ``workers``); returns its phase record."""
    prefix = work / "locust" / name
    prefix.parent.mkdir(parents=True, exist_ok=True)
    common = ["-f", str(LOCUSTFILE), "-H", url]
    head = [
        sys.executable, "-m", "locust", *common, "--headless", "-u", str(users), "-r", str(spawn_rate),
        "--run-time", f"{run_seconds}s", "--stop-timeout", "5", "--csv", str(prefix), "--csv-full-history",
        "--only-summary", "--loglevel", "INFO", *classes,
    ]
    processes: list[subprocess.Popen] = []
    logs = []
    started = time.time()
    if workers:
        port = free_port()
        master_cmd = head + ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                             "--expect-workers", str(workers), "--expect-workers-max-wait", "60"]
        worker_cmd = [sys.executable, "-m", "locust", *common, "--worker", "--master-host", "127.0.0.1",
                      "--master-port", str(port), "--loglevel", "INFO", *classes]
        commands = [("master", master_cmd)] + [(f"worker{i}", worker_cmd) for i in range(workers)]
    else:
        commands = [("locust", head)]
    try:
        for label, command in commands:
            log_file = open(work / "locust" / f"{name}-{label}.log", "w")
            logs.append(log_file)
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            processes.append(process)
            if sampler is not None:
                sampler.locust_pids.add(process.pid)
        lead = processes[0]
        deadline = time.monotonic() + run_seconds + PHASE_GRACE_S + (60 if workers else 0)
        while lead.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
        forced = lead.poll() is None
        if forced:
            log(f"{name}: locust did not stop in time; stopping it")
    finally:
        for process in processes:
            _stop(process)
        for log_file in logs:
            log_file.close()
    return {"name": name, "start": started, "end": time.time(), "users": users, "classes": classes,
            "workers": workers, "exit_code": processes[0].returncode, "forced_stop": forced}


def _stop(process: subprocess.Popen) -> None:
    end_group(process, grace_seconds=30)  # locust writes its CSVs and summary on SIGTERM
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


PROFILED = {"replica": "ServeReplica", "block": "SeatBlockActor", "queue": "QueueActor"}  # file tag: process title


def profile_processes(service_pid: int, work: Path, delay: float, seconds: int, stop: threading.Event) -> None:
    """py-spy (if installed) on every ingress replica, seat block and the queue actor for ``seconds``,
    ``delay`` into the sale; GIL holders only, so the samples are where each one's Python thread
    spends its CPU. The blocks are many: they are sampled at a lower rate, so py-spy itself takes
    little from the sale."""
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists() or stop.wait(delay):
        return
    targets = []
    for process in psutil.Process(service_pid).children(recursive=True):
        try:
            title = " ".join(process.cmdline()[:1])
        except psutil.Error:
            continue
        tag = next((tag for tag, name in PROFILED.items() if f"::{name}" in title), None)
        if tag is not None:
            targets.append((tag, process.pid))
    runs = [subprocess.Popen([str(py_spy), "record", "--pid", str(pid), "--duration", str(seconds),
                              "--rate", "50" if tag == "block" else "200", "--gil", "--nonblocking", "--format", "raw",
                              "--output", str(work / f"py-spy-{tag}-{pid}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for tag, pid in targets]
    for run in runs:
        try:
            run.wait(timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            run.kill()


def progress(work: Path, phase_start: float, stop: threading.Event, seats: int) -> None:
    """Print the seats sold every 10 seconds while the sellout runs."""
    path = work / "out" / "seats.csv"
    while not stop.wait(10):
        try:
            last = path.read_text().strip().splitlines()[-1].split(",")
            log(f"  {time.time() - phase_start:5.0f} s  sold {int(last[3]):,}/{seats:,}  held {int(last[2]):,}")
        except (OSError, IndexError, ValueError):
            pass


# ---- the audit

def wait_until_no_live_holds(database: str, seconds: float) -> int:
    """Holds still live when the sale stops expire within ``hold_seconds``: compared while they
    do, the map (read at one moment) and the store (read at another) disagree about them.
    Returns how many were still live when ``seconds`` ran out (0: none)."""
    deadline = time.monotonic() + seconds
    while True:
        with mysql.connect(database) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM bookings WHERE status = 'held'")
            live = cursor.fetchone()[0]
        if live == 0 or time.monotonic() > deadline:
            return live
        time.sleep(1)


def audit(database: str, status: str, out: Path) -> dict:
    """Read MariaDB directly: double sales, agreement with the seat map and with what clients saw."""
    with mysql.connect(database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT status, COUNT(*) FROM bookings GROUP BY status")
        bookings = dict(cursor.fetchall())
        cursor.execute("SELECT status, COUNT(*) FROM payments GROUP BY status")
        payments = dict(cursor.fetchall())
        cursor.execute("SELECT type, COUNT(*) FROM booking_log GROUP BY type")
        events = dict(cursor.fetchall())
        cursor.execute(
            "SELECT bs.seat_id, COUNT(*) FROM booking_seats bs JOIN bookings b ON b.booking_id = bs.booking_id "
            "WHERE b.status = 'confirmed' GROUP BY bs.seat_id HAVING COUNT(*) > 1"
        )
        doubly_sold = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT bs.seat_id, b.booking_id FROM booking_seats bs JOIN bookings b ON b.booking_id = bs.booking_id "
            "WHERE b.status = 'confirmed'"
        )
        sold_by = dict(cursor.fetchall())
        cursor.execute(
            "SELECT c.seat_id, c.booking_id, b.status FROM seat_claims c LEFT JOIN bookings b ON b.booking_id = c.booking_id"
        )
        claims = {seat: (booking, state) for seat, booking, state in cursor.fetchall()}
        cursor.execute("SELECT booking_id, status FROM bookings")
        booking_status = dict(cursor.fetchall())
        cursor.execute("SELECT COUNT(*) FROM members")
        members = cursor.fetchone()[0]

    claims_mismatch = [s for s, booking in sold_by.items() if claims.get(s, (None,))[0] != booking]
    claims_orphan = [s for s, (booking, state) in claims.items() if state not in ("held", "confirmed")]
    map_sold = {i for i, c in enumerate(status) if c == "S"}
    map_held = {i for i, c in enumerate(status) if c == "H"}
    store_held = {s for s, (_, state) in claims.items() if state == "held"}

    seen: dict[str, str] = {}
    for path in sorted(out.glob("confirmed-*.txt")):
        for line in path.read_text().splitlines():
            if line.strip():
                booking_id, _, seats = line.partition(",")
                seen[booking_id] = seats
    seen_not_confirmed = {b: booking_status.get(b) for b in seen if booking_status.get(b) != "confirmed"}
    seen_wrong_seats = [b for b, seats in seen.items()
                        if sorted(int(s) for s in seats.split()) != sorted(s for s, owner in sold_by.items() if owner == b)]
    return {
        "members": members,
        "bookings_by_status": bookings,
        "payments_by_status": payments,
        "log_events_by_type": events,
        "seats_sold_in_store": len(sold_by),
        "double_sales": len(doubly_sold),
        "doubly_sold_seats": doubly_sold[:50],
        "claims_disagree_with_confirmed": len(claims_mismatch),
        "claims_of_released_bookings": len(claims_orphan),
        "map_sold": len(map_sold),
        "map_held": len(map_held),
        "map_agrees_sold": map_sold == set(sold_by),
        "map_sold_not_in_store": len(map_sold - set(sold_by)),
        "store_sold_not_in_map": len(set(sold_by) - map_sold),
        "map_agrees_held": map_held == store_held,
        "map_held_vs_store_held": [len(map_held), len(store_held)],
        "client_confirmed_seen": len(seen),
        "client_confirmed_missing_in_store": len(seen_not_confirmed),
        "client_confirmed_missing_examples": dict(list(seen_not_confirmed.items())[:20]),
        "client_confirmed_wrong_seats": len(seen_wrong_seats),
    }


# ---- the run

def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest.sellout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", type=int, default=15, help="sections of 20 x 50 seats (15 = 15,000 seats)")
    parser.add_argument("--users", type=int, default=300, help="locust users in the sellout (buyers + readers + 1 probe)")
    parser.add_argument("--spawn-rate", type=float, default=30, help="users started per second (each buyer logs in once: argon2id)")
    parser.add_argument("--time-limit", type=float, default=480, help="seconds the sellout may take before it is stopped")
    parser.add_argument("--workers", type=int, default=0, help="run locust as a master and N worker processes")
    parser.add_argument("--contention", type=float, default=13, help="hold attempts per seat won to aim for")
    parser.add_argument("--abandon", type=float, default=0.01, help="share of won holds never paid (they expire)")
    parser.add_argument("--think", default="0.2,1.0", help="a buyer's pause between attempts, min,max seconds")
    parser.add_argument("--buyer-weight", type=int, default=4)
    parser.add_argument("--reader-weight", type=int, default=1)
    parser.add_argument("--hold-seconds", type=float, default=60, help="ENCORE_HOLD_SECONDS: short, so abandoned holds return within the run")
    parser.add_argument("--payment-failure-rate", type=float, default=0.1)
    parser.add_argument("--replicas", type=int, default=2,
                        help="ENCORE_INGRESS_REPLICAS; one per core (bench_http: two answer 25-35%% more reads than one "
                             "on 2 cores, now that the blocks are long-polled instead of asked every tick)")
    parser.add_argument("--members", type=int, default=0, help="members to pre-create (default: users + seats + 1000)")
    parser.add_argument("--ceiling-seconds", type=int, default=15, help="length of each ceiling measurement; 0 skips them")
    parser.add_argument("--ceiling-users", type=int, default=64)
    parser.add_argument("--idle-seconds", type=int, default=12, help="measure the service's CPU at rest this long first")
    parser.add_argument("--work-dir", type=Path, default=None, help="raw data (default: reports/sellout-<time>)")
    parser.add_argument("--report-dir", type=Path, default=None, help="report.md + PNGs (default: the work dir)")
    parser.add_argument("--profile-seconds", type=int, default=30,
                        help="py-spy the ingress replicas, seat blocks and queue actor for this long during the sale (0: no profile)")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database for inspection")
    parser.add_argument("--login-every-person", action="store_true",
                        help="every person logs in (argon2id) instead of only the first person of each locust user")
    parser.add_argument("--worker-niceness", type=int, default=0,
                        help="RAY_worker_niceness for the service: Ray starts its workers (replicas, actors, and so "
                             "HAProxy) at nice 15 by default, which loses every CPU contest against locust and "
                             "MariaDB on the same machine; -1 keeps Ray's default")
    parser.add_argument("--service-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an extra ENCORE_* setting for the service (repeatable)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from harness.service import one_service_at_a_time, start_service, stop_service

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    work = (args.work_dir or ROOT / "reports" / f"sellout-{stamp}").resolve()
    report_dir = (args.report_dir or work).resolve()
    out = work / "out"
    out.mkdir(parents=True, exist_ok=True)
    seats = args.sections * 20 * 50
    members = args.members or args.users + seats + 1000
    service_settings = {
        "sections": args.sections,
        "queue_admit_per_second": 2000,
        "queue_active_max": 5000,
        "admission_seconds": 3600,
        "rate_limit_writes_per_minute": 100_000,
        "payment_failure_rate": args.payment_failure_rate,
        "hold_seconds": args.hold_seconds,
        "ingress_replicas": args.replicas,
    }
    for item in args.service_env:
        name, _, value = item.partition("=")
        service_settings[name.removeprefix("ENCORE_").lower()] = value
    if args.worker_niceness >= 0:
        os.environ["RAY_worker_niceness"] = str(args.worker_niceness)  # start_service passes our environment on
    run = {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "args": {k: str(v) for k, v in vars(args).items()},
           "seats": seats, "members": members, "service_settings": service_settings, "phases": [],
           "ray_worker_niceness": os.environ.get("RAY_worker_niceness", "15 (Ray's default)"),
           "machine": {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                       "load_before": os.getloadavg()}}
    database = f"encore_bench_{stamp.replace('-', '_')}"
    log(f"sellout of {seats:,} seats; raw data in {work}")
    log("waiting for the service lock (/tmp/encore-service.lock) …")
    with one_service_at_a_time():
        db_url = mysql.create_database(database)
        service = sampler = None
        try:
            asyncio.run(migrate(db_url))
            run["members_insert_seconds"] = create_members(database, members)
            log(f"{members:,} members inserted in {run['members_insert_seconds']:.1f} s; starting the service …")
            started = time.monotonic()
            service = start_service(db_url, work / "service.log", **service_settings)
            run["service_start_seconds"] = time.monotonic() - started
            log(f"service healthy at {service.url} after {run['service_start_seconds']:.0f} s")
            sampler = Sampler(work / "resources.csv", service.process.pid)
            sampler.start()
            write_sessions(database, service.env["ENCORE_SECRET_KEY"], out / "sessions.csv")
            env = {
                **os.environ,
                "ENCORE_BENCH_OUT": str(out),
                "ENCORE_BENCH_PREFIX": PREFIX,
                "ENCORE_BENCH_PASSWORD": PASSWORD,
                "ENCORE_BENCH_MEMBERS": str(members),
                "ENCORE_BENCH_WORKERS": str(max(1, args.workers)),
                "ENCORE_BENCH_CONTENTION": str(args.contention),
                "ENCORE_BENCH_ABANDON": str(args.abandon),
                "ENCORE_BENCH_THINK": args.think,
                "ENCORE_BENCH_BUYER_WEIGHT": str(args.buyer_weight),
                "ENCORE_BENCH_READER_WEIGHT": str(args.reader_weight),
                "ENCORE_BENCH_SESSIONS": str(out / "sessions.csv"),
                "ENCORE_BENCH_LOGIN_EVERY": "1" if args.login_every_person else "0",
                "PYTHONUNBUFFERED": "1",
            }
            if args.idle_seconds:
                log(f"idle: {args.idle_seconds} s without load (what the service costs at rest)")
                idle_start = time.time()
                time.sleep(args.idle_seconds)
                run["phases"].append({"name": "idle", "start": idle_start, "end": time.time()})
            ceilings = [("ceiling-static", ["StaticCeiling"]), ("ceiling-seatmap", ["SeatMapCeiling"])]
            if args.ceiling_seconds:
                for name, classes in ceilings:
                    log(f"{name}: {args.ceiling_users} users, {args.ceiling_seconds} s")
                    run["phases"].append(run_locust(name, classes, args.ceiling_users, args.ceiling_users, args.ceiling_seconds,
                                                    service.url, work, env, args.workers, sampler))

            log(f"sellout: {args.users} users (+{args.spawn_rate}/s), stops when all {seats:,} seats read S or after {args.time_limit:.0f} s")
            stop_progress = threading.Event()
            phase_start = time.time()
            ticker = threading.Thread(target=progress, args=(work, phase_start, stop_progress, seats), daemon=True)
            ticker.start()
            if args.profile_seconds:
                threading.Thread(target=profile_processes, daemon=True, args=(
                    service.process.pid, work, min(90.0, args.time_limit / 3), args.profile_seconds, stop_progress)).start()
            try:
                run["phases"].append(run_locust("sellout", ["Buyer", "Reader", "StaticProbe"], args.users, args.spawn_rate,
                                                int(args.time_limit), service.url, work,
                                                {**env, "ENCORE_BENCH_STOP_AT_SELLOUT": "1"}, args.workers, sampler))
            finally:
                stop_progress.set()

            try:
                (work / "metrics.txt").write_text(httpx.get(f"{service.url}/metrics", timeout=30).text)
            except httpx.HTTPError:
                pass
            if args.ceiling_seconds:
                log("ceiling-static-after: the static route again, on the sold-out service")
                run["phases"].append(run_locust("ceiling-static-after", ["StaticCeiling"], args.ceiling_users,
                                                args.ceiling_users, args.ceiling_seconds, service.url, work, env,
                                                args.workers, sampler))
            log("waiting until no hold is live, then auditing the store against the seat map …")
            run["live_holds_left"] = wait_until_no_live_holds(database, args.hold_seconds + 30)
            time.sleep(2)  # a snapshot refresh (≤ 250 ms) and the cache's second: the map the audit compares with
            final = httpx.get(f"{service.url}/api/seats", timeout=30).json()["status"]
            (work / "final-seats.txt").write_text(final)
            run["audit"] = audit(database, final, out)
        finally:
            if sampler is not None:
                sampler.stopping.set()
                sampler.join(timeout=10)
                run["peak_memory"] = sampler.peak
                run["cpu_seconds"] = sampler.cpu_seconds
            if service is not None:
                log("stopping the service …")
                stop_service(service.process)
            if not args.keep_db:
                mysql.drop_database(database)
            run["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            (work / "run.json").write_text(json.dumps(run, indent=2, default=str))

    from loadtest.report import build

    summary = build(work, report_dir)
    print(summary["text"], flush=True)
    log(f"report: {report_dir / 'report.md'}")
    return 0 if summary["passed_integrity"] else 1


if __name__ == "__main__":
    sys.exit(main())
