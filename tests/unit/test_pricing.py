"""Bookings are priced by the grades of their seats (domain.pricing), plus the fee per seat."""

from __future__ import annotations

import pytest
from hypothesis import given, settings as hyp_settings, strategies as st

from domain.pricing import Grade, PriceList
from domain.venue import Venue
from encore.settings import Settings, load_settings

HALL = Venue.grid(15, 20, 50, 20)
DEFAULT = PriceList.default(HALL)


def test_the_default_split_puts_the_dearest_grades_nearest_the_stage():
    assert [(g.name, g.price, "".join(g.sections)) for g in DEFAULT.grades] == [
        ("VIP", 165_000, "ABC"), ("R", 143_000, "DEFG"), ("S", 121_000, "HIJK"), ("A", 99_000, "LMNO"),
    ]
    prices = [g.price for g in DEFAULT.grades]
    assert prices == sorted(prices, reverse=True)


def test_a_booking_costs_its_seats_grade_prices():
    # A-01-01 (VIP) + D-01-01 (R), seat ids 0 and 3,000
    assert DEFAULT.amount([0, 3000]) == 165_000 + 143_000
    quote = PriceList.default(HALL, fee_per_seat=2_000).quote([14_999, 0])
    assert quote.seats == ((0, "VIP", 165_000), (14_999, "A", 99_000))
    assert (quote.seats_total, quote.fee, quote.total) == (264_000, 4_000, 268_000)


@hyp_settings(max_examples=200, deadline=None)
@given(
    prices=st.lists(st.integers(0, 500_000), min_size=1, max_size=6),
    fee=st.integers(0, 5_000),
    seats=st.lists(st.integers(0, HALL.seats - 1), min_size=1, max_size=20),
    data=st.data(),
)
def test_any_price_list_prices_a_booking_seat_by_seat(prices, fee, seats, data):
    """For any split of the sections into grades: the total is the sum over the (distinct)
    seats of their section's grade price, plus the fee for each seat."""
    names = [s.name for s in HALL.sections]
    cuts = sorted(data.draw(st.lists(st.integers(1, len(names) - 1), max_size=len(prices) - 1, unique=True)))
    groups = [names[a:b] for a, b in zip([0, *cuts], [*cuts, len(names)])]
    grades = [Grade(f"G{i}", prices[i], "#123456", tuple(group)) for i, group in enumerate(groups)]
    price_list = PriceList(HALL, grades, fee)
    price_of_section = {section: g.price for g in grades for section in g.sections}
    distinct = set(seats)
    expected = sum(price_of_section[HALL.section_of(s).name] for s in distinct) + fee * len(distinct)
    assert price_list.amount(seats) == expected
    assert price_list.amount(reversed(seats)) == expected  # order does not matter


def test_grades_from_the_setting_must_cover_every_section_once():
    parsed = PriceList.parse(HALL, "VIP:200000:#111111:A,B;R:100000:#222222:C,D,E,F,G,H,I,J,K,L,M,N,O")
    assert parsed.grade_of(1999).name == "VIP" and parsed.grade_of(2000).name == "R"
    for bad in ("VIP:1:#111111:A", "VIP:1:#111111:A,B,C,D,E,F,G,H,I,J,K,L,M,N,O,P",
                "VIP:x:#111111:A,B,C,D,E,F,G,H,I,J,K,L,M,N,O", "VIP:1:red:A,B,C,D,E,F,G,H,I,J,K,L,M,N,O",
                "VIP:1:#111111:A,B;R:1:#111111:B,C,D,E,F,G,H,I,J,K,L,M,N,O"):
        with pytest.raises(ValueError):
            PriceList.parse(HALL, bad)


def test_settings_name_the_variable_of_a_bad_grade_list():
    with pytest.raises(SystemExit, match="ENCORE_GRADES"):
        load_settings(db_url="sqlite:///:memory:", grades="VIP:1:#111111:A")
    assert Settings(db_url="sqlite:///:memory:", booking_fee=1000).price_list.amount([0]) == 166_000


def test_the_show_is_kept_in_utc_and_read_in_kst():
    settings = Settings(db_url="sqlite:///:memory:", show_starts_at="2026-12-24T19:00:00")  # no zone: the hall's (KST)
    assert settings.show.starts_at_utc.isoformat() == "2026-12-24T10:00:00+00:00"
    assert settings.show.starts_at_local.hour == 19
