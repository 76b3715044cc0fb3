// The seat map screen: GET /api/venue once, GET /api/seats every second with If-None-Match,
// selection rules (available seats only, one section, the per-member cap), and the hold.

import { api, ApiError, sleep } from "../api.js";
import { clear, h, txt } from "../dom.js";
import { onLangChange, t, tr } from "../i18n.js";
import { clockText, parseTime } from "../format.js";
import { serverNow } from "../api.js";
import { clearMessageIf, showError, showMessage } from "../messages.js";
import { go } from "../router.js";
import * as session from "../session.js";
import { SeatMap } from "../seatmap.js";
import { loadVenue } from "../venue.js";
import { loadShow, showCard } from "../show.js";

const SEATS_REFRESH_MS = 1000;
const SEATS_BACKOFF_MAX_MS = 8000;
const READY_WAIT_MS = 15000;
const LEGEND = ["held", "sold", "mine", "selected"];

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
  /** Seats left in a section as its chip shows them. */
  seatsLeft(section) {
    const chip = document.querySelector(`#zoom-bar .chip[data-section="${section}"]`);
    return chip && chip.dataset.left !== undefined ? Number(chip.dataset.left) : null;
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
  const zoomBar = h("div", { id: "zoom-bar", class: "zoom-bar", role: "toolbar", "aria-label": t("seats.zoom.label") });
  const showSlot = h("div", { class: "show-slot" });
  const gradeLegend = h("ul", { id: "grade-legend", class: "legend grade-legend", "aria-label": t("grade.legend") });
  const viewTitle = h("h2", { id: "seat-view-title", class: "view-title" });
  const liveBanner = h("div", { id: "live-booking", class: "banner", hidden: true });
  const legend = h(
    "ul",
    { class: "legend", "aria-label": t("seats.legend.label") },
    LEGEND.map((name) => h("li", {}, h("span", { class: `swatch ${name}`, "aria-hidden": "true" }), txt("span", `seats.legend.${name}`))),
  );
  const canvas = h("canvas", { id: "seat-canvas", role: "img", "aria-label": t("seats.title"), dataset: { ready: "false", view: "all" } });
  const tooltip = h("div", { id: "seat-tooltip", class: "tooltip", role: "tooltip", hidden: true });
  const canvasWrap = h("div", { class: "canvas-wrap" }, canvas, tooltip);

  const selectedList = h("ul", { id: "selected-seats", class: "selected-seats", "aria-live": "polite", dataset: { seatIds: "" } });
  const count = h("p", { id: "selected-count", class: "selected-count" });
  const total = h("div", { id: "selected-total", class: "selected-total" });
  const admissionBox = h(
    "div",
    { id: "admission-timer", class: "admission-timer", hidden: true },
    txt("span", "admission.left", undefined, { class: "muted small" }),
    h("strong", { id: "admission-clock", class: "countdown" }, "--:--"),
  );
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
        showSlot,
        h("div", { class: "map-head" }, txt("h1", "seats.title"), viewTitle),
        liveBanner,
        gradeLegend,
        zoomBar,
        legend,
        loading,
        canvasWrap,
        txt("p", "seats.zoom.hint", undefined, { class: "muted small" }),
      ),
      h(
        "aside",
        { class: "card side" },
        admissionBox,
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
    const quote = venue.quote(ids);
    for (const seat of quote.seats) {
      const id = seat.id;
      selectedList.append(
        h(
          "li",
          { dataset: { seatId: id } },
          h("span", { class: "seat-label" }, venue.label(id)),
          seat.grade ? h("span", { class: "seat-grade" }, txt("span", "grade.name", { name: seat.grade }), " ", txt("span", "money", { amount: seat.price })) : null,
          h(
            "button",
            { type: "button", class: "link remove", "aria-label": `${venue.label(id)} ×`, onclick: () => toggleSeat(id) },
            "×",
          ),
        ),
      );
    }
    tr(count, "seats.count", { n: ids.length, max: Math.min(venue.maxSeatsPerMember, seatsLeft()) });
    total.replaceChildren();
    total.dataset.amount = String(quote.total);
    if (ids.length) {
      const line = (key, params, amount, cls = "") =>
        h("div", { class: `price-line ${cls}` }, txt("span", key, params), txt("span", "money", { amount }));
      total.append(line("price.seats", undefined, quote.seatsTotal));
      if (quote.fee) total.append(line("price.fee", { n: ids.length }, quote.fee));
      total.append(line("price.total", undefined, quote.total, "total"));
    }
    holdButton.disabled = controller.holding || ids.length === 0 || admissionOver;
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
      ...venue.sections.map((section, index) => {
        const chip = h(
          "button",
          { type: "button", class: "chip section-chip", dataset: { section: section.name, grade: section.grade || "" }, "aria-pressed": "false", onclick: () => setView(index) },
          h("span", { class: "chip-dot", "aria-hidden": "true" }),
          txt("span", "section.chip", { name: section.name }, { class: "chip-name" }),
          section.grade ? txt("span", "grade.name", { name: section.grade }, { class: "chip-grade" }) : null,
          section.price != null ? txt("span", "money", { amount: section.price }, { class: "chip-price" }) : null,
          h("span", { class: "chip-left" }),
        );
        if (section.colour) chip.querySelector(".chip-dot").style.background = section.colour;
        return chip;
      }),
    );
    gradeLegend.replaceChildren(
      ...venue.grades.map((grade) => {
        const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
        if (grade.colour) swatch.style.background = grade.colour;
        return h(
          "li",
          { dataset: { grade: grade.name } },
          swatch,
          txt("strong", "grade.name", { name: grade.name }),
          txt("span", "money", { amount: grade.price }),
          h("span", { class: "grade-left muted" }),
        );
      }),
    );
  }

  /** Seats left per section and per grade, from the map already fetched (no extra request). */
  function renderLeft() {
    const { venue, status } = controller;
    if (!venue || !status) return;
    const left = venue.availableBySection(status);
    const byGrade = new Map();
    venue.sections.forEach((section, index) => {
      const chip = zoomBar.querySelector(`.chip[data-section="${section.name}"]`);
      if (chip && chip.dataset.left !== String(left[index])) {
        chip.dataset.left = String(left[index]);
        tr(chip.querySelector(".chip-left"), "grade.left", { n: left[index] });
        chip.classList.toggle("sold-out", left[index] === 0);
      }
      if (section.grade) byGrade.set(section.grade, (byGrade.get(section.grade) || 0) + left[index]);
    });
    for (const li of gradeLegend.querySelectorAll("li[data-grade]")) {
      const n = byGrade.get(li.dataset.grade) || 0;
      li.dataset.left = String(n);
      tr(li.querySelector(".grade-left"), "grade.left", { n });
    }
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
    renderLeft();
    controller.map.invalidate();
  }

  /** Mark seats the server just refused as taken, until the next map says otherwise. */
  function markTaken(ids) {
    if (!controller.status) return;
    const chars = controller.status.split("");
    for (const id of ids) if (chars[id] === "A") chars[id] = "H";
    controller.status = chars.join("");
    renderLeft();
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

  // ---- the admission's remaining time (the claim's admitted_until)

  const admissionClock = admissionBox.querySelector("#admission-clock");
  let admissionOver = false;
  function tickAdmission() {
    const until = parseTime(session.admissionUntil());
    if (Number.isNaN(until)) return;
    admissionBox.hidden = false;
    const left = (until - serverNow()) / 1000;
    admissionClock.textContent = clockText(left);
    admissionClock.dataset.seconds = String(Math.max(0, Math.ceil(left)));
    admissionClock.classList.toggle("urgent", left <= 60);
    if (left <= 0 && !admissionOver) {
      admissionOver = true;
      controller.selected.clear();
      if (controller.venue) selectionChanged();
      holdButton.disabled = true;
      session.clearAdmission();
      admissionBox.replaceChildren(
        txt("p", "admission.over", undefined, { id: "admission-over", class: "admission-over" }),
        h("button", { type: "button", id: "admission-rejoin", class: "button primary wide", i18n: "admission.rejoin", onclick: () => go("#/queue") }),
      );
      showMessage("admission.over", undefined, { kind: "error", code: "admission_over" });
    }
  }
  tickAdmission();
  const admissionTicker = setInterval(tickAdmission, 250);

  holdButton.addEventListener("click", hold);
  clearButton.addEventListener("click", () => {
    controller.selected.clear();
    selectionChanged();
  });

  // ---- start

  const offLang = onLangChange(() => controller.map?.invalidate());

  (async () => {
    try {
      const [venue, show] = await Promise.all([loadVenue(), loadShow()]);
      if (signal.aborted) return;
      const card = showCard(show, { compact: true });
      if (card) showSlot.replaceChildren(card);
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

  document.title = `${t("seats.title")} · ${t("app.name")}`;

  return () => {
    clearInterval(admissionTicker);
    offLang();
    controller.map?.destroy();
    if (active === controller) active = null;
  };
}
