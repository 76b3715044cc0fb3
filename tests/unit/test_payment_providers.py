"""Mock providers: distinct secrets, honest failure rates, escaped checkout pages, retried callbacks."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
from html.parser import HTMLParser

import httpx
import pytest

from payments import (
    CHECKOUT_PAGE_HEADERS,
    SIGNATURE_HEADER,
    CallbackDeliveryError,
    CallbackPayload,
    CallbackPayloadError,
    Provider,
    ProviderConfigError,
    SignatureError,
    UnsafeReturnUrl,
    build_callback,
    complete_checkout,
    decide_outcome,
    deliver_callback,
    providers_from_settings,
    read_callback,
    render_checkout_page,
    sign,
)

SECRET_KEY = "k" * 32
NOW = 1_750_000_000
URL = "http://encore.test/api/payments/mockpay/callback"


@pytest.fixture
def providers() -> dict[str, Provider]:
    return providers_from_settings(["mockpay", "fakecard"], SECRET_KEY, failure_rate=0.0, delay_ms=0)


@pytest.fixture
def mockpay(providers) -> Provider:
    return providers["mockpay"]


def test_each_provider_has_its_own_stable_secret(providers):
    assert set(providers) == {"mockpay", "fakecard"}
    assert providers["mockpay"].secret != providers["fakecard"].secret
    again = providers_from_settings(["mockpay"], SECRET_KEY, 0.0, 0)
    assert again["mockpay"].secret == providers["mockpay"].secret
    other_key = providers_from_settings(["mockpay"], "q" * 32, 0.0, 0)
    assert other_key["mockpay"].secret != providers["mockpay"].secret


def test_secret_stays_out_of_repr(mockpay):
    assert mockpay.secret.hex() not in repr(mockpay)
    assert repr(mockpay.secret) not in repr(mockpay)


@pytest.mark.parametrize(
    "names, rate, delay",
    [([], 0.0, 0), (["mockpay", "mockpay"], 0.0, 0), (["Mock Pay"], 0.0, 0), (["mockpay"], 1.5, 0),
     (["mockpay"], float("nan"), 0), (["mockpay"], 0.0, -1), (["mockpay"], 0.0, 10**9), ([f"p{i}" for i in range(17)], 0.0, 0)],
)
def test_bad_provider_settings_are_refused(names, rate, delay):
    with pytest.raises(ProviderConfigError):
        providers_from_settings(names, SECRET_KEY, rate, delay)


def test_fail_always_fails():
    provider = Provider("mockpay", b"s" * 32, failure_rate=0.0, delay_ms=0)
    rng = random.Random(1)
    assert {decide_outcome(provider, "fail", rng) for _ in range(100)} == {"failed"}


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.3, 0.5, 1.0])
def test_pay_fails_at_the_configured_rate(rate):
    provider = Provider("mockpay", b"s" * 32, failure_rate=rate, delay_ms=0)
    rng = random.Random(20240601)
    trials = 20_000
    failures = sum(decide_outcome(provider, "success", rng) == "failed" for _ in range(trials))
    spread = 5 * (trials * rate * (1 - rate)) ** 0.5
    assert abs(failures - trials * rate) <= spread
    if rate in (0.0, 1.0):
        assert failures == trials * rate


def test_unknown_request_is_refused(mockpay):
    with pytest.raises(ValueError):
        decide_outcome(mockpay, "maybe", random.Random(0))


def test_callback_is_compact_signed_json(mockpay):
    body, headers = build_callback(mockpay, "pay_1", "0123abcd", 220_000, "succeeded", NOW + 0.7)
    assert b" " not in body
    assert headers["Content-Type"] == "application/json"
    assert headers[SIGNATURE_HEADER] == sign(mockpay.secret, body, NOW)
    payload = json.loads(body)
    assert payload == {**payload, "payment_id": "pay_1", "booking_id": "0123abcd", "status": "succeeded",
                       "amount": 220_000, "provider": "mockpay", "occurred_at": NOW}


def test_same_event_keeps_its_event_id(mockpay):
    first, _ = build_callback(mockpay, "pay_1", "b1", 110_000, "succeeded", NOW)
    again, _ = build_callback(mockpay, "pay_1", "b1", 110_000, "succeeded", NOW + 30)
    failed, _ = build_callback(mockpay, "pay_1", "b1", 110_000, "failed", NOW)
    other, _ = build_callback(mockpay, "pay_2", "b1", 110_000, "succeeded", NOW)
    ids = [json.loads(body)["event_id"] for body in (first, again, failed, other)]
    assert ids[0] == ids[1]
    assert len(set(ids)) == 3


def test_read_callback_accepts_its_own_provider(mockpay):
    body, headers = build_callback(mockpay, "pay_1", "b1", 110_000, "failed", NOW)
    payload = read_callback(mockpay, body, headers[SIGNATURE_HEADER], NOW + 5, 300)
    assert isinstance(payload, CallbackPayload)
    assert (payload.payment_id, payload.status, payload.amount) == ("pay_1", "failed", 110_000)


def test_one_providers_callback_does_not_verify_as_another(providers):
    body, headers = build_callback(providers["mockpay"], "pay_1", "b1", 110_000, "succeeded", NOW)
    with pytest.raises(SignatureError) as caught:
        read_callback(providers["fakecard"], body, headers[SIGNATURE_HEADER], NOW, 300)
    assert caught.value.reason == "bad_signature"


def test_signed_but_invalid_bodies_are_payload_errors(mockpay):
    wrong_provider = json.dumps({"event_id": "e1", "payment_id": "p1", "booking_id": "b1", "status": "succeeded",
                                 "amount": 1, "provider": "fakecard", "occurred_at": NOW}).encode()
    amount_as_text = wrong_provider.replace(b'"fakecard"', b'"mockpay"').replace(b'"amount": 1', b'"amount": "1"')
    for body in (wrong_provider, amount_as_text, b"not json", b"[]"):
        with pytest.raises(CallbackPayloadError):
            read_callback(mockpay, body, sign(mockpay.secret, body, NOW), NOW, 300)


def test_oversized_callback_is_refused_before_verifying(mockpay):
    with pytest.raises(CallbackPayloadError):
        read_callback(mockpay, b"x" * 5000, None, NOW, 300)


class _PageParser(HTMLParser):
    """Collects element ids, script bodies and every attribute, the way a browser would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes.extend(attrs)
        self.ids.update(value for name, value in attrs if name == "id" and value)
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


HOSTILE = '"><img src=x onerror=alert(1)><script>alert(2)</script>'


def _render(provider: Provider, **overrides) -> str:
    arguments = {"payment_id": "pay_1", "amount": 220_000, "seat_labels": ["A-1-1", "A-1-2"],
                 "return_url": "/bookings/b1"} | overrides
    return render_checkout_page(provider, **arguments)


def test_checkout_page_shows_amount_seats_and_buttons(mockpay):
    page = _render(mockpay)
    parser = _PageParser()
    parser.feed(page)
    assert "220,000원" in page
    assert "A-1-1" in page and "A-1-2" in page
    assert {"pay-button", "fail-button", "checkout"} <= parser.ids
    assert "결제하기" in page and "카카오페이" in page and "mockpay" not in page.split("<main")[0]
    assert "Pay" not in page.replace("카카오페이", ""), "one language at a time"
    english = _render(mockpay, lang="en", show_title="앙코르 라이브")
    assert "₩220,000" in english and "KakaoPay" in english and ">Pay<" in english and "앙코르 라이브" in english
    assert 'data-action="/pg/mockpay/checkout/pay_1"' in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)


def test_checkout_page_escapes_a_hostile_seat_label(mockpay):
    page = _render(mockpay, seat_labels=[HOSTILE])
    parser = _PageParser()
    parser.feed(page)
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "img" not in parser.tags
    assert parser.tags.count("script") == 1
    assert not any(name.startswith("on") for name, _ in parser.attributes)


def test_checkout_page_escapes_a_hostile_payment_id_and_return_url(mockpay):
    page = _render(mockpay, payment_id='p"><b>x', return_url='/ok?next="><script>alert(3)</script>')
    parser = _PageParser()
    parser.feed(page)
    assert "b" not in parser.tags
    assert parser.tags.count("script") == 1
    assert 'data-action="/pg/mockpay/checkout/p%22%3E%3Cb%3Ex"' in page


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,x", "//evil.test/", "/\\evil.test",
            "relative/path", " /x", "/x\n", "https:///nohost", "/" + "a" * 3000],
)
def test_checkout_page_refuses_unsafe_return_urls(mockpay, url):
    with pytest.raises(UnsafeReturnUrl):
        _render(mockpay, return_url=url)


@pytest.mark.parametrize("url", ["/bookings/b1", "https://encore.test/bookings/b1?x=1", "http://127.0.0.1:8000/"])
def test_checkout_page_accepts_safe_return_urls(mockpay, url):
    assert _render(mockpay, return_url=url)


def test_checkout_script_is_pinned_by_the_csp(mockpay):
    parser = _PageParser()
    parser.feed(_render(mockpay))
    (script,) = parser.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in CHECKOUT_PAGE_HEADERS["Content-Security-Policy"]


def test_checkout_page_bounds_its_inputs(mockpay):
    with pytest.raises(ValueError):
        _render(mockpay, seat_labels=["A"] * 51)
    with pytest.raises(ValueError):
        _render(mockpay, amount=-1)
    with pytest.raises(ValueError):
        _render(mockpay, payment_id="p" * 65)


def _recording_transport(answers: list):
    """Answers requests in order: an int is a status code, an exception is raised."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[len(seen) - 1]
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, json={"ok": answer < 400})

    return httpx.MockTransport(handler), seen


async def test_deliver_retries_5xx_then_succeeds(mockpay):
    transport, seen = _recording_transport([503, 500, 200])
    body, headers = build_callback(mockpay, "pay_1", "b1", 110_000, "succeeded", NOW)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await deliver_callback(client, URL, body, headers, attempts=3, backoff_seconds=0)
    assert response.status_code == 200
    assert len(seen) == 3
    assert all(r.content == body and r.headers[SIGNATURE_HEADER] == headers[SIGNATURE_HEADER] for r in seen)


async def test_deliver_retries_connection_errors():
    transport, seen = _recording_transport([httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), 200])
    async with httpx.AsyncClient(transport=transport) as client:
        response = await deliver_callback(client, URL, b"{}", {}, attempts=3, backoff_seconds=0)
    assert response.status_code == 200
    assert len(seen) == 3


async def test_deliver_does_not_retry_4xx():
    transport, seen = _recording_transport([401, 200])
    async with httpx.AsyncClient(transport=transport) as client:
        response = await deliver_callback(client, URL, b"{}", {}, attempts=3, backoff_seconds=0)
    assert response.status_code == 401
    assert len(seen) == 1


async def test_deliver_gives_up_after_the_bound():
    transport, seen = _recording_transport([503] * 5)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await deliver_callback(client, URL, b"{}", {}, attempts=2, backoff_seconds=0)
    assert response.status_code == 503
    assert len(seen) == 2


async def test_deliver_raises_when_nothing_answers():
    transport, _ = _recording_transport([httpx.ConnectError("refused")] * 3)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(CallbackDeliveryError):
            await deliver_callback(client, URL, b"{}", {}, attempts=3, backoff_seconds=0)


async def test_deliver_refuses_unbounded_attempts():
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as client:
        with pytest.raises(ValueError):
            await deliver_callback(client, URL, b"{}", {}, attempts=50)


@pytest.mark.parametrize("requested, expected", [("success", "succeeded"), ("fail", "failed")])
async def test_complete_checkout_delivers_a_callback_the_service_accepts(mockpay, requested, expected):
    received: list[CallbackPayload] = []

    def service(request: httpx.Request) -> httpx.Response:
        received.append(read_callback(mockpay, request.content, request.headers.get(SIGNATURE_HEADER), NOW, 300))
        return httpx.Response(200, json={"ok": True})

    async with httpx.AsyncClient(transport=httpx.MockTransport(service)) as client:
        result = await complete_checkout(client, mockpay, URL, "pay_1", "b1", 220_000, requested,
                                         random.Random(0), clock=lambda: NOW)
    assert (result.status, result.delivered, result.http_status) == (expected, True, 200)
    assert [(p.payment_id, p.status, p.amount) for p in received] == [("pay_1", expected, 220_000)]
