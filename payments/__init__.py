"""Mock payment providers and the verification of their signed callbacks."""

from payments.checkout_page import CHECKOUT_PAGE_HEADERS, render_checkout_page
from payments.delivery import deliver_callback
from payments.errors import (
    CallbackDeliveryError,
    CallbackPayloadError,
    PaymentError,
    ProviderConfigError,
    SignatureError,
    UnsafeReturnUrl,
)
from payments.mock_providers import MockProviders
from payments.providers import (
    CALLBACK_BYTES_MAX,
    CallbackPayload,
    CheckoutResult,
    Provider,
    build_callback,
    complete_checkout,
    decide_outcome,
    providers_from_settings,
    read_callback,
)
from payments.signing import SIGNATURE_HEADER, sign, verify

__all__ = [
    "CHECKOUT_PAGE_HEADERS",
    "CALLBACK_BYTES_MAX",
    "SIGNATURE_HEADER",
    "CallbackDeliveryError",
    "CallbackPayload",
    "CallbackPayloadError",
    "CheckoutResult",
    "MockProviders",
    "PaymentError",
    "Provider",
    "ProviderConfigError",
    "SignatureError",
    "UnsafeReturnUrl",
    "build_callback",
    "complete_checkout",
    "decide_outcome",
    "deliver_callback",
    "providers_from_settings",
    "read_callback",
    "render_checkout_page",
    "sign",
    "verify",
]
