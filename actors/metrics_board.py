"""The metrics board: the latest figures each ingress replica reported, for any replica's ``/metrics``.

A scrape reaches one replica, picked by the front; the board is how that replica shows the
others' counters too. Replicas report while their figures change (and now and then when
they do not), so a replica that is gone drops off the board after ``FORGET_SECONDS``.
"""

from __future__ import annotations

import time

import ray

NAMESPACE = "encore"
BOARD_ACTOR_NAME = "encore-metrics-board"
FORGET_SECONDS = 30.0


class MetricsBoard:
    def __init__(self):
        self._latest: dict[str, tuple[float, dict, dict]] = {}

    def report(self, who: dict[str, str], snapshot: dict) -> None:
        """``who``: the replica's labels (``replica``, ``node``, ``pid``)."""
        self._latest[who["replica"]] = (time.monotonic(), who, snapshot)

    def latest(self) -> list[tuple[dict[str, str], dict]]:
        horizon = time.monotonic() - FORGET_SECONDS
        self._latest = {replica: entry for replica, entry in self._latest.items() if entry[0] >= horizon}
        return [(who, snapshot) for _, who, snapshot in self._latest.values()]


MetricsBoardRemote = ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0)(MetricsBoard)


def start_metrics_board():
    return MetricsBoardRemote.options(
        name=BOARD_ACTOR_NAME, namespace=NAMESPACE, get_if_exists=True, lifetime="detached"
    ).remote()
