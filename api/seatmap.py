"""The seat map a replica serves: bytes ready to send, refreshed from the blocks in the background.

A read never waits on an actor. Every ``interval`` the replica asks each block for its
status *if it changed* since the version it has, splices the changed blocks in, and renders
the JSON body and its ETag once; thousands of reads then share those bytes.
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


class SeatMap:
    def __init__(self, venue: Venue, blocks: list, interval_ms: int):
        self._blocks = blocks
        self._starts = [b.first_seat_id for b in venue.blocks()]
        self._versions = [-1] * len(blocks)
        self._status = bytearray(b"A" * venue.seats)
        self._interval = interval_ms / 1000
        self.fresh = asyncio.Event()
        self._render()

    def _render(self) -> None:
        digest = hashlib.blake2b(self._status, digest_size=8).hexdigest()
        self.version = digest
        self.etag = f'"{digest}"'
        self.body = json.dumps({"version": digest, "status": self._status.decode("ascii")}).encode()
        # the map is mostly long runs of one letter: gzip makes 15 KB a few hundred bytes, sent
        # to 200,000 pollers; compressed once here, like a CDN would, never per request
        self.body_gzip = gzip.compress(self.body, GZIP_LEVEL, mtime=0)
        self.etag_gzip = f"W/{self.etag}"

    def status(self) -> bytes:
        return bytes(self._status)

    async def refresh(self) -> None:
        answers = await asyncio.gather(
            *(block.status.remote(known) for block, known in zip(self._blocks, self._versions)), return_exceptions=True
        )
        changed = False
        for index, answer in enumerate(answers):
            if isinstance(answer, BaseException):
                log.warning("block %d did not answer the seat map refresh: %r", index, answer)
            elif answer is not None:
                start = self._starts[index]
                self._status[start : start + len(answer.status)] = answer.status
                self._versions[index] = answer.version
                changed = True
        if changed:
            self._render()
        if all(v >= 0 for v in self._versions):
            self.fresh.set()

    async def run_forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("seat map refresh failed")
            await asyncio.sleep(self._interval)
