"""The mock providers' own side, run inside the service: what their checkout page does when a
person clicks Pay or Fail. It decides the outcome and calls our callback over HTTP, signed, as
a real provider would; nothing here touches a booking or a payment directly."""

from __future__ import annotations

import random

import httpx

from domain.payment import Payment
from payments.providers import CheckoutResult, Provider, complete_checkout


class MockProviders:
    def __init__(self, providers: dict[str, Provider], base_url: str):
        self.providers = providers
        self._base_url = base_url
        self._http: httpx.AsyncClient | None = None
        self._rng = random.Random()

    async def checkout(self, payment: Payment, requested: str) -> CheckoutResult:
        if self._http is None:
            self._http = httpx.AsyncClient()
        return await complete_checkout(
            self._http, self.providers[payment.provider], f"{self._base_url}/api/payments/{payment.provider}/callback",
            payment.payment_id, payment.booking_id, payment.amount, requested, self._rng,
        )
