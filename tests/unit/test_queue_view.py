"""The edge's answer to a poll, from a ticket number and a cached queue summary alone."""

from __future__ import annotations

import json

from api.queue_view import POLL_MS_MAX, POLL_MS_MIN, QueueView
from domain.waiting_room import ETA_SECONDS_MAX, WaitingRoom
from encore.settings import Settings

SETTINGS = Settings(db_url="sqlite:///:memory:", admission_seconds=600, queue_admit_per_second=100)


def view(head: int, checkpoints, rate: float = 100.0, drawing: int = 0, opened: bool = True, opens_at=None) -> QueueView:
    queue_view = QueueView(queue=None, settings=SETTINGS)
    queue_view.update({"head": head, "checkpoints": checkpoints, "rate": rate, "drawing": drawing,
                       "opened": opened, "opens_at": opens_at, "epoch": 0})
    return queue_view


def test_a_waiting_ticket_counts_the_people_ahead():
    position = view(head=101, checkpoints=[(101, 1000.0)]).position(151, now=1001.0)
    assert (position.state, position.ahead, position.eta_seconds) == ("waiting", 50, 0.5)
    assert POLL_MS_MIN <= position.poll_after_ms <= POLL_MS_MAX


def test_the_wait_is_capped_at_a_day_as_the_room_caps_it():
    room = WaitingRoom(active_max=1, admit_per_second=0.001, admission_seconds=600)
    far = view(head=1, checkpoints=[], rate=0.001).position(10**6, now=0.0)
    assert far.eta_seconds == room.eta_seconds(far.ahead) == ETA_SECONDS_MAX


def test_far_back_polls_less_often():
    near = view(head=1, checkpoints=[]).position(2, now=0.0)
    far = view(head=1, checkpoints=[], rate=10).position(100_000, now=0.0)
    assert near.poll_after_ms == POLL_MS_MIN and far.poll_after_ms == POLL_MS_MAX


def test_admitted_until_the_admission_ends_then_expired():
    queue_view = view(head=201, checkpoints=[(101, 1000.0), (201, 1010.0)])
    first, second = queue_view.position(50, now=1100.0), queue_view.position(150, now=1100.0)
    assert (first.state, first.admitted_until) == ("admitted", 1600.0)
    assert (second.state, second.admitted_until) == ("admitted", 1610.0)
    assert queue_view.position(50, now=1600.0).state == "expired"
    assert queue_view.position(150, now=1605.0).state == "admitted"


def test_a_number_older_than_every_checkpoint_has_expired():
    assert view(head=500, checkpoints=[(400, 5000.0), (500, 5001.0)]).position(10, now=5002.0).state == "admitted"
    assert view(head=500, checkpoints=[]).position(10, now=5002.0).state == "expired"


def test_before_the_draw_everyone_in_it_may_be_ahead():
    position = view(head=1, checkpoints=[], drawing=1000, opened=False, opens_at=2000.0).position(None, now=1990.0)
    assert position.state == "waiting" and position.ahead == 999
    assert position.eta_seconds >= 10.0


def test_a_view_sent_only_new_checkpoints_answers_as_one_sent_them_all():
    summary = {"head": 301, "rate": 100.0, "drawing": 0, "opened": True, "opens_at": None, "epoch": 0}
    following = view(head=201, checkpoints=[(101, 1000.0), (201, 1010.0)])
    following.update({**summary, "checkpoints": [(301, 1020.0)], "checkpoints_after": 1010.0, "oldest_checkpoint_at": 1010.0})
    full = view(head=301, checkpoints=[(201, 1010.0), (301, 1020.0)])
    assert following._heads == [201, 301] and following._times == [1010.0, 1020.0], "the forgotten one is dropped"
    for number in (50, 150, 250, 350):
        assert following.position(number, now=1030.0) == full.position(number, now=1030.0)


def test_the_public_status_gives_a_page_what_it_needs_to_find_its_own_place():
    queue_view = QueueView(queue=None, settings=SETTINGS)
    queue_view.update({"head": 101, "checkpoints": [(101, 1000.0)], "rate": 40.0, "drawing": 0, "waiting": 900,
                       "opened": True, "opens_at": 1_796_000_000, "epoch": 0, "version": 1_796_000_123_456})
    status = json.loads(queue_view.status_body)
    assert status == {"version": 1_796_000_123_456, "opened": True, "opens_at": "2026-11-30T00:53:20Z",
                      "admitted_through": 100, "waiting": 900, "drawing": 0, "admit_per_second": 40.0,
                      "admission_seconds": 600, "poll_after_ms": 2000}
    mine = queue_view.position(151, now=1001.0)
    assert mine.ahead == 151 - (status["admitted_through"] + 1), "the page's arithmetic and the poll's agree"
    assert abs(mine.eta_seconds - mine.ahead / status["admit_per_second"]) <= 0.05 + 1e-9, "to the tenth of a second"


def test_the_status_tag_changes_with_the_room():
    queue_view = QueueView(queue=None, settings=SETTINGS)
    summary = {"head": 1, "checkpoints": [], "rate": 0, "drawing": 5, "waiting": 0, "opened": False, "opens_at": None,
               "epoch": 0, "version": 1}
    queue_view.update(summary)
    before = queue_view.status_etag
    queue_view.update({**summary, "drawing": 6, "version": 2, "checkpoints_after": None})
    assert queue_view.status_etag != before
