"""The admin's dashboard counts and the log's CSV (domain.dashboard): pure, no service."""

from __future__ import annotations

import csv
import io

from hypothesis import given, strategies as st

from domain.dashboard import CSV_COLUMNS, detail_text, log_csv, seats_by_grade
from domain.pricing import PriceList
from domain.venue import Venue
from persistence.records import LogEvent

HALL = Venue.grid(4, 2, 5, 2)  # 40 seats, sections A–D: VIP A, R B, S C, A D
PRICES = PriceList.default(HALL)


@given(st.text(alphabet="AHS", min_size=HALL.seats, max_size=HALL.seats))
def test_seats_by_grade_add_up_to_the_hall(status):
    counts = seats_by_grade(PRICES, status)
    assert [c.grade for c in counts] == [g.name for g in PRICES.grades]
    assert sum(c.seats for c in counts) == HALL.seats
    assert sum(c.sold for c in counts) == status.count("S")
    assert sum(c.held for c in counts) == status.count("H")
    for c in counts:
        assert c.revenue == c.sold * c.price


def test_a_section_sold_out_counts_in_its_grade():
    counts = {c.grade: c for c in seats_by_grade(PRICES, "S" * 10 + "H" * 3 + "A" * 27)}
    assert (counts["VIP"].sold, counts["VIP"].available) == (10, 0)
    assert (counts["R"].held, counts["R"].available) == (3, 7)


def test_the_csv_opens_in_excel_with_hangul_and_reads_like_words():
    events = [
        LogEvent(1_796_054_400.0, "payment_started", "b1", 7, (0, 1), {"payment_id": "pay_1", "provider": "mockpay"}, id=2),
        LogEvent(1_796_054_399.0, "queue_joined", None, 8, (), {"ticket": 12345}, id=1),
    ]
    body = log_csv(events, HALL, {7: "alice", 8: "밥"})
    assert body.startswith(b"\xef\xbb\xbf"), "a BOM, so Excel reads UTF-8"
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[1] == ["2026-12-01 01:00:00", "결제 시작", "b1", "alice", "A구역 1열 1번, A구역 1열 2번",
                       "결제 번호 pay_1 · 결제 수단 카카오페이"]
    assert rows[2][1:4] == ["대기열 입장", "", "밥"] and rows[2][5] == "대기 번호 12,345"


def test_details_are_never_raw_json():
    text = detail_text({"refunded_from": "already_paid", "paid_by": "pay_2", "deadline": 1_796_054_400.0})
    assert "{" not in text and "환불 사유: 이미 결제됨" in text and "2026-12-01 01:00:00" in text
