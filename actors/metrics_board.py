"""The metrics board: the latest figures each ingress replica reported, for any replica's ``/metrics``.

A scrape reaches one replica, picked by the front; the board is how that replica shows the
others' counters too. Replicas report while their figures change (and now and then when
they do not), so a replica that went silent drops off the board after ``FORGET_SECONDS``. A
replica that died (killed, its node lost) drops off at the next scrape: each report carries the
replica's own actor handle, and the board asks Ray whether that actor still lives.
"""

from __future__ import annotations

import asyncio
import time

import ray

NAMESPACE = "encore"
BOARD_ACTOR_NAME = "encore-metrics-board"
FORGET_SECONDS = 30.0
PING_SECONDS = 1.0  # a replica too busy to answer in time is kept: only a dead one is forgotten


class MetricsBoard:
    def __init__(self):
        self._latest: dict[str, tuple[float, dict, dict, object]] = {}

    def report(self, who: dict[str, str], snapshot: dict, process=None) -> None:
        """``who``: the replica's labels (``replica``, ``node``, ``pid``); ``process``: its actor
        handle, when it runs in one."""
        self._latest[who["replica"]] = (time.monotonic(), who, snapshot, process)

    async def latest(self) -> list[tuple[dict[str, str], dict]]:
        entries = list(self._latest.items())
        alive = await asyncio.gather(*(self._lives(process) for _, (_, _, _, process) in entries))
        dead = {replica for (replica, _), lives in zip(entries, alive) if not lives}
        horizon = time.monotonic() - FORGET_SECONDS
        self._latest = {replica: entry for replica, entry in self._latest.items()
                        if replica not in dead and entry[0] >= horizon}
        return [(who, snapshot) for _, who, snapshot, _ in self._latest.values()]

    @staticmethod
    async def _lives(process) -> bool:
        if process is None:
            return True
        try:
            await asyncio.wait_for(process.__ray_ready__.remote(), PING_SECONDS)
        except ray.exceptions.RayActorError:
            return False
        except Exception:  # busy past PING_SECONDS, or Ray could not tell: the horizon decides
            pass
        return True


MetricsBoardRemote = ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0)(MetricsBoard)


def start_metrics_board():
    return MetricsBoardRemote.options(
        name=BOARD_ACTOR_NAME, namespace=NAMESPACE, get_if_exists=True, lifetime="detached"
    ).remote()
