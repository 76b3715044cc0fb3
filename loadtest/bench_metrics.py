"""What counting a request costs on the hot path: our dict counters against Ray's metrics API.

Inside one Ray actor (where ``ray.util.metrics`` records for real, through Ray's C++ core to
the node's metrics agent), a request's worth of counting is timed both ways: ``Metrics.observe``
(a counter and a latency bucket, in dicts) and a ``Counter.inc`` plus a ``Histogram.observe``
with the same labels plus the replica's. Run on an idle machine for clean figures; the ratio
is what to read.

    python -m loadtest.bench_metrics [--requests 200000]
"""

from __future__ import annotations

import argparse
import time

import ray

from api.metrics import LATENCY_BUCKETS_SECONDS, Metrics

ROUTES = [("/api/seats", "GET", 200), ("/api/holds", "POST", 201), ("/api/holds", "POST", 409), ("/api/queue/status", "GET", 200)]


@ray.remote(num_cpus=0)
class Counting:
    def ours(self, requests: int) -> float:
        metrics = Metrics()
        started = time.perf_counter()
        for i in range(requests):
            route, method, status = ROUTES[i & 3]
            metrics.observe(route, method, status, 0.003)
        return (time.perf_counter() - started) / requests

    def rays(self, requests: int) -> float:
        from ray.util.metrics import Counter, Histogram

        counter = Counter("bench_requests", tag_keys=("route", "method", "status", "replica"))
        latency = Histogram("bench_request_seconds", boundaries=list(LATENCY_BUCKETS_SECONDS),
                            tag_keys=("route", "method", "replica"))
        started = time.perf_counter()
        for i in range(requests):
            route, method, status = ROUTES[i & 3]
            counter.inc(1, {"route": route, "method": method, "status": str(status), "replica": "r1"})
            latency.observe(0.003, {"route": route, "method": method, "replica": "r1"})
        return (time.perf_counter() - started) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    ray.init(num_cpus=1, object_store_memory=100 * 1024 * 1024, include_dashboard=False, log_to_driver=False)
    try:
        actor = Counting.remote()
        for _ in range(3):
            ours = ray.get(actor.ours.remote(args.requests))
            rays = ray.get(actor.rays.remote(args.requests))
            print(f"per request: ours {ours * 1e6:.2f} µs, Ray's metrics API {rays * 1e6:.2f} µs "
                  f"({rays / ours:.1f}×); at 2,000 requests/s a replica spends {ours * 2000 * 100:.2f} % "
                  f"against {rays * 2000 * 100:.2f} % of a core counting", flush=True)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
