"""The hall: sections of rows and columns, numbered seat ids, and how seats split into blocks.

Seat ids run ``0 … seats-1`` in layout order (section, then row, then column), so a seat's
section, row and column are arithmetic on its id and the seat map is one character per id.
A *block* is a run of whole rows inside one section; each block is owned by one actor, and
a booking lies inside one block so that its hold, payment and expiry are one actor's decision.
"""

from __future__ import annotations

import bisect
import string
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable

from domain.errors import BookingError, InvalidSeats, SeatsSpanBlocks


def distinct_seats(seat_ids: Iterable[int]) -> tuple[int, ...]:
    """A booking's seats: each once, in id order, however the request listed them."""
    return tuple(sorted(set(seat_ids)))


@dataclass(frozen=True)
class Section:
    name: str
    rows: int
    cols: int
    first_seat_id: int

    @property
    def seats(self) -> int:
        return self.rows * self.cols


@dataclass(frozen=True)
class Block:
    """A run of consecutive seat ids ``first_seat_id … end_seat_id-1`` owned by one actor."""

    index: int
    first_seat_id: int
    end_seat_id: int

    @property
    def seat_ids(self) -> range:
        return range(self.first_seat_id, self.end_seat_id)

    @property
    def name(self) -> str:
        return f"block-{self.index:03d}"

    def span_refusal(self, seats: Iterable[int]) -> SeatsSpanBlocks | None:
        """A booking lies in one block: the refusal naming the seats outside this one, if any."""
        outside = [s for s in seats if s not in self.seat_ids]
        if outside:
            return SeatsSpanBlocks("the seats of one booking must lie in one block (see block_rows)", seats=outside)
        return None


@dataclass(frozen=True)
class Venue:
    sections: tuple[Section, ...]
    block_rows: int

    @classmethod
    def grid(cls, sections: int, rows: int, cols: int, block_rows: int) -> "Venue":
        """``sections`` equal sections named A, B, C …, each ``rows`` × ``cols``."""
        if not 1 <= sections <= len(string.ascii_uppercase):
            raise ValueError("between 1 and 26 sections")
        if rows < 1 or cols < 1 or block_rows < 1 or rows % block_rows:
            raise ValueError("rows, cols and block_rows must be positive and block_rows divide rows")
        per_section = rows * cols
        return cls(
            tuple(Section(string.ascii_uppercase[i], rows, cols, i * per_section) for i in range(sections)),
            block_rows,
        )

    @cached_property
    def seats(self) -> int:
        """Computed once: every hold checks its seat ids against it."""
        return sum(section.seats for section in self.sections)

    @cached_property
    def _blocks(self) -> tuple[Block, ...]:
        return tuple(self.blocks())

    @cached_property
    def _block_starts(self) -> list[int]:
        return [block.first_seat_id for block in self._blocks]

    def blocks(self) -> list[Block]:
        blocks: list[Block] = []
        for section in self.sections:
            step = self.block_rows * section.cols
            for first in range(section.first_seat_id, section.first_seat_id + section.seats, step):
                blocks.append(Block(len(blocks), first, first + step))
        return blocks

    def section_of(self, seat_id: int) -> Section:
        self._check(seat_id)
        for section in self.sections:
            if seat_id < section.first_seat_id + section.seats:
                return section
        raise AssertionError("unreachable: seat id was checked")

    def block_index_of(self, seat_id: int) -> int:
        self._check(seat_id)
        return bisect.bisect_right(self._block_starts, seat_id) - 1

    def block_of(self, seat_id: int) -> Block:
        return self._blocks[self.block_index_of(seat_id)]

    def layout_refusal(self, seats: tuple[int, ...]) -> BookingError | None:
        """Why ``seats`` (``distinct_seats``) cannot make one booking in this hall, if they
        cannot: none chosen, ids outside the hall, or seats of several blocks (those outside
        the first seat's block are named)."""
        if not seats:
            return InvalidSeats("choose at least one seat", seats=[])
        outside = [s for s in seats if not 0 <= s < self.seats]
        if outside:
            return InvalidSeats(f"seat ids run from 0 to {self.seats - 1}", seats=outside)
        return self.block_of(seats[0]).span_refusal(seats)

    def position(self, seat_id: int) -> tuple[str, int, int]:
        """(section name, row, column), rows and columns counted from 1."""
        section = self.section_of(seat_id)
        row, col = divmod(seat_id - section.first_seat_id, section.cols)
        return section.name, row + 1, col + 1

    def label(self, seat_id: int) -> str:
        """A seat as a person reads it on a ticket, e.g. ``B-07-23``."""
        name, row, col = self.position(seat_id)
        return f"{name}-{row:02d}-{col:02d}"

    def spoken_label(self, seat_id: int, lang: str = "ko") -> str:
        """A seat as a ticket prints it: ``A구역 1열 25번`` or ``Section A, row 1, seat 25``."""
        name, row, col = self.position(seat_id)
        return f"Section {name}, row {row}, seat {col}" if lang == "en" else f"{name}구역 {row}열 {col}번"

    def _check(self, seat_id: int) -> None:
        if not 0 <= seat_id < self.seats:
            raise ValueError(f"seat id {seat_id} is outside 0…{self.seats - 1}")
