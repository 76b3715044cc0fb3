"""Compact signed tokens: ``base64url(json payload) "." base64url(hmac-sha256 tag)``.

One format for the three things the edge must trust without asking an actor: a login
(``session``: ``m`` member id, ``r`` role), a place in the queue (``ticket``: ``m``, ``n``
number, ``e`` room epoch) and a pass to book (``admission``: ``m``, ``n``, ``e``). The kind is
inside the signed payload, so a token of one kind is never accepted as another, and the
member id is inside it too, so a token is bound to its member.

The tag covers the *encoded* payload text, so there is exactly one valid spelling of every
token (no padding or alphabet variants slip through), and it is the first 128 bits of
HMAC-SHA256 — half the hash, the truncation RFC 2104 allows — to keep tokens short. A fixed
context string is signed in front of the payload, so a tag made with the same secret for
another purpose never verifies here. Times are whole epoch seconds: ``exp`` is
``floor(now + ttl)``, so a token lives at most ``ttl`` and at least ``ttl - 1`` seconds.

``verify`` raises only ``InvalidToken`` for any token string whatsoever, checks the
signature before it parses anything, and refuses oversized input before doing any work.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import json
import math
import re

KINDS = ("session", "ticket", "admission")
RESERVED_CLAIMS = frozenset({"k", "iat", "exp"})
TOKEN_CHARS_MAX = 2048
MIN_SECRET_BYTES = 16
TTL_SECONDS_MAX = 366 * 24 * 3600
TAG_BYTES = 16
TAG_CHARS = 22  # len(base64url(16 bytes)) without padding

_CONTEXT = b"encore-token.v1."
_SHA256_BLOCK_BYTES = 64
_TOKEN = re.compile(rf"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{{{TAG_CHARS}}})")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_JSON_OUT = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_JSON_IN = json.JSONDecoder()


class InvalidToken(Exception):
    """A refused token; ``reason`` is one of ``malformed``, ``bad_signature``, ``expired``,
    ``wrong_kind`` and may be shown to clients (it reveals nothing about the secret)."""

    REASONS = ("malformed", "bad_signature", "expired", "wrong_kind")

    def __init__(self, reason: str):
        assert reason in self.REASONS, reason
        super().__init__(reason)
        self.reason = reason

    def __reduce__(self):
        return (type(self), (self.reason,))


def _encode(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).rstrip(b"=").translate(_TO_URLSAFE).decode("ascii")


def _decode(text: str) -> bytes:
    """``text`` is already known to be base64url (it carries this module's own tag)."""
    return binascii.a2b_base64(text.encode("ascii").translate(_FROM_URLSAFE) + b"=" * (-len(text) % 4))


class TokenKey:
    """One secret, made ready once: HMAC-SHA256 (RFC 2104) as its two SHA-256 states with the
    padded key, and the context, already absorbed. A tag is then two copies and two short
    updates; Python's ``hmac`` sets the same key up again per message (about four times as
    long), and every queue poll checks two tokens."""

    def __init__(self, secret: bytes):
        if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"a token secret must be at least {MIN_SECRET_BYTES} bytes")
        key = hashlib.sha256(secret).digest() if len(secret) > _SHA256_BLOCK_BYTES else secret
        key = key.ljust(_SHA256_BLOCK_BYTES, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self._inner.update(_CONTEXT)
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))

    def tag(self, body: str) -> str:
        inner = self._inner.copy()
        inner.update(body.encode("ascii"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return _encode(outer.digest()[:TAG_BYTES])

    def sign(self, kind: str, claims: dict, now: float, ttl_seconds: float) -> str:
        """A token of ``kind`` carrying ``claims`` (JSON values), valid from ``now`` for ``ttl_seconds``."""
        if not isinstance(kind, str) or not kind:
            raise ValueError("a token kind is a non-empty string")
        if not _is_number(now) or now < 0:
            raise ValueError("now must be finite epoch seconds")
        if not _is_number(ttl_seconds) or not 0 < ttl_seconds <= TTL_SECONDS_MAX:
            raise ValueError(f"ttl_seconds must be within (0, {TTL_SECONDS_MAX}]")
        reserved = RESERVED_CLAIMS & claims.keys()
        if reserved:
            raise ValueError(f"claims may not use the reserved keys {sorted(reserved)}")
        payload = {"k": kind, **claims, "iat": math.floor(now), "exp": math.floor(now + ttl_seconds)}
        body = _encode(_JSON_OUT.encode(payload).encode("ascii"))
        token = f"{body}.{self.tag(body)}"
        if len(token) > TOKEN_CHARS_MAX:
            raise ValueError(f"a token must stay within {TOKEN_CHARS_MAX} characters; the claims are too big")
        return token

    def verify(self, token: str, kind: str, now: float) -> dict:
        """The claims of a genuine, unexpired token of ``kind`` (with ``iat`` and ``exp``), or ``InvalidToken``.

        The signature is checked first, so ``expired`` and ``wrong_kind`` always describe a
        token this service really issued. A genuine token is checked against its tag at
        once; only a tag that does not match pays for telling ``malformed`` from
        ``bad_signature``, since only what this module signed can match.
        """
        if type(token) is not str or len(token) > TOKEN_CHARS_MAX:
            raise InvalidToken("malformed")
        body, _, tag = token.rpartition(".")
        try:
            genuine = hmac.compare_digest(self.tag(body), tag)
        except (UnicodeEncodeError, TypeError):  # not ASCII: no token of ours
            genuine = False
        if not genuine:
            raise InvalidToken("bad_signature" if _TOKEN.fullmatch(token) else "malformed")
        try:
            text = _decode(body).decode("utf-8")
            payload, end = _JSON_IN.raw_decode(text)
        except (ValueError, binascii.Error, RecursionError):
            raise InvalidToken("malformed") from None
        if (
            end != len(text)
            or type(payload) is not dict
            or type(payload.get("k")) is not str
            or type(payload.get("iat")) is not int
            or type(payload.get("exp")) is not int
        ):
            raise InvalidToken("malformed")
        if payload.pop("k") != kind:
            raise InvalidToken("wrong_kind")
        if not now < payload["exp"]:
            raise InvalidToken("expired")
        return payload


@functools.lru_cache(maxsize=8)
def _key(secret: bytes) -> TokenKey:
    return TokenKey(secret)


def _tag(secret: bytes, body: str) -> str:
    return _key(secret).tag(body)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def sign(kind: str, claims: dict, secret: bytes, now: float, ttl_seconds: float) -> str:
    """``TokenKey(secret).sign``, with the key made ready once per secret."""
    return _key(secret).sign(kind, claims, now, ttl_seconds)


def verify(token: str, kind: str, secret: bytes, now: float) -> dict:
    """``TokenKey(secret).verify``, with the key made ready once per secret."""
    return _key(secret).verify(token, kind, now)
