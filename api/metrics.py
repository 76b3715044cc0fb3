"""Prometheus text for ``/metrics``: every replica's and every actor's figures in one scrape.

Each replica counts its own requests (per route, method and status, with latency buckets),
hold outcomes, problems answered and queue polls, in plain dicts: a request pays a few
dictionary increments, nothing more. It reports a snapshot of them to the metrics board
(``actors/metrics_board.py``) about once a second while they change. The replica that answers
a scrape renders its own current figures, the board's latest of every other replica, and
what each seat block and the queue actor say when asked, so whichever replica the front
picks, the scrape sees them all, each sample labelled with who counted it (``replica``,
``node``; ``block``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

LATENCY_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """One replica's counters; ``observed`` grows with every request, so a reporter can tell
    whether anything changed since its last report."""

    def __init__(self):
        self._requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self._buckets: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS_SECONDS) + 1))
        self._sums: dict[tuple[str, str], float] = defaultdict(float)
        self.holds: dict[str, int] = defaultdict(int)
        self.problems: dict[tuple[int, str], int] = defaultdict(int)
        self.observed = 0

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.observed += 1
        self._requests[(route, method, status)] += 1
        buckets = self._buckets[(route, method)]
        for index, bound in enumerate(LATENCY_BUCKETS_SECONDS):
            if seconds <= bound:
                buckets[index] += 1
                break
        else:
            buckets[-1] += 1
        self._sums[(route, method)] += seconds

    def count_hold(self, outcome: str) -> None:
        """``won``, ``refused_by_map`` (the replica's current map showed a seat taken), or the
        refusal's code (``seat_unavailable`` when the block gave the seat to someone else)."""
        self.holds[outcome] += 1

    def count_problem(self, status: int, code: str) -> None:
        self.problems[(status, code)] += 1

    def snapshot(self, polls: dict[str, int]) -> dict:
        """Plain data, cheap to send to the board: the counters as they are now."""
        return {
            "requests": dict(self._requests),
            "latency": {key: (list(buckets), self._sums[key]) for key, buckets in self._buckets.items()},
            "holds": dict(self.holds),
            "problems": dict(self.problems),
            "polls": dict(polls),
        }


# The replica's counters. Serve runs a copy of the app object it is given in each replica, so
# they live here, in the module, where the edge that times requests and the service that
# reports them both find the same ones.
replica_metrics = Metrics()


@dataclass(frozen=True)
class Figures:
    """What one scrape gathered: ``replicas`` by their labels (``replica``, ``node``, ``pid``) with
    their snapshots; each block's ``stats()`` or ``None`` when it did not answer; the queue
    actor's ``figures()`` or ``None``; bookings by status, or ``None`` when the store did not answer."""

    replicas: list[tuple[dict[str, str], dict]]
    blocks: list[tuple[str, dict | None]]
    queue: dict | None
    bookings: dict[str, int] | None


def _escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: dict) -> str:
    return ",".join(f'{name}="{_escape(value)}"' for name, value in pairs.items())


class _Text:
    """Samples grouped by family, each family's ``# TYPE`` line once, before its samples."""

    def __init__(self):
        self._families: dict[str, tuple[str, list[str]]] = {}

    def add(self, family: str, kind: str, labels: dict, value, suffix: str = "") -> None:
        lines = self._families.setdefault(family, (kind, []))[1]
        text = _labels(labels)
        lines.append(f"{family}{suffix}{{{text}}} {value}" if text else f"{family}{suffix} {value}")

    def render(self) -> str:
        out = []
        for family, (kind, lines) in self._families.items():
            out.append(f"# TYPE {family} {kind}")
            out.extend(lines)
        return "\n".join(out) + "\n"


def render(figures: Figures) -> str:
    text = _Text()
    for who, snapshot in sorted(figures.replicas, key=lambda pair: pair[0]["replica"]):
        _render_replica(text, who, snapshot)
    for name, stats in figures.blocks:
        _render_block(text, name, stats)
    _render_queue(text, figures.queue)
    if figures.bookings is not None:
        for status, count in sorted(figures.bookings.items()):
            text.add("encore_bookings", "gauge", {"status": status}, count)
    return text.render()


def _render_replica(text: _Text, who: dict[str, str], snapshot: dict) -> None:
    where = {"replica": who["replica"], "node": who["node"]}
    text.add("encore_replica_info", "gauge", {**where, "pid": who["pid"]}, 1)
    for (route, method, status), count in sorted(snapshot["requests"].items()):
        text.add("encore_http_requests_total", "counter", {**where, "route": route, "method": method, "status": status},
                 count)
    for (route, method), (buckets, seconds) in sorted(snapshot["latency"].items()):
        labels = {**where, "route": route, "method": method}
        running = 0
        for bound, count in zip(LATENCY_BUCKETS_SECONDS, buckets):
            running += count
            text.add("encore_http_request_seconds", "histogram", {**labels, "le": bound}, running, "_bucket")
        running += buckets[-1]
        text.add("encore_http_request_seconds", "histogram", {**labels, "le": "+Inf"}, running, "_bucket")
        text.add("encore_http_request_seconds", "histogram", labels, running, "_count")
        text.add("encore_http_request_seconds", "histogram", labels, f"{seconds:.6f}", "_sum")
    for outcome, count in sorted(snapshot["holds"].items()):
        text.add("encore_holds_total", "counter", {**where, "outcome": outcome}, count)
    for (status, code), count in sorted(snapshot["problems"].items()):
        text.add("encore_problems_total", "counter", {**where, "status": status, "code": code}, count)
    for tokens, count in sorted(snapshot["polls"].items()):
        text.add("encore_queue_polls_total", "counter", {**where, "tokens": tokens}, count)


def _render_block(text: _Text, name: str, stats: dict | None) -> None:
    text.add("encore_block_up", "gauge", {"block": name}, 0 if stats is None else 1)
    if stats is None:
        return
    where = {"block": name, "node": stats["node"]}
    for state in ("available", "held", "sold"):
        text.add("encore_seats", "gauge", {**where, "state": state}, stats["seats"][state])
    text.add("encore_block_live_bookings", "gauge", where, stats["live_bookings"])
    text.add("encore_block_commits_total", "counter", where, stats["commit_batches"])
    text.add("encore_block_changes_written_total", "counter", where, stats["changes_written"])
    text.add("encore_block_commit_backlog", "gauge", where, stats["commit_backlog"])


def _render_queue(text: _Text, queue: dict | None) -> None:
    text.add("encore_queue_up", "gauge", {}, 0 if queue is None else 1)
    if queue is None:
        return
    for state in ("waiting", "active", "drawing"):
        text.add("encore_queue_people", "gauge", {"state": state}, queue[state])
    text.add("encore_queue_admit_rate", "gauge", {}, queue["rate"])
    text.add("encore_queue_admitted_total", "counter", {}, queue["head"])
    text.add("encore_queue_joined_total", "counter", {}, queue["next_number"])
