"""Mock payment providers: their settings, their decisions, and the signed callbacks they send.

Each provider signs with its own secret derived from the service's secret key, so several
providers work without extra configuration and a leaked callback of one cannot be replayed
as another's.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import random
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from payments.checkout_page import CHECKOUT_PAGE_HEADERS, AMOUNT_KRW_MAX, render_checkout_page
from payments.delivery import deliver_callback
from payments.errors import CallbackDeliveryError, CallbackPayloadError, ProviderConfigError
from payments.signing import TIMESTAMP_MAX, SIGNATURE_HEADER, sign, verify

__all__ = [
    "CHECKOUT_PAGE_HEADERS",
    "CALLBACK_BYTES_MAX",
    "CallbackPayload",
    "CheckoutResult",
    "Provider",
    "build_callback",
    "complete_checkout",
    "decide_outcome",
    "deliver_callback",
    "providers_from_settings",
    "read_callback",
    "render_checkout_page",
]

VerdictStatus = Literal["succeeded", "failed"]
RequestedResult = Literal["success", "fail"]

PROVIDERS_MAX = 16
DELAY_MS_MAX = 60_000
CALLBACK_BYTES_MAX = 4096
MIN_SECRET_BYTES = 16
ID_PATTERN = r"^[A-Za-z0-9_-]+$"
_PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_SECRET_CONTEXT = b"encore/payment-provider-secret/v1/"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Provider:
    """One mock provider; the name appears in URLs, hence lower-case ASCII only."""

    name: str
    secret: bytes = field(repr=False)
    failure_rate: float
    delay_ms: int

    def __post_init__(self) -> None:
        if not _PROVIDER_NAME.fullmatch(self.name):
            raise ProviderConfigError(f"provider name {self.name!r} must match {_PROVIDER_NAME.pattern}")
        if len(self.secret) < MIN_SECRET_BYTES:
            raise ProviderConfigError(f"provider {self.name} needs a secret of at least {MIN_SECRET_BYTES} bytes")
        if not (math.isfinite(self.failure_rate) and 0 <= self.failure_rate <= 1):
            raise ProviderConfigError(f"provider {self.name} failure_rate must be within 0..1")
        if not 0 <= self.delay_ms <= DELAY_MS_MAX:
            raise ProviderConfigError(f"provider {self.name} delay_ms must be within 0..{DELAY_MS_MAX}")


def _derive_secret(secret_key: str, name: str) -> bytes:
    return hmac.new(secret_key.encode(), _SECRET_CONTEXT + name.encode(), hashlib.sha256).digest()


def providers_from_settings(names: list[str], secret_key: str, failure_rate: float, delay_ms: int) -> dict[str, Provider]:
    """Build the configured providers, each with its own HMAC-derived secret, keyed by name."""
    if not 1 <= len(names) <= PROVIDERS_MAX:
        raise ProviderConfigError(f"configure 1..{PROVIDERS_MAX} payment providers")
    if len(set(names)) != len(names):
        raise ProviderConfigError("payment provider names must be unique")
    if len(secret_key) < MIN_SECRET_BYTES:
        raise ProviderConfigError(f"secret_key must be at least {MIN_SECRET_BYTES} characters")
    return {name: Provider(name, _derive_secret(secret_key, name), failure_rate, delay_ms) for name in names}


class CallbackPayload(BaseModel):
    """The body of ``POST /api/payments/{provider}/callback``.

    ``event_id`` is the same for every delivery of one event, so the service can tell a
    retried delivery from a new event.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    event_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    payment_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    booking_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    status: VerdictStatus
    amount: int = Field(ge=0, le=AMOUNT_KRW_MAX, description="KRW")
    provider: str = Field(min_length=1, max_length=32, pattern=f"^{_PROVIDER_NAME.pattern}$")
    occurred_at: int = Field(ge=0, le=TIMESTAMP_MAX, description="unix seconds")


def decide_outcome(provider: Provider, requested: RequestedResult, rng: random.Random) -> VerdictStatus:
    """"Fail" always fails; "Pay" still fails with the provider's ``failure_rate``, like a declined card."""
    if requested == "fail":
        return "failed"
    if requested != "success":
        raise ValueError(f"requested must be 'success' or 'fail', not {requested!r}")
    return "failed" if rng.random() < provider.failure_rate else "succeeded"


def _event_id(provider: Provider, payment_id: str, status: VerdictStatus) -> str:
    """Deterministic, so re-sending the same outcome of the same payment is recognisably one event."""
    digest = hmac.new(provider.secret, f"event/{payment_id}/{status}".encode(), hashlib.sha256).hexdigest()
    return f"evt_{digest[:32]}"


def build_callback(
    provider: Provider, payment_id: str, booking_id: str, amount: int, status: VerdictStatus, now: float
) -> tuple[bytes, dict[str, str]]:
    """Compact JSON body and headers (content type, signature) of the callback to POST."""
    timestamp = int(now)
    payload = CallbackPayload(
        event_id=_event_id(provider, payment_id, status),
        payment_id=payment_id,
        booking_id=booking_id,
        status=status,
        amount=amount,
        provider=provider.name,
        occurred_at=timestamp,
    )
    body = payload.model_dump_json().encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(provider.secret, body, timestamp)}
    return body, headers


def read_callback(
    provider: Provider, raw_body: bytes, header: str | None, now: float, tolerance_seconds: int
) -> CallbackPayload:
    """What the callback route calls: check the signature first, only then parse the body.

    Raises ``SignatureError`` (answer 401) or ``CallbackPayloadError`` (answer 400/422).
    """
    if len(raw_body) > CALLBACK_BYTES_MAX:
        raise CallbackPayloadError(f"callback body larger than {CALLBACK_BYTES_MAX} bytes")
    verify(provider.secret, raw_body, header, now, tolerance_seconds)
    try:
        payload = CallbackPayload.model_validate_json(raw_body)
    except ValidationError as error:
        raise CallbackPayloadError(f"invalid callback body: {error.error_count()} error(s)") from error
    if payload.provider != provider.name:
        raise CallbackPayloadError(f"callback names provider {payload.provider!r}, not {provider.name!r}")
    return payload


@dataclass(frozen=True)
class CheckoutResult:
    """What ``POST /pg/{provider}/checkout/{payment_id}`` reports: the outcome and whether it arrived."""

    status: VerdictStatus
    delivered: bool
    http_status: int | None


async def complete_checkout(
    client: httpx.AsyncClient,
    provider: Provider,
    callback_url: str,
    payment_id: str,
    booking_id: str,
    amount: int,
    requested: RequestedResult,
    rng: random.Random,
    clock: Callable[[], float] = time.time,
) -> CheckoutResult:
    """The provider's side of a click: wait its delay, decide, sign and deliver the callback."""
    status = decide_outcome(provider, requested, rng)
    if provider.delay_ms:
        await asyncio.sleep(provider.delay_ms / 1000)
    body, headers = build_callback(provider, payment_id, booking_id, amount, status, clock())
    try:
        response = await deliver_callback(client, callback_url, body, headers)
    except CallbackDeliveryError as error:
        log.warning("payment %s: %s", payment_id, error)
        return CheckoutResult(status, delivered=False, http_status=None)
    return CheckoutResult(status, delivered=response.is_success, http_status=response.status_code)
