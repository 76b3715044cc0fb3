"""Sending a signed callback the way real providers send webhooks: short timeouts, a few retries.

Retries mean the service may see the same event more than once; it must be idempotent on
``event_id`` / ``payment_id``, which is exactly what these retries exercise.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from payments.errors import CallbackDeliveryError

DELIVERY_ATTEMPTS_MAX = 5
BACKOFF_SECONDS_MAX = 2.0
DEFAULT_TIMEOUT = httpx.Timeout(5.0, connect=2.0)

log = logging.getLogger(__name__)


def _retryable(response: httpx.Response) -> bool:
    return response.status_code >= 500


async def deliver_callback(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    attempts: int = 3,
    *,
    backoff_seconds: float = 0.2,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
) -> httpx.Response:
    """POST ``body`` to ``url``, retrying transport errors and 5xx with doubling backoff.

    Returns the first non-5xx response (a 4xx at once, since resending the same bytes cannot
    fix it), else the last 5xx seen. Raises ``CallbackDeliveryError`` when no attempt got
    any response at all.
    """
    if not 1 <= attempts <= DELIVERY_ATTEMPTS_MAX:
        raise ValueError(f"attempts must be within 1..{DELIVERY_ATTEMPTS_MAX}")
    if backoff_seconds < 0:
        raise ValueError("backoff_seconds must not be negative")
    last_error: httpx.TransportError | None = None
    last_response: httpx.Response | None = None
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(min(backoff_seconds * 2 ** (attempt - 1), BACKOFF_SECONDS_MAX))
        try:
            response = await client.post(url, content=body, headers=headers, timeout=timeout)
        except httpx.TransportError as error:
            last_error = error
            log.warning("callback to %s failed (attempt %d/%d): %r", url, attempt + 1, attempts, error)
            continue
        if not _retryable(response):
            return response
        last_response = response
        log.warning("callback to %s got %d (attempt %d/%d)", url, response.status_code, attempt + 1, attempts)
    if last_response is not None:
        return last_response
    raise CallbackDeliveryError(f"callback to {url} failed after {attempts} attempts") from last_error
