"""Holds refused before their block is asked, and how the idempotency ledger remembers them.

Under contention most attempts are on seats already taken: the replica refuses those from its
seat map while the map is current for their block (the block holds the map's open question),
and a block the map cannot follow decides itself. A refusal decided before the key is claimed
is stored with the claim, and a retry replays it.
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import pytest

from api.idempotency import IdempotencyLedger
from api.metrics import Metrics
from api.seatmap import SeatMap
from api.service import BookingService
from domain.errors import InvalidSeats, SeatsSpanBlocks, SeatUnavailable
from domain.venue import Venue
from persistence import open_store

VENUE = Venue.grid(sections=2, rows=10, cols=50, block_rows=10)  # blocks: seats 0–499 and 500–999


def service_with_block_zero(current: bool) -> SimpleNamespace:
    """What ``hold_refusal`` reads: the venue and a seat map with seats 3 held and 4 sold,
    current for block 0 or not, and never for block 1."""
    seat_map = SeatMap(VENUE, [None, None], 200)
    seat_map._status[3:5] = b"HS"
    seat_map._open[0] = current
    service = SimpleNamespace(venue=VENUE, seat_map=seat_map, metrics=Metrics())
    service.hold_refusal = partial(BookingService.hold_refusal, service)
    return service


def test_a_current_map_refuses_seats_it_shows_taken():
    service = service_with_block_zero(current=True)
    assert service.seat_map.current(0) and not service.seat_map.current(1)
    refusal = service.hold_refusal([5, 4, 3])
    assert isinstance(refusal, SeatUnavailable) and refusal.extra == {"seats": [3, 4]}
    assert service.metrics.holds == {"refused_by_map": 1}
    assert service.hold_refusal([5, 6]) is None, "free on the map: the block decides"


def test_a_block_the_map_cannot_follow_decides_even_seats_the_map_shows_taken():
    service = service_with_block_zero(current=False)
    assert service.hold_refusal([3]) is None and not service.metrics.holds


@pytest.mark.parametrize("seat_ids, refused", [
    ([], InvalidSeats), ([1000], InvalidSeats), ([-1, 2], InvalidSeats), ([499, 500], SeatsSpanBlocks),
])
def test_seats_outside_the_hall_or_one_block_are_refused_current_or_not(seat_ids, refused):
    service = service_with_block_zero(current=False)
    assert isinstance(service.hold_refusal(seat_ids), refused)


async def test_a_refusal_is_stored_with_its_claim_and_replayed(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/ledger.db")
    await store.migrate()
    ledger = IdempotencyLedger(store)
    ran = []

    async def work():
        ran.append(True)
        return 201, {"booking_id": "b1"}

    first = await ledger.run_once(7, "k1", "fingerprint", work, SeatUnavailable.of([3]))
    again = await ledger.run_once(7, "k1", "fingerprint", work)
    assert ran == [], "a refused request runs nothing, then or on its retry"
    assert (first.status_code, again.status_code) == (409, 409)
    assert first.body == again.body and b'"code":"seat_unavailable"' in first.body
    assert again.headers["idempotency-replayed"] == "true"
    other = await ledger.run_once(7, "k2", "fingerprint", work)
    assert other.status_code == 201 and ran == [True]
    await store.close()
