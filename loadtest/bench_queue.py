"""Waiting-room benchmark: 200,000 people join, then everyone polls; ratios to the static route.

Session tokens and tickets are minted with the service's own secret (the benchmark starts the
service and knows it), so 200,000 distinct members can join without 200,000 argon2 sign-ups.
Joins go to the queue actor in batches; polls must never reach it, so they should run at
about the speed of the constant route (target ≥ 90%). Then the admission rate is measured
from ``/metrics`` and the time to admit everybody is printed.

    python -m loadtest.bench_queue [--people 200000] [--admit-per-second 2000]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import httpx

from api.auth import Tokens
from encore.launcher import one_service_at_a_time, start_service, stop_service
from loadtest import wrk

JOIN_LUA = r"""
index = 0
sent = 0
init = function(args)
  local id = tonumber(wrk.thread:get("id")) or 0
  index = id
end
request = function()
  index = index + THREADS
  if index > #people then index = ((index - 1) % #people) + 1 end
  return wrk.format("POST", "/api/queue", {["Authorization"] = "Bearer " .. people[index]})
end
on_response = function(status)
  sent = sent + 1
  if sent >= PER_THREAD then wrk.thread:stop() end
end
"""

POLL_LUA = r"""
index = 0
request = function()
  index = index + 1
  if index > #people then index = 1 end
  local token, ticket = people[index]:match("([^ ]+) ([^ ]+)")
  return wrk.format("GET", "/api/queue?ticket=" .. ticket, {["Authorization"] = "Bearer " .. token})
end
"""



def queue_gauges(base_url: str) -> dict[str, float]:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    gauges = {m[0]: float(m[1]) for m in re.findall(r'encore_queue_people\{state="(\w+)"\} ([\d.]+)', text)}
    return gauges


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--admit-per-second", type=float, default=2000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=256)
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="encore-bench-queue-"))
    settings = dict(queue_max_active=args.people, queue_admit_per_second=args.admit_per_second, admission_seconds=3600)
    with one_service_at_a_time():
        service = start_service(f"sqlite:///{folder}/encore.db", folder / "service.log", **settings)
        try:
            run(service, args, folder)
        finally:
            stop_service(service.process)


def run(service, args, folder: Path) -> None:
    tokens = Tokens(service.env["ENCORE_SECRET_KEY"], 24 * 3600, 3600)
    members = range(1, args.people + 1)
    sessions = [tokens.session(m, "user") for m in members]
    people = folder / "people.txt"
    people.write_text("\n".join(sessions) + "\n")
    threads = 2

    static = wrk.run("static route (ceiling)", f"{service.url}/static-ceiling", args.seconds, args.connections)
    join_script = (
        wrk.lua_string_list("people", people) + f"THREADS = {threads}\nPER_THREAD = {args.people // threads}\n"
        + JOIN_LUA
    )
    started = time.monotonic()
    joins = wrk.run("POST /api/queue (join)", f"{service.url}/api/queue", 600, args.connections, threads, join_script)
    joined_seconds = time.monotonic() - started
    time.sleep(1)
    after_joins = queue_gauges(service.url)

    polls_file = folder / "polls.txt"
    polls_file.write_text(
        "\n".join(f"{s} {tokens.ticket(m, m, 0, 3600)}" for m, s in zip(members, sessions)) + "\n"
    )
    polls = wrk.run("GET /api/queue (poll)", f"{service.url}/api/queue", args.seconds, args.connections,
                    script=wrk.lua_string_list("people", polls_file) + POLL_LUA)

    before, t0 = queue_gauges(service.url), time.monotonic()
    time.sleep(args.seconds)
    after, t1 = queue_gauges(service.url), time.monotonic()
    admitted_per_second = (before.get("waiting", 0) - after.get("waiting", 0)) / (t1 - t0)

    print(f"\n{args.people:,} people through {service.url}")
    print(static.line())
    print(joins.line(static) + f"  ({joins.requests:,} joins in {joined_seconds:.1f} s wall)")
    print(polls.line(static))
    print(f"\nin the queue after the joins: {after_joins}")
    print(f"polls: {polls.per_second / static.per_second:.1%} of the static route (target ≥ 90%)")
    print(f"admission: measured {admitted_per_second:,.0f}/s (configured {args.admit_per_second:,.0f}/s); "
          f"admitting {args.people:,} people takes {args.people / args.admit_per_second:,.0f} s at the configured rate, "
          f"{args.people / max(admitted_per_second, 1e-9):,.0f} s at the measured one")


if __name__ == "__main__":
    main()
