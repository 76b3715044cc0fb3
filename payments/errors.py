"""Why a payment-side step was refused, as specific exceptions callers can map to HTTP answers."""

from __future__ import annotations

from typing import Literal

SignatureFailure = Literal["missing", "malformed", "bad_signature", "stale"]


class PaymentError(Exception):
    """Base of every error raised by the ``payments`` package."""


class SignatureError(PaymentError):
    """A callback whose signature header cannot be trusted; the route answers 401 and changes nothing."""

    def __init__(self, reason: SignatureFailure):
        super().__init__(reason)
        self.reason: SignatureFailure = reason


class CallbackPayloadError(PaymentError):
    """A correctly signed callback whose body is not a valid ``CallbackPayload`` for this provider."""


class CallbackDeliveryError(PaymentError):
    """Every attempt to POST a callback to the service failed at the transport level."""


class ProviderConfigError(PaymentError, ValueError):
    """Provider settings that cannot work (bad name, rate outside 0..1, duplicate provider)."""


class UnsafeReturnUrl(PaymentError, ValueError):
    """A checkout ``return_url`` that could run script or leave through an odd scheme."""
