// The one show on sale (GET /api/show, fetched once per page load): the strip in the header of
// every screen, and the card with the poster on the seat map, checkout, confirmation and
// "my bookings". Times come in UTC and are shown on the hall's clock (KST).

import { api } from "./api.js";
import { h, txt } from "./dom.js";
import { tr } from "./i18n.js";

let cached = null;

/** The show, fetched once per page load (null when it cannot be read: the page still works). */
export function loadShow() {
  if (!cached) {
    cached = api.show().then(
      ({ data }) => data,
      () => {
        cached = null;
        return null;
      },
    );
  }
  return cached;
}

function timeText(show, el) {
  return tr(el, "fmt.show", { at: show.starts_at });
}

/** The header strip: "앙코르 라이브 2026 · 2026년 12월 24일 (목) 오후 7:00 · KSPO DOME". */
export async function renderShowStrip(el) {
  const show = await loadShow();
  if (!show) return;
  el.replaceChildren(
    h("span", { class: "show-strip-title", id: "show-title" }, show.title),
    h("span", { class: "show-strip-sep", "aria-hidden": "true" }, "·"),
    timeText(show, h("span", { class: "show-strip-time", id: "show-time" })),
    h("span", { class: "show-strip-sep show-strip-venue", "aria-hidden": "true" }, "·"),
    h("span", { class: "show-strip-venue" }, show.venue),
  );
  el.hidden = false;
}

/** A card with the poster and the facts; `compact` leaves out the running time and rating. */
export function showCard(show, { compact = false } = {}) {
  if (!show) return null;
  const facts = [
    ["show.performer", show.performer],
    ["show.when", timeText(show, h("span", {}))],
    ["show.venue", show.venue],
    compact ? null : ["show.running", txt("span", "show.minutes", { n: show.running_minutes })],
    compact ? null : ["show.age", show.age_rating],
  ].filter(Boolean);
  return h(
    "section",
    { class: `show-card${compact ? " compact" : ""}`, dataset: { show: show.title } },
    h("img", { class: "poster", src: show.poster_url, alt: show.title, width: 90, height: 126, loading: "lazy" }),
    h(
      "div",
      { class: "show-body" },
      h("h2", { class: "show-title" }, show.title),
      h("dl", { class: "show-facts" }, facts.map(([key, value]) => [txt("dt", key), h("dd", {}, value)])),
    ),
  );
}
