"""``Idempotency-Key``: the same key from the same member with the same body gets the first answer.

The key is claimed in the store before the work starts, so a second request with the key
finds it ``running`` (409) or ``done`` (the stored answer, replayed byte for byte). A body
that differs is a reused key (422). An answer worth retrying (a 5xx) is not kept: the key
is released so the client's retry really runs.

A key is an opaque string, compared exactly (``casekey-x`` and ``CASEKEY-x`` are two keys)
and scoped to its member.

Claims and answers of concurrent requests are written together, one transaction per batch,
so the ledger costs a hold a share of two commits rather than two commits of its own; a
batch that fails is written again one request at a time, so one request's failure stays its own.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import secrets
import time
from typing import Awaitable, Callable

from fastapi.responses import Response

from actors.batching import Batcher
from api.errors import ApiError, from_domain, problem_body
from domain.errors import BookingError, StoreUnavailable
from encore.settings import BATCH_WAITING_MAX
from persistence.records import IdempotencyClaim
from persistence.store import SqlStore

log = logging.getLogger(__name__)

KEY_CHARS_MAX = 64
BATCH_MAX = 512
# a claim only has to differ from every other claim of the same key: a random prefix per
# process and a counter (no system call per request, unlike a fresh random token)
_CLAIM_PREFIX = secrets.token_hex(8)
_claim_numbers = itertools.count()

Work = Callable[[], Awaitable[tuple[int, dict]]]


# built once: ``json.dumps`` with any option builds a new encoder per call
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True)
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def request_fingerprint(method: str, path: str, body: dict) -> str:
    """What makes two requests the same: method, path and the body as data (key order and
    spacing of the JSON sent do not matter)."""
    canonical = _CANONICAL_JSON.encode(body).encode()
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), canonical])).hexdigest()


class IdempotencyLedger:
    def __init__(self, store: SqlStore, waiting_max: int = BATCH_WAITING_MAX):
        self._store = store
        self._claims = Batcher(self._claim_batch, BATCH_MAX, waiting_max=waiting_max)
        # answers are not bounded here: each follows a claim that was (so there are never more
        # of them than requests at work), and refusing one would leave its work done, unanswered
        self._answers = Batcher(self._answer_batch, BATCH_MAX, waiting_max=None)

    async def _claim_batch(self, _key, claims: list[IdempotencyClaim]) -> list:
        return await _batch_or_each(lambda some: self._store.claim_idempotency_keys(some, time.time()), claims)

    async def _answer_batch(self, _key, answers: list) -> list:
        async def finish(some: list) -> list:
            await self._store.finish_idempotency_keys(some, time.time())
            return [None] * len(some)

        return await _batch_or_each(finish, answers)

    async def run_once(self, member_id: int, key: str | None, fingerprint: str, work: Work,
                       refusal: BookingError | ApiError | None = None) -> Response:
        """``work``'s answer, once per key; ``refusal``: the request is already refused (no work
        to run), and the refusal is stored with the claim in one transaction instead of two."""
        if not key:
            raise ApiError(400, "idempotency_key_required", "send an Idempotency-Key header (one per user action)")
        if len(key) > KEY_CHARS_MAX or not key.isprintable() or not key.isascii():
            raise ApiError(400, "bad_idempotency_key", f"an Idempotency-Key is at most {KEY_CHARS_MAX} printable ASCII characters")
        refused = _answer(refusal) if refusal is not None else None
        answer = (refused[0], _json(refused[1])) if refused else None
        claim = IdempotencyClaim(member_id, key, fingerprint, f"{_CLAIM_PREFIX}{next(_claim_numbers):016x}", answer)
        record = await self._claims.submit("claims", claim)
        if isinstance(record, Exception):
            raise record
        if record is not None:
            if record.request_hash != fingerprint:
                raise ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used for a different request")
            if record.state != "done":
                raise ApiError(409, "idempotency_in_flight", "the first request with this Idempotency-Key is still running")
            return Response(
                record.response_body, status_code=record.response_status, media_type="application/json",
                headers={"Idempotency-Replayed": "true"},
            )
        if answer:
            return Response(answer[1], status_code=answer[0], media_type="application/json")
        try:
            status, body = await work()
        except (BookingError, ApiError) as error:
            status, body = _answer(error)
            if status >= 500:  # not kept, and answered with its headers (Retry-After) by the caller
                await self._store.abandon_idempotency_key(claim)
                raise
        except BaseException:
            await self._store.abandon_idempotency_key(claim)
            raise
        text = _json(body)
        if status >= 500:
            await self._store.abandon_idempotency_key(claim)
        else:
            failed = await self._answers.submit("answers", (claim, status, text))
            if failed is not None:
                raise failed
        return Response(text, status_code=status, media_type="application/json")


async def _batch_or_each(write: Callable[[list], Awaitable[list]], items: list) -> list:
    """``write(items)``, or else each item written alone, its error as its result: one bad item
    (a driver's surprise at one key) must not fail every other member's request batched with it.
    A store that cannot be reached would fail each alone as well, so that fails the batch."""
    try:
        return await write(items)
    except StoreUnavailable:
        raise
    except Exception:
        if len(items) == 1:
            raise
        log.exception("a batch of %d idempotency writes failed; writing each alone", len(items))
    results = []
    for item in items:
        try:
            [result] = await write([item])
        except Exception as error:
            result = error
        results.append(result)
    return results


def _json(body: dict) -> str:
    """The bytes of an answer, the first time and every replay."""
    return _COMPACT_JSON.encode(body)


def _answer(error: BookingError | ApiError) -> tuple[int, dict]:
    """The status and problem body a refusal is answered (and remembered) with."""
    if isinstance(error, BookingError):
        error = from_domain(error)
    return error.status, problem_body(error.status, error.code, error.message, **error.extra)
