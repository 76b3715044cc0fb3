"""Per-member write limits: a token bucket per member, kept in the replica's memory.

Each replica limits on its own (there is no shared counter to wait on). The proxy sends all
of a member's requests to one replica (HAProxy hashes the bearer token, see
``encore/cli.py``), so the count is in one place; only a member who logs in again may land
on another replica and start a fresh bucket there.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from api.errors import ApiError

MEMBERS_TRACKED_MAX = 100_000


class RateLimiter:
    def __init__(self, per_minute: int):
        self._rate = per_minute / 60.0
        self._burst = max(1.0, per_minute / 6.0)
        self._buckets: OrderedDict[int, tuple[float, float]] = OrderedDict()

    def check(self, member_id: int, now: float) -> None:
        tokens, last = self._buckets.pop(member_id, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < 1:
            self._buckets[member_id] = (tokens, now)
            retry = math.ceil((1 - tokens) / self._rate)
            raise ApiError(429, "rate_limited", "too many requests; slow down", {"Retry-After": str(retry)}, retry_after=retry)
        self._buckets[member_id] = (tokens - 1, now)
        while len(self._buckets) > MEMBERS_TRACKED_MAX:
            self._buckets.popitem(last=False)
