// My bookings (GET /api/me/bookings): every booking, newest first, with seat labels and status.

import { api } from "../api.js";
import { h, txt } from "../dom.js";
import { t } from "../i18n.js";
import { formatDateTime } from "../format.js";
import { loadVenue } from "../venue.js";

const STATUSES = ["held", "confirmed", "payment_failed", "expired", "cancelled", "refunded"];

export function mount(root, _route, scope) {
  const { signal } = scope;
  const container = h("div", { id: "my-bookings", class: "bookings", "aria-busy": "true" }, txt("p", "common.loading", undefined, { class: "loading" }));
  root.append(h("section", { class: "card" }, txt("h1", "bookings.title"), container));

  (async () => {
    try {
      const [venue, response] = await Promise.all([loadVenue().catch(() => null), api.myBookings(signal)]);
      if (signal.aborted) return;
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
        const labels = venue ? venue.labels(b.seat_ids || []) : (b.seat_ids || []).map((id) => `#${id}`);
        const link = `#/bookings/${encodeURIComponent(b.booking_id)}`;
        return h(
          "tr",
          { dataset: { bookingId: b.booking_id, status } },
          h("td", {}, h("a", { href: link }, h("code", {}, b.booking_id))),
          h("td", { class: "seat-labels" }, labels.join(", ")),
          h(
            "td",
            {},
            h("span", { class: `status-badge status-${status}`, dataset: { status } }, STATUSES.includes(status) ? txt("span", `status.${status}`) : status),
          ),
          h("td", {}, formatDateTime(b.created_at || b.updated_at || b.expires_at)),
          h("td", {}, h("a", { href: link, class: "button small ghost", i18n: "bookings.open" })),
        );
      });
      container.replaceChildren(
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
              txt("th", "bookings.col.status"),
              txt("th", "bookings.col.time"),
              h("th", {}, ""),
            ),
          ),
          h("tbody", {}, rows),
        ),
      );
    } catch (error) {
      if (error?.name === "AbortError" || signal.aborted) return;
      container.setAttribute("aria-busy", "false");
      container.replaceChildren(h("button", { type: "button", class: "button", i18n: "common.retry", onclick: () => location.reload() }));
      scope.fail(error);
    }
  })();

  document.title = `${t("bookings.title")} · Encore`;
  return null;
}
