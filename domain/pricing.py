"""Seat grades and what a booking costs: the one place a price is computed.

Each section of the hall belongs to one grade (VIP, R, S, A …) with its price in KRW and the
colour the seat map paints it. A booking costs the sum of its seats' grade prices plus a
booking fee per seat (예매수수료, 0 unless configured). The payment a member starts, and the
amount a provider's callback must carry, are both this number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from domain.venue import Venue, distinct_seats

_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_NAME = re.compile(r"^[A-Za-z0-9가-힣+]{1,8}$")
PRICE_MAX = 10_000_000

# (name, price, colour, share of the sections, nearest the stage first)
DEFAULT_GRADES: tuple[tuple[str, int, str, int], ...] = (
    ("VIP", 165_000, "#7048e8", 3),
    ("R", 143_000, "#e64980", 4),
    ("S", 121_000, "#1c7ed6", 4),
    ("A", 99_000, "#2f9e44", 4),
)


@dataclass(frozen=True)
class Grade:
    name: str
    price: int
    colour: str
    sections: tuple[str, ...]

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"grade name {self.name!r}: 1-8 letters or digits")
        if not 0 <= self.price <= PRICE_MAX:
            raise ValueError(f"grade {self.name}: price must be 0…{PRICE_MAX} KRW")
        if not _COLOUR.match(self.colour):
            raise ValueError(f"grade {self.name}: colour must be #rrggbb")
        if not self.sections:
            raise ValueError(f"grade {self.name} has no sections")


@dataclass(frozen=True)
class Quote:
    """What a booking costs: per seat (its grade and price), the fee and the total."""

    seats: tuple[tuple[int, str, int], ...]  # (seat id, grade name, price)
    fee_per_seat: int

    @property
    def seats_total(self) -> int:
        return sum(price for _, _, price in self.seats)

    @property
    def fee(self) -> int:
        return self.fee_per_seat * len(self.seats)

    @property
    def total(self) -> int:
        return self.seats_total + self.fee


class PriceList:
    """Grades covering every section of ``venue`` exactly once, and the booking fee."""

    def __init__(self, venue: Venue, grades: Iterable[Grade], fee_per_seat: int = 0):
        self.venue = venue
        self.grades = tuple(grades)
        self.fee_per_seat = fee_per_seat
        if not 0 <= fee_per_seat <= PRICE_MAX:
            raise ValueError(f"booking fee must be 0…{PRICE_MAX} KRW")
        names = [g.name for g in self.grades]
        if len(set(names)) != len(names):
            raise ValueError("two grades share a name")
        self._by_section: dict[str, Grade] = {}
        for grade in self.grades:
            for section in grade.sections:
                if section in self._by_section:
                    raise ValueError(f"section {section} is in grades {self._by_section[section].name} and {grade.name}")
                self._by_section[section] = grade
        known = {s.name for s in venue.sections}
        unknown = set(self._by_section) - known
        if unknown:
            raise ValueError(f"grades name sections the hall does not have: {', '.join(sorted(unknown))}")
        missing = known - set(self._by_section)
        if missing:
            raise ValueError(f"sections without a grade: {', '.join(sorted(missing))}")

    @classmethod
    def default(cls, venue: Venue, fee_per_seat: int = 0) -> "PriceList":
        """The default split: sections in layout order (the first nearest the stage), shared out
        over VIP, R, S and A in the proportions 3:4:4:4 (15 sections: A–C VIP, D–G R, H–K S,
        L–O A); a smaller hall keeps the dearest grades first."""
        names = [s.name for s in venue.sections]
        weights = [share for *_, share in DEFAULT_GRADES]
        counts = _split(len(names), weights)
        grades, start = [], 0
        for (name, price, colour, _), count in zip(DEFAULT_GRADES, counts):
            if count:
                grades.append(Grade(name, price, colour, tuple(names[start:start + count])))
            start += count
        return cls(venue, grades, fee_per_seat)

    @classmethod
    def parse(cls, venue: Venue, text: str, fee_per_seat: int = 0) -> "PriceList":
        """``VIP:165000:#7048e8:A,B,C;R:143000:#e64980:D,E,F,G;…`` (``ENCORE_GRADES``)."""
        grades = []
        for part in filter(None, (p.strip() for p in text.split(";"))):
            fields = part.split(":")
            if len(fields) != 4:
                raise ValueError(f"grade {part!r}: want name:price:#colour:sections")
            name, price, colour, sections = (f.strip() for f in fields)
            if not price.isascii() or not price.isdigit():
                raise ValueError(f"grade {name}: price {price!r} is not a whole number of won")
            grades.append(Grade(name, int(price), colour, tuple(s.strip() for s in sections.split(",") if s.strip())))
        if not grades:
            raise ValueError("no grades")
        return cls(venue, grades, fee_per_seat)

    def grade_of_section(self, section: str) -> Grade:
        return self._by_section[section]

    def grade_of(self, seat_id: int) -> Grade:
        return self._by_section[self.venue.section_of(seat_id).name]

    def quote(self, seat_ids: Iterable[int]) -> Quote:
        seats = tuple((s, (g := self.grade_of(s)).name, g.price) for s in distinct_seats(seat_ids))
        return Quote(seats, self.fee_per_seat)

    def amount(self, seat_ids: Iterable[int]) -> int:
        """What a booking of these seats must be paid: the grade prices plus the fee."""
        return self.quote(seat_ids).total


def _split(total: int, weights: list[int]) -> list[int]:
    """``total`` items over ``weights`` by largest remainder, earlier parts winning ties."""
    if total <= len(weights):
        return [1 if i < total else 0 for i in range(len(weights))]
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    counts = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts
