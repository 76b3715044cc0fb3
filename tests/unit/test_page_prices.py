"""The page prices a selection as the server does: ``Venue.quote`` of web/js/venue.js, run by
Node on ``GET /api/venue``'s answer, against ``domain.pricing`` (what a payment must amount to).
The server's number is the one charged; this keeps the total a person is shown equal to it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from api.service import venue_out
from encore.settings import Settings
from tests.unit.page_modules import run_venue_script

def page_quotes(tmp_path: Path, venue_json: str, selections: list[list[int]]) -> list[dict]:
    script = (
        "const { Venue } = await import(process.argv[1]);"
        "const venue = new Venue(JSON.parse(process.argv[2]));"
        "const picks = JSON.parse(process.argv[3]);"
        "console.log(JSON.stringify(picks.map((ids) => { const q = venue.quote(ids);"
        " return { total: q.total, fee: q.fee, seats: q.seats.map((s) => [s.id, s.grade, s.price, s.label]) }; })));"
    )
    return run_venue_script(tmp_path, script, venue_json, json.dumps(selections))


@pytest.mark.parametrize("overrides", [
    {},
    {"booking_fee": 2000},
    {"sections": 4, "rows": 3, "cols": 4, "grades": "VIP:200000:#111111:A;R:1000:#222222:B,C;A:0:#333333:D"},
])
def test_the_page_total_is_the_servers_amount(tmp_path, overrides):
    settings = Settings(db_url="sqlite:///:memory:", secret_key="page-prices-secret", **overrides)
    rng = random.Random(7)
    seats = settings.venue.seats
    selections = [[0], [seats - 1]] + [rng.sample(range(seats), rng.randint(1, 4)) for _ in range(40)]
    quotes = page_quotes(tmp_path, venue_out(settings, ["mockpay"]).model_dump_json(), selections)
    prices = settings.price_list
    for ids, quote in zip(selections, quotes):
        assert quote["total"] == prices.amount(ids), (ids, quote)
        assert [(s[0], s[1], s[2]) for s in quote["seats"]] == list(prices.quote(ids).seats)
        assert [s[3] for s in quote["seats"]] == [settings.venue.spoken_label(s) for s in sorted(ids)]
