"""Serve routes requests to a new replica once its first health check passes: the check waits
until the replica's seat map and queue summary are loaded, since before that its map shows
every seat free (a replica started again after a crash would answer so for a moment)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import serve_app
from api.service import BookingService


def replica_with_service(service) -> SimpleNamespace:
    """A replica's ``check_health`` bound to ``service`` (without Serve's wrapper around it)."""
    replica = SimpleNamespace(service=service)
    replica.check_health = lambda: serve_app.Ingress.func_or_class.check_health(replica)
    return replica


class Loading:
    """What ``check_health`` reads of a replica's service, loading until told otherwise."""

    def __init__(self):
        self.seat_map = SimpleNamespace(fresh=asyncio.Event())
        self.queue_view = SimpleNamespace(summary=None)

    ready = BookingService.ready
    until_ready = BookingService.until_ready

    def start_background(self) -> None:
        pass


async def test_the_first_health_check_passes_only_once_the_map_and_summary_are_loaded():
    service = Loading()
    check = asyncio.ensure_future(replica_with_service(service).check_health())
    await asyncio.sleep(0.2)
    assert not check.done(), "healthy before its seat map was loaded"
    service.seat_map.fresh.set()
    await asyncio.sleep(0.2)
    assert not check.done(), "healthy before its queue summary was loaded"
    service.queue_view.summary = {"head": 1}
    await asyncio.wait_for(check, 1)


async def test_a_replica_whose_map_never_loads_fails_its_check(monkeypatch):
    monkeypatch.setattr(serve_app, "READY_SECONDS_MAX", 0.2)
    check = replica_with_service(Loading()).check_health()
    try:
        await asyncio.wait_for(check, 2)
    except RuntimeError as error:
        assert "not loaded" in str(error)
    else:
        raise AssertionError("a replica without its map passed its health check")
