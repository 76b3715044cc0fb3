"""The write limit is split over the replicas: whatever way the proxy spreads a member's
requests, the replicas together let no more through than the limit allows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.errors import ApiError
from api.ratelimit import RateLimiter

PER_MINUTE = 120
BURST = PER_MINUTE // 6


def passed(limiter: RateLimiter, member: int, now: float) -> bool:
    try:
        limiter.check(member, now)
    except ApiError as refused:
        assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
        return False
    return True


def test_one_replica_allows_the_burst_then_refuses():
    limiter = RateLimiter(PER_MINUTE)
    assert [passed(limiter, 1, 0.0) for _ in range(BURST + 1)] == [True] * BURST + [False]
    assert passed(limiter, 2, 0.0), "another member has a bucket of their own"
    assert passed(limiter, 1, 60 / PER_MINUTE), "a write's worth of time refills one"


@given(
    replicas=st.integers(1, 8),
    requests=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 30).map(lambda tenths: tenths / 10)), min_size=2 * BURST, max_size=200),
)
def test_replicas_together_never_pass_more_than_the_limit(replicas, requests):
    limiters = [RateLimiter(PER_MINUTE, replicas) for _ in range(replicas)]
    seconds = max(at for _, at in requests) - min(at for _, at in requests)
    through = sum(passed(limiters[replica % replicas], 1, at) for replica, at in sorted(requests, key=lambda r: r[1]))
    assert through <= BURST + seconds * PER_MINUTE / 60


def test_a_spread_burst_gets_the_whole_limit():
    limiters = [RateLimiter(PER_MINUTE, 2) for _ in range(2)]
    through = sum(passed(limiters[n % 2], 1, 0.0) for n in range(3 * BURST))
    assert through == BURST


@pytest.mark.parametrize("replicas", [1, 2, 4])
def test_a_share_under_one_write_still_allows_one(replicas):
    assert passed(RateLimiter(1, replicas), 1, 0.0)
