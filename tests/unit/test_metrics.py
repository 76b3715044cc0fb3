"""``/metrics`` rendering: every replica's and actor's figures in one text, labelled, and parsable."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
import ray
from prometheus_client.parser import text_string_to_metric_families

from actors import metrics_board
from actors.metrics_board import MetricsBoard
from api.metrics import Figures, Metrics, render

NODE = "a" * 56


def replica(name: str, requests: int) -> tuple[dict, dict]:
    metrics = Metrics()
    for _ in range(requests):
        metrics.observe("/api/seats", "GET", 200, 0.004)
    metrics.observe("/api/holds", "POST", 409, 0.3)
    metrics.count_hold("won")
    metrics.count_hold("refused_by_map")
    metrics.count_problem(409, "seat_unavailable")
    metrics.count_problem(409, "seat_unavailable")
    return {"replica": name, "node": NODE, "pid": str(len(name))}, metrics.snapshot({"remembered": 3, "verified": 1})


def block_stats(held: int) -> dict:
    return {"node": NODE, "seats": {"available": 1000 - held, "held": held, "sold": 0}, "live_bookings": held,
            "commit_batches": 7, "changes_written": 9, "commit_backlog": 0}


QUEUE = {"waiting": 5, "active": 2, "drawing": 0, "rate": 199.5, "head": 12, "next_number": 19}


def figures(**overrides) -> Figures:
    fields = {
        "replicas": [replica("r-one", 3), replica("r-two", 5)],
        "blocks": [("block-000", block_stats(4)), ("block-001", None)],
        "queue": QUEUE,
        "bookings": {"held": 4, "confirmed": 1},
    }
    return Figures(**{**fields, **overrides})


def families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(text: str, name: str, **labels) -> list:
    return [s for s in families(text)[name].samples if all(s.labels.get(k) == v for k, v in labels.items())]


def test_each_replicas_counters_are_labelled_with_the_replica_and_its_node():
    text = render(figures())
    info = samples(text, "encore_replica_info")
    assert {(s.labels["replica"], s.labels["node"]) for s in info} == {("r-one", NODE), ("r-two", NODE)}
    for name, count in (("r-one", 3), ("r-two", 5)):
        [seats] = samples(text, "encore_http_requests", replica=name, route="/api/seats")
        assert seats.name == "encore_http_requests_total" and seats.value == count
        assert {s.labels["outcome"]: s.value for s in samples(text, "encore_holds", replica=name)} == {
            "won": 1, "refused_by_map": 1}
        assert samples(text, "encore_problems", replica=name, code="seat_unavailable")[0].value == 2
        assert {s.labels["tokens"]: s.value for s in samples(text, "encore_queue_polls", replica=name)} == {
            "remembered": 3, "verified": 1}


def test_latency_buckets_are_cumulative_per_replica_and_route():
    text = render(figures())
    buckets = samples(text, "encore_http_request_seconds", replica="r-two", route="/api/seats")
    by_bound = {s.labels["le"]: s.value for s in buckets if s.name.endswith("_bucket")}
    assert by_bound["0.005"] == 5 and by_bound["+Inf"] == 5
    values = [s.value for s in buckets if s.name.endswith("_bucket")]
    assert values == sorted(values)
    [count] = [s for s in buckets if s.name.endswith("_count")]
    assert count.value == 5


def test_blocks_show_their_seats_and_a_block_that_did_not_answer_is_down():
    text = render(figures())
    assert {s.labels["block"]: s.value for s in samples(text, "encore_block_up")} == {"block-000": 1, "block-001": 0}
    assert {s.labels["state"]: s.value for s in samples(text, "encore_seats", block="block-000")} == {
        "available": 996, "held": 4, "sold": 0}
    assert not samples(text, "encore_seats", block="block-001")


def test_the_queue_and_the_store_figures_or_their_absence():
    text = render(figures())
    assert {s.labels["state"]: s.value for s in samples(text, "encore_queue_people")} == {
        "waiting": 5, "active": 2, "drawing": 0}
    assert samples(text, "encore_queue_admitted")[0].value == 12
    assert samples(text, "encore_queue_admit_rate")[0].value == 199.5
    silent = render(figures(queue=None, bookings=None))
    assert samples(silent, "encore_queue_up")[0].value == 0
    assert "encore_queue_people" not in families(silent) and "encore_bookings" not in families(silent)


def test_each_family_is_typed_once_and_label_values_are_escaped():
    text = render(figures(replicas=[({"replica": 'odd"\\name\n', "node": NODE, "pid": "1"}, replica("x", 1)[1])]))
    types = [line for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(types) == len(set(types))
    [info] = samples(text, "encore_replica_info")
    assert info.labels["replica"] == 'odd"\\name\n'


async def test_the_board_keeps_each_replicas_latest_report_and_forgets_the_silent(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(metrics_board.time, "monotonic", lambda: now[0])
    board = MetricsBoard()
    board.report({"replica": "r-one"}, {"n": 1})
    board.report({"replica": "r-two"}, {"n": 1})
    board.report({"replica": "r-one"}, {"n": 2})
    assert sorted(await board.latest(), key=lambda pair: pair[0]["replica"]) == [
        ({"replica": "r-one"}, {"n": 2}), ({"replica": "r-two"}, {"n": 1})]
    now[0] += metrics_board.FORGET_SECONDS / 2
    board.report({"replica": "r-two"}, {"n": 3})
    now[0] += metrics_board.FORGET_SECONDS / 2 + 1
    assert await board.latest() == [({"replica": "r-two"}, {"n": 3})]


class Process:
    """Stands for a replica's actor handle: ``__ray_ready__`` answers as Ray's would."""

    def __init__(self, answer):
        self.__ray_ready__ = SimpleNamespace(remote=answer)


async def dies():
    raise ray.exceptions.ActorDiedError()


async def is_busy():
    await asyncio.sleep(metrics_board.PING_SECONDS * 2)


async def answers():
    return None


async def test_a_dead_replica_leaves_the_board_at_once_and_a_busy_one_stays(monkeypatch):
    monkeypatch.setattr(metrics_board, "PING_SECONDS", 0.05)
    board = MetricsBoard()
    board.report({"replica": "dead"}, {"n": 1}, Process(dies))
    board.report({"replica": "busy"}, {"n": 1}, Process(is_busy))
    board.report({"replica": "well"}, {"n": 1}, Process(answers))
    board.report({"replica": "no-actor"}, {"n": 1})
    assert sorted(who["replica"] for who, _ in await board.latest()) == ["busy", "no-actor", "well"]


@pytest.mark.parametrize("seconds, bound", [(0.001, "0.005"), (0.2, "0.25"), (60, "+Inf")])
def test_a_request_lands_in_the_first_bucket_that_holds_it(seconds, bound):
    metrics = Metrics()
    metrics.observe("/x", "GET", 200, seconds)
    text = render(figures(replicas=[({"replica": "r", "node": NODE, "pid": "1"}, metrics.snapshot({}))]))
    buckets = {s.labels["le"]: s.value for s in samples(text, "encore_http_request_seconds", route="/x")
               if s.name.endswith("_bucket")}
    first = next(le for le, value in buckets.items() if value == 1)
    assert first == bound


async def test_a_replica_that_reports_while_the_board_asks_the_others_is_kept():
    board = MetricsBoard()

    async def answers_while_a_newcomer_reports():
        board.report({"replica": "newcomer"}, {"n": 1})

    board.report({"replica": "asked"}, {"n": 1}, Process(answers_while_a_newcomer_reports))
    assert sorted(who["replica"] for who, _ in await board.latest()) == ["asked", "newcomer"]
