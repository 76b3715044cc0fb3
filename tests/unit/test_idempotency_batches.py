"""The idempotency ledger's batches: one request's failure in the store stays its own."""

from __future__ import annotations

import asyncio

import pytest

from api.idempotency import IdempotencyLedger
from domain.errors import StoreUnavailable, TooManySeats


class StoreRefusingOneKey:
    """Claims every key but ``refused``, whose statement fails, and with it the whole batch
    it is in (as one transaction does)."""

    def __init__(self, refused: str, error: Exception):
        self.refused, self.error = refused, error
        self.claim_calls = 0
        self.finished: list[str] = []

    async def claim_idempotency_keys(self, claims, now):
        self.claim_calls += 1
        if any(claim.key == self.refused for claim in claims):
            raise self.error
        return [None] * len(claims)

    async def finish_idempotency_keys(self, answers, now):
        self.finished += [claim.key for claim, _, _ in answers]

    async def abandon_idempotency_key(self, claim):
        pass


async def batch_of_holds(ledger: IdempotencyLedger, members: int) -> list:
    async def work():
        return 201, {"held": True}

    return await asyncio.gather(
        *(ledger.run_once(member, f"key-{member}", "fingerprint", work) for member in range(members)), return_exceptions=True)


def test_a_claim_that_fails_fails_only_its_own_request():
    store = StoreRefusingOneKey("key-3", KeyError("a driver's surprise"))
    answers = asyncio.run(batch_of_holds(IdempotencyLedger(store), 10))
    assert isinstance(answers[3], KeyError)
    assert [answer.status_code for n, answer in enumerate(answers) if n != 3] == [201] * 9
    assert sorted(store.finished) == sorted(f"key-{n}" for n in range(10) if n != 3)


def test_a_store_that_is_down_fails_the_batch_at_once():
    store = StoreRefusingOneKey("key-3", StoreUnavailable("down"))
    answers = asyncio.run(batch_of_holds(IdempotencyLedger(store), 10))
    assert all(isinstance(answer, StoreUnavailable) for answer in answers)
    assert store.claim_calls == 1, "not tried again claim by claim against a store that is down"


def test_a_refusal_worth_retrying_is_not_kept_and_says_when_to_retry():
    store = StoreRefusingOneKey("none", KeyError())

    async def work():
        raise StoreUnavailable("the booking store did not confirm the change in time")

    with pytest.raises(StoreUnavailable):
        asyncio.run(IdempotencyLedger(store).run_once(1, "k", "fingerprint", work))
    assert store.finished == []

    async def refused():
        raise TooManySeats("four at most")

    answer = asyncio.run(IdempotencyLedger(store).run_once(1, "k2", "fingerprint", refused))
    assert answer.status_code == 422 and store.finished == ["k2"]
