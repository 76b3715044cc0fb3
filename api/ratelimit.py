"""Per-member write limits: a token bucket per member, kept in the replica's memory.

There is no shared counter to wait on: each replica keeps a bucket for a member holding its
share of the limit (the limit ÷ the ingress replicas). HAProxy's leastconn spreads a member's
requests over the replicas, so together they never let more than the limit through; a member
whose requests happen to crowd onto one replica meets its share a little early. (Sending a
member's requests to one replica by hashing the bearer token would count in one place, but
measured on this machine it put the seat map's p95 over 150 ms: see ``encore/cli.py``.)
"""

from __future__ import annotations

import math
from collections import OrderedDict

from api.errors import ApiError

MEMBERS_TRACKED_MAX = 100_000


class RateLimiter:
    def __init__(self, per_minute: int, replicas: int = 1):
        share = per_minute / replicas
        self._rate = share / 60.0
        self._burst = max(1.0, share / 6.0)
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
