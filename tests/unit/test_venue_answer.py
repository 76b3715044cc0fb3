"""``GET /api/venue`` tells the page how the hall splits into seat blocks.

A hold whose seats lie in two blocks is refused (422 ``seats_span_blocks``), so the page
keeps a booking's seats in one block before it asks; it can only do that if the venue
answer says how many rows a block has, and if it groups seats as ``domain.venue`` does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from api import hot_routes
from api.edge import create_app
from api.models import VenueOut
from api.service import venue_out
from encore.settings import Settings
from tests.unit.page_modules import run_venue_script
from tests.unit.replica import replica_service

PROVIDERS = ["mockpay", "fakecard"]


def settings(**overrides) -> Settings:
    return Settings(db_url="sqlite:///:memory:", secret_key="venue-answer-secret", **overrides)


@pytest.mark.parametrize("block_rows, expected", [(0, 20), (20, 20), (5, 5), (1, 1)])
def test_block_rows_is_the_venues_split(block_rows, expected):
    """0 in the settings means a whole section; the answer always names the rows."""
    answer = venue_out(settings(block_rows=block_rows), PROVIDERS)
    assert answer.block_rows == expected == settings(block_rows=block_rows).venue.block_rows


def test_the_route_sends_block_rows():
    service = replica_service(settings(block_rows=4))
    hot_routes.use_service(service)
    try:
        async def get() -> httpx.Response:
            transport = httpx.ASGITransport(app=create_app())
            async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
                return await client.get("/api/venue")

        answer = asyncio.run(get())
    finally:
        hot_routes.use_service(None)
    assert answer.status_code == 200
    assert answer.json()["block_rows"] == 4
    assert VenueOut.model_validate(answer.json()) == service.venue_out


def page_groups(tmp_path: Path, venue: VenueOut) -> list[str]:
    """``Venue.groupOf`` of web/js/venue.js for every seat id."""
    script = (
        "const { Venue } = await import(process.argv[1]);"
        "const venue = new Venue(JSON.parse(process.argv[2]));"
        "console.log(JSON.stringify(Array.from({ length: venue.seats }, (_, id) => venue.groupOf(id))));"
    )
    return run_venue_script(tmp_path, script, venue.model_dump_json())


@pytest.mark.parametrize("sections, rows, cols, block_rows", [
    (3, 6, 4, 0), (3, 6, 4, 6), (3, 6, 4, 3), (3, 6, 4, 2), (2, 6, 4, 1), (2, 10, 5, 5),
])
def test_the_page_groups_seats_as_the_server_splits_blocks(tmp_path, sections, rows, cols, block_rows):
    """Two seats share a group on the page exactly when they share a block on the server."""
    config = settings(sections=sections, rows=rows, cols=cols, block_rows=block_rows)
    groups = page_groups(tmp_path, venue_out(config, PROVIDERS))
    blocks = [config.venue.block_index_of(seat) for seat in range(config.venue.seats)]
    assert len(groups) == len(blocks)
    block_of_group = dict(zip(groups, blocks))
    group_of_block = dict(zip(blocks, groups))
    assert [block_of_group[g] for g in groups] == blocks
    assert [group_of_block[b] for b in blocks] == groups
