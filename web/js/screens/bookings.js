// My bookings (GET /api/me/bookings): every booking, newest first — its booking number, seats
// with their grade, the price, the status and how it was paid — under the show it is for.

import { api } from "../api.js";
import { h, txt } from "../dom.js";
import { t } from "../i18n.js";
import { timeSpan } from "../format.js";
import { loadVenue } from "../venue.js";
import { loadShow, showCard } from "../show.js";
import { providerLabel } from "./booking.js";

const STATUSES = ["held", "confirmed", "payment_failed", "expired", "cancelled", "refunded"];

export function mount(root, _route, scope) {
  const { signal } = scope;
  const showSlot = h("div", { class: "show-slot" });
  const container = h("div", { id: "my-bookings", class: "bookings", "aria-busy": "true" }, txt("p", "common.loading", undefined, { class: "loading" }));
  root.append(h("section", { class: "card" }, txt("h1", "bookings.title"), showSlot, container));

  (async () => {
    try {
      const [venue, show, response] = await Promise.all([loadVenue().catch(() => null), loadShow(), api.myBookings(signal)]);
      if (signal.aborted) return;
      const card = showCard(show, { compact: true });
      if (card) showSlot.replaceChildren(card);
      const bookings = response.data?.bookings || [];
      container.setAttribute("aria-busy", "false");
      container.dataset.count = String(bookings.length);
      if (!bookings.length) {
        container.replaceChildren(
          txt("p", "bookings.empty", undefined, { class: "muted" }),
          h("a", { href: "#/seats", class: "button primary", i18n: "nav.seats" }),
        );
        return;
      }
      const rows = bookings.map((b) => {
        const status = b.status || "";
        const seatIds = b.seat_ids || [];
        const quote = venue ? venue.quote(seatIds) : null;
        const amount = b.payment?.amount ?? quote?.total ?? null;
        const link = `#/bookings/${encodeURIComponent(b.booking_id)}`;
        const number = b.booking_number || b.booking_id;
        const seats = quote
          ? quote.seats.map((seat) =>
              h(
                "li",
                { dataset: { seatId: seat.id } },
                h("span", { class: "seat-label" }, seat.label),
                seat.grade ? [" ", txt("span", "grade.name", { name: seat.grade }, { class: "seat-grade" })] : null,
              ),
            )
          : seatIds.map((id) => h("li", {}, `#${id}`));
        return h(
          "tr",
          { dataset: { bookingId: b.booking_id, bookingNumber: number, status } },
          h("td", {}, h("a", { href: link, class: "booking-number" }, number), h("br"), timeSpan(b.created_at, "fmt.datetime", { class: "muted small" })),
          h("td", {}, h("ul", { class: "seat-list" }, seats)),
          h("td", { class: "num" }, amount != null ? txt("span", "money", { amount }, { class: "amount", dataset: { amount } }) : "—"),
          h(
            "td",
            {},
            h("span", { class: `status-badge status-${status}`, dataset: { status } }, STATUSES.includes(status) ? txt("span", `status.${status}`) : status),
          ),
          h(
            "td",
            { class: "payment-cell" },
            b.payment
              ? [providerLabel(b.payment.provider), " · ", txt("span", `payment.status.${b.payment.status}`, undefined, { dataset: { status: b.payment.status } })]
              : txt("span", "bookings.unpaid", undefined, { class: "muted" }),
          ),
          h("td", {}, h("a", { href: link, class: "button small ghost", i18n: "bookings.open" })),
        );
      });
      container.replaceChildren(
        h(
          "div",
          { class: "table-scroll" },
          h(
            "table",
            { class: "table" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                txt("th", "bookings.col.id"),
                txt("th", "bookings.col.seats"),
                txt("th", "bookings.col.price", undefined, { class: "num" }),
                txt("th", "bookings.col.status"),
                txt("th", "bookings.col.payment"),
                h("th", {}, ""),
              ),
            ),
            h("tbody", {}, rows),
          ),
        ),
      );
    } catch (error) {
      if (error?.name === "AbortError" || signal.aborted) return;
      container.setAttribute("aria-busy", "false");
      container.replaceChildren(h("button", { type: "button", class: "button", i18n: "common.retry", onclick: () => location.reload() }));
      scope.fail(error);
    }
  })();

  document.title = `${t("bookings.title")} · ${t("app.name")}`;
  return null;
}
