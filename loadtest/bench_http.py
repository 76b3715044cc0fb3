"""HTTP benchmark through the real fronts (the nginx cache → HAProxy → Serve replicas), every
figure a ratio within the run.

Two ceilings are measured in the same run, each just before and after the routes divided by it:

* the reference: a plain uvicorn app with 2 workers, no Ray, answering the same 15 KB seat-map
  bytes (``loadtest/reference_app.py``) — what Python itself can do for those bytes here;
* the static route through both fronts (``/static-ceiling``, answered by a replica on the same
  hot path as holds) — the ceiling of a request that must reach Serve.

The cached reads (the seat map gzip, uncompressed and 304, the waiting room's public status)
are divided by the reference (target ≥ 2×, p95 < 150 ms at 256 connections); holds and login,
which reach Serve, by the static route (holds: target ≥ 50 %). The static route is also sent
straight to Serve's own front, so what the cache costs a request it passes through is printed.

    python -m loadtest.bench_http [--seconds 10] [--connections 256] [--replicas 2] [--sqlite]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from math import ceil
from pathlib import Path

import httpx

from harness.service import ROOT, one_service_at_a_time, start_service, stop_service
from loadtest import wrk
from loadtest.bench_core import bench_database

# logins from one address: fewer in flight than the per-address login limit's share of a
# replica (api/ratelimit.py), which is counted as tries arrive; 8 keep both cores hashing
LOGIN_CONNECTIONS = 8
REFERENCE_PORT = 18900
REFERENCE_WORKERS = 2

CONTENDERS_PER_SEAT = 13
SEATS_PER_BUYER_MAX = 20
# room for twice the hall of the hold run: a buyer who reached the per-member cap is refused
# by the block (422) on every later try, which measures the cap, not 13 buyers per seat
BUYERS_PER_SEAT = 2 / SEATS_PER_BUYER_MAX
BUYERS_MIN = 64
SIGN_UP_THREADS = 8
# sizes the hall for the hold run so that it sees about 13 attempts per seat
HOLDS_PER_STATIC_GUESS = 0.55
# what Chromium and Firefox send: the seat map comes gzip-compressed, as to every real client
BROWSER_ACCEPT_ENCODING = "gzip, deflate, br, zstd"

HOLD_LUA = r"""
counter = 0
init = function(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end
request = function()
  counter = counter + 1
  local buyer = buyers[math.random(#buyers)]
  local token, admission = buyer:match("([^ ]+) ([^ ]+)")
  local seat = math.random(0, SEATS - 1)
  local key = string.format("%d-%d-%d", counter, math.random(1, 1e9), seat)
  return wrk.format("POST", "/api/holds", {
    ["Authorization"] = "Bearer " .. token, ["X-Admission-Token"] = admission,
    ["Idempotency-Key"] = key, ["Content-Type"] = "application/json"},
    string.format('{"seat_ids": [%d]}', seat))
end
"""

LOGIN_LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = BODY
"""


def admitted_buyer(client: httpx.Client) -> tuple[str, str] | None:
    """Sign up, log in, queue and get admitted: (session token, admission token)."""
    name = f"bench{uuid.uuid4().hex[:12]}"
    client.post("/api/members", json={"username": name, "password": "bench-password", "nickname": name})
    token = client.post("/api/sessions", json={"username": name, "password": "bench-password"}).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    ticket = client.post("/api/queue", headers=auth).json()["ticket"]
    for _ in range(100):
        answer = client.get("/api/queue", params={"ticket": ticket}, headers=auth).json()
        if answer["state"] == "admitted":
            return token, answer["admission_token"]
        time.sleep(0.1)
    return None


def admitted_buyers(base_url: str, count: int) -> list[tuple[str, str]]:
    """``count`` buyers made in parallel (each sign-up and login is an argon2id hash)."""
    with httpx.Client(base_url=base_url, timeout=60) as client, ThreadPoolExecutor(SIGN_UP_THREADS) as pool:
        buyers = list(pool.map(lambda _: admitted_buyer(client), range(count)))
    return [buyer for buyer in buyers if buyer is not None]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--replicas", type=int, default=2,
                        help="ingress replicas (ENCORE_INGRESS_REPLICAS); on 2 cores two answered ~30%% more than one")
    parser.add_argument("--sqlite", action="store_true", help="use the embedded store instead of MariaDB")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="encore-bench-http-"))
    settings = dict(seats_per_member_max=SEATS_PER_BUYER_MAX, rate_limit_writes_per_minute=10_000_000,
                    queue_active_max=100_000, ingress_replicas=args.replicas)
    reference = start_reference()
    try:
        with bench_database(args.sqlite, folder) as db_url, one_service_at_a_time():
            service = start_service(db_url, folder / "service.log", **settings)
            try:
                serve_front = f"http://127.0.0.1:{int(service.env['ENCORE_PORT']) + 100}"
                results = measure(service.url, serve_front, f"http://127.0.0.1:{REFERENCE_PORT}", args)
            finally:
                stop_service(service.process)
    finally:
        reference.terminate()
        reference.wait(timeout=10)
    print(f"\nthrough {service.url} ({'SQLite' if args.sqlite else 'MariaDB'}), {args.replicas} ingress replica(s), "
          f"{args.connections} connections, {args.seconds} s each after a {wrk.WARM_UP_SECONDS} s warm-up")
    for ceiling in results["ceilings"]:
        print(ceiling.line())
    print("each route, as a share of the mean of its ceiling's runs just before and after it:")
    for key, ceiling_name in ROUTES:
        result, ceiling = results[key], results[f"{key}_ceiling"]
        print(result.line() + f"  {result.per_second / ceiling:6.2f}x {ceiling_name}")
    print()
    for key in ("seats_200", "seats_200_identity", "seats_304", "queue_status"):
        result = results[key]
        print(f"{key:20} {result.per_second / results[f'{key}_ceiling']:5.2f}x the reference (target ≥ 2x), "
              f"p95 {result.p95_ms:.0f} ms (target < 150 ms), from the cache: {result.codes}")
    passed = results["static_direct"]
    print(f"static route through the cache: {results['static_cached'].per_second / passed.per_second:.1%} of the same "
          f"route sent straight to Serve's front")
    holds = results["holds"]
    print(f"holds:        {holds.per_second / results['holds_ceiling']:.1%} of static (target ≥ 50%), "
          f"{holds.requests / results['hold_seats']:.1f} contenders per seat, {results['buyers']} buyers")
    if args.json:
        plain = {k: [vars(r) for r in v] if k == "ceilings" else vars(v) if isinstance(v, wrk.Result) else v
                 for k, v in results.items()}
        args.json.write_text(json.dumps(plain, indent=2))


ROUTES = [
    ("seats_200", "reference"), ("seats_200_identity", "reference"), ("seats_304", "reference"),
    ("queue_status", "reference"), ("static_cached", "static"), ("holds", "static"), ("login", "static"),
]


def start_reference() -> subprocess.Popen:
    """The plain-Python ceiling: uvicorn, 2 workers, the seat map's bytes."""
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "loadtest.reference_app:app", "--port", str(REFERENCE_PORT),
         "--workers", str(REFERENCE_WORKERS), "--log-level", "warning", "--no-access-log"], cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{REFERENCE_PORT}/api/seats", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the reference app did not start")


def measure(base_url: str, serve_front: str, reference_url: str, args) -> dict:
    """Each route runs between two runs of its ceiling: on a shared machine the ceiling drifts
    by tens of percent within a minute, so each ratio divides by the mean of the two."""
    seconds, connections = args.seconds, args.connections
    wrk.warm_up(base_url, connections)
    wrk.run("warm-up", f"{reference_url}/api/seats", wrk.WARM_UP_SECONDS, connections)
    gzip_script = f"wrk.headers['Accept-Encoding'] = {json.dumps(BROWSER_ACCEPT_ENCODING)}"
    ceilings: list[wrk.Result] = []
    results: dict = {"ceilings": ceilings}
    last: dict[str, wrk.Result] = {}

    def ceiling(kind: str, script: str = "") -> wrk.Result:
        if kind == "reference":
            run = wrk.run(f"reference seat map {'gzip' if script else 'identity'}", f"{reference_url}/api/seats",
                          seconds, connections, script=script)
        else:
            run = wrk.run("static route (ceiling)", f"{base_url}/static-ceiling", seconds, connections)
        ceilings.append(run)
        return run

    def between(key: str, kind: str, route, script: str = "") -> None:
        before = last.get(kind + script) or ceiling(kind, script)
        results[key] = route()
        after = last[kind + script] = ceiling(kind, script)
        results[f"{key}_ceiling"] = (before.per_second + after.per_second) / 2

    between("seats_200", "reference", lambda: wrk.run(
        "GET /api/seats 200 (gzip)", f"{base_url}/api/seats", seconds, connections, script=gzip_script), gzip_script)
    between("seats_304", "reference", lambda: wrk.run(
        "GET /api/seats 304", f"{base_url}/api/seats", seconds, connections,
        script=f"wrk.headers['If-None-Match'] = {json.dumps(httpx.get(f'{base_url}/api/seats').headers['etag'])}"),
        gzip_script)
    between("seats_200_identity", "reference", lambda: wrk.run(
        "GET /api/seats 200 (identity)", f"{base_url}/api/seats", seconds, connections))
    between("queue_status", "reference", lambda: wrk.run(
        "GET /api/queue/status", f"{base_url}/api/queue/status", seconds, connections))

    results["static_direct"] = wrk.run("static route, Serve's front", f"{serve_front}/static-ceiling", seconds, connections)
    between("static_cached", "static", lambda: wrk.run(
        "static route through the cache", f"{base_url}/static-ceiling", seconds, connections))
    ceilings.append(results["static_direct"])

    expected_holds = max(1000, int(last["static"].per_second * HOLDS_PER_STATIC_GUESS * seconds))
    results["hold_seats"] = min(14_000, max(100, expected_holds // CONTENDERS_PER_SEAT))
    buyers = admitted_buyers(base_url, max(BUYERS_MIN, ceil(results["hold_seats"] * BUYERS_PER_SEAT)))
    results["buyers"] = len(buyers)
    buyers_file = Path(tempfile.mkstemp(suffix=".txt")[1])
    buyers_file.write_text("\n".join(f"{t} {a}" for t, a in buyers) + "\n")
    script = wrk.lua_string_list("buyers", buyers_file) + f"SEATS = {results['hold_seats']}\n" + HOLD_LUA
    between("holds", "static", lambda: wrk.run("POST /api/holds (13x)", f"{base_url}/api/holds", seconds, connections,
                                               script=script))
    buyers_file.unlink()

    name = f"login{uuid.uuid4().hex[:8]}"
    httpx.post(f"{base_url}/api/members", json={"username": name, "password": "bench-password", "nickname": name})
    body = json.dumps({"username": name, "password": "bench-password"})
    between("login", "static", lambda: wrk.run(
        "POST /api/sessions (argon2id)", f"{base_url}/api/sessions", seconds, min(connections, LOGIN_CONNECTIONS),
        script=f"BODY = {json.dumps(body)}\n" + LOGIN_LUA))
    return results


if __name__ == "__main__":
    main()
