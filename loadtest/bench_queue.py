"""Waiting-room benchmark: 200,000 people join, then everyone polls; ratios to the static route.

Session tokens and tickets are minted with the service's own secret (the benchmark starts the
service and knows it), so 200,000 distinct members can join without 200,000 argon2 sign-ups.
Joins go to the queue actor in batches; polls must never reach it, so they should run at
about the speed of the constant route (target ≥ 90%). The two are measured in turns, under
the same background (the queue admitting and saving): each round's polls are divided by
the constant route measured just before and just after them, and the rounds' ratios are
summed up by their median. The constant route is also sent the polls' very requests (same
Lua script, headers and query), which shows what the polls cost the service beyond what the
client and the proxy pay. The queue's gauges are sampled from ``/metrics`` throughout:
joins/s is everyone-in-line over the time it took, and the admission rate is measured over
the intervals in which people were still waiting, which gives the time to admit everybody.

    python -m loadtest.bench_queue [--people 200000] [--admit-per-second 200] [--replicas 2]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from api.auth import Tokens
from encore.launcher import one_service_at_a_time, start_service, stop_service
from encore.settings import Settings
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

JOIN_SECONDS_MAX = 1800

POLL_LUA = r"""
index = 0
request = function()
  index = index + 1
  if index > #people then index = 1 end
  local token, ticket = people[index]:match("([^ ]+) ([^ ]+)")
  return wrk.format("GET", PATH .. "?ticket=" .. ticket, {["Authorization"] = "Bearer " .. token})
end
"""



def queue_gauges(base_url: str) -> dict[str, float]:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    return {m[0]: float(m[1]) for m in re.findall(r'encore_queue_people\{state="(\w+)"\} ([\d.]+)', text)}


class QueueWatch:
    """Samples the queue's gauges twice a second in a thread: when did everyone get in line?"""

    def __init__(self, base_url: str, people: int):
        self.base_url, self.people = base_url, people
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.all_joined_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "QueueWatch":
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                gauges = queue_gauges(self.base_url)
            except httpx.HTTPError:
                continue
            now = time.monotonic()
            self.samples.append((now, gauges))
            if self.all_joined_at is None and gauges.get("waiting", 0) + gauges.get("active", 0) >= self.people:
                self.all_joined_at = now

    def everyone_joined(self) -> bool:
        return self.all_joined_at is not None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--admit-per-second", type=float, default=Settings.model_fields["queue_admit_per_second"].default,
                        help="ENCORE_QUEUE_ADMIT_PER_SECOND (default: the service's own default)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of static / poll / static with the polls' requests")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--replicas", type=int, default=2, help="ingress replicas (ENCORE_INGRESS_REPLICAS)")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="encore-bench-queue-"))
    settings = dict(queue_max_active=args.people, queue_admit_per_second=args.admit_per_second, admission_seconds=3600,
                    ingress_replicas=args.replicas)
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

    wrk.warm_up(service.url, args.connections)
    quiet = wrk.run("static route, before the joins", f"{service.url}/static-ceiling", args.seconds, args.connections)
    join_script = (
        wrk.lua_string_list("people", people) + f"THREADS = {threads}\nPER_THREAD = {args.people // threads}\n"
        + JOIN_LUA
    )
    with QueueWatch(service.url, args.people) as watch:
        joins = wrk.run("POST /api/queue (join)", f"{service.url}/api/queue", JOIN_SECONDS_MAX, args.connections, threads,
                        join_script, until=watch.everyone_joined)
        joined_seconds = (watch.all_joined_at or time.monotonic()) - watch.started

        polls_file = folder / "polls.txt"
        polls_file.write_text(
            "\n".join(f"{s} {tokens.ticket(m, m, 0, 3600)}" for m, s in zip(members, sessions)) + "\n"
        )
        # rounds of the ceiling, the polls and the polls' very requests sent to the ceiling, and
        # the ceiling once more at the end: the queue actor is admitting and saving meanwhile
        # and the machine is shared, so each round's polls are divided by the ceiling measured
        # just before and just after them, and the rounds' ratios are summed up by their median
        poll_script = wrk.lua_string_list("people", polls_file) + POLL_LUA
        rounds = {"static": [], "poll": [], "shaped": []}
        for round_number in range(1, args.rounds + 1):
            rounds["static"].append(static_run(service.url, f"#{round_number}", args))
            rounds["poll"].append(wrk.run(f"GET /api/queue (poll) #{round_number}", f"{service.url}/api/queue",
                                          args.seconds, args.connections, script=f'PATH = "/api/queue"\n{poll_script}'))
            rounds["shaped"].append(wrk.run(f"static, poll requests #{round_number}", f"{service.url}/static-ceiling",
                                            args.seconds, args.connections, script=f'PATH = "/static-ceiling"\n{poll_script}'))
        rounds["static"].append(static_run(service.url, "(closing)", args))
    admitted_per_second, window = admission_rate(watch.samples)

    print(f"\n{args.people:,} people through {service.url}, {args.replicas} ingress replica(s), {args.connections} connections")
    print(quiet.line())
    print(joins.line())
    for results in zip(*rounds.values()):
        for result in results:
            print(result.line())
    print(rounds["static"][-1].line())
    statics = [r.per_second for r in rounds["static"]]
    polls = [r.per_second for r in rounds["poll"]]
    of_static = [poll / ((before + after) / 2) for poll, before, after in zip(polls, statics, statics[1:])]
    of_shaped = [poll / shaped.per_second for poll, shaped in zip(polls, rounds["shaped"])]
    print(f"\njoins: all {args.people:,} in line after {joined_seconds:,.1f} s = {args.people / joined_seconds:,.0f} joins/s")
    print(f"polls: median {statistics.median(polls):,.0f} req/s; median {statistics.median(of_static):.1%} of the static route "
          f"run just before and after them (rounds: {', '.join(f'{r:.0%}' for r in of_static)}; target ≥ 90%); median "
          f"{statistics.median(of_shaped):.1%} of the static route sent the polls' very requests right after them "
          f"(rounds: {', '.join(f'{r:.0%}' for r in of_shaped)}); "
          f"{statistics.median(polls) / quiet.per_second:.1%} of the quiet front before the joins")
    if admitted_per_second is None:
        print("admission: nobody was left waiting in any sample (admission kept pace with the joins)")
    else:
        print(f"admission: {admitted_per_second:,.1f}/s measured over {window:,.0f} s while people waited "
              f"(configured {args.admit_per_second:,.0f}/s); admitting all {args.people:,} takes "
              f"{args.people / args.admit_per_second:,.0f} s at the configured rate, "
              f"{args.people / max(admitted_per_second, 1e-9):,.0f} s at the measured one")


def static_run(base_url: str, label: str, args) -> wrk.Result:
    return wrk.run(f"static route (ceiling) {label}", f"{base_url}/static-ceiling", args.seconds, args.connections)


def admission_rate(samples: list[tuple[float, dict[str, float]]]) -> tuple[float | None, float]:
    """Admissions per second over the sampled intervals that began with people still waiting."""
    admitted = seconds = 0.0
    for (t0, before), (t1, after) in zip(samples, samples[1:]):
        if before.get("waiting", 0) > 0:
            admitted += after.get("active", 0) - before.get("active", 0)
            seconds += t1 - t0
    return (admitted / seconds if seconds else None), seconds


if __name__ == "__main__":
    main()
