"""Booking numbers: short, readable, one per sequence number, with check digits."""

from __future__ import annotations

from hypothesis import given, strategies as st

from domain.booking import booking_number, is_booking_number

DEC_2026_KST = 1_795_000_000.0  # 2026-11-18 UTC: still November in KST too


def test_the_format_reads_like_a_ticket_sites():
    number = booking_number(4821, 1_796_000_000.0)  # 2026-11-30 00:53 UTC = 09:53 KST
    assert number.startswith("T2611-4821-") and len(number) == len("T2611-4821-93")
    assert booking_number(7, 1_796_054_400.0).startswith("T2612-0007-")  # 2026-11-30 15:00 UTC is December 1st in KST


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.floats(0, 4e9))
def test_distinct_sequence_numbers_give_distinct_valid_numbers(a, b, at):
    assert is_booking_number(booking_number(a, at))
    assert (booking_number(a, at) == booking_number(b, at)) == (a == b)


@given(st.integers(0, 10**6), st.data())
def test_a_mistyped_digit_is_caught(seq, data):
    number = booking_number(seq, DEC_2026_KST)
    positions = [i for i, ch in enumerate(number) if ch.isdigit()]
    i = data.draw(st.sampled_from(positions))
    other = data.draw(st.sampled_from([d for d in "0123456789" if d != number[i]]))
    assert not is_booking_number(number[:i] + other + number[i + 1:])
