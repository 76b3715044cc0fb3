"""Signed tokens: genuine ones verify, and nothing else does — whatever string arrives."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.tokens import _CONTEXT, KINDS, TOKEN_CHARS_MAX, TAG_BYTES, TAG_CHARS, InvalidToken, _encode, _tag, sign, verify

SECRET = b"0123456789abcdef-test-secret"
OTHER_SECRET = b"fedcba9876543210-other-secret"
NOW = 1_767_225_600.25  # 2026-01-01T00:00:00.25Z

B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

member_ids = st.integers(min_value=1, max_value=2**53 - 1)
kinds = st.sampled_from(KINDS)
json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=20)
claim_sets = st.dictionaries(
    st.text(min_size=1, max_size=8).filter(lambda k: k not in ("k", "iat", "exp")), json_scalars, max_size=5
)


def claims_for(kind: str, member_id: int) -> dict:
    return {"m": member_id, "r": "user"} if kind == "session" else {"m": member_id, "n": 7, "e": 0}


def reason(token, kind="session", secret=SECRET, now=NOW) -> str:
    with pytest.raises(InvalidToken) as caught:
        verify(token, kind, secret, now)
    return caught.value.reason


# ---- examples


def test_round_trip_returns_claims_with_times():
    token = sign("session", {"m": 42, "r": "admin"}, SECRET, NOW, 3600)
    claims = verify(token, "session", SECRET, NOW + 10)
    assert claims == {"m": 42, "r": "admin", "iat": 1_767_225_600, "exp": 1_767_229_200}


def test_tokens_are_short():
    session = sign("session", {"m": 2**40, "r": "admin"}, SECRET, NOW, 12 * 3600)
    ticket = sign("ticket", {"m": 2**40, "n": 199_999, "e": 3}, SECRET, NOW, 3600)
    assert len(session) < 140 and len(ticket) < 140
    assert set(session) <= set(B64_ALPHABET + ".") and session.count(".") == 1
    assert len(session.split(".")[1]) == TAG_CHARS


def test_expiry_is_at_floor_of_now_plus_ttl():
    token = sign("ticket", {"m": 1, "n": 1, "e": 0}, SECRET, NOW, 600)
    exp = int(NOW + 600)
    assert verify(token, "ticket", SECRET, exp - 0.001)["exp"] == exp
    assert reason(token, "ticket", now=exp) == "expired"
    assert reason(token, "ticket", now=exp + 10**6) == "expired"


def test_kind_is_signed_so_one_kind_is_refused_as_another():
    ticket = sign("ticket", {"m": 5, "n": 9, "e": 0}, SECRET, NOW, 600)
    assert reason(ticket, "admission") == "wrong_kind"
    assert reason(ticket, "session") == "wrong_kind"
    assert verify(ticket, "ticket", SECRET, NOW)["m"] == 5


def test_changing_the_member_breaks_the_signature():
    token = sign("admission", {"m": 5, "n": 9, "e": 0}, SECRET, NOW, 600)
    body, tag = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["m"] = 6
    forged = _encode(json.dumps(payload, separators=(",", ":")).encode()) + "." + tag
    assert reason(forged, "admission") == "bad_signature"


def test_another_secret_is_refused():
    token = sign("session", {"m": 1, "r": "user"}, SECRET, NOW, 60)
    assert reason(token, secret=OTHER_SECRET) == "bad_signature"


def test_the_signature_is_checked_before_kind_and_expiry():
    token = sign("ticket", {"m": 1, "n": 1, "e": 0}, OTHER_SECRET, NOW, 1)
    assert reason(token, "session", now=NOW + 100) == "bad_signature"


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "abc",
        "abc.",
        ".abc",
        "a.b.c",
        "é.é",
        "\x00" * 50,
        "ab==." + "A" * TAG_CHARS,
        "abc." + "A" * (TAG_CHARS - 1),
        "abc." + "A" * (TAG_CHARS + 1),
        "abc." + "+" * TAG_CHARS,
        "x" * (TOKEN_CHARS_MAX + 1),
        "x" * 10_000_000 + "." + "A" * TAG_CHARS,
        None,
        b"abc.def",
        12345,
    ],
)
def test_garbage_is_malformed(token):
    assert reason(token) == "malformed"


def test_a_validly_signed_payload_of_the_wrong_shape_is_malformed():
    """Only this module signs, but verify still refuses a genuine tag over a strange payload."""
    strange = [b"[]", b"not json", b"\xff\xfe", b'{"k":"session"}', b'{"k":1,"iat":1,"exp":2}']
    for raw in strange + [b'{"k":"session","iat":true,"exp":2e99}', b'{"k":"session","iat":1,"exp":"2"}']:
        body = _encode(raw)
        assert reason(f"{body}.{_tag(SECRET, body)}") == "malformed", raw


def test_non_canonical_base64_of_a_genuine_payload_is_refused():
    token = sign("session", {"m": 1, "r": "user"}, SECRET, NOW, 60)
    body, tag = token.split(".")
    last = B64_ALPHABET.index(body[-1])
    variants = {body[:-1] + B64_ALPHABET[last ^ bit] for bit in (1, 2, 4, 8, 16)} - {body}
    for variant in variants:
        assert reason(f"{variant}.{tag}") in ("bad_signature", "malformed")


def test_sign_refuses_reserved_claims_weak_secrets_and_bad_ttl():
    with pytest.raises(ValueError):
        sign("session", {"exp": 1}, SECRET, NOW, 60)
    with pytest.raises(ValueError):
        sign("session", {"k": "admission"}, SECRET, NOW, 60)
    with pytest.raises(ValueError):
        sign("session", {}, b"short", NOW, 60)
    with pytest.raises(ValueError):
        sign("session", {}, SECRET, NOW, 0)
    with pytest.raises(ValueError):
        sign("session", {}, SECRET, NOW, float("nan"))
    with pytest.raises(ValueError):
        sign("session", {"blob": "x" * TOKEN_CHARS_MAX}, SECRET, NOW, 60)


# ---- properties


@given(kind=kinds, claims=claim_sets, now=st.floats(0, 4e9), ttl=st.floats(2, 10**7), elapsed=st.floats(0, 0.99))
def test_every_genuine_token_verifies_until_it_expires(kind, claims, now, ttl, elapsed):
    token = sign(kind, claims, SECRET, now, ttl)
    got = verify(token, kind, SECRET, now + elapsed * (ttl - 1))
    assert {k: v for k, v in got.items() if k not in ("iat", "exp")} == claims
    assert ttl - 1 - 1e-6 < got["exp"] - now <= ttl + 1e-6
    assert reason(token, kind, now=now + ttl) == "expired"


@given(kind=kinds, other=kinds, member=member_ids, other_member=member_ids)
def test_a_token_is_bound_to_its_kind_and_member(kind, other, member, other_member):
    token = sign(kind, claims_for(kind, member), SECRET, NOW, 600)
    if other != kind:
        assert reason(token, other) == "wrong_kind"
    else:
        claims = verify(token, other, SECRET, NOW)
        assert (claims["m"] == other_member) == (member == other_member)


@given(kind=kinds, member=member_ids, data=st.data())
def test_any_change_to_a_token_is_refused(kind, member, data):
    token = sign(kind, claims_for(kind, member), SECRET, NOW, 600)
    index = data.draw(st.integers(0, len(token) - 1), label="index")
    replacement = data.draw(st.sampled_from(B64_ALPHABET + ".=+/ é").filter(lambda c: c != token[index]))
    tampered = token[:index] + replacement + token[index + 1 :]
    assert reason(tampered, kind) in ("bad_signature", "malformed")
    assert reason(token[:index], kind) in ("bad_signature", "malformed")


@given(
    body=st.text(B64_ALPHABET, min_size=1, max_size=300),
    tag=st.text(B64_ALPHABET, min_size=TAG_CHARS, max_size=TAG_CHARS),
)
def test_forged_tokens_are_refused(body, tag):
    assert reason(f"{body}.{tag}", "session") in ("bad_signature", "malformed")


@given(token=st.text() | st.text(B64_ALPHABET + ".") | st.binary().map(lambda b: b.decode("latin-1")))
def test_verify_raises_nothing_but_invalid_token(token):
    with pytest.raises(InvalidToken) as caught:
        verify(token, "session", SECRET, NOW)
    assert caught.value.reason in InvalidToken.REASONS


@given(st.binary(min_size=16, max_size=200), st.text(alphabet=B64_ALPHABET, max_size=300))
def test_the_tag_is_hmac_sha256_of_context_and_body(secret, body):
    expected = hmac.new(secret, _CONTEXT + body.encode(), hashlib.sha256).digest()[:TAG_BYTES]
    assert _tag(secret, body) == _encode(expected)


def test_every_claim_of_one_admission_gets_the_same_token(monkeypatch):
    from api.auth import Tokens

    tokens = Tokens("s" * 32, 3600, admission_seconds=600)
    first = tokens.admission(7, 31, 0, expires_at=2_000_000_600.0)
    monkeypatch.setattr("time.time", lambda: 2_000_000_300.0)
    assert tokens.admission(7, 31, 0, expires_at=2_000_000_600.0) == first
    claims = tokens.check_admission(first, tokens.caller(f"Bearer {tokens.session(7, 'user')}"))
    assert claims["exp"] == 2_000_000_600
