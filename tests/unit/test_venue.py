"""The hall layout: seat ids in layout order, readable labels, and blocks of whole rows."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.venue import Block, Section, Venue

# The show: 15 sections (A…O) of 20 rows × 50 seats; by default one block per section.
HALL = Venue.grid(15, 20, 50, 20)


# ---- the real hall


def test_hall_has_15000_seats_in_15_sections():
    assert HALL.seats == 15 * 20 * 50 == 15_000
    assert [s.name for s in HALL.sections] == list("ABCDEFGHIJKLMNO")
    assert all((s.rows, s.cols, s.seats) == (20, 50, 1000) for s in HALL.sections)
    assert [s.first_seat_id for s in HALL.sections] == [i * 1000 for i in range(15)]


def test_label_checked_by_hand():
    # Section B starts at 1000; row 7 starts 6 rows of 50 later; column 23 is 22 further.
    seat = 1000 + 6 * 50 + 22
    assert seat == 1322
    assert HALL.position(1322) == ("B", 7, 23)
    assert HALL.label(1322) == "B-07-23"
    assert HALL.section_of(1322).name == "B"


@pytest.mark.parametrize(
    "seat_id, label",
    [
        (0, "A-01-01"),
        (49, "A-01-50"),
        (50, "A-02-01"),
        (999, "A-20-50"),
        (1000, "B-01-01"),
        (14_000, "O-01-01"),
        (14_999, "O-20-50"),
    ],
)
def test_labels_at_the_edges(seat_id, label):
    assert HALL.label(seat_id) == label


def test_ids_run_in_layout_order():
    """Section, then row, then column: walking the ids walks the map line by line."""
    positions = [HALL.position(seat) for seat in range(HALL.seats)]
    expected = [(s.name, r, c) for s in HALL.sections for r in range(1, s.rows + 1) for c in range(1, s.cols + 1)]
    assert positions == expected
    labels = [HALL.label(seat) for seat in range(HALL.seats)]
    assert len(set(labels)) == HALL.seats


def test_default_blocks_are_whole_sections():
    blocks = HALL.blocks()
    assert len(blocks) == 15
    assert [(b.index, b.first_seat_id, b.end_seat_id) for b in blocks] == [(i, i * 1000, (i + 1) * 1000) for i in range(15)]
    assert [b.name for b in blocks[:3]] == ["block-000", "block-001", "block-002"]
    assert blocks[14].name == "block-014"


def test_smaller_blocks_of_five_rows():
    venue = Venue.grid(15, 20, 50, 5)
    blocks = venue.blocks()
    assert len(blocks) == 15 * 4
    assert all(len(b.seat_ids) == 250 for b in blocks)
    assert venue.block_index_of(1322) == 4 + 1  # section B's second block (rows 6–10)
    assert 1322 in blocks[5].seat_ids


@pytest.mark.parametrize("block_rows", [1, 2, 4, 5, 10, 20])
def test_block_partition_and_lookup_on_the_hall(block_rows):
    venue = Venue.grid(15, 20, 50, block_rows)
    check_partition(venue)


def test_block_seat_ids_is_a_range():
    block = Block(3, 100, 150)
    assert block.seat_ids == range(100, 150)
    assert block.name == "block-003"


# ---- rejected input


@pytest.mark.parametrize(
    "sections, rows, cols, block_rows",
    [
        (0, 20, 50, 20),
        (27, 20, 50, 20),
        (-1, 20, 50, 20),
        (15, 0, 50, 1),
        (15, 20, 0, 20),
        (15, 20, -50, 20),
        (15, 20, 50, 0),
        (15, 20, 50, -5),
        (15, 20, 50, 3),  # does not divide 20
        (15, 20, 50, 40),  # larger than a section
    ],
)
def test_invalid_grids_are_rejected(sections, rows, cols, block_rows):
    with pytest.raises(ValueError):
        Venue.grid(sections, rows, cols, block_rows)


def test_26_sections_is_the_limit():
    venue = Venue.grid(26, 1, 1, 1)
    assert venue.sections[-1].name == "Z"
    assert venue.label(25) == "Z-01-01"


@pytest.mark.parametrize("seat_id", [-1, -15_000, 15_000, 15_001, 10**9])
def test_ids_outside_the_hall_are_rejected(seat_id):
    for lookup in (HALL.section_of, HALL.position, HALL.label, HALL.block_index_of):
        with pytest.raises(ValueError):
            lookup(seat_id)


def test_venue_is_immutable():
    with pytest.raises(AttributeError):
        HALL.block_rows = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        HALL.sections[0].rows = 1  # type: ignore[misc]


# ---- properties over random small grids


def check_partition(venue: Venue) -> None:
    """Blocks cover every seat exactly once, in order; each is whole rows of one section."""
    blocks = venue.blocks()
    assert [b.index for b in blocks] == list(range(len(blocks)))
    assert blocks[0].first_seat_id == 0
    assert blocks[-1].end_seat_id == venue.seats
    for before, after in zip(blocks, blocks[1:]):
        assert before.end_seat_id == after.first_seat_id
    assert sum(len(b.seat_ids) for b in blocks) == venue.seats
    for block in blocks:
        assert len(block.seat_ids) > 0
        first, last = block.seat_ids[0], block.seat_ids[-1]
        section = venue.section_of(first)
        assert venue.section_of(last) == section, "a block never crosses a section"
        assert len(block.seat_ids) == venue.block_rows * section.cols
        assert (first - section.first_seat_id) % section.cols == 0, "a block starts at a row's first seat"
        assert (block.end_seat_id - section.first_seat_id) % section.cols == 0, "and ends after a row's last seat"
        assert venue.position(first)[2] == 1 and venue.position(last)[2] == section.cols
    owner = [venue.block_index_of(seat) for seat in range(venue.seats)]
    assert owner == [b.index for b in blocks for _ in b.seat_ids]


@st.composite
def grids(draw):
    sections = draw(st.integers(1, 26))
    block_rows = draw(st.integers(1, 4))
    rows = block_rows * draw(st.integers(1, 4))
    cols = draw(st.integers(1, 12))
    return sections, rows, cols, block_rows


@settings(max_examples=150, deadline=None)
@given(grids())
def test_partition_property(grid):
    check_partition(Venue.grid(*grid))


@settings(max_examples=150, deadline=None)
@given(grids(), st.data())
def test_position_is_arithmetic_on_the_id(grid, data):
    sections, rows, cols, block_rows = grid
    venue = Venue.grid(*grid)
    assert venue.seats == sections * rows * cols
    seat = data.draw(st.integers(0, venue.seats - 1))
    name, row, col = venue.position(seat)
    index = string.ascii_uppercase.index(name)
    assert seat == index * rows * cols + (row - 1) * cols + (col - 1)
    assert 1 <= row <= rows and 1 <= col <= cols
    assert venue.label(seat) == f"{name}-{row:02d}-{col:02d}"
    assert venue.section_of(seat) == Section(name, rows, cols, index * rows * cols)
    block = venue.blocks()[venue.block_index_of(seat)]
    assert seat in block.seat_ids
    assert venue.block_index_of(seat) == index * (rows // block_rows) + (row - 1) // block_rows


@settings(max_examples=100, deadline=None)
@given(grids(), st.integers())
def test_any_id_is_either_a_seat_or_rejected(grid, seat):
    venue = Venue.grid(*grid)
    if 0 <= seat < venue.seats:
        assert venue.label(seat)
    else:
        with pytest.raises(ValueError):
            venue.label(seat)
        with pytest.raises(ValueError):
            venue.block_index_of(seat)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(-3, 30), st.integers(-3, 10), st.integers(-3, 10), st.integers(-3, 10)
)
def test_grid_accepts_exactly_the_valid_shapes(sections, rows, cols, block_rows):
    valid = 1 <= sections <= 26 and rows >= 1 and cols >= 1 and block_rows >= 1 and rows % block_rows == 0
    if valid:
        assert Venue.grid(sections, rows, cols, block_rows).seats == sections * rows * cols
    else:
        with pytest.raises(ValueError):
            Venue.grid(sections, rows, cols, block_rows)
