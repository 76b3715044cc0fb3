"""Answering "how many are ahead of me?" in the replica, from a ticket and a cached summary.

The queue actor's summary is followed in the background by long poll (the actor answers at
its next change, at most once per ``interval``, or after ``FOLLOW_WAIT_SECONDS`` with
nothing); a poll reads only the summary. A number
below the head was admitted at the time of the first checkpoint whose head passed it, so
its admission ends ``admission_seconds`` later: until then the poll hands out an admission
token that expires with it, afterwards the ticket reads ``expired`` (the actor has put the
person back at the end of the line; joining again returns their new place).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import time
from datetime import datetime, timezone
from typing import NamedTuple

from domain.waiting_room import expected_wait_seconds, people_ahead
from encore.settings import Settings

log = logging.getLogger(__name__)

POLL_MS_MIN = 1000
POLL_MS_MAX = 15_000
STATUS_POLL_MS = 2000
FOLLOW_WAIT_SECONDS = 30.0


class Position(NamedTuple):
    state: str
    ahead: int
    eta_tenths: int  # the expected wait in tenths of a second
    poll_after_ms: int
    admitted_until: float | None = None

    @property
    def eta_seconds(self) -> float:
        return self.eta_tenths / 10


class QueueView:
    def __init__(self, queue, settings: Settings, interval_ms: int = 200):
        self._queue = queue
        self._admission_seconds = settings.admission_seconds
        self._rate_default = settings.queue_admit_per_second
        self._interval = interval_ms / 1000
        self.summary: dict | None = None
        self._revision = -1
        self._before_first_summary = {"head": 1, "rate": self._rate_default, "drawing": 0, "opened": False, "opens_at": None}
        self._heads: list[int] = []
        self._times: list[float] = []
        self.status_body, self.status_etag = self._render_status(self._before_first_summary)

    def update(self, summary: dict) -> None:
        """Take a summary: all the checkpoints, or (``checkpoints_after``) those newer than
        the newest this view has, less the ones the actor has forgotten."""
        if summary.get("checkpoints_after") is None:
            self._heads, self._times = [], []
        else:
            assert self._times and self._times[-1] == summary["checkpoints_after"], "only new checkpoints follow"
            forgotten = bisect.bisect_left(self._times, summary["oldest_checkpoint_at"])
            del self._heads[:forgotten], self._times[:forgotten]
        self._heads += [head for head, _ in summary["checkpoints"]]
        self._times += [at for _, at in summary["checkpoints"]]
        self.summary = summary
        self._revision = summary.get("revision", -1)
        self.status_body, self.status_etag = self._render_status(summary)

    def _render_status(self, summary: dict) -> tuple[bytes, str]:
        """The waiting room's public status: the same bytes for everyone, so the HTTP cache in
        front answers the storm's polls. Each person's page finds its own place from it and the
        number in its signed ticket (``number - (admitted_through + 1)`` people ahead)."""
        opens_at = summary.get("opens_at")
        status = {
            "version": summary.get("version", 0),
            "opened": summary["opened"],
            "opens_at": _iso(opens_at) if opens_at else None,
            "admitted_through": summary["head"] - 1,
            "waiting": summary.get("waiting", 0) + summary["drawing"],
            "drawing": summary["drawing"],
            "admit_per_second": round(summary["rate"] or self._rate_default, 2),
            "admission_seconds": self._admission_seconds,
            "poll_after_ms": STATUS_POLL_MS,
        }
        body = json.dumps(status, separators=(",", ":")).encode()
        return body, f'"q{status["version"]}-{status["admitted_through"]}-{status["waiting"]}"'

    async def refresh(self) -> None:
        """Take the actor's summary now."""
        self.update(await self._queue.summary.remote(self._times[-1] if self._times else None))

    async def _follow(self) -> None:
        """Take the actor's next summary that differs from this view's, if one comes within the wait."""
        summary = await self._queue.summary.remote(
            self._times[-1] if self._times else None, self._revision, FOLLOW_WAIT_SECONDS, self._interval)
        if summary is not None:
            self.update(summary)

    async def run_forever(self) -> None:
        while True:
            try:
                await self._follow()
            except Exception:
                log.exception("queue summary refresh failed")
                await asyncio.sleep(self._interval)

    def position(self, number: int | None, now: float | None = None) -> Position:
        """Where ticket ``number`` stands (``None``: in the pre-opening draw)."""
        summary = self.summary or self._before_first_summary
        now = time.time() if now is None else now
        if number is None or number >= summary["head"]:
            ahead = people_ahead(number, summary["head"], summary["drawing"])
            until_opening = (summary["opens_at"] or now) - now if number is None else 0.0
            return _waiting(ahead, expected_wait_seconds(ahead, summary["rate"], until_opening))
        admitted_at = self._admitted_at(number)
        if admitted_at is None or admitted_at + self._admission_seconds <= now:
            return Position("expired", 0, 0, POLL_MS_MAX)
        return Position("admitted", 0, 0, POLL_MS_MAX, admitted_at + self._admission_seconds)

    def _admitted_at(self, number: int) -> float | None:
        index = bisect.bisect_right(self._heads, number)
        return self._times[index] if index < len(self._times) else None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _waiting(ahead: int, wait_seconds: float) -> Position:
    return Position("waiting", ahead, int(wait_seconds * 10 + 0.5), _poll_ms(wait_seconds))


def _poll_ms(wait_seconds: float) -> int:
    """Poll about ten times over the expected wait, between one and fifteen seconds apart."""
    return int(min(POLL_MS_MAX, max(POLL_MS_MIN, wait_seconds * 100)))
