// The booking log. Admins search every event (GET /api/admin/logs); everyone else sees their
// own (GET /api/me/logs) in the same view. Paging follows next_cursor.

import { api, request } from "../api.js";
import { field, h, txt } from "../dom.js";
import { EVENT_TYPES, has, t, tr } from "../i18n.js";
import { localInputToIso, timeSpan } from "../format.js";
import { showError } from "../messages.js";
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
  const exportButton = admin ? h("button", { id: "log-export", type: "button", class: "button ghost", i18n: "logs.export" }) : null;
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
    h("div", { class: "filter-actions" }, search, reset, exportButton),
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

  const dashboard = admin ? h("div", { id: "dashboard", class: "dashboard", "aria-busy": "true" }) : null;
  root.append(
    h(
      "section",
      { class: "card" },
      txt("h1", admin ? "logs.title.admin" : "logs.title.mine"),
      dashboard,
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
    return ids.map((id) => (venue && venue.isSeat(id) ? venue.label(id) : `#${id}`)).join(", ");
  }

  /** An event's detail as words, one <span> per fact, never raw JSON. */
  function detailNodes(detail) {
    const parts = [];
    for (const [key, value] of Object.entries(detail || {})) {
      let node;
      if (key === "provider") node = txt("span", "detail.provider", { name: has(`provider.${value}`) ? t(`provider.${value}`) : value });
      else if (key === "payment_id") node = txt("span", "detail.payment_id", { id: value });
      else if (key === "deadline" || key === "expires_at") node = [txt("span", "detail.deadline"), " ", timeSpan(value * 1000)];
      else if (key === "number") node = txt("span", "detail.ticket", { n: value });
      else if (key === "reason") node = txt("span", "detail.reason", { why: has(`detail.why.${value}`) ? t(`detail.why.${value}`) : value });
      else if (key === "regranted_from" || key === "refunded_from" || key === "booking_status")
        node = txt("span", `detail.${key}`, { status: has(`status.${value}`) ? t(`status.${value}`) : has(`detail.why.${value}`) ? t(`detail.why.${value}`) : value });
      else if (key === "paid_by") node = txt("span", "detail.paid_by", { id: value });
      else if (key === "ticket") node = txt("span", "detail.ticket", { n: value });
      else if (key === "amount") node = txt("span", "money", { amount: value });
      else node = h("span", {}, `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`);
      if (parts.length) parts.push(h("span", { class: "sep", "aria-hidden": "true" }, " · "));
      parts.push(node);
    }
    return parts;
  }

  function renderEvents(events) {
    tbody.replaceChildren();
    if (!events.length) {
      tbody.append(h("tr", { class: "empty" }, txt("td", "logs.empty", undefined, { colspan: 6, class: "muted" })));
    }
    for (const event of events) {
      const typeCell = h("td", { class: `event-type event-${event.type}` }, has(`event.${event.type}`) ? txt("span", `event.${event.type}`) : event.type);
      const who = event.username ?? (event.member_id != null ? `#${event.member_id}` : "");
      tbody.append(
        h(
          "tr",
          { dataset: { eventId: event.id, type: event.type, bookingId: event.booking_id || "", memberId: event.member_id ?? "" } },
          h("td", { class: "nowrap" }, timeSpan(event.at)),
          typeCell,
          h("td", {}, event.booking_id ? h("a", { href: `#/bookings/${encodeURIComponent(event.booking_id)}`, class: "mono small" }, event.booking_id) : ""),
          h("td", { class: "log-member", title: event.member_id != null ? `#${event.member_id}` : "" }, who),
          h("td", { class: "seat-labels" }, seatText(event.seat_ids)),
          h("td", { class: "detail" }, detailNodes(event.detail)),
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

  // ---- CSV export of the filtered log (a download: it needs the session, so fetch + blob)

  async function exportCsv() {
    exportButton.disabled = true;
    try {
      const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v !== "" && v != null)).toString();
      const path = `/api/admin/logs.csv${query ? `?${query}` : ""}`;
      const response = await fetch(path, {
        headers: { Authorization: `Bearer ${session.token()}` },
        cache: "no-store",
      });
      if (!response.ok) {
        // the same problem body as every route: let the API client explain it
        await request(path);
        return;
      }
      const blob = await response.blob();
      const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "")?.[1] || "encore-log.csv";
      const link = h("a", { href: URL.createObjectURL(blob), download: name, hidden: true });
      document.body.append(link);
      link.click();
      setTimeout(() => {
        URL.revokeObjectURL(link.href);
        link.remove();
      }, 1000);
    } catch (error) {
      if (!signal.aborted) showError(error);
    } finally {
      exportButton.disabled = false;
    }
  }
  if (exportButton) exportButton.addEventListener("click", exportCsv);

  // ---- the dashboard: seats per grade, payments by status

  async function loadDashboard() {
    try {
      const { data } = await api.adminDashboard(signal);
      if (signal.aborted || !data) return;
      const grades = h(
        "table",
        { id: "dashboard-grades", class: "table" },
        h("caption", { i18n: "dash.seats" }),
        h("thead", {}, h("tr", {}, ["grade", "sold", "held", "available", "revenue"].map((c) => txt("th", `dash.col.${c}`, undefined, { class: c === "grade" ? "" : "num" })))),
        h(
          "tbody",
          {},
          data.grades.map((g) =>
            h(
              "tr",
              { dataset: { grade: g.grade, sold: g.sold, held: g.held, available: g.available } },
              h("td", {}, txt("strong", "grade.name", { name: g.grade }), " ", txt("span", "money", { amount: g.price }, { class: "muted small" })),
              h("td", { class: "num" }, txt("span", "dash.n", { n: g.sold })),
              h("td", { class: "num" }, txt("span", "dash.n", { n: g.held })),
              h("td", { class: "num" }, txt("span", "dash.n", { n: g.available })),
              h("td", { class: "num" }, txt("span", "money", { amount: g.revenue })),
            ),
          ),
        ),
      );
      const payments = h(
        "table",
        { id: "dashboard-payments", class: "table" },
        h("caption", { i18n: "dash.payments" }),
        h("thead", {}, h("tr", {}, txt("th", "dash.col.status"), txt("th", "dash.col.count", undefined, { class: "num" }), txt("th", "dash.col.amount", undefined, { class: "num" }))),
        h(
          "tbody",
          {},
          data.payments.length
            ? data.payments.map((p) =>
                h(
                  "tr",
                  { dataset: { status: p.status, count: p.count } },
                  h("td", {}, has(`payment.status.${p.status}`) ? txt("span", `payment.status.${p.status}`) : p.status),
                  h("td", { class: "num" }, txt("span", "dash.count", { n: p.count })),
                  h("td", { class: "num" }, txt("span", "money", { amount: p.amount })),
                ),
              )
            : h("tr", {}, txt("td", "dash.no_payments", undefined, { colspan: 3, class: "muted" })),
        ),
      );
      dashboard.replaceChildren(grades, payments);
      dashboard.setAttribute("aria-busy", "false");
    } catch (error) {
      if (!signal.aborted) showError(error);
    }
  }
  if (dashboard) loadDashboard();
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
