"""What the seat map's rendering costs a replica in a busy sale, rendered per change or per read.

A replica's ``SeatMap`` is fed the blocks' answers as a busy sale would (every block changes
every ``interval``: each answer takes a few more seats) and read as the HTTP cache reads it
(both encodings, about once a second). The same answers, in the same order, are fed twice per
round, in turn: once reading the body and its gzip after every answer (what the map did
before it rendered at the first read of a version), once reading them only when the cache
would. Prints the CPU per second of sale of each, medians over the rounds, and their ratio.

    python -m loadtest.bench_seatmap [--seconds 20] [--rounds 5] [--reads-per-second 2]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from actors.seat_block import BlockStatus
from api.seatmap import SeatMap
from domain.venue import Venue

INTERVAL_S = 0.2  # ENCORE_SNAPSHOT_INTERVAL_MS: a block answers a replica at most this often


def answers(venue: Venue, seconds: float, seats_per_answer: int, seed: int) -> list[tuple[int, BlockStatus]]:
    """Every block's answers over ``seconds`` of a sale: ``seats_per_answer`` more taken each time."""
    rng = random.Random(seed)
    statuses = [bytearray(b"A" * (b.end_seat_id - b.first_seat_id)) for b in venue.blocks()]
    made = []
    for tick in range(int(seconds / INTERVAL_S)):
        for index, block in enumerate(venue.blocks()):
            for _ in range(seats_per_answer):
                statuses[index][rng.randrange(len(statuses[index]))] = rng.choice(b"HS")
            made.append((index, BlockStatus(block.first_seat_id, tick + 1, bytes(statuses[index]))))
    return made


def feed(venue: Venue, fed: list[tuple[int, BlockStatus]], read_every_change: bool, reads_per_second: float) -> float:
    """CPU seconds to take every answer and serve the reads."""
    seat_map = SeatMap(venue, [None] * len(venue.blocks()), int(INTERVAL_S * 1000))
    blocks = len(venue.blocks())
    answers_per_read = max(1, round(blocks / INTERVAL_S / reads_per_second))
    started = time.process_time()
    for number, (index, answer) in enumerate(fed):
        seat_map._take(index, answer)
        if read_every_change or number % answers_per_read == 0:
            _ = seat_map.body_gzip, seat_map.body
    return time.process_time() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="seconds of sale fed per run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seats-per-answer", type=int, default=3)
    parser.add_argument("--reads-per-second", type=float, default=2, help="the cache's refreshes: both encodings once a second")
    args = parser.parse_args(argv)
    venue = Venue.grid(sections=15, rows=20, cols=50, block_rows=20)
    rows: dict[str, list[float]] = {"render per change": [], "render per read": []}
    for round_number in range(1, args.rounds + 1):
        fed = answers(venue, args.seconds, args.seats_per_answer, seed=round_number)
        for name, every_change in (("render per change", True), ("render per read", False)):
            cores = feed(venue, fed, every_change, args.reads_per_second) / args.seconds
            rows[name].append(cores)
            print(f"round {round_number}  {name:18} {cores:.4f} cores", flush=True)
    print(f"\n{len(venue.blocks())} blocks each answering every {INTERVAL_S:.1f} s, {args.reads_per_second:g} reads/s, "
          f"{args.rounds} rounds of {args.seconds:g} s of sale, in turn; medians (CPU of one replica):")
    for name, runs in rows.items():
        print(f"  {name:18} {statistics.median(runs):.4f} cores")
    ratio = statistics.median(a / b for a, b in zip(rows["render per change"], rows["render per read"]))
    print(f"  per change / per read: {ratio:.1f}x (median of the pairs)")


if __name__ == "__main__":
    main()
