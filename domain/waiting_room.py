"""The waiting room: who may book next, in what order, and how many people are ahead of you.

Pure queue arithmetic, owned by one queue actor that persists ``snapshot()`` and calls
``advance(now)`` on a timer. Time is passed in, never read, so the policy is deterministic.

Numbers and the head. Everyone in line holds a *number* from one counter that only goes up,
and people are admitted strictly in number order. ``head`` is the smallest number still
waiting (the next number to be issued when nobody waits): everyone below it has been
admitted or is gone. So the edge answers "how many are ahead of me" from a cached ``head``
alone, ``ahead = max(0, n - head)``. That is exact unless someone between ``head`` and ``n``
left the line; their empty place is then still counted, a safe over-estimate that vanishes
once ``head`` passes it. ``head`` never goes back and a waiting person's number never
changes, so a numbered person's position never goes up.

Opening. People who join before ``opens_at`` are collected without a number. At the opening
(the first ``join``/``advance``/``leave`` with ``now >= opens_at``) they are shuffled with the
room's ``random.Random`` and given the first numbers, before anyone who joins later; from
then on it is first come, first served. Until the draw, ``number`` is ``None`` and ``ahead``
is the number of *other* people in the draw — the worst case. It can grow while others join
(they are in the same draw), and the number drawn can only be at least as good.

Expired admissions. An admission lasts ``admission_seconds``; one that lapses goes to the end
of the line with a fresh number from the same counter, which keeps admissions in number
order and ``head`` monotone. That happens at most ``requeues_max`` times in a row; after that
the person is dropped, so an abandoned browser cannot cycle through the admitted slots
forever (joining again starts afresh).

Admission policy: at most ``active_max`` admitted at once, and a token bucket of ``burst``
tokens refilled at ``admit_per_second``: over any interval of ``T`` seconds at most
``burst + admit_per_second * T`` people are admitted.

Size: two dict entries and two ints per numbered person (~170 bytes), O(1) ``join``,
``leave`` and ``complete``, and ``advance`` proportional to what it admits and expires.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

from domain.booking import EventType
from domain.errors import QueueFull

WAITING, ADMITTED, EXPIRED = "waiting", "admitted", "expired"
LEFT, COMPLETED = "left", "completed"

FIRST_NUMBER = 1
NUMBER_MAX = 2**53 - 1  # exact in JSON and in JavaScript
MEMBERS_MAX_LIMIT = 10_000_000
RATE_MAX = 1_000_000.0
ADMISSION_SECONDS_MAX = 7 * 24 * 3600.0
REQUEUES_MAX_LIMIT = 100
ETA_SECONDS_MAX = 24 * 3600.0
EXPIRY_SLACK = 64  # stale expiry entries tolerated beyond 2 x admitted before compacting
SNAPSHOT_VERSION = 1
# the configuration's keys in snapshots saved by releases before 0.7, whose names put "max" first
SNAPSHOT_CONFIG_OLD_KEYS = {"max_active": "active_max", "max_members": "members_max", "max_requeues": "requeues_max"}


class Standing(NamedTuple):
    """Where one member stands. ``number`` is ``None`` until the pre-open draw; ``deadline``
    (epoch seconds) is set while admitted. ``state`` is ``expired`` only when asked about a
    ticket number the member no longer holds."""

    state: str
    number: int | None
    ahead: int
    deadline: float | None = None


@dataclass(frozen=True, slots=True)
class QueueEvent:
    """One change to log. For an expired admission ``number`` is the lapsed one and
    ``requeued_as`` the new one at the end of the line (``None``: dropped)."""

    type: EventType
    member_id: int
    number: int | None
    at: float
    requeued_as: int | None = None
    reason: str | None = None  # for QUEUE_LEFT: "left" or "completed"


def people_ahead(number: int | None, head: int, drawing: int) -> int:
    """People ahead of ticket ``number``: ``number - head`` (over by places left empty between
    them), or, in the pre-opening draw (``None``), everyone else in the draw."""
    if number is None:
        return max(0, drawing - 1)
    return max(0, number - head)


def expected_wait_seconds(ahead: int, rate: float, until_opening: float = 0.0) -> float:
    """Seconds until ``ahead`` more people are admitted at ``rate`` per second, after the
    opening ``until_opening`` seconds away; capped at a day, which a stalled line would
    otherwise overrun by years."""
    seconds = max(0, ahead) / rate if rate > 0 else ETA_SECONDS_MAX
    return min(ETA_SECONDS_MAX, max(0.0, until_opening) + seconds)


def _check_member(member_id: int) -> None:
    if type(member_id) is not int or member_id < 0:
        raise ValueError(f"a member id is a non-negative int, got {member_id!r}")


def _finite(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


class WaitingRoom:
    def __init__(
        self,
        *,
        active_max: int,
        admit_per_second: float,
        admission_seconds: float,
        opens_at: float | None = None,
        rng: random.Random | None = None,
        members_max: int = 1_000_000,
        requeues_max: int = 3,
        burst: float | None = None,
        rate_window_seconds: float = 10.0,
        epoch: int = 0,
    ):
        if not (type(members_max) is int and 1 <= members_max <= MEMBERS_MAX_LIMIT):
            raise ValueError(f"members_max must be within 1..{MEMBERS_MAX_LIMIT}")
        if not (type(active_max) is int and 1 <= active_max <= members_max):
            raise ValueError("active_max must be within 1..members_max")
        if not (type(requeues_max) is int and 0 <= requeues_max <= REQUEUES_MAX_LIMIT):
            raise ValueError(f"requeues_max must be within 0..{REQUEUES_MAX_LIMIT}")
        if not (type(epoch) is int and 0 <= epoch <= NUMBER_MAX):
            raise ValueError("epoch must be a non-negative int")
        self.admit_per_second = _finite(admit_per_second, "admit_per_second")
        if not 0 < self.admit_per_second <= RATE_MAX:
            raise ValueError(f"admit_per_second must be within (0, {RATE_MAX}]")
        self.burst = _finite(max(1.0, self.admit_per_second) if burst is None else burst, "burst")
        if not 1 <= self.burst <= RATE_MAX:
            raise ValueError(f"burst must be within [1, {RATE_MAX}]")
        self.admission_seconds = _finite(admission_seconds, "admission_seconds")
        if not 0 < self.admission_seconds <= ADMISSION_SECONDS_MAX:
            raise ValueError(f"admission_seconds must be within (0, {ADMISSION_SECONDS_MAX}]")
        self.rate_window_seconds = _finite(rate_window_seconds, "rate_window_seconds")
        if not 0 < self.rate_window_seconds <= 3600:
            raise ValueError("rate_window_seconds must be within (0, 3600]")
        self.opens_at = None if opens_at is None else _finite(opens_at, "opens_at")
        self.active_max = active_max
        self.members_max = members_max
        self.requeues_max = requeues_max
        self.epoch = epoch  # names this room (one sale); tickets of another epoch are stale

        self._rng = rng if rng is not None else random.Random()
        self._opened = opens_at is None
        self._clock = -math.inf  # the latest `now` seen; time never runs backwards in here
        self._next = FIRST_NUMBER  # the next number to hand out
        self._head = FIRST_NUMBER  # the smallest waiting number, or _next if nobody waits
        self._pool: dict[int, None] = {}  # member -> None: joined before the opening, in arrival order
        self._number: dict[int, int] = {}  # member -> number, for everyone waiting or admitted
        self._waiting: dict[int, int] = {}  # number -> member, numbers ascending
        self._admitted: dict[int, float] = {}  # member -> deadline, in admission order
        self._expiry: deque[tuple[float, int, int]] = deque()  # (deadline, member, number); may hold stale entries
        self._requeues: dict[int, int] = {}  # member -> admissions lapsed in a row (only if > 0)
        self._tokens = self.burst
        self._refilled_at: float | None = None
        self._rate = self.admit_per_second  # measured admissions per second, recent-weighted
        self._rate_at: float | None = None
        self._rate_count = 0

    # ---- reading

    @property
    def head(self) -> int:
        """Everyone numbered below ``head`` has been admitted or is gone; ``ahead(n) = n - head``."""
        return self._head

    @property
    def opened(self) -> bool:
        return self._opened

    @property
    def size(self) -> int:
        """Everyone in the room: in the draw, waiting or admitted."""
        return len(self._pool) + len(self._number)

    @property
    def waiting_count(self) -> int:
        return len(self._pool) + len(self._waiting)

    @property
    def active_count(self) -> int:
        return len(self._admitted)

    def ahead(self, number: int) -> int:
        return people_ahead(number, self._head, len(self._pool))

    def state_of(self, member_id: int, number: int | None = None) -> Standing | None:
        """The member's standing, or ``None`` when they are not in the room (never joined, left,
        completed, or dropped). Given the ``number`` on their ticket, a ticket they no longer
        hold (the admission under it lapsed and they were put back) reads ``expired``, with the
        number they hold now."""
        if member_id in self._pool:
            standing = Standing(WAITING, None, people_ahead(None, self._head, len(self._pool)))
        else:
            current = self._number.get(member_id)
            if current is None:
                return None
            deadline = self._admitted.get(member_id)
            if deadline is None:
                standing = Standing(WAITING, current, self.ahead(current))
            else:
                standing = Standing(ADMITTED, current, 0, deadline)
        if number is not None and number != standing.number:
            return standing._replace(state=EXPIRED)
        return standing

    def eta_seconds(self, ahead: int, now: float | None = None) -> float:
        """The expected wait at the measured rate; with ``now`` before the opening, the wait
        for the opening is added."""
        until_opening = 0.0
        if not self._opened and now is not None and self.opens_at is not None:
            until_opening = self.opens_at - now
        return expected_wait_seconds(ahead, min(self._rate, self.admit_per_second), until_opening)

    def summary(self) -> dict:
        """What the edge caches to answer ticket polls without asking the actor."""
        return {
            "epoch": self.epoch,
            "opened": self._opened,
            "opens_at": self.opens_at,
            "head": self._head,
            "next_number": self._next,
            "drawing": len(self._pool),
            "waiting": len(self._waiting),
            "active": len(self._admitted),
            "rate": min(self._rate, self.admit_per_second),
        }

    # ---- deciding

    def join(self, member_id: int, now: float) -> tuple[Standing, QueueEvent | None]:
        """Take a place, or get the one the member already has (then the event is ``None``)."""
        _check_member(member_id)
        now = self._tick(now)
        self._open_if_due(now)
        standing = self.state_of(member_id)
        if standing is not None:
            return standing, None
        if self.size >= self.members_max:
            raise QueueFull("the waiting room is full, try again shortly", members_max=self.members_max)
        if self._opened:
            number: int | None = self._issue(member_id)
        else:
            number = None
            self._pool[member_id] = None
        standing = self.state_of(member_id)
        assert standing is not None and standing.state == WAITING
        return standing, QueueEvent(EventType.QUEUE_JOINED, member_id, number, now)

    def leave(self, member_id: int, now: float) -> QueueEvent | None:
        """Give up the place (waiting, in the draw, or admitted); ``None`` if not in the room."""
        _check_member(member_id)
        now = self._tick(now)
        self._open_if_due(now)
        if member_id in self._pool:
            del self._pool[member_id]
            return QueueEvent(EventType.QUEUE_LEFT, member_id, None, now, reason=LEFT)
        number = self._number.get(member_id)
        if number is None:
            return None
        if member_id in self._admitted:
            self._dismiss(member_id)
        else:
            del self._waiting[number]
            del self._number[member_id]
            self._requeues.pop(member_id, None)
            self._settle_head()
        return QueueEvent(EventType.QUEUE_LEFT, member_id, number, now, reason=LEFT)

    def complete(self, member_id: int, now: float) -> QueueEvent | None:
        """The member's booking is confirmed: their admitted slot is free for the next person.
        A member who is not admitted (e.g. already put back in line) is left as they are."""
        _check_member(member_id)
        now = self._tick(now)
        if member_id not in self._admitted:
            return None
        number = self._dismiss(member_id)
        return QueueEvent(EventType.QUEUE_LEFT, member_id, number, now, reason=COMPLETED)

    def advance(self, now: float) -> list[QueueEvent]:
        """Open the sale if due, put lapsed admissions back in line, then admit from the head as
        far as ``active_max`` and the token bucket allow."""
        now = self._tick(now)
        self._open_if_due(now)
        if not self._opened:
            return []
        events = self._expire_due(now)
        self._refill(now)
        demand = bool(self._waiting)
        count = min(int(self._tokens), self.active_max - len(self._admitted), len(self._waiting))
        for _ in range(count):
            number = self._head
            member = self._waiting.pop(number)
            deadline = now + self.admission_seconds
            self._admitted[member] = deadline
            self._expiry.append((deadline, member, number))
            self._tokens -= 1
            self._settle_head()
            events.append(QueueEvent(EventType.QUEUE_ADMITTED, member, number, now))
        self._measure(now, count, demand)
        self._compact_expiry()
        assert len(self._admitted) <= self.active_max and self._tokens >= 0
        return events

    # ---- persisting

    def snapshot(self) -> dict:
        """Everything needed to rebuild this room exactly, as JSON values."""
        live = sorted((deadline, self._number[m], m) for m, deadline in self._admitted.items())
        return {
            "version": SNAPSHOT_VERSION,
            "config": {
                "active_max": self.active_max,
                "admit_per_second": self.admit_per_second,
                "admission_seconds": self.admission_seconds,
                "opens_at": self.opens_at,
                "members_max": self.members_max,
                "requeues_max": self.requeues_max,
                "burst": self.burst,
                "rate_window_seconds": self.rate_window_seconds,
                "epoch": self.epoch,
            },
            "clock": None if self._clock == -math.inf else self._clock,
            "opened": self._opened,
            "next": self._next,
            "head": self._head,
            "pool": list(self._pool),
            "waiting": [[n, m] for n, m in sorted(self._waiting.items())],
            "admitted": [[m, n, deadline] for deadline, n, m in live],
            "requeues": [[m, c] for m, c in sorted(self._requeues.items())],
            "tokens": self._tokens,
            "refilled_at": self._refilled_at,
            "rate": self._rate,
            "rate_at": self._rate_at,
            "rate_count": self._rate_count,
            # The generator only matters for the draw; keep its state until then (not for SystemRandom).
            "rng": None if self._opened else _rng_state(self._rng),
        }

    @classmethod
    def restore(cls, snapshot: dict, rng: random.Random | None = None) -> "WaitingRoom":
        """Rebuild a room from ``snapshot()``; ``rng`` is used only if the snapshot carries no generator state."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unknown waiting room snapshot version {snapshot.get('version')!r}")
        state = snapshot["rng"]
        if state is not None:
            rng = random.Random()
            rng.setstate((state[0], tuple(state[1]), state[2]))
        room = cls(rng=rng, **{SNAPSHOT_CONFIG_OLD_KEYS.get(key, key): value for key, value in snapshot["config"].items()})
        room._clock = -math.inf if snapshot["clock"] is None else float(snapshot["clock"])
        room._opened = bool(snapshot["opened"])
        room._next = int(snapshot["next"])
        room._head = int(snapshot["head"])
        room._pool = dict.fromkeys(snapshot["pool"])
        for number, member in snapshot["waiting"]:
            room._waiting[number] = member
            room._number[member] = number
        for member, number, deadline in snapshot["admitted"]:
            room._admitted[member] = deadline
            room._number[member] = number
            room._expiry.append((deadline, member, number))
        room._requeues = {member: count for member, count in snapshot["requeues"]}
        room._tokens = float(snapshot["tokens"])
        room._refilled_at = snapshot["refilled_at"]
        room._rate = float(snapshot["rate"])
        room._rate_at = snapshot["rate_at"]
        room._rate_count = int(snapshot["rate_count"])
        room.check_invariants()
        return room

    def check_invariants(self) -> None:
        """Every rule the room keeps, checked in full (O(size)); for tests and for restore."""
        assert not (self._pool.keys() & self._number.keys()), "nobody is both in the draw and numbered"
        assert self._opened or not self._number, "nobody has a number before the opening"
        assert not self._opened or not self._pool, "the draw is empty once opened"
        assert self.size <= self.members_max, "the room holds at most members_max"
        assert len(self._waiting) + len(self._admitted) == len(self._number), "numbered = waiting + admitted"
        assert FIRST_NUMBER <= self._head <= self._next <= NUMBER_MAX
        assert self._head == min(self._waiting, default=self._next), "head is the smallest waiting number"
        for number, member in self._waiting.items():
            assert self._number.get(member) == number and member not in self._admitted
            assert self._head <= number < self._next
        for member, deadline in self._admitted.items():
            assert self._number[member] < self._head, "every admitted number is below head"
            assert deadline <= self._clock + self.admission_seconds
        assert len(self._admitted) <= self.active_max, "never more than active_max admitted"
        assert all(0 < c <= self.requeues_max and m in self._number for m, c in self._requeues.items())
        assert 0 <= self._tokens <= self.burst, "the token bucket holds 0..burst"
        live = [(d, m, n) for d, m, n in self._expiry if self._admitted.get(m) == d and self._number.get(m) == n]
        assert len(live) == len(self._admitted), "every admission has exactly one live expiry entry"
        assert all(a[0] <= b[0] for a, b in zip(self._expiry, list(self._expiry)[1:])), "expiry in deadline order"
        assert len(self._expiry) <= 2 * len(self._admitted) + EXPIRY_SLACK, "stale expiry entries are bounded"
        assert self._rate >= 0 and self._rate_count >= 0

    # ---- internals

    def _tick(self, now: float) -> float:
        """Clamp ``now`` to the latest time seen, so a clock stepping back cannot reorder deadlines."""
        self._clock = max(self._clock, _finite(now, "now"))
        return self._clock

    def _open_if_due(self, now: float) -> None:
        if self._opened or now < self.opens_at:
            return
        drawn = list(self._pool)
        self._rng.shuffle(drawn)
        self._pool.clear()
        self._opened = True
        for member in drawn:
            self._issue(member)

    def _issue(self, member_id: int) -> int:
        """The next number, at the end of the line."""
        number = self._next
        assert number < NUMBER_MAX, "numbers stay exact in JSON"
        assert member_id not in self._number
        self._next += 1
        self._waiting[number] = member_id
        self._number[member_id] = number
        assert self._head <= number
        return number

    def _settle_head(self) -> None:
        """Move head past numbers nobody waits on; each number is passed once, so O(1) amortised."""
        while self._head < self._next and self._head not in self._waiting:
            self._head += 1

    def _dismiss(self, member_id: int) -> int:
        del self._admitted[member_id]
        self._requeues.pop(member_id, None)
        number = self._number.pop(member_id)
        self._compact_expiry()
        return number

    def _expire_due(self, now: float) -> list[QueueEvent]:
        events = []
        while self._expiry and self._expiry[0][0] <= now:
            deadline, member, number = self._expiry.popleft()
            if self._admitted.get(member) != deadline or self._number.get(member) != number:
                continue  # completed or left since; the entry is stale
            del self._admitted[member]
            del self._number[member]
            lapses = self._requeues.pop(member, 0)
            requeued_as = None
            if lapses < self.requeues_max:
                requeued_as = self._issue(member)
                self._requeues[member] = lapses + 1
            events.append(QueueEvent(EventType.QUEUE_ADMISSION_EXPIRED, member, number, now, requeued_as=requeued_as))
        return events

    def _refill(self, now: float) -> None:
        if self._refilled_at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._refilled_at) * self.admit_per_second)
        self._refilled_at = now

    def _measure(self, now: float, admitted: int, demand: bool) -> None:
        """Exponentially weighted admissions per second, over intervals when someone was waiting
        (an empty line says nothing about how fast the line moves)."""
        if self._rate_at is None:
            self._rate_at = now
            return
        self._rate_count += admitted
        elapsed = now - self._rate_at
        if elapsed <= 0:
            return
        if demand or self._rate_count:
            weight = 1.0 - math.exp(-elapsed / self.rate_window_seconds)
            self._rate += weight * (self._rate_count / elapsed - self._rate)
        self._rate_at = now
        self._rate_count = 0

    def _compact_expiry(self) -> None:
        if len(self._expiry) > 2 * len(self._admitted) + EXPIRY_SLACK:
            self._expiry = deque(
                (d, m, n) for d, m, n in self._expiry if self._admitted.get(m) == d and self._number.get(m) == n
            )


def _rng_state(rng: random.Random) -> list | None:
    try:
        version, internal, gauss = rng.getstate()
    except NotImplementedError:  # SystemRandom keeps no state; restore then needs an rng
        return None
    return [version, list(internal), gauss]
