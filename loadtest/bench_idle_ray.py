"""What Ray itself costs at rest: a local Ray with N async actors that do nothing at all.

Each actor keeps one call waiting (as a seat block keeps the seat map's question open), then
nobody calls anything. Prints the cores of every kind of process over ``--seconds`` and, for
one actor, of each of its threads (the main thread is marked): the floor any actor of the
service costs whatever it does. No service, no lock; it starts its own Ray.

    python -m loadtest.bench_idle_ray [--actors 15] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import Counter

import ray

from loadtest.bench_queue import ServiceCPU


@ray.remote(num_cpus=0)
class Idle:
    async def pid(self) -> int:
        return os.getpid()

    async def wait(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def thread_seconds(pid: int) -> dict[tuple[str, str], float]:
    """CPU seconds of each thread of ``pid``, by (thread id, name); the main thread's name marked."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            fields = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[(tid, ("main: " if tid == str(pid) else "") + name)] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actors", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--settle-seconds", type=float, default=15)
    args = parser.parse_args(argv)

    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=80 * 2**20, log_to_driver=False)
    try:
        actors = [Idle.remote() for _ in range(args.actors)]
        pids = ray.get([actor.pid.remote() for actor in actors])
        waiting = [actor.wait.remote(args.settle_seconds + args.seconds + 60) for actor in actors]  # noqa: F841
        time.sleep(args.settle_seconds)
        cpu = ServiceCPU(os.getpid())  # this driver and everything Ray started under it
        threads_before = thread_seconds(pids[0])
        _, cores, elapsed = cpu.cores_while(lambda: time.sleep(args.seconds))
        threads_after = thread_seconds(pids[0])
    finally:
        ray.shutdown()
    print(f"{args.actors} idle actors, {elapsed:.0f} s: {sum(cores.values()):.4f} cores in all")
    for kind, used in sorted(cores.items(), key=lambda item: -item[1]):
        if used >= 0.0005:
            print(f"  {kind:32} {used:.4f} cores")
    threads: Counter = Counter()
    for key, spent in threads_after.items():
        threads[key[1]] += (spent - threads_before.get(key, spent)) / elapsed
    print("one actor's threads: " + ", ".join(f"{name} {used:.4f}" for name, used in threads.most_common() if used > 0))


if __name__ == "__main__":
    main()
