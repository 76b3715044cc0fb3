"""Limits kept in the replica's memory: writes per member, failed logins per username and per
client address. All are token buckets (``TokenBuckets``), the arithmetic in one place.

There is no shared counter to wait on: each replica keeps buckets holding its share of a
limit (the limit ÷ the ingress replicas). HAProxy's leastconn spreads a member's requests
over the replicas, so together they never let more than the limit through; a member whose
requests happen to crowd onto one replica meets its share a little early. (Sending a
member's requests to one replica by hashing the bearer token would count in one place, but
would take the front's steering around a busy replica away: see ``encore/cli.py``.)
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from typing import Hashable

from api.errors import ApiError

MEMBERS_TRACKED_MAX = 100_000
# failed logins: a burst of 5 for a username, then one every 12 s; an address (which may be
# a whole office behind one NAT) gets a burst of 30, then one a second, across usernames
USERNAME_FAILURES_BURST = 5
USERNAME_SECONDS_PER_FAILURE = 12.0
ADDRESS_FAILURES_BURST = 30
ADDRESS_SECONDS_PER_FAILURE = 1.0


class TokenBuckets:
    """A bucket per key holding at most ``burst`` tokens, refilled at ``per_second``; the keys
    used least recently are forgotten (their buckets full again) past ``keys_max``."""

    def __init__(self, per_second: float, burst: float, keys_max: int = MEMBERS_TRACKED_MAX):
        self._rate = per_second
        self._burst = burst
        self._keys_max = keys_max
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def take(self, key: Hashable, now: float) -> int:
        """Take a token: 0 if there was one, else the whole seconds until there is (none taken)."""
        tokens, last = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / self._rate))
        self._buckets[key] = (tokens - 1, now)
        while len(self._buckets) > self._keys_max:
            self._buckets.popitem(last=False)
        return 0

    def give_back(self, key: Hashable) -> None:
        """Return a token taken for something that turned out not to count."""
        if key in self._buckets:
            tokens, last = self._buckets[key]
            self._buckets[key] = (min(self._burst, tokens + 1), last)

    def forget(self, key: Hashable) -> None:
        self._buckets.pop(key, None)


def replica_share(per_second: float, burst: float, replicas: int) -> TokenBuckets:
    """One replica's buckets of a limit meant for the whole service; never under one token, so
    that a limit split over many replicas still lets something through."""
    return TokenBuckets(per_second / replicas, max(1.0, burst / replicas))


class RateLimiter:
    """Writes per member: ``per_minute``, in bursts of a sixth of it."""

    def __init__(self, per_minute: int, replicas: int = 1):
        self._buckets = replica_share(per_minute / 60.0, per_minute / 6.0, replicas)

    def check(self, member_id: int, now: float) -> None:
        retry = self._buckets.take(member_id, now)
        if retry:
            raise ApiError(429, "rate_limited", "too many requests; slow down", {"Retry-After": str(retry)}, retry_after=retry)


class LoginThrottle:
    """Failed logins per username and per client address, so that passwords cannot be guessed
    at the speed of argon2, while the owner of an attacked username is kept out for seconds,
    not hours: a successful login refills the username's bucket.

    A try takes a token from both buckets before the password is checked (a burst of
    concurrent tries is counted as it arrives); a success gives the address its token back.
    """

    def __init__(self, replicas: int = 1):
        self._usernames = replica_share(1 / USERNAME_SECONDS_PER_FAILURE, USERNAME_FAILURES_BURST, replicas)
        self._addresses = replica_share(1 / ADDRESS_SECONDS_PER_FAILURE, ADDRESS_FAILURES_BURST, replicas)

    def attempt(self, username: str, address: str, now: float) -> None:
        """Count a try, or refuse it with 429 ``too_many_attempts`` and when to try again."""
        username = username.lower()  # MySQL finds "Alice" for "alice": one account, one bucket
        retry = self._usernames.take(username, now)
        if not retry:
            retry = self._addresses.take(address, now)
            if retry:
                self._usernames.give_back(username)
        if retry:
            raise ApiError(429, "too_many_attempts", f"too many failed logins; try again in {retry} s",
                           {"Retry-After": str(retry)}, retry_after=retry)

    def succeeded(self, username: str, address: str) -> None:
        self._usernames.forget(username.lower())
        self._addresses.give_back(address)


def client_address(peer: str | None, forwarded_for: str | None, real_ip: str | None) -> str:
    """The address a request came from, for the per-address limits.

    Only a proxy on this machine (the HTTP cache in front, HAProxy) is believed about whom
    it forwards: reading ``X-Forwarded-For`` from the right, where each proxy appends the
    address it was sent from, loopback hops are ours and the first other address is the
    client (``X-Real-IP`` stands in when there is no ``X-Forwarded-For``). What a client
    wrote further left is never reached; a hop that is not an address ends the walk. A peer
    that is not on this machine is the client itself, whatever it sends.
    """
    address = _ip(peer)
    if address is None:
        return peer or "unknown"
    if not address.is_loopback:
        return str(address)
    hops = forwarded_for.split(",") if forwarded_for else [real_ip] if real_ip else []
    for hop in reversed(hops):
        forwarded = _ip(hop.strip())
        if forwarded is None:
            break
        address = forwarded
        if not address.is_loopback:
            break
    return str(address)


def _ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text or "")
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
