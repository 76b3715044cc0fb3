// The seat map screen: GET /api/venue once, GET /api/seats every second with If-None-Match,
// selection rules (available seats only, one section, the per-member cap), and the hold.

import { api, ApiError, sleep } from "../api.js";
import { clear, h, txt } from "../dom.js";
import { onLangChange, t, tr } from "../i18n.js";
import { formatMoney, parseTime } from "../format.js";
import { clearMessageIf, showError, showMessage } from "../messages.js";
import { go } from "../router.js";
import * as session from "../session.js";
import { SeatMap } from "../seatmap.js";
import { loadVenue } from "../venue.js";

const SEATS_REFRESH_MS = 1000;
const SEATS_BACKOFF_MAX_MS = 8000;
const READY_WAIT_MS = 15000;
const LEGEND = ["available", "held", "sold", "mine", "selected"];

let active = null; // the mounted screen's controller, for window.encore

/** window.encore: what a browser test may drive. selectSeat toggles like a click does. */
export const testApi = {
  async selectSeat(seatId) {
    const controller = await waitForReady();
    return controller ? controller.toggleSeat(Number(seatId)) : false;
  },
  selected() {
    return active ? [...active.selected].sort((a, b) => a - b) : [];
  },
  seatStatus(seatId) {
    return active?.status ? active.status[seatId] || null : null;
  },
  seatPoint(seatId) {
    return active?.map ? active.map.seatPoint(Number(seatId)) : null;
  },
  label(seatId) {
    return active?.venue ? active.venue.label(Number(seatId)) : null;
  },
  zoom(section) {
    if (!active?.venue) return false;
    const index = section === null || section === undefined ? null : active.venue.sections.findIndex((s) => s.name === section);
    if (index === -1) return false;
    active.setView(index);
    return true;
  },
};

async function waitForReady() {
  const deadline = Date.now() + READY_WAIT_MS;
  while (Date.now() < deadline) {
    if (active?.ready) return active;
    await sleep(50);
  }
  if (active) showMessage("seats.not_ready", undefined, { kind: "error", code: "not_ready" });
  return null;
}

export function mount(root, _route, scope) {
  if (!session.admissionToken()) {
    go("#/queue", { key: "queue.need_admission", kind: "info" });
    return null;
  }
  const { signal } = scope;
  const controller = {
    ready: false,
    venue: null,
    map: null,
    status: null,
    version: null,
    etag: null,
    selected: new Set(),
    mine: new Set(),
    owned: 0,
    holding: false,
    view: null,
    toggleSeat,
    setView,
  };
  active = controller;

  // ---- skeleton

  const loading = txt("p", "seats.loading", undefined, { class: "loading" });
  const zoomBar = h("div", { class: "zoom-bar", role: "toolbar", "aria-label": t("seats.zoom.label") });
  const viewTitle = h("h2", { id: "seat-view-title", class: "view-title" });
  const liveBanner = h("div", { id: "live-booking", class: "banner", hidden: true });
  const legend = h(
    "ul",
    { class: "legend", "aria-label": "legend" },
    LEGEND.map((name) => h("li", {}, h("span", { class: `swatch ${name}`, "aria-hidden": "true" }), txt("span", `seats.legend.${name}`))),
  );
  const canvas = h("canvas", { id: "seat-canvas", role: "img", "aria-label": t("seats.title"), dataset: { ready: "false", view: "all" } });
  const tooltip = h("div", { id: "seat-tooltip", class: "tooltip", role: "tooltip", hidden: true });
  const canvasWrap = h("div", { class: "canvas-wrap" }, canvas, tooltip);

  const selectedList = h("ul", { id: "selected-seats", class: "selected-seats", "aria-live": "polite", dataset: { seatIds: "" } });
  const count = h("p", { id: "selected-count", class: "selected-count" });
  const total = h("p", { id: "selected-total", class: "selected-total" });
  const holdButton = h("button", { id: "hold-button", type: "button", class: "button primary wide", disabled: true, i18n: "seats.hold" });
  const clearButton = h("button", { id: "clear-button", type: "button", class: "button ghost wide", disabled: true, i18n: "seats.clear" });
  const holdRule = h("p", { class: "muted small" });

  root.append(
    h(
      "div",
      { class: "seats-screen" },
      h(
        "section",
        { class: "card map-card" },
        h("div", { class: "map-head" }, txt("h1", "seats.title"), viewTitle),
        liveBanner,
        zoomBar,
        legend,
        loading,
        canvasWrap,
        txt("p", "seats.zoom.hint", undefined, { class: "muted small" }),
      ),
      h(
        "aside",
        { class: "card side" },
        txt("h2", "seats.selected"),
        selectedList,
        count,
        total,
        holdButton,
        clearButton,
        holdRule,
      ),
    ),
  );

  // ---- seat states and selection

  function seatState(id) {
    if (controller.selected.has(id)) return "selected";
    const status = controller.status;
    if (!status) return "unknown";
    const ch = status[id];
    if (ch !== "A" && controller.mine.has(id)) return "mine";
    return ch === "A" || ch === "H" || ch === "S" ? ch : "unknown";
  }

  function selectionGroup() {
    const first = controller.selected.values().next();
    return first.done ? null : first.value;
  }

  function seatsLeft() {
    return Math.max(0, controller.venue.maxSeatsPerMember - controller.owned);
  }

  function toggleSeat(id) {
    const { venue } = controller;
    if (!controller.ready) {
      showMessage("seats.not_ready", undefined, { kind: "error", code: "not_ready" });
      return false;
    }
    if (!venue.isSeat(id)) {
      showMessage("seats.unknown_seat", { id }, { kind: "error", code: "unknown_seat" });
      return false;
    }
    if (controller.selected.has(id)) {
      controller.selected.delete(id);
      selectionChanged();
      return true;
    }
    if (controller.holding) return false;
    const state = seatState(id);
    if (state !== "A") {
      showMessage("seats.not_available", { label: venue.label(id), state }, { kind: "error", code: "seat_unavailable" });
      return false;
    }
    const anchor = selectionGroup();
    if (anchor !== null && venue.groupOf(anchor) !== venue.groupOf(id)) {
      showMessage("seats.one_section", { name: venue.groupName(anchor) }, { kind: "error", code: "seats_span_blocks" });
      return false;
    }
    const left = seatsLeft();
    if (controller.selected.size >= left) {
      const max = venue.maxSeatsPerMember;
      if (controller.owned > 0) showMessage("seats.max_owned", { owned: controller.owned, left, max }, { kind: "error", code: "too_many_seats" });
      else showMessage("seats.max", { max }, { kind: "error", code: "too_many_seats" });
      return false;
    }
    controller.selected.add(id);
    selectionChanged();
    return true;
  }

  function unselectTaken() {
    if (controller.holding || !controller.status) return;
    const gone = [...controller.selected].filter((id) => controller.status[id] !== "A");
    if (!gone.length) return;
    for (const id of gone) controller.selected.delete(id);
    // A seat that turned into one of mine (a hold whose answer was lost) is no one else's.
    const taken = gone.filter((id) => !controller.mine.has(id));
    if (taken.length) showMessage("seats.taken", { labels: controller.venue.labels(taken).join(", ") }, { kind: "error", code: "seat_taken" });
    selectionChanged();
  }

  function selectionChanged() {
    renderSelection();
    controller.map?.invalidate();
  }

  function renderSelection() {
    const { venue, selected } = controller;
    const ids = [...selected].sort((a, b) => a - b);
    clear(selectedList);
    selectedList.dataset.seatIds = ids.join(",");
    if (!ids.length) selectedList.append(txt("li", "seats.none", undefined, { class: "muted empty" }));
    for (const id of ids) {
      selectedList.append(
        h(
          "li",
          { dataset: { seatId: id } },
          h("span", { class: "seat-label" }, venue.label(id)),
          h(
            "button",
            { type: "button", class: "link remove", "aria-label": `${venue.label(id)} ×`, onclick: () => toggleSeat(id) },
            "×",
          ),
        ),
      );
    }
    tr(count, "seats.count", { n: ids.length, max: Math.min(venue.maxSeatsPerMember, seatsLeft()) });
    if (venue.pricePerSeat !== null) tr(total, "seats.total", { amount: formatMoney(ids.length * venue.pricePerSeat) });
    holdButton.disabled = controller.holding || ids.length === 0;
    clearButton.disabled = controller.holding || ids.length === 0;
  }

  // ---- zoom

  function setView(index) {
    controller.view = index;
    controller.map.setView(index);
    for (const button of zoomBar.querySelectorAll("button")) {
      const pressed = index === null ? button.dataset.section === "" : button.dataset.section === controller.venue.sections[index].name;
      button.setAttribute("aria-pressed", String(pressed));
    }
    if (index === null) tr(viewTitle, "seats.zoom.all");
    else tr(viewTitle, "seats.section", { name: controller.venue.sections[index].name });
  }

  function renderZoomBar() {
    const { venue } = controller;
    zoomBar.append(
      h("button", { type: "button", id: "zoom-all", class: "chip", dataset: { section: "" }, "aria-pressed": "true", i18n: "seats.zoom.all", onclick: () => setView(null) }),
      ...venue.sections.map((section, index) =>
        h(
          "button",
          { type: "button", class: "chip", dataset: { section: section.name }, "aria-pressed": "false", onclick: () => setView(index) },
          section.name,
        ),
      ),
    );
  }

  // ---- my bookings: "mine" colour, the per-member cap, a reminder of a hold to pay

  async function findHoldFor(ids) {
    try {
      const { data } = await api.myBookings(signal);
      const wanted = new Set(ids);
      return (data?.bookings || []).find(
        (b) => b.status === "held" && (b.seat_ids || []).length === wanted.size && b.seat_ids.every((id) => wanted.has(id)),
      );
    } catch {
      return null;
    }
  }

  async function refreshMine() {
    try {
      const { data } = await api.myBookings(signal);
      const now = Date.now();
      const live = (data?.bookings || []).filter(
        (b) => b.status === "confirmed" || (b.status === "held" && !(parseTime(b.expires_at) <= now)),
      );
      controller.mine = new Set(live.flatMap((b) => b.seat_ids || []));
      controller.owned = controller.mine.size;
      const held = live.find((b) => b.status === "held");
      liveBanner.replaceChildren();
      liveBanner.hidden = !held;
      if (held) {
        liveBanner.append(
          txt("span", "seats.live_booking"),
          " ",
          h("span", { class: "seat-label" }, controller.venue.labels(held.seat_ids || []).join(", ")),
          " ",
          h("a", { href: `#/bookings/${encodeURIComponent(held.booking_id)}`, class: "button small", i18n: "seats.continue" }),
        );
      }
      renderSelection();
      controller.map?.invalidate();
    } catch (error) {
      if (error?.name === "AbortError" || signal.aborted) return;
      if (error instanceof ApiError && error.status === 401) scope.fail(error);
      // Otherwise the map still works; the server enforces the cap.
    }
  }

  // ---- the seat status feed

  function applyStatus(status, version) {
    controller.status = status;
    controller.version = version;
    canvas.dataset.version = String(version ?? "");
    if (!controller.ready) {
      controller.ready = true;
      canvas.dataset.ready = "true";
      loading.hidden = true;
    }
    unselectTaken();
    controller.map.invalidate();
  }

  /** Mark seats the server just refused as taken, until the next map says otherwise. */
  function markTaken(ids) {
    if (!controller.status) return;
    const chars = controller.status.split("");
    for (const id of ids) if (chars[id] === "A") chars[id] = "H";
    controller.status = chars.join("");
  }

  async function pollSeats() {
    let backoff = SEATS_REFRESH_MS;
    let warned = false;
    while (!signal.aborted) {
      if (document.hidden && controller.ready) {
        await sleep(SEATS_REFRESH_MS, signal);
        continue;
      }
      let wait = SEATS_REFRESH_MS;
      try {
        const response = await api.seats(controller.etag, signal);
        if (response.status === 200 && response.data && typeof response.data.status === "string") {
          controller.etag = response.headers.get("ETag");
          applyStatus(response.data.status, response.data.version);
        }
        backoff = SEATS_REFRESH_MS;
        if (warned) {
          warned = false;
          clearMessageIf("seats_refresh_failed");
        }
      } catch (error) {
        if (error?.name === "AbortError" || signal.aborted) return;
        if (error instanceof ApiError && error.status === 401) return scope.fail(error);
        backoff = Math.min(SEATS_BACKOFF_MAX_MS, backoff * 2);
        wait = error instanceof ApiError && error.retryAfterSeconds ? error.retryAfterSeconds * 1000 : backoff;
        if (!warned) {
          warned = true;
          showMessage("seats.refresh_failed", undefined, { kind: "error", code: "seats_refresh_failed" });
        }
      }
      await sleep(wait, signal);
    }
  }

  // ---- hold

  async function hold() {
    if (controller.holding || controller.selected.size === 0) return;
    controller.holding = true;
    tr(holdButton, "seats.holding");
    renderSelection();
    const ids = [...controller.selected];
    try {
      const { data } = await api.hold(ids);
      controller.selected.clear();
      for (const id of data.seat_ids || ids) controller.mine.add(id);
      go(`#/bookings/${encodeURIComponent(data.booking_id)}`);
      return;
    } catch (error) {
      if (signal.aborted) return;
      const code = error instanceof ApiError ? error.code : "";
      if (code === "seat_unavailable") {
        const taken = Array.isArray(error.body?.seats) && error.body.seats.length ? error.body.seats : ids;
        markTaken(taken);
        for (const id of taken) controller.selected.delete(id);
        showMessage("seats.taken", { labels: controller.venue.labels(taken).join(", ") }, { kind: "error", code });
      } else if (code === "too_many_seats") {
        showError(error);
        refreshMine();
      } else if (code === "seats_span_blocks" || code === "invalid_seats" || code === "validation_error" || code === "idempotency_key_reused") {
        showError(error);
      } else if (error instanceof ApiError && (error.status === 0 || error.status >= 500)) {
        // The hold may have been made even though its answer was lost: look for it.
        const booking = await findHoldFor(ids);
        if (booking) {
          controller.selected.clear();
          go(`#/bookings/${encodeURIComponent(booking.booking_id)}`);
          return;
        }
        scope.fail(error); // the selection stays; pressing Hold again reuses the same key
      } else {
        scope.fail(error);
      }
    } finally {
      controller.holding = false;
      if (!signal.aborted) {
        tr(holdButton, "seats.hold");
        selectionChanged();
      }
    }
  }

  holdButton.addEventListener("click", hold);
  clearButton.addEventListener("click", () => {
    controller.selected.clear();
    selectionChanged();
  });

  // ---- start

  const offLang = onLangChange(() => controller.map?.invalidate());

  (async () => {
    try {
      const venue = await loadVenue();
      if (signal.aborted) return;
      controller.venue = venue;
      tr(holdRule, "seats.hold_rule", { seconds: venue.holdSeconds });
      renderZoomBar();
      controller.map = new SeatMap(canvas, tooltip, venue, {
        seatState,
        onSeatClick: (id) => toggleSeat(id),
        onSectionClick: (index) => setView(index),
        activeSection: () => {
          const anchor = selectionGroup();
          return anchor === null ? null : venue.sectionIndexOf(anchor);
        },
      });
      setView(null);
      renderSelection();
      refreshMine();
      await pollSeats();
    } catch (error) {
      if (error?.name === "AbortError" || signal.aborted) return;
      scope.fail(error);
    }
  })();

  document.title = `${t("seats.title")} · Encore`;

  return () => {
    offLang();
    controller.map?.destroy();
    if (active === controller) active = null;
  };
}
