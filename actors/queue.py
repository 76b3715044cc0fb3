"""The queue actor: owns the ``WaitingRoom``, admits on a timer, and publishes a small summary.

Joins arrive in batches from the ingress replicas. Polls never come here: each replica
follows ``summary()`` by long poll (head, measured rate and recent *admission checkpoints*,
of which a replica that follows is sent only the new ones; the actor answers at its next
change) and answers from the signed ticket alone.
A checkpoint ``(head, at)`` says that by time ``at`` everyone numbered below ``head`` had
been admitted, so a replica can tell when a number was admitted and therefore when its
admission ends, without asking.

The timer ticks while anyone waits or is admitted; an empty room sleeps until a join (or
the opening, or a save that is due), so an idle queue costs nothing but its process.

The room is saved to the store at most once per ``SAVE_INTERVAL_SECONDS``, and less often
as it grows, so that saving never takes more than ``SAVE_SHARE_MAX`` of the actor's time (a
snapshot of 200,000 people is 3 MB and about 0.2 s of CPU: saved every ~4 s). It is rebuilt
from the store on restart; tickets stay valid across a restart because they carry their own
number, and the joins and admissions since the last save are the only thing a restart can
forget.

The room's log events wait in memory until the store takes them. While ``queue_events_max``
of them wait (the store down), the room stands still: joins are refused ``store_unavailable``
and nobody is admitted, since an admission the log never hears of would be a change without
its event. It moves again once the store has taken them.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time

import ray

from domain.errors import QueueFull, StoreUnavailable
from domain.waiting_room import Standing, WaitingRoom
from encore.collector import tune_collector
from encore.settings import Settings
from persistence import open_store
from persistence.records import LogEvent

log = logging.getLogger(__name__)

NAMESPACE = "encore"
QUEUE_ACTOR_NAME = "encore-queue"
ADVANCE_INTERVAL_SECONDS = 0.1
SAVE_INTERVAL_SECONDS = 1.0
SAVE_SHARE_MAX = 0.05
CHECKPOINTS_MAX = 20_000


class QueueActor:
    def __init__(self, settings: Settings):
        self._settings = settings
        self._store = open_store(settings.db_url, pool_size=2)
        self._room: WaitingRoom | None = None
        self._checkpoints: list[tuple[int, float]] = []
        self._events: list[LogEvent] = []
        self._dirty = False
        self._changed_at = time.time()
        self._started: asyncio.Task | None = None
        self._loop: asyncio.Task | None = None
        self._idle = False  # the timer sleeps until a join or its next due time, not tick by tick
        self._wake = asyncio.Event()
        self._revision = time.time_ns()  # grows with every change of the summary, and across restarts
        self._published: tuple | None = None
        self._summary_changed = asyncio.Event()
        tune_collector()

    async def _ready(self) -> WaitingRoom:
        if self._started is None or (self._started.done() and self._started.exception() is not None):
            self._started = asyncio.create_task(self._start())
        await asyncio.shield(self._started)
        assert self._room is not None
        return self._room

    async def _start(self) -> None:
        saved = await self._store.load_queue()
        if saved is not None:
            self._room = WaitingRoom.restore(saved["room"])
            self._checkpoints = [tuple(c) for c in saved["checkpoints"]]
            log.info("queue restored: %s", self._room.summary())
        else:
            opens_at = self._settings.sale_opens_at.timestamp() if self._settings.sale_opens_at else None
            self._room = WaitingRoom(
                active_max=self._settings.queue_active_max,
                admit_per_second=self._settings.queue_admit_per_second,
                admission_seconds=self._settings.admission_seconds,
                opens_at=opens_at,
                epoch=int(opens_at or 0),
            )
        self._publish()
        self._loop = asyncio.create_task(self._advance_forever())

    # ---- messages

    async def join_many(self, member_ids: list[int]) -> list[Standing | QueueFull | StoreUnavailable]:
        room = await self._ready()
        if self.log_full:
            refusal = StoreUnavailable("the queue's log cannot be written now; nobody joins until it can")
            return [refusal for _ in member_ids]
        now = time.time()
        if self._idle:
            # the room's clock catches up first, so the measured admission rate does not count
            # the time nobody waited as time the line stood still
            self._advance(now)
        answers: list[Standing | QueueFull] = []
        for member_id in member_ids:
            try:
                standing, event = room.join(member_id, now)
            except QueueFull as error:
                answers.append(error)
                continue
            if event is not None:
                self._record(event)
            answers.append(standing)
        self._publish()
        return answers

    async def standings(self, member_ids: list[int]) -> list[Standing | None]:
        """Where members stand; only asked once per person, for a ticket drawn at the opening."""
        room = await self._ready()
        return [room.state_of(member_id) for member_id in member_ids]

    async def complete(self, member_id: int) -> None:
        """The member bought their seats: their admitted place goes to the next person."""
        room = await self._ready()
        event = room.complete(member_id, time.time())
        if event is not None:
            self._record(event)
        self._publish()

    async def summary(self, known_at: float | None = None, known_revision: int = -1, wait_seconds: float = 0.0,
                      settle_seconds: float = 0.0) -> dict | None:
        """The room's figures and its admission checkpoints, or ``None`` when nothing changed
        since ``known_revision`` (the ``revision`` of the caller's last summary).

        With ``wait_seconds`` the answer waits for the next change, at most that long, and comes
        no sooner than ``settle_seconds`` after the question: a replica then costs the actor a
        call per change (at most one per settle time) or per wait, instead of one per refresh.
        ``known_at``: the time of the newest checkpoint the caller has; while that one is still
        here, only the newer ones are sent (``checkpoints_after`` says so), since an admission's
        worth of checkpoints is thousands. Otherwise (a first call, a restart that forgot it)
        all of them, and ``checkpoints_after`` is ``None``. ``version`` is the time (ms) of the
        room's last change, so a reader can tell a newer status from an older one."""
        room = await self._ready()
        loop = asyncio.get_running_loop()
        asked = loop.time()
        while True:
            answer_at = asked + (settle_seconds if self._revision != known_revision else wait_seconds)
            if loop.time() >= answer_at:
                break
            try:
                await asyncio.wait_for(self._summary_changed.wait(), answer_at - loop.time())
            except asyncio.TimeoutError:
                pass
        if self._revision == known_revision:
            return None
        checkpoints, after = self._checkpoints, None
        if known_at is not None:
            index = bisect.bisect_left(checkpoints, known_at, key=lambda checkpoint: checkpoint[1])
            if index < len(checkpoints) and checkpoints[index][1] == known_at:
                checkpoints, after = checkpoints[index + 1 :], known_at
        return {
            **room.summary(), "epoch": room.epoch, "checkpoints": checkpoints, "checkpoints_after": after,
            "version": int(self._changed_at * 1000), "revision": self._revision,
            "oldest_checkpoint_at": self._checkpoints[0][1] if self._checkpoints else None,
        }

    async def figures(self) -> dict:
        """The room's counts for ``/metrics``, without the checkpoints a summary carries."""
        return (await self._ready()).summary()

    def _publish(self) -> None:
        """A new revision, and the waiting readers woken, whenever the summary's figures changed."""
        figures = (self._room.summary(), self._changed_at)
        if figures != self._published:
            self._published = figures
            self._revision += 1
            self._summary_changed.set()
            self._summary_changed = asyncio.Event()

    # ---- the timer

    async def _advance_forever(self) -> None:
        """Admit, expire admissions, log and save: every ``ADVANCE_INTERVAL_SECONDS`` while anyone
        waits or is admitted; otherwise asleep until the opening, a save that is due, or a join."""
        saved_at, save_every, ticked_at = 0.0, SAVE_INTERVAL_SECONDS, time.monotonic()
        while True:
            await self._sleep_until_due(ticked_at + ADVANCE_INTERVAL_SECONDS, saved_at + save_every)
            now = time.time()
            room = self._room
            try:
                self._advance(now)
                if self._events:
                    events, self._events = self._events, []
                    try:
                        await self._store.append_log(events)
                    except Exception:
                        self._events[:0] = events
                        raise
                if self._dirty and now - saved_at >= save_every:
                    self._dirty = False
                    started = time.perf_counter()
                    await self._store.save_queue({"room": room.snapshot(), "checkpoints": self._checkpoints}, now)
                    saved_at = now
                    save_every = max(SAVE_INTERVAL_SECONDS, (time.perf_counter() - started) / SAVE_SHARE_MAX)
            except Exception:
                log.exception("advancing or saving the queue failed; trying again on the next tick")
                self._dirty = True
            ticked_at = time.monotonic()

    @property
    def log_full(self) -> bool:
        return len(self._events) >= self._settings.queue_events_max

    def _advance(self, now: float) -> None:
        if self.log_full:
            return
        room = self._room
        head_before = room.head
        for event in room.advance(now):
            self._record(event)
        if room.head != head_before:
            self._changed_at = now
            self._checkpoints.append((room.head, now))
            self._forget_old_checkpoints(now)
        self._publish()

    async def _sleep_until_due(self, next_tick: float, save_due: float) -> None:
        """Until the next tick (``time.monotonic()``, an interval after the last tick ended) while
        the room needs ticks; otherwise until the opening or a due save (``time.time()``), or
        until a join wakes the room, whichever comes first, but never before the next tick."""
        room = self._room
        if self._events or (room.opened and (room.waiting_count or room.active_count)):
            await asyncio.sleep(next_tick - time.monotonic())
            return
        due = [save_due] if self._dirty else []
        if not room.opened:
            due.append(room.opens_at)
        timeout = max(0.0, min(due) - time.time()) if due else None
        self._idle = True
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            self._idle = False
        await asyncio.sleep(next_tick - time.monotonic())

    def _record(self, event) -> None:
        self._dirty = True
        if self._idle:
            self._wake.set()
        self._changed_at = max(self._changed_at, event.at)
        detail = {"number": event.number}
        if event.requeued_as is not None:
            detail["requeued_as"] = event.requeued_as
        if event.reason:
            detail["reason"] = event.reason
        self._events.append(LogEvent(event.at, event.type.value, None, event.member_id, (), detail))

    def _forget_old_checkpoints(self, now: float) -> None:
        """A checkpoint older than an admission cannot make anyone admitted any more."""
        horizon = now - self._settings.admission_seconds - 60
        keep = next((i for i, (_, at) in enumerate(self._checkpoints) if at >= horizon), len(self._checkpoints))
        if keep > 1:
            del self._checkpoints[: keep - 1]
        del self._checkpoints[:-CHECKPOINTS_MAX]


QueueRemote = ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0)(QueueActor)


def start_queue(settings: Settings):
    return QueueRemote.options(
        name=QUEUE_ACTOR_NAME, namespace=NAMESPACE, get_if_exists=True, lifetime="detached"
    ).remote(settings)

