"""Waiting-room benchmark: 200,000 people join, then everyone polls; ratios to the static route.

Session tokens and tickets are minted with the service's own secret (the benchmark starts the
service and knows it), so 200,000 distinct members can join without 200,000 argon2 sign-ups.
Joins go to the queue actor in batches; polls must never reach it, so they should run at
about the speed of the constant route (target ≥ 90%).

A waiting person polls every few seconds for the whole wait, so the polls are measured in two
phases. First everyone polls once, in turn: the replica that a person's poll reaches checks
both of their tokens. Then the people reached in the first turn of the second phase poll
again in every turn, once every ~15 s, as they do many times over a wait: each replica
remembers the pairs it has checked (``api.auth.Tokens.queue_poller``), and HAProxy's
leastconn sends a person's polls to either, so the share answered from memory grows from
turn to turn (about a half, three quarters, ...); ``/metrics`` tells it for every turn.

The machine is shared and its speed drifts by a third within a minute, so polls and the
static route are measured in short turns, under the same background (the queue admitting
and saving): each poll run is divided by the static runs just before and after it, and a
phase's ratios are summed up by their median. In the second
phase the static route is also sent the polls' very requests (same headers and query),
which shows what the polls cost the service beyond the request's size. The queue's gauges
are sampled throughout: joins/s is everyone-in-line over the time it took, and the admission
rate is measured over the intervals in which people were still waiting, which gives the time
to admit everybody.

    python -m loadtest.bench_queue [--people 200000] [--admit-per-second 200] [--replicas 2]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
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

# Each wrk thread takes every THREADS-th person from FIRST on (FIRST is 0-based) and formats
# their requests before the clock starts, so the load generator spends about as much per poll
# as per static request; a thread that reaches the end of the line starts again at its beginning.
POLL_LUA = r"""
init = function(args)
  local id = tonumber(wrk.thread:get("id")) or 0
  requests = {}
  for i = 1 + id, #people, THREADS do
    local token, ticket = people[i]:match("([^ ]+) ([^ ]+)")
    requests[#requests + 1] = wrk.format("GET", PATH .. "?ticket=" .. ticket, {["Authorization"] = "Bearer " .. token})
  end
  people = nil
  index = math.floor(FIRST / THREADS)
end
request = function()
  index = index + 1
  if index > #requests then index = 1 end
  return requests[index]
end
"""

THREADS = 1  # see loadtest/wrk.py: a second thread would be counted before the clock starts
COLD_SECONDS_MAX = 600  # for the first polls: everyone's, unless this runs out first


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


def poll_counts(service, replicas: int) -> dict[str, int]:
    """Polls answered from memory and polls verified, summed over the replicas."""
    by_replica = service.poll_counters(replicas).values()
    return {kind: sum(counts.get(kind, 0) for counts in by_replica) for kind in ("remembered", "verified")}


def remembered_share(runs: list[tuple[int, int]]) -> float:
    """The share of the polls of ``runs`` ((remembered, verified) each) answered from memory."""
    remembered = sum(r for r, _ in runs)
    return remembered / max(1, remembered + sum(v for _, v in runs))


@dataclass
class Phase:
    """The poll runs of one phase, each with the static runs around it and its share of
    polls answered from memory."""

    name: str
    statics: list[wrk.Result] = field(default_factory=list)
    polls: list[wrk.Result] = field(default_factory=list)
    shaped: list[wrk.Result] = field(default_factory=list)
    answered: list[tuple[int, int]] = field(default_factory=list)  # (remembered, verified) per poll run

    def of_static(self) -> list[float]:
        rates = [r.per_second for r in self.statics]
        return [poll.per_second / ((before + after) / 2) for poll, before, after in zip(self.polls, rates, rates[1:])]

    def of_shaped(self) -> list[float]:
        return [poll.per_second / shaped.per_second for poll, shaped in zip(self.polls, self.shaped)]

    def summary(self) -> str:
        polls = sum(r.requests for r in self.polls)
        ratios = self.of_static()
        line = (f"{self.name}: {polls:,} polls in {len(self.polls)} runs, "
                f"{remembered_share(self.answered):.0%} answered from remembered tokens "
                f"(runs: {', '.join(f'{remembered_share([run]):.0%}' for run in self.answered)}); "
                f"median {statistics.median(r.per_second for r in self.polls):,.0f} polls/s = median "
                f"{statistics.median(ratios):.1%} of the static route just before and after them "
                f"(runs: {', '.join(f'{r:.0%}' for r in ratios)}; target ≥ 90%)")
        if self.shaped:
            shaped = self.of_shaped()
            line += (f"; median {statistics.median(shaped):.1%} of the static route sent the polls' very requests "
                     f"(runs: {', '.join(f'{r:.0%}' for r in shaped)})")
        return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--admit-per-second", type=float, default=Settings.model_fields["queue_admit_per_second"].default,
                        help="ENCORE_QUEUE_ADMIT_PER_SECOND (default: the service's own default)")
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--warm-rounds", type=int, default=8,
                        help="rounds of polls / static with the polls' requests / static once everyone has polled; "
                             "the same people poll in every round")
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

    wrk.warm_up(service.url, args.connections)
    quiet = wrk.run("static route, before the joins", f"{service.url}/static-ceiling", args.seconds, args.connections)
    join_script = (
        wrk.lua_string_list("people", people) + f"THREADS = {THREADS}\nPER_THREAD = {args.people // THREADS}\n"
        + JOIN_LUA
    )
    with QueueWatch(service.url, args.people) as watch:
        joins = wrk.run("POST /api/queue (join)", f"{service.url}/api/queue", JOIN_SECONDS_MAX, args.connections, THREADS,
                        join_script, until=watch.everyone_joined)
        joined_seconds = (watch.all_joined_at or time.monotonic()) - watch.started

        polls_file = folder / "polls.txt"
        polls_file.write_text(
            "\n".join(f"{s} {tokens.ticket(m, m, 0, 3600)}" for m, s in zip(members, sessions)) + "\n"
        )
        people_polls = wrk.lua_string_list("people", polls_file) + f"THREADS = {THREADS}\n"
        timeline: list[wrk.Result] = []

        def measured(result: wrk.Result) -> wrk.Result:
            timeline.append(result)
            return result

        def static_run(label: str) -> wrk.Result:
            return measured(wrk.run(f"static route (ceiling) {label}", f"{service.url}/static-ceiling", args.seconds,
                                    args.connections))

        def poll_run(label: str, path: str, first: int, phase: Phase | None = None) -> wrk.Result:
            """People's polls from the ``first``-th person on, sent to ``path``."""
            before = poll_counts(service, args.replicas)
            result = measured(wrk.run(label, f"{service.url}{path}", args.seconds, args.connections, THREADS,
                                      f'PATH = "{path}"\nFIRST = {first % args.people}\n{people_polls}{POLL_LUA}'))
            if phase is not None:
                after = poll_counts(service, args.replicas)
                phase.answered.append((after["remembered"] - before["remembered"], after["verified"] - before["verified"]))
            return result

        cold, warm = Phase("first polls"), Phase("polls again")
        first, cold_until = 0, time.monotonic() + COLD_SECONDS_MAX
        while first < args.people and time.monotonic() < cold_until:
            cold.statics.append(static_run(f"(first polls #{len(cold.polls) + 1})"))
            cold.polls.append(poll_run(f"GET /api/queue, first #{len(cold.polls) + 1}", "/api/queue", first, cold))
            first += cold.polls[-1].requests
        cold.statics.append(static_run("(after the first polls)"))
        warm.statics.append(cold.statics[-1])
        for number in range(1, args.warm_rounds + 1):
            warm.polls.append(poll_run(f"GET /api/queue, again #{number}", "/api/queue", first, warm))
            warm.shaped.append(poll_run(f"static, poll requests #{number}", "/static-ceiling", first))
            warm.statics.append(static_run(f"(polls again #{number})"))
    admitted_per_second, window = admission_rate(watch.samples)

    print(f"\n{args.people:,} people through {service.url}, {args.replicas} ingress replica(s), {args.connections} connections")
    print(quiet.line())
    print(joins.line())
    for result in timeline:
        print(result.line())
    print(f"\njoins: all {args.people:,} in line after {joined_seconds:,.1f} s = {args.people / joined_seconds:,.0f} joins/s")
    print(cold.summary())
    print(warm.summary())
    if admitted_per_second is None:
        print("admission: nobody was left waiting in any sample (admission kept pace with the joins)")
    else:
        print(f"admission: {admitted_per_second:,.1f}/s measured over {window:,.0f} s while people waited "
              f"(configured {args.admit_per_second:,.0f}/s); admitting all {args.people:,} takes "
              f"{args.people / args.admit_per_second:,.0f} s at the configured rate, "
              f"{args.people / max(admitted_per_second, 1e-9):,.0f} s at the measured one")


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
