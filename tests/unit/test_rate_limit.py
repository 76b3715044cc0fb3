"""The write limit is split over the replicas: whatever way the proxy spreads a member's
requests, the replicas together let no more through than the limit allows. Failed logins
are limited per username and per client address, read from a proxy only on this machine."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.errors import ApiError
from api.ratelimit import LoginThrottle, RateLimiter, client_address

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


# ---- failed logins

def tries(throttle: LoginThrottle, username: str, address: str, now: float, count: int = 1) -> list[int]:
    """Retry-After of each try refused, 0 for each let through (and failed)."""
    answers = []
    for _ in range(count):
        try:
            throttle.attempt(username, address, now)
        except ApiError as refused:
            assert (refused.status, refused.code) == (429, "too_many_attempts")
            answers.append(int(refused.headers["Retry-After"]))
            continue
        answers.append(0)
    return answers


def test_a_username_gets_a_burst_of_failures_then_one_every_twelve_seconds():
    throttle = LoginThrottle()
    assert tries(throttle, "alice", "10.0.0.1", 0.0, 6) == [0, 0, 0, 0, 0, 12]
    assert tries(throttle, "ALICE", "10.0.0.2", 0.0) == [12], "the same account from another address, another case"
    assert tries(throttle, "bob", "10.0.0.1", 0.0) == [0], "another username has its own budget"
    assert tries(throttle, "alice", "10.0.0.1", 11.9) == [1]
    assert tries(throttle, "alice", "10.0.0.1", 12.0, 2) == [0, 12]


def test_the_owner_logging_in_resets_the_username():
    throttle = LoginThrottle()
    tries(throttle, "alice", "10.0.0.1", 0.0, 5)
    throttle.attempt("alice", "10.0.0.9", 13.0)
    throttle.succeeded("alice", "10.0.0.9")
    assert tries(throttle, "alice", "10.0.0.1", 13.0, 6) == [0, 0, 0, 0, 0, 12]


def test_an_address_trying_many_usernames_meets_its_own_limit():
    throttle = LoginThrottle()
    answers = [tries(throttle, f"user{n}", "10.0.0.1", 0.0)[0] for n in range(40)]
    assert answers == [0] * 30 + [1] * 10
    assert tries(throttle, "user0", "10.0.0.2", 0.0) == [0], "refused by the address, the username's token was given back"
    assert tries(throttle, "carol", "10.0.0.1", 1.0) == [0]


def test_logins_that_succeed_do_not_use_up_the_address():
    throttle = LoginThrottle()
    for n in range(100):
        throttle.attempt(f"user{n}", "10.0.0.1", 0.0)
        throttle.succeeded(f"user{n}", "10.0.0.1")
    assert tries(throttle, "mallory", "10.0.0.1", 0.0) == [0]


@given(replicas=st.integers(1, 8), spread=st.lists(st.integers(0, 7), min_size=20, max_size=60))
def test_replicas_together_let_no_more_failures_through_than_one_would(replicas, spread):
    throttles = [LoginThrottle(replicas) for _ in range(replicas)]
    through = sum(tries(throttles[n % replicas], "alice", f"10.0.{n}.1", 0.0) == [0] for n in spread)
    assert through <= max(5, replicas)


@pytest.mark.parametrize("peer, forwarded_for, real_ip, client", [
    ("203.0.113.7", None, None, "203.0.113.7"),
    ("203.0.113.7", "198.51.100.1", "198.51.100.2", "203.0.113.7"),  # not our proxy: headers ignored
    ("127.0.0.1", None, None, "127.0.0.1"),
    ("127.0.0.1", "198.51.100.1", None, "198.51.100.1"),
    ("127.0.0.1", "6.6.6.6, 198.51.100.1", None, "198.51.100.1"),  # what the client wrote, left, is not reached
    ("127.0.0.1", "198.51.100.1, 127.0.0.1", None, "198.51.100.1"),  # the cache, then HAProxy
    ("127.0.0.1", None, "198.51.100.2", "198.51.100.2"),
    ("127.0.0.1", "198.51.100.1", "198.51.100.2", "198.51.100.1"),
    ("::1", "2001:db8::1", None, "2001:db8::1"),
    ("::ffff:127.0.0.1", "198.51.100.1", None, "198.51.100.1"),
    ("127.0.0.1", "not-an-address", None, "127.0.0.1"),
    ("127.0.0.1", "198.51.100.1, garbage, 127.0.0.1", None, "127.0.0.1"),
    (None, "198.51.100.1", None, "unknown"),
])
def test_the_client_address_is_believed_only_from_a_proxy_on_this_machine(peer, forwarded_for, real_ip, client):
    assert client_address(peer, forwarded_for, real_ip) == client
