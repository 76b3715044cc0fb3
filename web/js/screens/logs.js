// The booking log. Admins search every event (GET /api/admin/logs); everyone else sees their
// own (GET /api/me/logs) in the same view. Paging follows next_cursor.

import { api } from "../api.js";
import { field, h, txt } from "../dom.js";
import { EVENT_TYPES, has, t, tr } from "../i18n.js";
import { formatDateTime, localInputToIso } from "../format.js";
import * as session from "../session.js";
import { loadVenue } from "../venue.js";

const PAGE_SIZE = 50;

export function mount(root, _route, scope) {
  const { signal } = scope;
  const admin = session.isAdmin();
  const fetchPage = admin ? api.adminLogs : api.myLogs;

  const inputs = {
    booking_id: h("input", { id: "log-booking-id", name: "booking_id", type: "text", autocomplete: "off", spellcheck: "false" }),
    member_id: admin ? h("input", { id: "log-member-id", name: "member_id", type: "number", min: 0, step: 1 }) : null,
    seat_id: h("input", { id: "log-seat-id", name: "seat_id", type: "number", min: 0, step: 1 }),
    type: h(
      "select",
      { id: "log-type", name: "type" },
      txt("option", "logs.f.all", undefined, { value: "" }),
      EVENT_TYPES.map((type) => txt("option", `event.${type}`, undefined, { value: type })),
    ),
    since: h("input", { id: "log-since", name: "since", type: "datetime-local", step: 1 }),
    until: h("input", { id: "log-until", name: "until", type: "datetime-local", step: 1 }),
  };
  const search = h("button", { id: "log-search", type: "submit", class: "button primary", i18n: "logs.search" });
  const reset = h("button", { id: "log-reset", type: "reset", class: "button ghost", i18n: "logs.reset" });
  const form = h(
    "form",
    { class: "filters", id: "log-filters" },
    field("logs.f.booking_id", inputs.booking_id),
    inputs.member_id ? field("logs.f.member_id", inputs.member_id) : null,
    field("logs.f.seat_id", inputs.seat_id),
    field("logs.f.type", inputs.type),
    field("logs.f.since", inputs.since),
    field("logs.f.until", inputs.until),
    h("div", { class: "filter-actions" }, search, reset),
  );

  const tbody = h("tbody");
  const table = h(
    "table",
    { id: "log-table", class: "table log-table", dataset: { count: "0", page: "0" } },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["at", "type", "booking", "member", "seats", "detail"].map((col) => txt("th", `logs.col.${col}`)),
      ),
    ),
    tbody,
  );
  const pageInfo = h("span", { id: "log-page", class: "muted small" });
  const first = h("button", { id: "log-first", type: "button", class: "button ghost small", disabled: true, i18n: "logs.first" });
  const next = h("button", { id: "log-next", type: "button", class: "button small", disabled: true, i18n: "logs.next" });

  root.append(
    h(
      "section",
      { class: "card" },
      txt("h1", admin ? "logs.title.admin" : "logs.title.mine"),
      txt("p", admin ? "logs.intro.admin" : "logs.intro.mine", undefined, { class: "muted" }),
      form,
      h("div", { class: "table-scroll" }, table),
      h("div", { class: "pager" }, pageInfo, first, next),
    ),
  );

  let venue = null;
  let filters = {};
  let nextCursor = null;
  let page = 0;
  let busy = false;

  function readFilters() {
    const value = (el) => (el ? el.value.trim() : "");
    return {
      booking_id: value(inputs.booking_id),
      member_id: value(inputs.member_id),
      seat_id: value(inputs.seat_id),
      type: inputs.type.value,
      since: localInputToIso(inputs.since.value),
      until: localInputToIso(inputs.until.value),
    };
  }

  function seatText(ids) {
    if (!Array.isArray(ids) || !ids.length) return "";
    return ids.map((id) => (venue && venue.isSeat(id) ? `${venue.label(id)} (${id})` : String(id))).join(", ");
  }

  function renderEvents(events) {
    tbody.replaceChildren();
    if (!events.length) {
      tbody.append(h("tr", { class: "empty" }, txt("td", "logs.empty", undefined, { colspan: 6, class: "muted" })));
    }
    for (const event of events) {
      const typeCell = h("td", {}, h("code", {}, event.type));
      if (has(`event.${event.type}`)) typeCell.append(h("br"), txt("span", `event.${event.type}`, undefined, { class: "muted small" }));
      const detail = event.detail && Object.keys(event.detail).length ? JSON.stringify(event.detail) : "";
      tbody.append(
        h(
          "tr",
          { dataset: { eventId: event.id, type: event.type, bookingId: event.booking_id || "" } },
          h("td", { class: "nowrap" }, formatDateTime(event.at)),
          typeCell,
          h("td", {}, event.booking_id ? h("a", { href: `#/bookings/${encodeURIComponent(event.booking_id)}` }, h("code", {}, event.booking_id)) : ""),
          h("td", {}, event.member_id ?? ""),
          h("td", { class: "seat-labels" }, seatText(event.seat_ids)),
          h("td", { class: "detail" }, h("code", {}, detail)),
        ),
      );
    }
    table.dataset.count = String(events.length);
    table.dataset.page = String(page);
    tr(pageInfo, "logs.page", { n: page, count: events.length });
  }

  async function load(cursor) {
    if (busy) return;
    busy = true;
    search.disabled = true;
    next.disabled = true;
    first.disabled = true;
    table.setAttribute("aria-busy", "true");
    try {
      const { data } = await fetchPage({ ...filters, limit: PAGE_SIZE, cursor: cursor || undefined });
      if (signal.aborted) return;
      page = cursor ? page + 1 : 1;
      nextCursor = data?.next_cursor || null;
      renderEvents(data?.events || []);
    } catch (error) {
      if (error?.name === "AbortError" || signal.aborted) return;
      scope.fail(error);
    } finally {
      busy = false;
      search.disabled = false;
      next.disabled = !nextCursor;
      first.disabled = page <= 1;
      table.setAttribute("aria-busy", "false");
      next.dataset.cursor = nextCursor || "";
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    filters = readFilters();
    load(null);
  });
  form.addEventListener("reset", () => {
    setTimeout(() => {
      filters = {};
      load(null);
    });
  });
  next.addEventListener("click", () => nextCursor && load(nextCursor));
  first.addEventListener("click", () => load(null));

  loadVenue()
    .then((v) => {
      venue = v;
    })
    .catch(() => {})
    .finally(() => load(null));

  document.title = `${admin ? t("logs.title.admin") : t("logs.title.mine")} · ${t("app.name")}`;
  return null;
}
