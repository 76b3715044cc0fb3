"""HTTP benchmark through the real front (HAProxy → Serve replicas), every figure a ratio.

In one run, on one service (MariaDB): a constant route (the ceiling of this front on this
machine, answered on the same hot path as the seat map), ``GET /api/seats`` answered 200
(gzip, as browsers ask, and uncompressed) and 304, ``POST /api/holds`` with 13 contenders
per seat, and login (argon2id). Targets: the seat map at ≥ 90% of the ceiling with p95 under
150 ms at 256 connections; holds at ≥ 50% of the ceiling.

    python -m loadtest.bench_http [--seconds 10] [--connections 256] [--replicas 2] [--sqlite]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from math import ceil
from pathlib import Path

import httpx

from encore.launcher import one_service_at_a_time, start_service, stop_service
from loadtest import wrk

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
    if args.sqlite:
        db_url = f"sqlite:///{folder}/encore.db"
    else:
        from loadtest.bench_core import MySQLBench

        bench_db = MySQLBench()
        db_url = bench_db.__enter__()
    settings = dict(max_seats_per_member=SEATS_PER_BUYER_MAX, rate_limit_writes_per_minute=10_000_000,
                    queue_max_active=100_000, ingress_replicas=args.replicas)
    try:
        with one_service_at_a_time():
            service = start_service(db_url, folder / "service.log", **settings)
            try:
                results = measure(service.url, args)
            finally:
                stop_service(service.process)
    finally:
        if not args.sqlite:
            bench_db.__exit__(None, None, None)
    print(f"\nthrough {service.url} ({'SQLite' if args.sqlite else 'MariaDB'}), {args.replicas} ingress replica(s), "
          f"{args.connections} connections, {args.seconds} s each after a {wrk.WARM_UP_SECONDS} s warm-up")
    for static in results["statics"]:
        print(static.line())
    print("each route, as a share of the mean of the static runs just before and after it:")
    for key in ("seats_200", "seats_200_identity", "seats_304", "holds", "login"):
        result, ceiling = results[key], results[f"{key}_ceiling"]
        print(result.line() + f"  {result.per_second / ceiling:6.1%} of static")
    seats_200, holds, identity = results["seats_200"], results["holds"], results["seats_200_identity"]
    print(f"\nseat map 200: {seats_200.per_second / results['seats_200_ceiling']:.1%} of static (target ≥ 90%), "
          f"p95 {seats_200.p95_ms:.0f} ms (target < 150 ms)")
    print(f"  uncompressed: {identity.per_second / results['seats_200_identity_ceiling']:.1%} of static, p95 {identity.p95_ms:.0f} ms")
    print(f"holds:        {holds.per_second / results['holds_ceiling']:.1%} of static (target ≥ 50%), "
          f"{holds.requests / results['hold_seats']:.1f} contenders per seat, {results['buyers']} buyers")
    if args.json:
        plain = {k: [vars(r) for r in v] if k == "statics" else vars(v) if isinstance(v, wrk.Result) else v
                 for k, v in results.items()}
        args.json.write_text(json.dumps(plain, indent=2))


def measure(base_url: str, args) -> dict:
    """Each route runs right after a run of the static route, and the ceiling runs again at the
    end: on a shared machine the ceiling drifts by tens of percent within a minute, so each
    ratio divides by the mean of the static runs just before and just after its route."""
    seconds, connections = args.seconds, args.connections
    wrk.warm_up(base_url, connections)
    statics = [wrk.run("static route (ceiling)", f"{base_url}/static-ceiling", seconds, connections)]
    results: dict = {}

    def then_static(key: str, result: wrk.Result) -> None:
        statics.append(wrk.run("static route (ceiling)", f"{base_url}/static-ceiling", seconds, connections))
        results[key] = result
        results[f"{key}_ceiling"] = (statics[-2].per_second + statics[-1].per_second) / 2

    then_static("seats_200", wrk.run(
        "GET /api/seats 200 (gzip)", f"{base_url}/api/seats", seconds, connections,
        script=f"wrk.headers['Accept-Encoding'] = {json.dumps(BROWSER_ACCEPT_ENCODING)}",
    ))
    then_static("seats_200_identity", wrk.run("GET /api/seats 200 (identity)", f"{base_url}/api/seats", seconds, connections))
    etag = httpx.get(f"{base_url}/api/seats").headers["etag"]
    then_static("seats_304", wrk.run(
        "GET /api/seats 304", f"{base_url}/api/seats", seconds, connections,
        script=f"wrk.headers['If-None-Match'] = {json.dumps(etag)}",
    ))

    expected_holds = max(1000, int(statics[-1].per_second * HOLDS_PER_STATIC_GUESS * seconds))
    results["hold_seats"] = min(14_000, max(100, expected_holds // CONTENDERS_PER_SEAT))
    buyers = admitted_buyers(base_url, max(BUYERS_MIN, ceil(results["hold_seats"] * BUYERS_PER_SEAT)))
    results["buyers"] = len(buyers)
    buyers_file = Path(tempfile.mkstemp(suffix=".txt")[1])
    buyers_file.write_text("\n".join(f"{t} {a}" for t, a in buyers) + "\n")
    script = wrk.lua_string_list("buyers", buyers_file) + f"SEATS = {results['hold_seats']}\n" + HOLD_LUA
    then_static("holds", wrk.run("POST /api/holds (13x)", f"{base_url}/api/holds", seconds, connections, script=script))
    buyers_file.unlink()

    name = f"login{uuid.uuid4().hex[:8]}"
    httpx.post(f"{base_url}/api/members", json={"username": name, "password": "bench-password", "nickname": name})
    body = json.dumps({"username": name, "password": "bench-password"})
    then_static("login", wrk.run(
        "POST /api/sessions (argon2id)", f"{base_url}/api/sessions", seconds, min(connections, 32),
        script=f"BODY = {json.dumps(body)}\n" + LOGIN_LUA,
    ))
    results["statics"] = statics
    return results


if __name__ == "__main__":
    main()
