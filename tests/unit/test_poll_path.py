"""A queue poll's own work, made small: the answer rendered without pydantic, the ticket read
without ``parse_qsl``, and the two tokens of a waiting person checked once per replica.

Each shortcut is compared with the general way it replaces, so that it can only be faster,
never different.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.auth import Tokens
from api.hot_routes import query_parameter
from api.errors import ApiError
from api.models import QueueAnswer, QueueOut

SECRET = "poll-path-test-secret-0123456789"
tokens = Tokens(SECRET, 3600, 600)


# ---- the answer


@given(
    member=st.integers(1, 2**40),
    number=st.integers(0, 2**40),
    state=st.sampled_from(["waiting", "admitted", "expired"]),
    ahead=st.integers(0, 10**9),
    eta_tenths=st.integers(0, 10**12),
    poll_after_ms=st.integers(1000, 15_000),
    admitted=st.booleans(),
)
def test_a_rendered_answer_is_the_pydantic_document(member, number, state, ahead, eta_tenths, poll_after_ms, admitted):
    ticket = tokens.ticket(member, number, 0, 3600)
    admission = tokens.admission(member, number, 0, time.time() + 600) if admitted else None
    answer = QueueAnswer(ticket, state, ahead, eta_tenths, poll_after_ms, admission)
    rendered = json.loads(answer.render())
    assert rendered == json.loads(answer.out().model_dump_json())
    assert list(rendered) == list(QueueOut.model_fields)
    assert rendered["eta_seconds"] == pytest.approx(eta_tenths / 10, abs=1e-9)


# ---- the query string


def starlette_reading(query: str, name: str) -> str | None:
    """What Starlette's ``request.query_params[name]`` gives: the last value, blanks kept."""
    found = None
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == name:
            found = value
    return found


@given(st.text(alphabet="ticket=&%+ab.-_2F", max_size=40) | st.lists(st.sampled_from(
    ["ticket=", "ticket=a.b", "ticket", "x=1", "", "ticket=%41", "ticket=a+b", "&"]), max_size=5).map("&".join))
def test_the_ticket_is_read_as_starlette_reads_it(query):
    scope = {"query_string": query.encode("latin-1")}
    assert query_parameter(scope, "ticket") == starlette_reading(query, "ticket")


# ---- the tokens of a waiting person


def bearer(member: int, role: str = "user") -> str:
    return f"Bearer {tokens.session(member, role)}"


def test_a_second_poll_with_the_same_tokens_is_answered_from_memory():
    remembering = Tokens(SECRET, 3600, 600, pollers_remembered_max=8)
    session, ticket = bearer(7), tokens.ticket(7, 31, 0, 3600)
    first = remembering.queue_poller(session, ticket)
    second = remembering.queue_poller(session, ticket)
    assert first == second and first[0].member_id == 7 and first[1] == 31
    assert (remembering.polls_verified, remembering.polls_remembered) == (1, 1)


def test_nothing_is_remembered_when_the_memory_is_off():
    forgetful = Tokens(SECRET, 3600, 600)
    session, ticket = bearer(7), tokens.ticket(7, 31, 0, 3600)
    forgetful.queue_poller(session, ticket)
    forgetful.queue_poller(session, ticket)
    assert (forgetful.polls_verified, forgetful.polls_remembered) == (2, 0)


def test_a_remembered_ticket_still_belongs_to_its_member_alone():
    remembering = Tokens(SECRET, 3600, 600, pollers_remembered_max=8)
    ticket = tokens.ticket(7, 31, 0, 3600)
    remembering.queue_poller(bearer(7), ticket)
    with pytest.raises(ApiError) as refused:
        remembering.queue_poller(bearer(8), ticket)
    assert (refused.value.status, refused.value.code) == (403, "bad_ticket")
    with pytest.raises(ApiError) as refused:
        remembering.queue_poller("Bearer forged." + "A" * 22, ticket)
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")
    for no_session in (None, "Bearer é", ""):
        with pytest.raises(ApiError) as refused:
            remembering.queue_poller(no_session, ticket)
        assert (refused.value.status, refused.value.code) == (401, "unauthorized")
    assert remembering.queue_poller(bearer(7), ticket)[0].member_id == 7


def test_a_remembered_pair_ends_with_the_sooner_expiry(monkeypatch):
    remembering = Tokens(SECRET, 3600, 600, pollers_remembered_max=8)
    session, ticket = bearer(7), tokens.ticket(7, 31, 0, 60)
    remembering.queue_poller(session, ticket)
    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(ApiError) as refused:
        remembering.queue_poller(session, ticket)
    assert (refused.value.status, refused.value.code) == (403, "bad_ticket")
    assert "expired" in refused.value.message


def test_the_memory_is_bounded_and_forgets_the_oldest_first():
    remembering = Tokens(SECRET, 3600, 600, pollers_remembered_max=3)
    people = [(bearer(m), tokens.ticket(m, m, 0, 3600)) for m in range(1, 6)]
    for session, ticket in people:
        remembering.queue_poller(session, ticket)
    for session, ticket in people[2:]:
        remembering.queue_poller(session, ticket)
    assert remembering.polls_remembered == 3
    remembering.queue_poller(*people[0])
    assert remembering.polls_verified == 6
