"""What the service costs at rest: CPU by kind of process while nobody sends a request.

Starts the whole service as the other benchmarks do (``encore serve`` on a throwaway MariaDB
database, 2 ingress replicas), waits until it is healthy and has settled, then measures the
CPU of every process of it (Ray's daemons, Serve's controller and proxy, HAProxy, the HTTP
cache, the replicas, the seat blocks, the queue) over ``--seconds`` of no load, ``--rounds``
times in a row, and prints the cores each kind used and the total. Target: under 0.05 cores.

    python -m loadtest.bench_rest [--seconds 60] [--settle-seconds 20] [--rounds 1] [--replicas 2] [--sqlite]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from harness.service import one_service_at_a_time, start_service, stop_service
from loadtest.bench_core import bench_database
from loadtest.bench_queue import ServiceCPU

TARGET_CORES = 0.05


def measure(service, args) -> None:
    cpu = ServiceCPU(service.process.pid)
    counts = cpu.processes()
    for round_number in range(1, args.rounds + 1):
        load_before = os.getloadavg()[0]
        _, cores, seconds = cpu.cores_while(lambda: time.sleep(args.seconds))
        total = sum(cores.values())
        print(f"\nround {round_number}: {seconds:.0f} s at rest, {total:.4f} cores in all "
              f"({'under' if total < TARGET_CORES else 'OVER'} the {TARGET_CORES} target); "
              f"machine load average {load_before:.1f} → {os.getloadavg()[0]:.1f}")
        for kind, used in sorted(cores.items(), key=lambda item: -item[1]):
            print(f"  {kind:40} ×{counts.get(kind, 0):<3} {used:.4f} cores")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="length of one measurement")
    parser.add_argument("--settle-seconds", type=float, default=20, help="wait this long after /healthz first")
    parser.add_argument("--rounds", type=int, default=1, help="measurements in a row on the same service")
    parser.add_argument("--replicas", type=int, default=2, help="ingress replicas (ENCORE_INGRESS_REPLICAS)")
    parser.add_argument("--sqlite", action="store_true", help="use the embedded store instead of MariaDB")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="encore-bench-rest-"))
    with bench_database(args.sqlite, folder) as db_url, one_service_at_a_time():
        service = start_service(db_url, folder / "service.log", ingress_replicas=args.replicas)
        try:
            print(f"{service.url} healthy ({'SQLite' if args.sqlite else 'MariaDB'}, {args.replicas} ingress "
                  f"replicas); settling {args.settle_seconds:.0f} s", flush=True)
            time.sleep(args.settle_seconds)
            measure(service, args)
        finally:
            stop_service(service.process)


if __name__ == "__main__":
    main()
