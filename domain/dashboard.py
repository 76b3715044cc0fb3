"""What an admin's dashboard counts: seats sold, held and available per grade, from the seat
map's status (one character per seat id), and the log's events as readable text for the CSV.

Pure functions, no I/O: the route hands in the map it already keeps and the events it read.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

from domain.pricing import PriceList
from domain.show import KST
from domain.venue import Venue


@dataclass(frozen=True)
class GradeCount:
    grade: str
    price: int
    sold: int
    held: int
    available: int

    @property
    def seats(self) -> int:
        return self.sold + self.held + self.available

    @property
    def revenue(self) -> int:
        """What the sold seats of this grade brought in (grade price × seats sold)."""
        return self.sold * self.price


def seats_by_grade(prices: PriceList, status: str | bytes) -> list[GradeCount]:
    """Per grade (dearest first), how many seats are sold (``S``), held (``H``) and available."""
    text = status.decode("ascii") if isinstance(status, bytes) else status
    venue = prices.venue
    if len(text) != venue.seats:
        raise ValueError(f"a status of {venue.seats} characters, got {len(text)}")
    counts = []
    for grade in prices.grades:
        sold = held = available = 0
        for section in venue.sections:
            if section.name not in grade.sections:
                continue
            part = text[section.first_seat_id:section.first_seat_id + section.seats]
            sold += part.count("S")
            held += part.count("H")
            available += part.count("A")
        counts.append(GradeCount(grade.name, grade.price, sold, held, available))
    return counts


# ---- the booking log as a person reads it (Korean, for the CSV an admin opens in Excel)

EVENT_NAMES_KO = {
    "hold_created": "선점 생성", "hold_cancelled": "선점 취소", "hold_expired": "선점 만료",
    "payment_started": "결제 시작", "payment_succeeded": "결제 성공", "payment_failed": "결제 실패",
    "booking_confirmed": "예매 확정", "payment_refunded": "결제 환불", "queue_joined": "대기열 입장",
    "queue_admitted": "입장 허용", "queue_left": "대기열 이탈", "queue_admission_expired": "입장 만료",
}
REASONS_KO = {"completed": "예매 완료", "left": "스스로 나감"}
PROVIDER_NAMES_KO = {"mockpay": "카카오페이", "fakecard": "신용카드"}
STATUS_NAMES_KO = {
    "held": "선점", "confirmed": "확정", "expired": "만료", "cancelled": "취소", "payment_failed": "결제 실패",
    "refunded": "환불", "already_paid": "이미 결제됨", "pending": "확인 중", "succeeded": "성공", "failed": "실패",
}


def kst_text(epoch: float) -> str:
    """``2026-12-24 19:00:05`` on the hall's clock."""
    return datetime.fromtimestamp(epoch, timezone.utc).astimezone(KST).strftime("%Y-%m-%d %H:%M:%S")


def detail_text(detail: dict) -> str:
    """A log event's detail as words: ``결제 수단 카카오페이 · 금액 165,000원``, never raw JSON."""
    parts = []
    for key, value in detail.items():
        if key == "provider":
            parts.append(f"결제 수단 {PROVIDER_NAMES_KO.get(value, value)}")
        elif key == "amount" and isinstance(value, (int, float)):
            parts.append(f"금액 {int(value):,}원")
        elif key == "payment_id":
            parts.append(f"결제 번호 {value}")
        elif key in ("deadline", "expires_at") and isinstance(value, (int, float)):
            parts.append(f"결제 기한 {kst_text(value)}")
        elif key == "regranted_from":
            parts.append(f"{STATUS_NAMES_KO.get(value, value)} 후 좌석 재배정")
        elif key == "refunded_from":
            parts.append(f"환불 사유: {STATUS_NAMES_KO.get(value, value)}")
        elif key == "paid_by":
            parts.append(f"먼저 결제된 건 {value}")
        elif key == "booking_status":
            parts.append(f"예매 상태 {STATUS_NAMES_KO.get(value, value)}")
        elif key == "reason":
            parts.append(f"사유: {REASONS_KO.get(value, value)}")
        elif key in ("ticket", "number"):
            parts.append(f"대기 번호 {value:,}" if isinstance(value, int) else f"대기 번호 {value}")
        else:
            parts.append(f"{key} {value}")
    return " · ".join(parts)


CSV_COLUMNS = ("시각 (KST)", "종류", "예매 ID", "아이디", "좌석", "상세")


def log_csv(events: Iterable, venue: Venue, usernames: dict[int, str]) -> bytes:
    """The events as CSV in UTF-8 with a BOM, so that Excel opens the Hangul as Hangul."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for e in events:
        writer.writerow((
            kst_text(e.at),
            EVENT_NAMES_KO.get(e.type, e.type),
            e.booking_id or "",
            usernames.get(e.member_id, "") if e.member_id is not None else "",
            ", ".join(venue.spoken_label(s) for s in e.seat_ids if 0 <= s < venue.seats),
            detail_text(e.detail or {}),
        ))
    return "\ufeff".encode() + out.getvalue().encode("utf-8")
