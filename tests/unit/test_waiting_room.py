"""The waiting room: fair order, bounded admission, honest positions, and exact restarts."""

from __future__ import annotations

import json
import math
import random
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from api import errors
from domain.booking import EventType
from domain.errors import BookingError
from domain.tokens import InvalidToken, sign, verify
from domain.waiting_room import (
    ADMITTED,
    COMPLETED,
    EXPIRED,
    LEFT,
    ETA_SECONDS_MAX,
    WAITING,
    QueueFull,
    Standing,
    WaitingRoom,
)

T0 = 1_767_225_600.0
SECRET = b"waiting-room-test-secret-0123456789"


def room(**overrides) -> WaitingRoom:
    config = dict(active_max=2, admit_per_second=10.0, admission_seconds=60.0, rng=random.Random(1))
    config.update(overrides)
    return WaitingRoom(**config)


def admitted(events) -> list[int]:
    return [e.member_id for e in events if e.type is EventType.QUEUE_ADMITTED]


def json_round_trip(snapshot: dict) -> dict:
    return json.loads(json.dumps(snapshot, allow_nan=False))


# ---- order, idempotency, positions


def test_first_come_first_served_with_positions_from_head():
    r = room(active_max=10)
    tickets = [r.join(m, T0) for m in (10, 11, 12)]
    assert [(s.number, s.ahead) for s, _ in tickets] == [(1, 0), (2, 1), (3, 2)]
    assert all(e.type is EventType.QUEUE_JOINED and e.number == s.number for s, e in tickets)
    assert r.head == 1
    assert admitted(r.advance(T0 + 5)) == [10, 11, 12]
    assert r.head == 4
    assert r.state_of(12) == Standing(ADMITTED, 3, 0, T0 + 5 + 60)


def test_joining_again_returns_the_same_ticket_while_waiting_or_admitted():
    r = room(active_max=1)
    first, event = r.join(7, T0)
    second, again = r.join(7, T0 + 1)
    assert again is None and second == first
    r.join(8, T0 + 1)
    r.advance(T0 + 2)
    assert r.join(7, T0 + 3) == (r.state_of(7), None) and r.state_of(7).state == ADMITTED
    assert r.join(8, T0 + 3)[0].number == 2


def test_a_person_leaving_leaves_a_place_that_is_counted_until_head_passes_it():
    r = room(active_max=1, admit_per_second=1000)
    for m in range(5):
        r.join(m, T0)
    assert r.leave(2, T0).reason == LEFT
    assert r.state_of(4).ahead == 4  # exact count is 3: the empty place of number 3 is still counted
    r.advance(T0)
    assert r.head == 2 and r.state_of(4).ahead == 3
    r.complete(0, T0)
    r.advance(T0)
    assert r.head == 4, "head skips the empty place"
    assert r.state_of(4).ahead == 1
    assert r.leave(4, T0).number == 5 and r.leave(4, T0) is None and r.state_of(4) is None


def test_head_moves_past_a_head_that_leaves():
    r = room()
    for m in range(3):
        r.join(m, T0)
    r.leave(0, T0)
    assert r.head == 2 and r.state_of(2).ahead == 1


# ---- admission policy


def test_at_most_max_active_and_completing_frees_a_slot():
    r = room(active_max=2, admit_per_second=100)
    for m in range(5):
        r.join(m, T0)
    assert admitted(r.advance(T0)) == [0, 1]
    assert admitted(r.advance(T0 + 10)) == []
    event = r.complete(0, T0 + 11)
    assert (event.type, event.reason, event.number) == (EventType.QUEUE_LEFT, COMPLETED, 1)
    assert r.complete(0, T0 + 11) is None
    assert r.complete(3, T0 + 11) is None and r.state_of(3).state == WAITING, "only an admitted member completes"
    assert admitted(r.advance(T0 + 11)) == [2]
    r.leave(1, T0 + 12)
    assert admitted(r.advance(T0 + 12)) == [3]


def test_token_bucket_limits_new_admissions_per_second():
    r = room(active_max=1000, admit_per_second=2.0)
    for m in range(20):
        r.join(m, T0)
    assert len(admitted(r.advance(T0))) == 2, "a full bucket of one second's worth"
    assert len(admitted(r.advance(T0 + 0.25))) == 0
    assert len(admitted(r.advance(T0 + 0.5))) == 1
    assert len(admitted(r.advance(T0 + 1.5))) == 2
    assert len(admitted(r.advance(T0 + 100))) == 2, "an idle bucket holds at most burst"


def test_burst_can_be_set_apart_from_the_rate():
    r = room(active_max=1000, admit_per_second=0.5, burst=3)
    for m in range(10):
        r.join(m, T0)
    assert len(admitted(r.advance(T0))) == 3
    assert len(admitted(r.advance(T0 + 1.5))) == 0
    assert len(admitted(r.advance(T0 + 2.0))) == 1


def test_an_expired_admission_goes_to_the_end_of_the_line_with_a_new_number():
    r = room(active_max=1, admit_per_second=100, admission_seconds=60)
    for m in (1, 2, 3):
        r.join(m, T0)
    r.advance(T0)
    assert r.state_of(1).deadline == T0 + 60
    events = r.advance(T0 + 60)
    expired = [e for e in events if e.type is EventType.QUEUE_ADMISSION_EXPIRED]
    assert [(e.member_id, e.number, e.requeued_as, e.at) for e in expired] == [(1, 1, 4, T0 + 60)]
    assert admitted(events) == [2]
    assert r.state_of(1) == Standing(WAITING, 4, 1)
    assert r.state_of(1, number=1).state == EXPIRED, "the old ticket reads expired"
    assert r.state_of(1, number=4).state == WAITING
    assert r.join(1, T0 + 61)[0].number == 4


def test_an_admission_that_keeps_lapsing_is_dropped_after_max_requeues():
    r = room(active_max=1, admit_per_second=100, admission_seconds=10, requeues_max=1)
    r.join(1, T0)
    r.advance(T0)
    lapse = r.advance(T0 + 10)
    assert [e.requeued_as for e in lapse if e.type is EventType.QUEUE_ADMISSION_EXPIRED] == [2]
    assert admitted(lapse) == [1], "nobody else waits, so straight back in"
    drop = r.advance(T0 + 20)
    assert [(e.number, e.requeued_as) for e in drop] == [(2, None)]
    assert r.state_of(1) is None and r.size == 0
    assert r.join(1, T0 + 21)[0].number == 3, "joining again starts afresh"


def test_completing_resets_the_requeue_count():
    r = room(active_max=1, admit_per_second=100, admission_seconds=10, requeues_max=1)
    r.join(1, T0)
    r.advance(T0)
    r.advance(T0 + 10)  # lapses once, re-admitted
    r.complete(1, T0 + 11)
    r.join(1, T0 + 12)
    r.advance(T0 + 12)
    assert [e.requeued_as for e in r.advance(T0 + 22)][:1] == [4]


def test_the_room_has_an_upper_bound():
    r = room(members_max=3)
    for m in range(3):
        r.join(m, T0)
    with pytest.raises(QueueFull) as caught:
        r.join(99, T0)
    assert caught.value.code == "queue_full"
    assert not isinstance(caught.value, BookingError), "a full room refuses no booking"
    assert errors.answer_for(caught.value).status_code == 503
    assert r.join(2, T0)[1] is None, "someone already inside still gets their ticket"
    r.leave(0, T0)
    r.join(99, T0)


def test_a_clock_stepping_back_is_held_at_the_latest_time():
    r = room(active_max=100, admit_per_second=1.0)
    for m in range(5):
        r.join(m, T0 + 10)
    assert len(admitted(r.advance(T0 + 10))) == 1
    events = r.advance(T0)  # NTP stepped back: no refill, no reordering
    assert events == []
    assert r.state_of(0).deadline == T0 + 70
    assert [e.at for e in r.advance(T0 + 11)] == [T0 + 11]


def test_bad_configuration_and_bad_member_ids_are_refused():
    for bad in [
        dict(active_max=0),
        dict(active_max=5, members_max=4),
        dict(admit_per_second=0),
        dict(admit_per_second=math.inf),
        dict(admission_seconds=-1),
        dict(burst=0.5),
        dict(requeues_max=-1),
        dict(opens_at=math.nan),
    ]:
        with pytest.raises(ValueError):
            room(**bad)
    r = room()
    for member in (-1, "7", 1.0, True, None):
        with pytest.raises(ValueError):
            r.join(member, T0)
    with pytest.raises(ValueError):
        r.advance(math.nan)


# ---- the opening draw


def test_people_who_join_before_the_opening_are_drawn_in_random_order_then_fcfs():
    r = room(active_max=100, admit_per_second=100, opens_at=T0 + 100, rng=random.Random(7))
    for m in range(10):
        standing, event = r.join(m, T0 + m)
        assert standing == Standing(WAITING, None, m) and event.number is None
    assert r.state_of(0).ahead == 9, "before the draw: everyone else in it"
    assert r.leave(3, T0 + 20).number is None
    assert r.advance(T0 + 99) == [] and not r.opened and r.head == 1
    assert r.eta_seconds(r.state_of(0).ahead, now=T0 + 90) == pytest.approx(10 + 8 / 100)
    late, _ = r.join(50, T0 + 100)  # the first call at the opening draws, then the latecomer queues
    assert r.opened and late.number == 10
    drawn = {m: r.state_of(m).number for m in range(10) if m != 3}
    assert sorted(drawn.values()) == list(range(1, 10))
    order = admitted(r.advance(T0 + 100))
    assert order[-1] == 50 and sorted(order[:-1]) == sorted(drawn)
    assert order[:-1] == sorted(drawn, key=drawn.get)
    assert order[:-1] != sorted(drawn), "seed 7 does not happen to keep arrival order"


def test_the_draw_is_a_real_shuffle():
    """Over many seeds: arrival order almost never survives, and every place is equally likely."""
    arrivals, seeds = 5, 1500
    kept, first_place = 0, [0] * arrivals
    for seed in range(seeds):
        r = WaitingRoom(active_max=10, admit_per_second=10, admission_seconds=60, opens_at=T0, rng=random.Random(seed))
        for m in range(arrivals):
            r.join(m, T0 - 1)
        order = admitted(r.advance(T0))
        kept += order == list(range(arrivals))
        first_place[order.index(0)] += 1
    assert kept < seeds * 0.03  # 1/120 expected
    expected = seeds / arrivals
    chi_square = sum((observed - expected) ** 2 / expected for observed in first_place)
    assert chi_square < 18.5, first_place  # p = 0.001 with 4 degrees of freedom


def test_the_same_seed_draws_the_same_order():
    def draw(seed):
        r = WaitingRoom(active_max=50, admit_per_second=50, admission_seconds=60, opens_at=T0, rng=random.Random(seed))
        for m in range(30):
            r.join(m, T0 - 1)
        return admitted(r.advance(T0))

    assert draw(3) == draw(3) != draw(4)


def test_a_room_without_an_opening_time_is_open_at_once():
    r = room(opens_at=None)
    assert r.opened and r.join(1, T0)[0].number == 1


# ---- eta


def test_eta_falls_back_to_the_configured_rate_then_follows_the_measured_one():
    r = room(active_max=5, admit_per_second=10.0, rate_window_seconds=5.0)
    assert r.eta_seconds(100) == pytest.approx(10.0)
    assert r.eta_seconds(0) == 0
    for m in range(50):
        r.join(m, T0)
    for step in range(60):  # five slots are full after the first tick and nobody completes
        r.advance(T0 + step)
    assert r.eta_seconds(100) > 100
    assert r.eta_seconds(10**9) == ETA_SECONDS_MAX
    fast = room(active_max=10**6, admit_per_second=10.0)
    for m in range(5000):
        fast.join(m, T0)
    for step in range(600):
        fast.advance(T0 + step / 10)
    assert fast.eta_seconds(100) == pytest.approx(10.0, rel=0.05)


# ---- persistence


def test_snapshot_restores_exactly_through_json_and_behaves_the_same():
    r = room(active_max=3, admit_per_second=1.5, admission_seconds=20, opens_at=T0 + 5, rng=random.Random(11), epoch=4)
    for m in range(12):
        r.join(m, T0 + m * 0.1)
    twin = WaitingRoom.restore(json_round_trip(r.snapshot()))
    assert twin.snapshot() == r.snapshot()
    for t in (T0 + 5, T0 + 6, T0 + 27, T0 + 30):  # opening draw, admissions, expiries: identical
        assert twin.advance(t) == r.advance(t)
        twin.complete(3, t)
        r.complete(3, t)
        again = WaitingRoom.restore(json_round_trip(r.snapshot()))
        assert again.snapshot() == r.snapshot() == twin.snapshot()
    assert twin.epoch == 4 and twin.summary() == r.summary()


def test_a_snapshot_saved_under_the_old_limit_names_restores():
    r = room(active_max=3, admit_per_second=1.5, admission_seconds=20, members_max=50, requeues_max=2)
    r.join(1, T0)
    snapshot = json_round_trip(r.snapshot())
    old = dict(snapshot["config"])
    for name, former in (("active_max", "max_active"), ("members_max", "max_members"), ("requeues_max", "max_requeues")):
        old[former] = old.pop(name)
    assert WaitingRoom.restore({**snapshot, "config": old}).snapshot() == snapshot


def test_restore_refuses_an_unknown_version_or_a_broken_snapshot():
    r = room()
    r.join(1, T0)
    snapshot = r.snapshot()
    with pytest.raises(ValueError):
        WaitingRoom.restore({**snapshot, "version": 99})
    with pytest.raises(AssertionError):
        WaitingRoom.restore({**snapshot, "head": 5})


# ---- scale


def test_two_hundred_thousand_people_fit_and_move_quickly():
    r = WaitingRoom(active_max=2000, admit_per_second=200, admission_seconds=600, opens_at=T0, rng=random.Random(5))
    started = time.process_time()  # CPU time: other work on the machine does not count
    for m in range(1_000_000, 1_200_000):
        r.join(m, T0 - 1)
    r.advance(T0)
    assert time.process_time() - started < 15, "join is O(1): about 1 s for 200,000 on a laptop"
    assert r.waiting_count == 200_000 - 200 and r.head == 201
    started = time.process_time()
    for tick in range(1, 1001):
        r.advance(T0 + tick / 10)
    assert time.process_time() - started < 3, "advance costs what it admits (~20 ms here), not the line's length"
    assert r.active_count == 2000 and r.head == 2001
    assert r.summary()["next_number"] == 200_001 and r.ahead(200_000) == 200_000 - 2001


def test_memory_is_a_few_hundred_bytes_per_person():
    members = 20_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        r = WaitingRoom(active_max=100, admit_per_second=100, admission_seconds=600)
        for m in range(10**9, 10**9 + members):
            r.join(m, T0)
        r.advance(T0)
        per_person = (tracemalloc.get_traced_memory()[0] - before) / members
    finally:
        tracemalloc.stop()
    assert per_person < 300, per_person


# ---- the state machine

MEMBERS = st.integers(0, 9)
STEPS = st.sampled_from([0.0, 0.0, 0.1, 0.5, 1.0, 2.5, 7.0])


class WaitingRoomMachine(RuleBasedStateMachine):
    """Random joins, leaves, completions, advances and restarts; the rules hold after every step."""

    @initialize(
        active_max=st.integers(1, 3),
        rate=st.sampled_from([0.5, 1.0, 2.0, 5.0]),
        burst=st.sampled_from([None, 1.0, 3.0]),
        admission_seconds=st.sampled_from([2.0, 5.0, 30.0]),
        opens_in=st.sampled_from([None, 0.0, 3.0, 10.0]),
        requeues_max=st.integers(0, 2),
        members_max=st.integers(3, 10),
        seed=st.integers(0, 2**32),
    )
    def setup(self, active_max, rate, burst, admission_seconds, opens_in, requeues_max, members_max, seed):
        self.now = T0
        self.room = WaitingRoom(
            active_max=active_max,
            admit_per_second=rate,
            burst=burst,
            admission_seconds=admission_seconds,
            opens_at=None if opens_in is None else T0 + opens_in,
            requeues_max=requeues_max,
            members_max=max(members_max, active_max),
            rng=random.Random(seed),
        )
        self.seen: dict[int, tuple[int | None, int]] = {}  # waiting member -> (number, ahead) last observed
        self.admission_times: list[float] = []
        self.last_admitted = 0
        self.numbers_issued = 0
        self.someone_joined = False

    def clock(self, dt: float) -> float:
        self.now += dt
        return self.now

    def standings(self) -> dict[int, Standing]:
        return {m: s for m in range(10) if (s := self.room.state_of(m)) is not None}

    def note_numbers(self, *numbers: int | None) -> None:
        """Every new number is past every number seen before: the end of the line."""
        for number in numbers:
            if number is not None:
                assert number > self.numbers_issued
                self.numbers_issued = number

    # ---- rules

    @rule(member=MEMBERS, dt=STEPS)
    def join(self, member, dt):
        before = self.room.state_of(member)
        was_open = self.room.opened
        size = self.room.size
        try:
            standing, event = self.room.join(member, self.clock(dt))
        except QueueFull:
            assert before is None and size == self.room.members_max
            return
        assert standing == self.room.state_of(member) and standing.state in (WAITING, ADMITTED)
        if before is None:
            assert event.type is EventType.QUEUE_JOINED and event.number == standing.number
            assert (standing.number is None) == (not self.room.opened)
            self.someone_joined = True
        else:
            assert event is None
            assert standing.number == before.number or (before.number is None and not was_open)
        if not was_open and self.room.opened:  # this join drew the lots
            self.note_numbers(*sorted(s.number for m, s in self.standings().items() if m != member))
        if before is None:
            self.note_numbers(standing.number)

    @rule(member=MEMBERS, dt=STEPS)
    def leave(self, member, dt):
        was_open = self.room.opened
        before = self.room.state_of(member)
        event = self.room.leave(member, self.clock(dt))
        if not was_open and self.room.opened:
            self.note_numbers(*sorted(s.number for m, s in self.standings().items()))
        assert (event is None) == (before is None)
        if event is not None:
            assert event.type is EventType.QUEUE_LEFT and event.reason == LEFT
        assert self.room.state_of(member) is None

    @rule(member=MEMBERS, dt=STEPS)
    def complete(self, member, dt):
        before = self.room.state_of(member)
        event = self.room.complete(member, self.clock(dt))
        if before is not None and before.state == ADMITTED:
            assert event.reason == COMPLETED and event.number == before.number
            assert self.room.state_of(member) is None
        else:
            assert event is None and self.room.state_of(member) == before

    @precondition(lambda self: self.room.active_count > 0)
    @rule(data=st.data(), dt=STEPS)
    def complete_someone_admitted(self, data, dt):
        admitted_members = sorted(m for m, s in self.standings().items() if s.state == ADMITTED)
        self.complete(data.draw(st.sampled_from(admitted_members), label="member"), dt)

    @rule(dt=STEPS)
    def advance(self, dt):
        self.check_advance(self.clock(dt))

    @rule(dt=st.sampled_from([1.0, 30.0]))
    def advance_with_a_clock_that_stepped_back(self, dt):
        self.check_advance(self.now - dt)

    def check_advance(self, now):
        was_open = self.room.opened
        before = self.standings()
        events = self.room.advance(now)
        after = self.standings()
        if not was_open and self.room.opened:  # this advance drew the lots
            self.note_numbers(*sorted(s.number for s in after.values()))
        admitted_now = []
        for event in events:
            assert event.at == self.now, "a clock stepping back is held at the latest time"
            if event.type is EventType.QUEUE_ADMISSION_EXPIRED:
                assert before[event.member_id] == Standing(ADMITTED, event.number, 0, before[event.member_id].deadline)
                assert before[event.member_id].deadline <= event.at
                self.note_numbers(event.requeued_as)
                current = self.room.state_of(event.member_id, number=event.number)
                assert current is None if event.requeued_as is None else current.state == EXPIRED
            else:
                assert event.type is EventType.QUEUE_ADMITTED
                assert event.number > self.last_admitted, "admitted strictly in number order"
                self.last_admitted = event.number
                admitted_now.append(event)
                self.admission_times.append(event.at)
                self.check_admission_token(event)
        waiting_after = [s.number for s in after.values() if s.state == WAITING]
        assert all(e.number < n for e in admitted_now for n in waiting_after), "nobody is overtaken"
        self.check_rate(admitted_now)
        free = self.room.active_count < self.room.active_max
        if free and any(n is not None for n in waiting_after):
            probe = WaitingRoom.restore(json_round_trip(self.room.snapshot()))
            later = probe.advance(self.now + 1 / self.room.admit_per_second + 1e-6)
            assert admitted(later), "a free slot is filled as soon as the rate allows"

    def check_admission_token(self, event):
        deadline = self.room.state_of(event.member_id).deadline
        claims = {"m": event.member_id, "n": event.number, "e": self.room.epoch}
        token = sign("admission", claims, SECRET, event.at, deadline - event.at)
        assert verify(token, "admission", SECRET, event.at)["m"] == event.member_id
        for kind, now, reason in [("ticket", event.at, "wrong_kind"), ("admission", deadline, "expired")]:
            try:
                verify(token, kind, SECRET, now)
                raise AssertionError("accepted")
            except InvalidToken as refused:
                assert refused.reason == reason

    def check_rate(self, admitted_now):
        if not admitted_now:
            return
        end = admitted_now[-1].at
        for start in set(self.admission_times):
            count = sum(start <= t <= end for t in self.admission_times)
            assert count <= self.room.burst + self.room.admit_per_second * (end - start) + 1e-9, "rate respected"

    @rule()
    def restart(self):
        snapshot = json_round_trip(self.room.snapshot())
        restored = WaitingRoom.restore(snapshot)
        assert restored.snapshot() == snapshot == self.room.snapshot()
        twin = WaitingRoom.restore(snapshot)
        later = self.now + 3.0
        assert twin.advance(later) == self.room.advance(later)
        assert twin.snapshot() == self.room.snapshot()
        assert twin.summary() == self.room.summary()
        assert twin.eta_seconds(7, later) == self.room.eta_seconds(7, later)
        self.room = restored

    # ---- invariants

    @invariant()
    def room_is_consistent(self):
        self.room.check_invariants()
        assert self.room.active_count <= self.room.active_max

    @invariant()
    def positions_are_honest_and_never_grow(self):
        standings = self.standings()
        head = self.room.head
        numbered = sorted(s.number for s in standings.values() if s.state == WAITING and s.number is not None)
        seen = {}
        for member, s in standings.items():
            if s.state != WAITING:
                continue
            if s.number is not None:
                assert s.ahead == max(0, s.number - head), "the edge's formula"
                assert s.ahead >= sum(n < s.number for n in numbered), "never under the exact count"
            previous = self.seen.get(member)
            if previous is not None and (previous[0] == s.number or previous[0] is None):
                grew_by_draw = s.number is None and self.someone_joined
                assert s.ahead <= previous[1] or grew_by_draw, (member, previous, s)
            seen[member] = (s.number, s.ahead)
            assert self.room.eta_seconds(s.ahead) <= self.room.eta_seconds(s.ahead + 1)
        self.seen = seen
        self.someone_joined = False


WaitingRoomMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_waiting_room_machine = WaitingRoomMachine.TestCase
