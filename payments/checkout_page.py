"""The mock provider's checkout page: one self-contained HTML document, no external assets.

Everything that varies is HTML-escaped into attributes and text; the style and script are
constants, so ``CHECKOUT_PAGE_HEADERS`` can pin them by hash in a Content-Security-Policy
and no interpolated value can ever become code.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from payments.errors import UnsafeReturnUrl

if TYPE_CHECKING:
    from payments.providers import Provider

PAYMENT_ID_CHARS_MAX = 64
SEAT_LABELS_MAX = 50
SEAT_LABEL_CHARS_MAX = 64
RETURN_URL_CHARS_MAX = 2048
AMOUNT_KRW_MAX = 1_000_000_000
FETCH_TIMEOUT_MARGIN_MS = 30_000
LANGUAGES = ("ko", "en")

# The mock providers as people know such payment methods, in each language.
DISPLAY_NAMES: dict[str, dict[str, str]] = {
    "mockpay": {"ko": "카카오페이", "en": "KakaoPay"},
    "fakecard": {"ko": "신용카드", "en": "Credit card"},
}

TEXT: dict[str, dict[str, str]] = {
    "ko": {
        "title": "결제 확인", "amount": "결제 금액", "seats": "좌석", "show": "공연", "payment": "결제 번호",
        "pay": "결제하기", "fail": "결제 실패 처리", "note": "테스트 결제입니다. 실제로 청구되지 않습니다.",
        "processing": "처리 중…", "done": "결제가 처리되었습니다. 예매 화면으로 돌아갑니다…",
        "undelivered": "결과를 전달하지 못했습니다. 다시 시도해 주세요.", "offline": "연결에 실패했습니다. 다시 시도해 주세요.",
    },
    "en": {
        "title": "Confirm payment", "amount": "Amount", "seats": "Seats", "show": "Show", "payment": "Payment",
        "pay": "Pay", "fail": "Make it fail", "note": "Test payment: nothing is charged.",
        "processing": "Processing…", "done": "Paid. Taking you back to your booking…",
        "undelivered": "Could not deliver the result; please try again.", "offline": "Connection failed; please try again.",
    },
}


def display_name(provider_name: str, lang: str = "ko") -> str:
    """"카카오페이" for mockpay: a provider as people name it (the raw name for others)."""
    return DISPLAY_NAMES.get(provider_name, {}).get(lang if lang in LANGUAGES else "ko", provider_name)


def _money(amount: int, lang: str) -> str:
    return f"₩{amount:,}" if lang == "en" else f"{amount:,}원"

_STYLE = """
:root { color-scheme: light; --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --accent: #3f6ad8; }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: #f5f7fa;
  font: 16px/1.5 system-ui, -apple-system, "Apple SD Gothic Neo", "Malgun Gothic", "NanumGothic", sans-serif; color: var(--ink); }
.card { width: min(420px, calc(100vw - 32px)); background: #fff; border: 1px solid var(--line);
  border-radius: 16px; padding: 28px; box-shadow: 0 8px 24px rgba(31, 41, 51, 0.06); }
.brand { margin: 0 0 4px; font-size: 13px; letter-spacing: 0.08em; text-transform: uppercase; color: var(--accent); }
h1 { margin: 0 0 20px; font-size: 20px; font-weight: 600; }
.en { color: var(--muted); font-weight: 400; font-size: 0.85em; }
dl { margin: 0 0 24px; display: grid; grid-template-columns: auto 1fr; gap: 10px 16px; }
dt { color: var(--muted); font-size: 14px; }
dd { margin: 0; text-align: right; overflow-wrap: anywhere; }
.amount { font-size: 22px; font-weight: 700; }
.seats { list-style: none; margin: 0; padding: 0; }
.mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; color: var(--muted); }
.actions { display: grid; grid-template-columns: 2fr 1fr; gap: 10px; }
button { font: inherit; padding: 12px 16px; border-radius: 10px; border: 1px solid transparent; cursor: pointer; }
button:disabled { opacity: 0.55; cursor: progress; }
#pay-button { background: var(--accent); color: #fff; }
#fail-button { background: #fff; color: var(--ink); border-color: var(--line); }
#status { min-height: 1.5em; margin: 16px 0 0; font-size: 14px; color: var(--muted); }
.note { margin: 8px 0 0; font-size: 12px; color: var(--muted); }
"""

_SCRIPT = """
(() => {
  const root = document.getElementById("checkout");
  const buttons = [document.getElementById("pay-button"), document.getElementById("fail-button")];
  const status = document.getElementById("status");
  const timeoutMs = Number(root.dataset.timeoutMs);
  let sending = false;
  const setBusy = (busy) => { buttons.forEach((button) => { button.disabled = busy; }); };
  async function submit(result) {
    if (sending) return;
    sending = true;
    setBusy(true);
    status.textContent = root.dataset.textProcessing;
    try {
      const response = await fetch(root.dataset.action, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ result }),
        credentials: "same-origin",
        signal: AbortSignal.timeout ? AbortSignal.timeout(timeoutMs) : undefined,
      });
      const answer = response.ok ? await response.json() : null;
      if (answer && answer.delivered === true) {
        status.textContent = root.dataset.textDone;
        window.location.assign(root.dataset.returnUrl);
        return;
      }
      status.textContent = root.dataset.textUndelivered;
    } catch (error) {
      status.textContent = root.dataset.textOffline;
    }
    sending = false;
    setBusy(false);
  }
  buttons[0].addEventListener("click", () => submit("success"));
  buttons[1].addEventListener("click", () => submit("fail"));
})();
"""


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


CHECKOUT_PAGE_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src {_csp_hash(_STYLE)}; script-src {_csp_hash(_SCRIPT)}; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


def _checked_return_url(url: str) -> str:
    """Only http(s) or a same-origin absolute path, so navigating there can never run script."""
    if len(url) > RETURN_URL_CHARS_MAX or "\\" in url or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise UnsafeReturnUrl("return_url is too long or contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise UnsafeReturnUrl("return_url cannot be parsed") from error
    if parts.scheme in ("http", "https") and parts.netloc:
        return url
    if not parts.scheme and not parts.netloc and url.startswith("/") and not url.startswith("//"):
        return url
    raise UnsafeReturnUrl("return_url must be an http(s) URL or a path starting with a single '/'")


def _seat_items(seat_labels: list[str]) -> str:
    if len(seat_labels) > SEAT_LABELS_MAX:
        raise ValueError(f"at most {SEAT_LABELS_MAX} seat labels")
    if not seat_labels:
        return "<li>—</li>"
    return "".join(f"<li>{escape(label[:SEAT_LABEL_CHARS_MAX])}</li>" for label in seat_labels)


def render_checkout_page(
    provider: Provider,
    payment_id: str,
    amount: int,
    seat_labels: list[str],
    return_url: str,
    lang: str = "ko",
    show_title: str = "",
) -> str:
    """The page a person sees at ``GET /pg/{provider}/checkout/{payment_id}``; serve it with
    ``CHECKOUT_PAGE_HEADERS``. One language, ``lang`` (ko|en, else ko); the provider appears
    under the name people know (``display_name``).
    """
    if not 0 <= amount <= AMOUNT_KRW_MAX:
        raise ValueError(f"amount must be within 0..{AMOUNT_KRW_MAX} KRW")
    if not 1 <= len(payment_id) <= PAYMENT_ID_CHARS_MAX:
        raise ValueError(f"payment_id must be 1..{PAYMENT_ID_CHARS_MAX} characters")
    page_lang = lang if lang in LANGUAGES else "ko"
    text = {key: escape(value) for key, value in TEXT[page_lang].items()}
    name = escape(display_name(provider.name, page_lang))
    action = escape(f"/pg/{quote(provider.name, safe='')}/checkout/{quote(payment_id, safe='')}")
    return_to = escape(_checked_return_url(return_url))
    timeout_ms = provider.delay_ms + FETCH_TIMEOUT_MARGIN_MS
    show = f'<dt>{text["show"]}</dt><dd id="show-title">{escape(show_title[:200])}</dd>\n' if show_title else ""
    return f"""<!doctype html>
<html lang="{page_lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{name} · {text["title"]}</title>
<style>{_STYLE}</style>
</head>
<body>
<main id="checkout" class="card" data-action="{action}" data-return-url="{return_to}" data-timeout-ms="{timeout_ms}"
 data-provider="{escape(provider.name)}" data-text-processing="{text["processing"]}" data-text-done="{text["done"]}"
 data-text-undelivered="{text["undelivered"]}" data-text-offline="{text["offline"]}">
<p class="brand" id="provider-name">{name}</p>
<h1>{text["title"]}</h1>
<dl>
{show}<dt>{text["amount"]}</dt><dd class="amount" id="amount" data-amount="{amount}">{_money(amount, page_lang)}</dd>
<dt>{text["seats"]}</dt><dd><ul class="seats">{_seat_items(seat_labels)}</ul></dd>
<dt>{text["payment"]}</dt><dd class="mono">{escape(payment_id)}</dd>
</dl>
<div class="actions">
<button id="pay-button" type="button">{text["pay"]}</button>
<button id="fail-button" type="button">{text["fail"]}</button>
</div>
<p id="status" role="status" aria-live="polite"></p>
<p class="note">{text["note"]}</p>
</main>
<script>{_SCRIPT}</script>
</body>
</html>
"""
