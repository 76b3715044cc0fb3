"""Locust journeys against Encore: buyers who fight for seats, readers who watch the map, ceilings.

    locust -f loadtest/locustfile.py -H http://127.0.0.1:8000 Buyer Reader StaticProbe
    python -m loadtest.sellout            # the whole benchmark: service, members, ceilings, report

Always name the user classes on the command line: the ceiling classes (``StaticCeiling``,
``SeatMapCeiling``) are meant to run alone. Members ``<prefix>0 … <prefix>N-1`` with one
shared password must exist (``loadtest.sellout`` bulk-inserts them straight into MariaDB,
because signing up 100k people through argon2id would take the machine minutes).

A ``Buyer`` is one browser that serves one person after another. It fetches the venue once;
each person then joins the queue, reads the public status until its number comes up and claims its admission,
polls the seat map with ``If-None-Match``, picks seats that look free, holds them with an
``Idempotency-Key`` (retried with the same key on a network error), pays through a mock
provider (which declines ``ENCORE_PAYMENT_FAILURE_RATE`` of them; a declined person tries
again), checks the booking, writes it to ``confirmed-<pid>.txt`` the moment it reads
``confirmed``, and leaves: a person buys once (the per-member cap is 4 seats). A browser's
first person logs in (argon2id); the later ones bring the session they opened while waiting
for the sale (``ENCORE_BENCH_SESSIONS``), since 7,000 argon2id logins during the sale would
make the benchmark measure password hashing.

Contention: everyone wants the best seats. Seats are ranked front row first, centre first,
across all sections, and a buyer picks among the first ``H`` seats of that ranking that look
free in its copy of the map (and 1–4 adjacent seats around it). Many buyers therefore go for
the same seats with slightly stale maps and most holds lose. ``H`` is steered every second so
that hold attempts per seat won stay near ``ENCORE_BENCH_CONTENTION`` (13: the brief's average
number of contenders per seat), whatever the throughput.

Environment (all optional; ``loadtest.sellout`` sets them):

    ENCORE_BENCH_OUT          folder for requests-<pid>.csv, confirmed-<pid>.txt, client-<pid>.json, seats.csv
    ENCORE_BENCH_PREFIX       member name prefix (bench) · ENCORE_BENCH_PASSWORD (bench-password-1)
    ENCORE_BENCH_MEMBERS      how many members exist (100000) · ENCORE_BENCH_WORKERS (1)
    ENCORE_BENCH_CONTENTION   hold attempts per seat won to aim for (13)
    ENCORE_BENCH_ABANDON      share of won holds never paid: they expire (0.01)
    ENCORE_BENCH_THINK        seconds a buyer thinks between attempts, "min,max" (0.2,1.0)
    ENCORE_BENCH_READER_WEIGHT / ENCORE_BENCH_BUYER_WEIGHT   class weights (1 / 4)
    ENCORE_BENCH_SESSIONS     file of "username,session token" lines for the persons after a browser's first
    ENCORE_BENCH_LOGIN_EVERY  1: every person logs in instead
    ENCORE_BENCH_STOP_AT_SELLOUT  1: the master (or the only process) watches the map and quits
                              the run when every seat reads S; it also writes seats.csv
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import time
import uuid
from collections import deque

import gevent
from locust import between, constant, constant_throughput, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.runners import WorkerRunner

log = logging.getLogger("encore.bench")

OUT = os.environ.get("ENCORE_BENCH_OUT") or None
PREFIX = os.environ.get("ENCORE_BENCH_PREFIX", "bench")
PASSWORD = os.environ.get("ENCORE_BENCH_PASSWORD", "bench-password-1")
MEMBERS = int(os.environ.get("ENCORE_BENCH_MEMBERS", "100000"))
WORKERS = max(1, int(os.environ.get("ENCORE_BENCH_WORKERS", "1")))
CONTENTION = float(os.environ.get("ENCORE_BENCH_CONTENTION", "13"))
ABANDON = float(os.environ.get("ENCORE_BENCH_ABANDON", "0.01"))
THINK = tuple(float(x) for x in os.environ.get("ENCORE_BENCH_THINK", "0.2,1.0").split(","))
STOP_AT_SELLOUT = os.environ.get("ENCORE_BENCH_STOP_AT_SELLOUT") == "1"
LOGIN_EVERY = os.environ.get("ENCORE_BENCH_LOGIN_EVERY") == "1"

SEATS_WANTED = (1, 2, 3, 4)  # how many adjacent seats a person wants, and how often
SEATS_WANTED_WEIGHTS = (0.3, 0.4, 0.15, 0.15)
HOT_MIN, HOT_MAX, HOT_START = 1, 3000, 16
QUEUE_WAIT_MAX_S = 300  # a person gives up waiting in the queue after this (then rejoins)
POLL_S_MAX = 15
HOLD_TRIES = 4  # the first try and retries with the same Idempotency-Key (network error, 5xx, in flight)
CHECK_TRIES = 5  # booking checks after a checkout whose callback has not landed yet
MONITOR_INTERVAL_S = 0.5


# ---- per-process records: requests, confirmed bookings, counters

class Records:
    def __init__(self):
        self.pid = os.getpid()
        self.counters: dict[str, int] = {}
        self.hot_history: list[tuple[float, int]] = []
        self.notes: list[str] = []  # a few surprising answers, for the report's reader
        self._requests = None
        self._confirmed = None
        if OUT:
            os.makedirs(OUT, exist_ok=True)
            self._requests = open(os.path.join(OUT, f"requests-{self.pid}.csv"), "a", buffering=1 << 20)
            self._confirmed = open(os.path.join(OUT, f"confirmed-{self.pid}.txt"), "a")

    def count(self, name: str, by: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + by

    def request(self, start: float, method: str, name: str, ms: float, status: int) -> None:
        if self._requests is not None:
            self._requests.write(f"{start:.3f},{method},{name},{ms:.1f},{status}\n")

    def confirmed(self, booking_id: str, seats: list[int]) -> None:
        """Written (and flushed) the moment the client sees it: nothing a client saw may be lost."""
        if self._confirmed is not None:
            self._confirmed.write(f"{booking_id},{' '.join(map(str, seats))}\n")
            self._confirmed.flush()

    def close(self) -> None:
        if self._requests is not None:
            self._requests.flush()
        if self._confirmed is not None:
            self._confirmed.flush()
        if OUT:
            with open(os.path.join(OUT, f"client-{self.pid}.json"), "w") as file:
                json.dump({"pid": self.pid, "counters": self.counters, "hot_history": self.hot_history, "notes": self.notes}, file)


RECORDS = Records()


@events.request.add_listener
def _record_request(request_type, name, response_time, response=None, exception=None, start_time=None, **_):
    status = getattr(response, "status_code", 0) or 0  # 0: no answer (connection error, timeout)
    RECORDS.request(start_time or time.time() - response_time / 1000, request_type, name, response_time, status)


@events.quitting.add_listener
def _close_records(environment, **_):
    RECORDS.close()


def ticket_number(ticket: str) -> int | None:
    """The place number a signed ticket carries (its payload is base64url JSON)."""
    body = ticket.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))).get("n")


# ---- the venue, the ranking of seats, and the shared "hot set" of the best seats that look free

class Hall:
    """What every buyer in this process knows about the venue, and the seat map versions seen."""

    def __init__(self):
        self.ready = False
        self.seats = 0
        self.ranking: list[int] = []  # seat ids, most wanted first
        self.section_of: list[int] = []
        self.row_start: list[int] = []  # first seat id of the seat's row
        self.cols: list[int] = []  # seats per row of the seat's section
        self.per_member_max = 4
        self.providers = ["mockpay"]
        self.hold_seconds = 180.0
        self._free_cache: dict[str, list[int]] = {}
        self._sold_prefix = 0  # ranking positions before this are sold for good
        # steering the hot set size
        self.hot = HOT_START
        self._window: deque[tuple[float, int, int]] = deque()
        self._attempts = 0
        self._won_seats = 0
        self._steered_at = 0.0

    def learn(self, venue: dict) -> None:
        if self.ready:
            return
        self.seats = venue["seats"]
        self.section_of = [0] * self.seats
        self.row_start = [0] * self.seats
        self.cols = [0] * self.seats
        keyed = []
        for index, section in enumerate(venue["sections"]):
            rows, cols, first = section["rows"], section["cols"], section["first_seat_id"]
            centre = (cols - 1) / 2
            for row in range(rows):
                for col in range(cols):
                    seat = first + row * cols + col
                    self.section_of[seat] = index
                    self.row_start[seat] = first + row * cols
                    self.cols[seat] = cols
                    keyed.append((row, abs(col - centre), index, col, seat))
        keyed.sort()
        self.ranking = [k[-1] for k in keyed]
        self.per_member_max = venue.get("max_seats_per_member", 4)
        self.providers = venue.get("providers") or ["mockpay"]
        self.hold_seconds = float(venue.get("hold_seconds", 180))
        self.ready = True

    def free_in_order(self, etag: str, status: str) -> list[int]:
        """The best seats that look free in this map version, most wanted first (cached per version)."""
        found = self._free_cache.get(etag)
        if found is not None:
            return found
        ranking = self.ranking
        position = self._sold_prefix
        while position < len(ranking) and status[ranking[position]] == "S":
            position += 1
        self._sold_prefix = max(self._sold_prefix, position)  # a sold seat is never sold again
        found = []
        for seat in ranking[position:]:
            if status[seat] == "A":
                found.append(seat)
                if len(found) >= HOT_MAX:
                    break
        if len(self._free_cache) > 32:
            self._free_cache.clear()
        self._free_cache[etag] = found
        return found

    def attempted(self, seats_won: int) -> None:
        self._attempts += 1
        self._won_seats += seats_won
        now = time.monotonic()
        if now - self._steered_at >= 1.0:
            self._steer(now)

    def _steer(self, now: float) -> None:
        """Keep hold attempts per seat won near CONTENTION: fewer wins than that, widen the hot set."""
        self._steered_at = now
        self._window.append((now, self._attempts, self._won_seats))
        while len(self._window) > 2 and now - self._window[0][0] > 5:
            self._window.popleft()
        _, attempts0, won0 = self._window[0]
        attempts, won = self._attempts - attempts0, self._won_seats - won0
        if attempts < 20:
            return
        ratio = attempts / won if won else float("inf")
        if ratio < CONTENTION * 0.95:
            self.hot = max(HOT_MIN, int(self.hot * 0.85))
        elif ratio > CONTENTION * 1.05:
            self.hot = min(HOT_MAX, int(self.hot * 1.15) + 1)
        RECORDS.hot_history.append((round(time.time(), 1), self.hot))


HALL = Hall()
_member_counter = 0


def _load_sessions() -> dict[str, str]:
    """username -> session token, opened "before the sale" (loadtest.sellout signs them with the service's key)."""
    path = os.environ.get("ENCORE_BENCH_SESSIONS")
    if not path or not os.path.exists(path):
        return {}
    with open(path) as file:
        return dict(line.rstrip("\n").split(",", 1) for line in file if "," in line)


SESSIONS = _load_sessions()


def next_member_name(environment) -> str:
    """Distinct members across workers: user n of worker w is member n·W + w."""
    global _member_counter
    runner = environment.runner
    worker = runner.worker_index if isinstance(runner, WorkerRunner) else 0
    index = (_member_counter * WORKERS + worker) % MEMBERS
    _member_counter += 1
    return f"{PREFIX}{index}"


def all_sold(status: str | None) -> bool:
    return bool(status) and status.count("S") == len(status)


class Stop(Exception):
    """This buyer has nothing left to do in this sale."""


# ---- the buyer

class Buyer(FastHttpUser):
    """One browser, used by one person after another: each buys once (1–4 seats) and leaves."""

    weight = int(os.environ.get("ENCORE_BENCH_BUYER_WEIGHT", "4"))
    wait_time = between(*THINK)
    network_timeout = 30.0
    connection_timeout = 30.0

    def on_start(self):
        self.etag: str | None = None
        self.status: str | None = None
        self.done = False
        self.persons_here = 0
        self.next_person()
        self.fetch_venue()  # once per browser: the page caches it (Cache-Control: max-age=3600)

    def next_person(self) -> None:
        """The next member takes this browser. The first one logs in (argon2id); later ones come
        with the session they opened before the sale, unless ENCORE_BENCH_LOGIN_EVERY=1."""
        self.username = next_member_name(self.environment)
        self.token = SESSIONS.get(self.username) if self.persons_here and not LOGIN_EVERY else None
        self.admission: str | None = None
        self.pending: dict[str, float] = {}  # holds this person may still own -> when they must be over
        self.persons_here += 1
        RECORDS.count("persons")

    # -- steps of the journey

    def login(self) -> None:
        for _ in range(5):
            with self.client.post("/api/sessions", json={"username": self.username, "password": PASSWORD},
                                  name="POST /api/sessions", catch_response=True) as answer:
                if answer.status_code == 200:
                    self.token = answer.json()["token"]
                    RECORDS.count("logins")
                    return
                answer.failure(f"login {answer.status_code}")
            gevent.sleep(1 + random.random())
        raise Stop("cannot log in")

    def auth(self, extra: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"}
        if extra:
            headers.update(extra)
        return headers

    def fetch_venue(self) -> None:
        with self.client.get("/api/venue", name="GET /api/venue", catch_response=True) as answer:
            if answer.status_code != 200:
                answer.failure(f"venue {answer.status_code}")
                raise Stop("no venue")
            HALL.learn(answer.json())

    def join_queue(self) -> None:
        """Join, then read the public status (answered by the HTTP cache) until the head passes
        this ticket's number, and claim the admission once; bounded in time."""
        deadline = time.monotonic() + QUEUE_WAIT_MAX_S
        while time.monotonic() < deadline:
            RECORDS.count("queue_joins")
            with self.client.post("/api/queue", headers=self.auth(), name="POST /api/queue", catch_response=True) as answer:
                if answer.status_code != 200:
                    answer.failure(f"join {answer.status_code}")
                    if answer.status_code == 401:
                        self.token = None
                        return
                    gevent.sleep(1 + random.random())
                    continue
                state = answer.json()
            if state["state"] == "admitted" and state.get("admission_token"):
                self.admission = state["admission_token"]
                RECORDS.count("admitted")
                return
            ticket = state["ticket"]
            while time.monotonic() < deadline:
                with self.client.get("/api/queue/status", name="GET /api/queue/status", catch_response=True) as answer:
                    if answer.status_code != 200:
                        answer.failure(f"status {answer.status_code}")
                        gevent.sleep(1)
                        continue
                    room = answer.json()
                number = ticket_number(ticket)
                if (room["opened"] if number is None else number <= room["admitted_through"]):
                    with self.client.post("/api/queue/admission", json={"ticket": ticket}, headers=self.auth(),
                                          name="POST /api/queue/admission", catch_response=True) as answer:
                        if answer.status_code == 200:
                            self.admission = answer.json()["admission_token"]
                            RECORDS.count("admitted")
                            return
                        code = answer.json().get("code") if answer.status_code in (403, 409) else None
                        if code == "not_your_turn":
                            answer.success()
                            ticket = answer.json()["ticket"]
                        else:
                            answer.failure(f"claim {answer.status_code} {code}")
                            break  # an admission that ran out, or a ticket no longer in line: join again
                gevent.sleep(min(POLL_S_MAX, room.get("poll_after_ms", 2000) / 1000))
        RECORDS.count("queue_gave_up")

    def refresh_map(self) -> None:
        headers = {"If-None-Match": self.etag} if self.etag else {}
        with self.client.get("/api/seats", headers=headers, name="GET /api/seats", catch_response=True) as answer:
            if answer.status_code == 304:
                RECORDS.count("map_304")
                return
            if answer.status_code != 200:
                answer.failure(f"seats {answer.status_code}")
                return
            body = answer.json()
            self.etag = answer.headers.get("ETag") or body["version"]
            self.status = body["status"]
            RECORDS.count("map_200")

    def choose(self) -> list[int] | None:
        """1–4 adjacent seats around one of the best seats that look free; ``None`` when this
        person may hold no more (a hold of theirs may still be live: the per-member cap)."""
        now = time.time()
        self.pending = {b: over_by for b, over_by in self.pending.items() if over_by > now}
        if self.pending:
            return None
        wanted = random.choices(SEATS_WANTED, SEATS_WANTED_WEIGHTS)[0]
        wanted = min(wanted, HALL.per_member_max)
        status = self.status
        candidates = []
        for seat in HALL.free_in_order(self.etag or "", status):
            if status[seat] == "A":
                candidates.append(seat)
                if len(candidates) >= HALL.hot:
                    break
        if not candidates:
            return []
        anchor = random.choice(candidates)
        start, cols = HALL.row_start[anchor], HALL.cols[anchor]
        seats = [anchor]
        left, right = anchor - 1, anchor + 1
        while len(seats) < wanted:
            if right < start + cols and status[right] == "A":
                seats.append(right)
                right += 1
            elif left >= start and status[left] == "A":
                seats.append(left)
                left -= 1
            else:
                break
        return sorted(seats)

    def hold(self, seats: list[int]) -> dict | None:
        """One hold attempt; a network error, a 5xx or "in flight" is retried with the same Idempotency-Key."""
        key = uuid.uuid4().hex
        RECORDS.count("hold_attempts")
        RECORDS.count("hold_seats_asked", len(seats))
        for attempt in range(HOLD_TRIES):
            headers = self.auth({"X-Admission-Token": self.admission or "", "Idempotency-Key": key})
            with self.client.post("/api/holds", json={"seat_ids": seats}, headers=headers, name="POST /api/holds",
                                  catch_response=True) as answer:
                code = answer.status_code
                if code == 201:
                    RECORDS.count("holds_won")
                    RECORDS.count("hold_seats_won", len(seats))
                    if answer.headers.get("Idempotency-Replayed"):
                        RECORDS.count("holds_replayed")
                    HALL.attempted(len(seats))
                    return answer.json()
                problem = _problem(answer)
                if code == 409 and problem.get("code") == "seat_unavailable":
                    answer.success()  # losing a race is the expected outcome of most attempts
                    RECORDS.count("holds_lost")
                    HALL.attempted(0)
                    self._mark_taken(problem.get("seats") or seats)
                    return None
                last = attempt == HOLD_TRIES - 1
                if code in (0, 500, 502, 503, 504) and not last:
                    answer.failure(f"hold {code}, retrying with the same key")
                    RECORDS.count("hold_retries")
                    gevent.sleep(0.5)
                    continue
                if code == 409 and problem.get("code") == "idempotency_in_flight" and not last:
                    answer.success()  # the first try (whose answer was lost) still runs: ask again
                    RECORDS.count("hold_retries_in_flight")
                    gevent.sleep(1.0)
                    continue
                RECORDS.count(f"holds_other_{code}_{problem.get('code', '')}")
                HALL.attempted(0)
                if code in (0, 500, 502, 503, 504):
                    # no answer after every retry: the hold may exist; it counts against the cap until it expires
                    self.pending[key] = time.time() + HALL.hold_seconds + 5
                elif code == 403:
                    answer.success()
                    self.admission = None
                elif code == 401:
                    answer.success()
                    self.token = None
                elif code == 429:
                    answer.success()
                    gevent.sleep(min(5.0, float(answer.headers.get("Retry-After") or 1)))
                elif code == 422 and problem.get("code") == "too_many_seats":
                    answer.success()
                    if len(RECORDS.notes) < 20:
                        RECORDS.notes.append(f"422 {self.username} seats={seats} pending={self.pending} {problem}")
                    self.pending[key] = time.time() + HALL.hold_seconds + 5
                else:
                    answer.failure(f"hold {code} {problem.get('code')}")
                return None
        return None

    def _mark_taken(self, seats) -> None:
        if self.status is None:
            return
        status = bytearray(self.status.encode())
        for seat in seats:
            if 0 <= seat < len(status) and status[seat] == ord("A"):
                status[seat] = ord("H")
        self.status = status.decode()  # the ETag stays the server's: the next conditional GET brings the real map

    def pay_and_check(self, held: dict) -> bool:
        """Pay and check the booking; True when this person is done (bought, or walked away)."""
        booking_id, seats = held["booking_id"], held["seat_ids"]
        # until an answer says otherwise, the hold counts against the cap until it must have expired
        self.pending[booking_id] = time.time() + HALL.hold_seconds + 5
        if random.random() < ABANDON:  # walks away: the hold expires on the server's clock
            RECORDS.count("holds_abandoned")
            return True
        provider = random.choice(HALL.providers)
        headers = self.auth({"X-Admission-Token": self.admission or "", "Idempotency-Key": uuid.uuid4().hex})
        with self.client.post(f"/api/bookings/{booking_id}/payments", json={"provider": provider}, headers=headers,
                              name="POST /api/bookings/[id]/payments", catch_response=True) as answer:
            if answer.status_code != 201:
                answer.failure(f"pay {answer.status_code} {_problem(answer).get('code')}")
                RECORDS.count(f"payments_start_failed_{answer.status_code}")
                return False
            payment = answer.json()
        RECORDS.count("payments_started")
        with self.client.post(payment["redirect_url"], json={"result": "success"},
                              name="POST /pg/[provider]/checkout/[id]", catch_response=True) as answer:
            if answer.status_code != 200:
                answer.failure(f"checkout {answer.status_code}")
                RECORDS.count(f"checkout_failed_{answer.status_code}")
            else:
                RECORDS.count(f"checkout_{answer.json().get('status')}")
        for attempt in range(CHECK_TRIES):
            with self.client.get(f"/api/bookings/{booking_id}", headers=self.auth(), name="GET /api/bookings/[id]",
                                 catch_response=True) as answer:
                if answer.status_code != 200:
                    answer.failure(f"booking {answer.status_code}")
                    return False
                booking = answer.json()
            if booking["status"] == "confirmed":
                RECORDS.count("bookings_confirmed")
                RECORDS.count("seats_confirmed", len(seats))
                RECORDS.confirmed(booking_id, seats)
                return True
            if booking["status"] != "held":
                RECORDS.count(f"bookings_{booking['status']}")
                self.pending.pop(booking_id, None)  # its seats went back: this person tries again
                return False
            gevent.sleep(0.5 * (attempt + 1))
        RECORDS.count("bookings_still_held")
        return False

    # -- the loop

    @task
    def buy(self):
        if self.done:
            gevent.sleep(1)
            return
        try:
            if self.token is None:
                self.login()
            if self.admission is None:
                self.join_queue()
                if self.admission is None:
                    return
            self.refresh_map()
            if self.status is None:
                return
            if all_sold(self.status):
                self.done = True
                RECORDS.count("buyers_saw_sellout")
                return
            seats = self.choose()
            if seats is None:
                RECORDS.count("persons_at_cap")
                self.next_person()
                return
            if not seats:
                RECORDS.count("nothing_free_looking")
                return
            held = self.hold(seats)
            if held is not None and self.pay_and_check(held):
                self.next_person()
        except Stop:
            self.done = True


def _problem(answer) -> dict:
    try:
        body = answer.json()
        return body if isinstance(body, dict) else {}
    except Exception:
        return {}


# ---- watchers of the map, and the ceilings

class Reader(FastHttpUser):
    """Watches the seat map and nothing else (the crowd that never gets to buy)."""

    weight = int(os.environ.get("ENCORE_BENCH_READER_WEIGHT", "1"))
    wait_time = between(0.5, 1.5)

    def on_start(self):
        self.etag = None

    @task
    def watch(self):
        headers = {"If-None-Match": self.etag} if self.etag else {}
        with self.client.get("/api/seats", headers=headers, name="GET /api/seats (reader)", catch_response=True) as answer:
            if answer.status_code == 200:
                self.etag = answer.headers.get("ETag")
            elif answer.status_code != 304:
                answer.failure(f"seats {answer.status_code}")


class StaticProbe(FastHttpUser):
    """A light, steady probe of the static route during the sale: the front's own latency under load."""

    fixed_count = 1
    wait_time = constant_throughput(10)

    @task
    def probe(self):
        self.client.get("/static-ceiling", name="GET /static-ceiling (probe)")


class StaticCeiling(FastHttpUser):
    """As fast as possible on the constant route: the ceiling of the front (HAProxy → Serve → FastAPI)."""

    wait_time = constant(0)

    @task
    def static(self):
        self.client.get("/static-ceiling", name="GET /static-ceiling")


class SeatMapCeiling(FastHttpUser):
    """As fast as possible on the full seat map (a 200 with the whole body every time)."""

    wait_time = constant(0)

    @task
    def seats(self):
        self.client.get("/api/seats", name="GET /api/seats (ceiling)")


# ---- the watcher that ends the run at the sellout

@events.test_start.add_listener
def _start_monitor(environment, **_):
    if STOP_AT_SELLOUT and not isinstance(environment.runner, WorkerRunner):
        gevent.spawn(_monitor, environment)


def _monitor(environment) -> None:
    """Sample the map (A/H/S counts) twice a second into seats.csv; quit the run once all read S."""
    from geventhttpclient import HTTPClient, URL

    url = URL(environment.host.rstrip("/") + "/api/seats")
    client = HTTPClient.from_url(url, concurrency=1, network_timeout=10, connection_timeout=10)
    out = open(os.path.join(OUT, "seats.csv"), "a") if OUT else None
    if out is not None and out.tell() == 0:
        out.write("t,available,held,sold\n")
    try:
        while True:
            try:
                answer = client.get(url.request_uri)
                body = json.loads(answer.read())
                status = body["status"]
                counts = (status.count("A"), status.count("H"), status.count("S"))
                if out is not None:
                    out.write(f"{time.time():.3f},{counts[0]},{counts[1]},{counts[2]}\n")
                    out.flush()
                if counts[2] == len(status):
                    log.info("sold out: all %d seats read S; stopping the run", len(status))
                    gevent.sleep(1)
                    environment.runner.quit()
                    return
            except Exception as error:  # the run goes on; the time limit still ends it
                log.warning("seat map monitor: %r", error)
            gevent.sleep(MONITOR_INTERVAL_S)
    finally:
        if out is not None:
            out.close()
        client.close()
