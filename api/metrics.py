"""Prometheus text for ``/metrics``: requests and latencies per route, seats, bookings by status
(holds, sales, expiries, failures), the queue.

Counted in the replica that served the request; with several replicas each reports its own,
and says which it is (``encore_replica_info``).
"""

from __future__ import annotations

import os
from collections import defaultdict

LATENCY_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self):
        self._requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self._buckets: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS_SECONDS) + 1))
        self._sums: dict[tuple[str, str], float] = defaultdict(float)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self._requests[(route, method, status)] += 1
        buckets = self._buckets[(route, method)]
        for index, bound in enumerate(LATENCY_BUCKETS_SECONDS):
            if seconds <= bound:
                buckets[index] += 1
                break
        else:
            buckets[-1] += 1
        self._sums[(route, method)] += seconds

    def render(self, service, bookings_by_status: dict[str, int]) -> str:
        lines = ["# TYPE encore_replica_info gauge", f'encore_replica_info{{pid="{os.getpid()}"}} 1']
        lines.append("# TYPE encore_http_requests_total counter")
        for (route, method, status), count in sorted(self._requests.items()):
            lines.append(f'encore_http_requests_total{{route="{route}",method="{method}",status="{status}"}} {count}')
        lines.append("# TYPE encore_http_request_seconds histogram")
        for (route, method), buckets in sorted(self._buckets.items()):
            labels = f'route="{route}",method="{method}"'
            running = 0
            for bound, count in zip(LATENCY_BUCKETS_SECONDS, buckets):
                running += count
                lines.append(f'encore_http_request_seconds_bucket{{{labels},le="{bound}"}} {running}')
            running += buckets[-1]
            lines.append(f'encore_http_request_seconds_bucket{{{labels},le="+Inf"}} {running}')
            lines.append(f"encore_http_request_seconds_count{{{labels}}} {running}")
            lines.append(f"encore_http_request_seconds_sum{{{labels}}} {self._sums[(route, method)]:.6f}")
        status = service.seat_map.status()
        lines.append("# TYPE encore_seats gauge")
        for state, name in ((ord("A"), "available"), (ord("H"), "held"), (ord("S"), "sold")):
            lines.append(f'encore_seats{{state="{name}"}} {status.count(state)}')
        lines.append("# TYPE encore_holds_refused_by_map_total counter")
        lines.append(f"encore_holds_refused_by_map_total {service.holds_refused_by_map}")
        lines.append("# TYPE encore_bookings gauge")
        for status, count in sorted(bookings_by_status.items()):
            lines.append(f'encore_bookings{{status="{status}"}} {count}')
        summary = service.queue_view.summary or {}
        lines.append("# TYPE encore_queue_people gauge")
        for key in ("waiting", "active", "drawing"):
            lines.append(f'encore_queue_people{{state="{key}"}} {summary.get(key, 0)}')
        lines.append("# TYPE encore_queue_admit_rate gauge")
        lines.append(f"encore_queue_admit_rate {summary.get('rate', 0)}")
        lines.append("# TYPE encore_queue_polls_total counter")
        lines.append(f'encore_queue_polls_total{{tokens="remembered"}} {service.tokens.polls_remembered}')
        lines.append(f'encore_queue_polls_total{{tokens="verified"}} {service.tokens.polls_verified}')
        return "\n".join(lines) + "\n"
