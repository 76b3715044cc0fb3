"""Stripe-style webhook signatures: ``Encore-Signature: t=<unix seconds>,v1=<hex hmac-sha256>``.

The timestamp is inside the signed bytes so a captured callback cannot be replayed with a
fresh time, and the tolerance window bounds how long a captured one stays usable at all.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from payments.errors import SignatureError

SIGNATURE_HEADER = "Encore-Signature"
SIGNATURE_SCHEME = "v1"
HEADER_CHARS_MAX = 512
SIGNATURES_MAX = 8
TIMESTAMP_MAX = 10**12 - 1
TOLERANCE_SECONDS_MAX = 3600

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def _digest(secret: bytes, raw_body: bytes, timestamp: int) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()


def sign(secret: bytes, raw_body: bytes, timestamp: int) -> str:
    """The header value a provider sends with ``raw_body`` at ``timestamp`` (unix seconds)."""
    if not secret:
        raise ValueError("a signing secret must not be empty")
    if not 0 <= timestamp <= TIMESTAMP_MAX:
        raise ValueError(f"timestamp must be within 0..{TIMESTAMP_MAX}")
    return f"t={timestamp},{SIGNATURE_SCHEME}={_digest(secret, raw_body, timestamp)}"


def _parse(header: str) -> tuple[int, list[str]]:
    """Split ``t=..,v1=..[,v1=..]``; unknown schemes are ignored so rotation can add them."""
    if len(header) > HEADER_CHARS_MAX:
        raise SignatureError("malformed")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError("malformed")
        if key == "t":
            if timestamp is not None or not _TIMESTAMP.fullmatch(value):
                raise SignatureError("malformed")
            timestamp = int(value)
        elif key == SIGNATURE_SCHEME:
            if not _HEX_DIGEST.fullmatch(value) or len(signatures) >= SIGNATURES_MAX:
                raise SignatureError("malformed")
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError("malformed")
    return timestamp, signatures


def verify(secret: bytes, raw_body: bytes, header: str | None, now: float, tolerance_seconds: int) -> None:
    """Accept the callback or raise ``SignatureError``; for any header string nothing else is raised.

    The signature is checked before the age, so ``stale`` always means "authentic but too old
    or too far in the future" — a replay or a skewed clock, not a forgery.
    """
    if not 0 <= tolerance_seconds <= TOLERANCE_SECONDS_MAX:
        raise ValueError(f"tolerance_seconds must be within 0..{TOLERANCE_SECONDS_MAX}")
    if header is None or not header.strip():
        raise SignatureError("missing")
    timestamp, signatures = _parse(header)
    expected = _digest(secret, raw_body, timestamp).encode()
    matches = [hmac.compare_digest(expected, candidate.encode()) for candidate in signatures]
    if not any(matches):
        raise SignatureError("bad_signature")
    if not abs(now - timestamp) <= tolerance_seconds:
        raise SignatureError("stale")
