"""The idempotency ledger on both stores: many members' requests claimed in one batch."""

from __future__ import annotations

import asyncio

from api.idempotency import IdempotencyLedger, request_fingerprint
from tests.integration.test_store_contract import members

MEMBERS = 40


async def test_a_case_variant_key_is_another_key_and_fails_no_one_batched_with_it(store):
    ledger = IdempotencyLedger(store)
    ids = await members(store, MEMBERS)
    ran: list[tuple[int, str]] = []

    def hold(member_id: int, key: str):
        async def work():
            ran.append((member_id, key))
            return 201, {"member_id": member_id, "key": key}

        return ledger.run_once(member_id, key, request_fingerprint("POST", "/api/holds", {"seat_ids": [member_id]}), work)

    first = await hold(ids[0], "casekey-x")
    assert first.status_code == 201
    answers = await asyncio.gather(hold(ids[0], "CASEKEY-x"), *(hold(member, f"casekey-{member}") for member in ids[1:]))
    assert [answer.status_code for answer in answers] == [201] * MEMBERS, [a.body for a in answers if a.status_code != 201]
    assert len(ran) == MEMBERS + 1, "the case variant ran as a key of its own"
    replays = await asyncio.gather(hold(ids[0], "casekey-x"), hold(ids[0], "CASEKEY-x"))
    assert [(r.headers.get("idempotency-replayed"), r.body) for r in replays] == [
        ("true", b'{"member_id":%d,"key":"casekey-x"}' % ids[0]), ("true", b'{"member_id":%d,"key":"CASEKEY-x"}' % ids[0])]
