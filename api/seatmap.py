"""The seat map a replica serves: bytes ready to send, refreshed from the blocks in the background.

A read never waits on an actor. The replica keeps one question open per block, "your seats,
once they differ from the version I have", which the block answers at its next change (or
after ``FOLLOW_WAIT_SECONDS`` with nothing). Each answer is spliced in and gives the map a new
version (its ETag); the JSON body and its gzip are rendered once, at the first read of that
version, and thousands of reads then share those bytes. Seats taken are answered at most once
per ``interval``, so a busy sale costs a block five calls a second per replica and a quiet
hall almost nothing; seats released are answered at once. So while a block's question is open
(``current``), a seat this map shows taken is taken, but for one released in the moment the
news takes to arrive: holds for it can be refused here.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import logging

from domain.venue import Venue

log = logging.getLogger(__name__)

GZIP_LEVEL = 6
FOLLOW_WAIT_SECONDS = 5.0


class SeatMap:
    def __init__(self, venue: Venue, blocks: list, interval_ms: int):
        self._blocks = blocks
        self._starts = [b.first_seat_id for b in venue.blocks()]
        self._versions = [-1] * len(blocks)
        self._open = [False] * len(blocks)
        self._status = bytearray(b"A" * venue.seats)
        self._interval = interval_ms / 1000
        self.fresh = asyncio.Event()
        self._render()

    def _render(self) -> None:
        """A new version for the seats as they are now. The bytes are made when first read: a
        busy sale changes the map up to five times a second per block, while behind the HTTP
        cache a replica is asked for it about once a second."""
        digest = hashlib.blake2b(self._status, digest_size=8).hexdigest()
        self.version = digest
        self.etag = f'"{digest}"'
        self.etag_gzip = f"W/{self.etag}"
        self._body = self._body_gzip = None

    @property
    def body(self) -> bytes:
        if self._body is None:
            self._body = json.dumps({"version": self.version, "status": self._status.decode("ascii")}).encode()
        return self._body

    @property
    def body_gzip(self) -> bytes:
        # the map is mostly long runs of one letter: gzip makes 15 KB a few hundred bytes, sent
        # to every reader; compressed once per version, like a CDN would, never per request
        if self._body_gzip is None:
            self._body_gzip = gzip.compress(self.body, GZIP_LEVEL, mtime=0)
        return self._body_gzip

    @property
    def seats(self) -> bytearray:
        """The seats as the map shows them now, one byte each: read in place, never written
        (a hold's refusal reads a few of them, and a copy would cost it more); ``bytes()`` of it
        is a moment's snapshot."""
        return self._status

    @property
    def blocks_current(self) -> list[bool]:
        """Per block: it holds this map's open question, so it has released no seat that the
        map shows taken (or the news is on its way)."""
        return self._open

    def _take(self, index: int, answer) -> None:
        if answer is not None:
            start = self._starts[index]
            self._status[start : start + len(answer.status)] = answer.status
            self._versions[index] = answer.version
            self._render()
        if not self.fresh.is_set() and all(v >= 0 for v in self._versions):
            self.fresh.set()

    async def _follow(self, index: int) -> None:
        """Ask again as soon as the block answers: the question is open all the time but for
        the moment its answer is being spliced in, and then the map is as new as the answer."""
        while True:
            self._open[index] = self._versions[index] >= 0
            try:
                answer = await self._blocks[index].status.remote(self._versions[index], FOLLOW_WAIT_SECONDS, self._interval)
            except Exception as error:
                self._open[index] = False
                log.warning("block %d did not answer the seat map: %r", index, error)
                await asyncio.sleep(self._interval)
                continue
            self._take(index, answer)

    async def run_forever(self) -> None:
        await asyncio.gather(*(self._follow(index) for index in range(len(self._blocks))))
