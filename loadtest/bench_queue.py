"""Waiting-room benchmark: 200,000 people join, then poll the public status; claims; admission.

Session tokens and tickets are minted with the service's own secret (the benchmark starts the
service and knows it), so 200,000 distinct members can join without 200,000 argon2 sign-ups.

A waiting page reads the waiting room's public status (``GET /api/queue/status``, the same
bytes for everyone) and works out its place from its own ticket; the HTTP cache in front
answers those reads, so however many people wait, a replica is asked about once a second.
The benchmark measures, in one run:

* joins: everyone joins (``POST /api/queue``, batched into the queue actor) → joins/s;
* polls: the status is read for ``--poll-seconds`` (60) by wrk at full speed, and the CPU of
  the service's processes, by kind, is measured over that minute and over a minute at rest
  just before. The brief's 200,000 people polling every 2 s are 100,000 reads/s: more than
  one load generator on these two cores sends, so the figure printed is the CPU the replicas
  spent during the reads (target < 0.1 core), with the reads/s that were actually answered;
* claims: admitted people claim their admission (``POST /api/queue/admission``) → claims/s;
* admission: the queue's gauges are sampled throughout; the rate while people waited gives
  the time to admit everybody.

    python -m loadtest.bench_queue [--people 200000] [--admit-per-second 200] [--replicas 2]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from api.auth import Tokens
from encore.settings import Settings
from harness.metrics import by_label
from harness.service import one_service_at_a_time, start_service, stop_service
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

CLAIM_LUA = r"""
index = 0
request = function()
  index = index + 1
  if index > #people then index = 1 end
  local token, ticket = people[index]:match("([^ ]+) ([^ ]+)")
  return wrk.format("POST", "/api/queue/admission",
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"},
    '{"ticket":"' .. ticket .. '"}')
end
"""

THREADS = 1  # see loadtest/wrk.py: a second thread would be counted before the clock starts
REPLICA_KIND = "ray::ServeReplica"


def queue_gauges(base_url: str) -> dict[str, float]:
    return by_label(httpx.get(f"{base_url}/metrics", timeout=10).text, "encore_queue_people", "state")


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


class ServiceCPU:
    """CPU seconds of the service's processes by kind (replicas, nginx, HAProxy, actors …)."""

    def __init__(self, service_pid: int):
        from loadtest.sellout import Sampler

        self._sampler = Sampler(Path(tempfile.mkdtemp()) / "unused.csv", service_pid)

    def processes(self) -> Counter:
        """How many processes of each kind the service runs."""
        return Counter(self._sampler.kind(process) for process in self._sampler.service_processes())

    def read(self) -> Counter:
        spent: Counter = Counter()
        for process in self._sampler.service_processes():
            try:
                times = process.cpu_times()
            except Exception:
                continue
            spent[self._sampler.kind(process)] += times.user + times.system
        return spent

    def cores_while(self, work) -> tuple[object, dict[str, float], float]:
        """Run ``work()``; return its result, the cores each kind used meanwhile, and the seconds."""
        before, started = self.read(), time.monotonic()
        result = work()
        seconds = time.monotonic() - started
        after = self.read()
        return result, {kind: (after[kind] - before[kind]) / seconds for kind in after}, seconds


def cores_line(cores: dict[str, float]) -> str:
    top = sorted(cores.items(), key=lambda item: -item[1])[:6]
    return f"{sum(cores.values()):.2f} cores in all (" + ", ".join(f"{kind} {used:.3f}" for kind, used in top) + ")"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--admit-per-second", type=float, default=Settings.model_fields["queue_admit_per_second"].default,
                        help="ENCORE_QUEUE_ADMIT_PER_SECOND (default: the service's own default)")
    parser.add_argument("--poll-seconds", type=int, default=60, help="how long the public status is read, and rested")
    parser.add_argument("--claim-seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--replicas", type=int, default=2, help="ingress replicas (ENCORE_INGRESS_REPLICAS)")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="encore-bench-queue-"))
    settings = dict(queue_active_max=args.people, queue_admit_per_second=args.admit_per_second, admission_seconds=3600,
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
    cpu = ServiceCPU(service.process.pid)

    wrk.warm_up(service.url, args.connections)
    join_script = (
        wrk.lua_string_list("people", people) + f"THREADS = {THREADS}\nPER_THREAD = {args.people // THREADS}\n"
        + JOIN_LUA
    )
    with QueueWatch(service.url, args.people) as watch:
        joins = wrk.run("POST /api/queue (join)", f"{service.url}/api/queue", JOIN_SECONDS_MAX, args.connections, THREADS,
                        join_script, until=watch.everyone_joined)
        joined_seconds = (watch.all_joined_at or time.monotonic()) - watch.started

        _, resting, rest_seconds = cpu.cores_while(lambda: time.sleep(args.poll_seconds))
        polls, polling, poll_seconds = cpu.cores_while(lambda: wrk.run(
            "GET /api/queue/status", f"{service.url}/api/queue/status", args.poll_seconds, args.connections))

        admitted_through = httpx.get(f"{service.url}/api/queue/status").json()["admitted_through"]
        admitted = list(members[: max(1, min(admitted_through, 20_000))])
        claims_file = folder / "claims.txt"
        claims_file.write_text("\n".join(
            f"{sessions[m - 1]} {tokens.ticket(m, m, 0, 3600)}" for m in admitted) + "\n")
        claims = wrk.run("POST /api/queue/admission", f"{service.url}/api/queue/admission", args.claim_seconds,
                         args.connections, THREADS, wrk.lua_string_list("people", claims_file) + CLAIM_LUA)
    admitted_per_second, window = admission_rate(watch.samples)

    print(f"\n{args.people:,} people through {service.url}, {args.replicas} ingress replica(s), {args.connections} connections")
    print(joins.line())
    print(polls.line())
    print(claims.line())
    print(f"\njoins: all {args.people:,} in line after {joined_seconds:,.1f} s = {args.people / joined_seconds:,.0f} joins/s")
    replicas_polling = polling.get(REPLICA_KIND, 0.0)
    print(f"public status: {polls.per_second:,.0f} reads/s for {poll_seconds:.0f} s (the polls of "
          f"{polls.per_second * 2:,.0f} people reading every 2 s), {polls.codes}")
    print(f"  replicas while reading: {replicas_polling:.3f} cores (target < 0.1); at rest: "
          f"{resting.get(REPLICA_KIND, 0.0):.3f} cores")
    print(f"  the service while reading: {cores_line(polling)}")
    print(f"  the service at rest ({rest_seconds:.0f} s): {cores_line(resting)}")
    print(f"claims: {claims.per_second:,.0f}/s ({len(admitted):,} admitted people claiming in turn), {claims.codes}")
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
