// One booking (#/bookings/<id>): checkout while held, the outcome afterwards.
// The countdown is computed from the server's expires_at (a reload never resets it). While the
// booking is held and its payment is pending — or the countdown has run out but the server has
// not yet said "expired" — the booking is polled every second until its status changes.

import { api, ApiError, serverNow, sleep } from "../api.js";
import { h, txt } from "../dom.js";
import { getLang, has, t, tr } from "../i18n.js";
import { clockText, parseTime, timeSpan } from "../format.js";
import { clearMessageIf, showError, showMessage } from "../messages.js";
import { loadVenue } from "../venue.js";
import { loadShow, showCard } from "../show.js";

const POLL_MS = 1000;
const POLL_SLOW_MS = 5000;
const POLL_FAST_FOR_MS = 60000;
const TICK_MS = 250;
const STATUSES = ["held", "confirmed", "payment_failed", "expired", "cancelled", "refunded"];

function paymentOf(booking) {
  const payment = booking?.payment;
  if (Array.isArray(payment)) return payment[payment.length - 1] || null;
  return payment || null;
}

const hasProvider = (name) => has(`provider.${name}`);

/** "카카오페이" for mockpay: the provider as people know it (the raw name if unknown). */
export function providerLabel(name) {
  return hasProvider(name) ? txt("span", `provider.${name}`) : h("span", {}, name || "");
}

function isPending(booking) {
  return booking?.status === "held" && paymentOf(booking)?.status === "pending";
}

export function mount(root, route, scope) {
  const { signal } = scope;
  const bookingId = route.params.id;
  const card = h("section", { class: "card narrow booking", id: "booking-card", dataset: { bookingId } });
  root.append(card);
  card.append(txt("p", "common.loading", undefined, { class: "loading" }));

  let booking = null;
  let venue = null;
  let show = null;
  let provider = null;
  let paying = false;
  let releasing = false;
  let watching = false;
  let ticker = 0;
  let countdown = null;
  let payButton = null;
  let releaseButton = null;
  let description = null;
  let expiredNoticeShown = false;

  const secondsLeft = () => (parseTime(booking?.expires_at) - serverNow()) / 1000;
  const expiredLocally = () => booking?.status === "held" && secondsLeft() <= 0;

  // ---- rendering

  function render() {
    const b = booking;
    const status = STATUSES.includes(b.status) ? b.status : b.status || "unknown";
    card.dataset.status = status;
    card.replaceChildren();

    const badge = h("span", { id: "booking-status", class: `status-badge status-${status}`, dataset: { status } });
    if (STATUSES.includes(status)) tr(badge, `status.${status}`);
    else badge.textContent = status;

    description = h("p", { id: "booking-description", class: "booking-desc" });
    if (STATUSES.includes(status)) tr(description, `booking.desc.${status}`);

    const seatIds = b.seat_ids || [];
    const payment = paymentOf(b);
    const quote = venue ? venue.quote(seatIds) : null;
    const amount = payment?.amount ?? quote?.total ?? null;

    const number = b.booking_number || b.booking_id || bookingId;
    const rows = [
      ["booking.id", h("strong", { id: "booking-number", class: "booking-number", dataset: { number } }, number)],
      b.created_at ? ["booking.created", timeSpan(b.created_at)] : null,
      status === "held" ? ["booking.expires", timeSpan(b.expires_at)] : null,
      payment
        ? [
            "booking.payment",
            h(
              "span",
              { id: "payment-status", dataset: { status: payment.status || "", provider: payment.provider || "" } },
              providerLabel(payment.provider),
              " · ",
              payment.status ? txt("span", `payment.status.${payment.status}`) : "",
            ),
          ]
        : null,
    ].filter(Boolean);

    // seats, grade and price per seat, the fee and the total
    const seatRows = quote
      ? quote.seats.map((seat) =>
          h(
            "tr",
            { dataset: { seatId: seat.id, grade: seat.grade || "", price: seat.price } },
            h("td", { class: "seat-label" }, seat.label),
            h("td", {}, seat.grade ? txt("span", "grade.name", { name: seat.grade }) : ""),
            h("td", { class: "num" }, txt("span", "money", { amount: seat.price })),
          ),
        )
      : seatIds.map((id) => h("tr", {}, h("td", { colspan: 3 }, `#${id}`)));
    const sums = [];
    if (quote && quote.fee) {
      sums.push(h("tr", { class: "fee" }, txt("td", "price.fee", { n: quote.seats.length }, { colspan: 2 }), h("td", { class: "num" }, txt("span", "money", { amount: quote.fee }))));
    }
    if (amount != null) {
      sums.push(
        h(
          "tr",
          { class: "total" },
          txt("th", "price.total", undefined, { colspan: 2, scope: "row" }),
          h("td", { class: "num" }, txt("strong", "money", { amount }, { id: "booking-total", dataset: { amount } })),
        ),
      );
    }
    const seatTable = h(
      "table",
      { class: "price-table", id: "booking-seats", dataset: { seatIds: seatIds.join(",") } },
      h("thead", {}, h("tr", {}, txt("th", "booking.seats"), txt("th", "booking.grade"), txt("th", "booking.price", undefined, { class: "num" }))),
      h("tbody", {}, seatRows),
      h("tfoot", {}, sums),
    );

    card.append(
      h("div", { class: "booking-head" }, txt("h1", status === "confirmed" ? "booking.title_done" : status === "held" ? "booking.title_checkout" : "booking.title"), badge),
      description,
      showCard(show, { compact: true }),
      seatTable,
      h("dl", { class: "facts" }, rows.map(([key, value]) => [txt("dt", key), h("dd", {}, value)])),
    );

    countdown = null;
    payButton = null;
    releaseButton = null;
    if (status === "held") card.append(renderCheckout(b, payment));
    else card.append(renderAfter(status));
    tick();
  }

  function renderCheckout(b, payment) {
    countdown = h("span", { id: "countdown", class: "countdown", role: "timer", "aria-live": "off" }, "--:--");
    const providers = venue?.providers?.length ? venue.providers : ["mockpay", "fakecard"];
    if (!provider || !providers.includes(provider)) provider = payment?.provider && providers.includes(payment.provider) ? payment.provider : providers[0];
    const select = h(
      "select",
      { id: "provider-select", name: "provider" },
      providers.map((name) => h("option", { value: name, selected: name === provider, i18n: hasProvider(name) ? `provider.${name}` : null }, hasProvider(name) ? null : name)),
    );
    select.addEventListener("change", () => {
      provider = select.value;
    });
    payButton = h("button", { id: "pay-button", type: "button", class: "button primary", i18n: paying ? "booking.paying" : "booking.pay" });
    releaseButton = h("button", { id: "release-button", type: "button", class: "button ghost", i18n: releasing ? "booking.releasing" : "booking.release" });
    payButton.disabled = paying || releasing;
    releaseButton.disabled = paying || releasing;
    payButton.addEventListener("click", pay);
    releaseButton.addEventListener("click", release);

    const pending = isPending(b)
      ? h(
          "p",
          { id: "payment-pending", class: "pending" },
          h("span", { class: "spinner", "aria-hidden": "true" }),
          txt("span", "booking.pending"),
          payment?.redirect_url ? [" ", h("a", { href: payment.redirect_url, i18n: "booking.pending_link" })] : null,
        )
      : null;

    return h(
      "div",
      { class: "checkout" },
      h("div", { class: "countdown-box" }, txt("span", "booking.countdown", undefined, { class: "muted" }), countdown),
      pending,
      h("label", { class: "field" }, txt("span", "booking.provider", undefined, { class: "field-label" }), select),
      h("div", { class: "actions" }, payButton, releaseButton),
    );
  }

  function renderAfter(status) {
    const links = [];
    if (status !== "confirmed") links.push(h("a", { href: "#/seats", class: "button primary", i18n: "booking.choose_again" }));
    links.push(h("a", { href: "#/bookings", class: "button ghost", i18n: "booking.to_list" }));
    return h("div", { class: "actions" }, links);
  }

  // ---- countdown

  function tick() {
    if (!booking || booking.status !== "held" || !countdown) return;
    const left = secondsLeft();
    if (Number.isNaN(left)) {
      countdown.textContent = "--:--";
      return;
    }
    countdown.textContent = clockText(left);
    countdown.dataset.seconds = String(Math.max(0, Math.ceil(left)));
    countdown.classList.toggle("urgent", left <= 30);
    if (left <= 0) {
      countdown.classList.add("over");
      if (payButton) payButton.disabled = true;
      if (releaseButton) releaseButton.disabled = true;
      if (description) tr(description, "booking.expired_detail");
      if (!expiredNoticeShown) {
        expiredNoticeShown = true;
        showMessage("booking.expired_now", undefined, { kind: "error", code: "hold_expired" });
      }
      watch();
    }
  }

  // ---- polling while the outcome is open

  async function refresh() {
    const { data } = await api.booking(bookingId, signal);
    if (signal.aborted) return;
    const changed = JSON.stringify(data) !== JSON.stringify(booking);
    booking = data;
    if (changed) render();
  }

  async function watch() {
    if (watching) return;
    watching = true;
    const started = Date.now();
    try {
      while (!signal.aborted && (isPending(booking) || expiredLocally())) {
        await sleep(Date.now() - started < POLL_FAST_FOR_MS ? POLL_MS : POLL_SLOW_MS, signal);
        try {
          await refresh();
        } catch (error) {
          if (error?.name === "AbortError" || signal.aborted) return;
          if (error instanceof ApiError && (error.status === 0 || error.status >= 500 || error.status === 429)) continue;
          throw error;
        }
      }
    } catch (error) {
      if (error?.name !== "AbortError" && !signal.aborted) scope.fail(error);
    } finally {
      watching = false;
    }
    // The countdown's notice stays only if the server agrees the hold expired.
    if (!signal.aborted && booking && booking.status !== "held" && booking.status !== "expired") clearMessageIf("hold_expired");
  }

  // ---- actions

  async function pay() {
    if (paying || releasing || expiredLocally()) return;
    paying = true;
    payButton.disabled = true;
    releaseButton.disabled = true;
    tr(payButton, "booking.paying");
    const chosen = provider;
    try {
      const { data } = await api.pay(bookingId, chosen);
      if (!data?.redirect_url) throw new ApiError({ status: 502, code: "server_error", message: "no redirect_url in the payment answer" });
      showMessage("booking.redirecting", undefined, { kind: "info" });
      location.href = getLang() === "en" ? `${data.redirect_url}?lang=en` : data.redirect_url;
      return; // stay disabled while the browser leaves
    } catch (error) {
      paying = false;
      if (signal.aborted) return;
      const code = error instanceof ApiError ? error.code : "";
      if (code === "booking_not_held" || code === "conflict" || code === "payment_in_progress") {
        showError(error);
        await refresh().catch(() => {});
        watch();
      } else if (error instanceof ApiError && (error.status === 400 || error.status === 422)) {
        showError(error);
      } else {
        scope.fail(error);
      }
      if (booking?.status === "held" && payButton) render();
    }
  }

  async function release() {
    if (paying || releasing) return;
    releasing = true;
    payButton.disabled = true;
    releaseButton.disabled = true;
    tr(releaseButton, "booking.releasing");
    try {
      await api.release(bookingId);
      releasing = false;
      if (signal.aborted) return;
      showMessage("booking.released", undefined, { kind: "success" });
      await refresh();
    } catch (error) {
      releasing = false;
      if (signal.aborted) return;
      const code = error instanceof ApiError ? error.code : "";
      if (code === "booking_not_held" || code === "conflict") {
        showError(error);
        await refresh().catch(() => {});
      } else {
        scope.fail(error);
      }
      if (booking) render();
    }
  }

  // ---- start

  (async () => {
    try {
      [venue, show] = await Promise.all([loadVenue().catch(() => null), loadShow()]);
      const { data } = await api.booking(bookingId, signal);
      if (signal.aborted) return;
      booking = data;
      render();
      ticker = setInterval(tick, TICK_MS);
      if (isPending(booking) || expiredLocally()) watch();
    } catch (error) {
      if (error?.name === "AbortError" || signal.aborted) return;
      if (error instanceof ApiError && (error.status === 404 || error.code === "booking_not_found")) {
        card.replaceChildren(
          txt("h1", "booking.not_found"),
          h("span", { id: "booking-status", class: "status-badge", dataset: { status: "not_found" } }, "—"),
          h("div", { class: "actions" }, h("a", { href: "#/bookings", class: "button", i18n: "booking.to_list" })),
        );
        showError(error);
        return;
      }
      card.replaceChildren(h("div", { class: "actions" }, h("button", { type: "button", class: "button", i18n: "common.retry", onclick: () => location.reload() })));
      scope.fail(error);
    }
  })();

  document.title = `${t("booking.title")} · ${t("app.name")}`;

  return () => clearInterval(ticker);
}
