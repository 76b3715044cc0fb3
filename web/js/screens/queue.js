// The waiting room: join once (POST /api/queue, a signed ticket carrying the place number),
// then read the public status (GET /api/queue/status: the same bytes for everyone, answered by
// the HTTP cache) at its poll_after_ms, and work out "N ahead of you" and the wait from the
// ticket's own number. Once the status shows that number admitted, claim the admission once
// (POST /api/queue/admission). A ticket from before the opening has no number yet: the
// first claim after the opening answers with the numbered ticket.
// progress = 1 - ahead / ahead_at_join, where ahead_at_join is remembered per ticket.

import { api, ApiError, serverNow, sleep } from "../api.js";
import { h, txt } from "../dom.js";
import { num, t, tr } from "../i18n.js";
import { longClockText, parseTime } from "../format.js";
import { loadShow, showCard } from "../show.js";
import { clearMessage, showMessage } from "../messages.js";
import { go } from "../router.js";
import * as session from "../session.js";

const POLL_MIN_MS = 500;
const POLL_DEFAULT_MS = 1000;
const BACKOFF_MAX_MS = 8000;

export function mount(root, _route, scope) {
  const { signal } = scope;
  const ahead = h("strong", { id: "queue-ahead", class: "queue-number", "aria-live": "polite" }, "…");
  const aheadLabel = txt("span", "queue.ahead_label", undefined, { class: "queue-number-label" });
  const aheadSentence = h("p", { id: "queue-ahead-text", class: "queue-sentence" });
  const behind = h("p", { id: "queue-behind", class: "muted small" });
  const bar = h("div", { class: "progress-fill" });
  bar.style.width = "0%"; // set from script: the page's CSP refuses inline style attributes
  const progress = h(
    "div",
    { id: "queue-progress", class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": 0 },
    bar,
  );
  const progressText = h("p", { class: "muted small", id: "queue-progress-text" });
  const eta = h("p", { id: "queue-eta", class: "queue-eta" });
  const state = h("p", { id: "queue-state", class: "queue-state", dataset: { state: "joining" } });
  const ticketLine = h("p", { id: "queue-ticket", class: "muted small" });
  const total = h("p", { id: "queue-total", class: "queue-total" });
  const rate = h("p", { id: "queue-rate", class: "muted small" });
  const showSlot = h("div", { class: "show-slot" });
  // before the opening: a countdown and why arriving early is no disadvantage
  const openingClock = h("strong", { id: "queue-opening-clock", class: "opening-clock", role: "timer" }, "--:--:--");
  const openingAt = h("p", { id: "queue-opening-at", class: "muted small" });
  const openingText = h("p", { id: "queue-opening-text", class: "queue-sentence small" });
  const opening = h(
    "div",
    { id: "queue-opening", class: "queue-opening", hidden: true },
    txt("h2", "queue.before_title"),
    txt("p", "queue.opens_in", undefined, { class: "muted" }),
    openingClock,
    openingAt,
    openingText,
  );
  const waitingPart = h("div", { id: "queue-waiting", class: "queue-waiting" });
  const rejoin = h("button", { id: "queue-rejoin", type: "button", class: "button primary", hidden: true, i18n: "queue.rejoin" });
  const status = h("p", { class: "muted small", id: "queue-connection" });

  waitingPart.append(h("div", { class: "queue-counter" }, ahead, aheadLabel), aheadSentence, total, progress, progressText, eta, rate);
  root.append(
    h(
      "section",
      { class: "card narrow queue" },
      showSlot,
      txt("h1", "queue.title"),
      opening,
      waitingPart,
      state,
      rejoin,
      txt("p", "queue.hint", undefined, { class: "muted small" }),
      ticketLine,
      status,
    ),
  );
  tr(state, "queue.joining");

  let aheadAtJoin = 0;

  function render(answer) {
    const n = Math.max(0, Number(answer.ahead) || 0);
    aheadAtJoin = Math.max(aheadAtJoin, n);
    opening.hidden = true;
    waitingPart.hidden = false;
    ahead.textContent = num(n);
    ahead.dataset.ahead = String(n);
    tr(aheadSentence, "queue.ahead", { n });
    const fraction = answer.state === "admitted" ? 1 : aheadAtJoin > 0 ? Math.min(1, Math.max(0, 1 - n / aheadAtJoin)) : 1;
    const percent = Math.round(fraction * 100);
    bar.style.width = `${percent}%`;
    progress.setAttribute("aria-valuenow", String(percent));
    tr(progressText, "queue.progress", { percent });
    if (Number.isFinite(answer.eta_seconds) && answer.state === "waiting") {
      tr(eta, "queue.eta", { seconds: answer.eta_seconds });
      eta.dataset.seconds = String(answer.eta_seconds);
    } else {
      eta.textContent = "";
    }
    state.dataset.state = answer.state;
    if (answer.state === "waiting") tr(state, "queue.waiting");
  }

  function admitted(token, until = null) {
    clearInterval(openingTicker);
    session.setAdmissionToken(token, until);
    state.dataset.state = "admitted";
    tr(state, "queue.admitted");
    const back = session.afterAdmission();
    session.setAfterAdmission(null);
    go(back || "#/seats", { key: back ? "queue.admitted_back" : "queue.admitted", kind: "success", timeoutMs: 4000 });
  }

  function expired() {
    state.dataset.state = "expired";
    tr(state, "queue.expired");
    eta.textContent = "";
    rejoin.hidden = false;
    showMessage("queue.expired", undefined, { kind: "error", code: "queue_expired" });
    rejoin.focus();
  }

  async function join() {
    const { data } = await api.joinQueue();
    const saved = session.queueState();
    aheadAtJoin = saved && saved.ticket === data.ticket ? Math.max(saved.ahead_at_join, 0) : Number(data.ahead) || 0;
    session.setQueueState(data.ticket, aheadAtJoin);
    tr(ticketLine, "queue.ticket", { ticket: ticketLabel(data.ticket) });
    ticketLine.dataset.ticket = data.ticket;
    return data;
  }

  async function joinUntilAnswered() {
    let backoff = POLL_MIN_MS;
    while (!signal.aborted) {
      try {
        return await join();
      } catch (error) {
        if (!retryable(error)) throw error;
        tr(status, "queue.retrying");
        await sleep(waitFor(error, backoff), signal);
        backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
      }
    }
    return null;
  }

  /** One claim: the admission token, or null with the ticket and place updated. */
  async function claim(place) {
    try {
      const { data } = await api.claimAdmission(place.ticket);
      place.until = data.admitted_until || null;
      return data.admission_token;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.code === "not_your_turn") {
        place.ticket = error.body.ticket;
        place.number = ticketNumber(place.ticket);
        return null;
      }
      if (error.code === "admission_expired") {
        place.expired = true;
        return null;
      }
      if (error.code === "bad_ticket") {
        // The queue no longer knows this ticket: join again (a new place at the end).
        session.clearQueueState();
        const answer = await joinUntilAnswered();
        place.ticket = answer.ticket;
        place.number = ticketNumber(answer.ticket);
        return answer.admission_token || null;
      }
      throw error;
    }
  }

  let opensAt = NaN;
  function tickOpening() {
    if (Number.isNaN(opensAt) || opening.hidden) return;
    const left = (opensAt - serverNow()) / 1000;
    openingClock.textContent = longClockText(left);
    openingClock.dataset.seconds = String(Math.max(0, Math.ceil(left)));
  }
  const openingTicker = setInterval(tickOpening, 250);

  function renderStatus(place, room) {
    if (place.number === null) {
      opensAt = parseTime(room.opens_at);
      opening.hidden = false;
      waitingPart.hidden = true;
      if (!Number.isNaN(opensAt)) tr(openingAt, "queue.opens_at", { at: room.opens_at });
      // the status is read a moment after joining: this person is among those waiting
      tr(openingText, "queue.before_opening", { n: Math.max(1, Number(room.drawing) || 0) });
      openingText.dataset.drawing = String(room.drawing);
      tickOpening();
      tr(state, "queue.drawing_state");
      state.dataset.state = "before_opening";
      return;
    }
    const n = Math.max(0, place.number - (room.admitted_through + 1));
    const perSecond = Number(room.admit_per_second) > 0 ? Number(room.admit_per_second) : 1;
    render({ state: "waiting", ahead: n, eta_seconds: Math.round((n / perSecond) * 10) / 10 });
    const behindCount = Math.max(0, room.waiting - n - 1);
    tr(behind, "queue.behind", { n: behindCount });
    tr(aheadSentence, "queue.place", { ahead: n, behind: behindCount });
    aheadSentence.dataset.behind = String(behindCount);
    behind.dataset.behind = String(behindCount);
    // the status and the place are read a moment apart: never show fewer in line than are ahead
    const everyone = Math.max(Number(room.waiting) || 0, n + 1 + behindCount);
    tr(total, "queue.total", { n: everyone });
    total.dataset.waiting = String(everyone);
    if (Number(room.admit_per_second) > 0) tr(rate, "queue.rate", { n: Math.round(Number(room.admit_per_second)) });
  }

  async function run() {
    rejoin.hidden = true;
    tr(state, "queue.joining");
    state.dataset.state = "joining";
    const answer = await joinUntilAnswered();
    if (!answer) return;
    if (answer.state === "admitted" && answer.admission_token) return admitted(answer.admission_token);
    if (answer.state === "expired") return expired();
    const place = { ticket: answer.ticket, number: ticketNumber(answer.ticket), expired: false };
    render(answer);
    status.textContent = "";
    let backoff = POLL_MIN_MS;

    for (;;) {
      if (signal.aborted) return;
      let room;
      try {
        ({ data: room } = await api.queueStatus(signal));
        status.textContent = "";
        backoff = POLL_MIN_MS;
      } catch (error) {
        if (error?.name === "AbortError") return;
        if (!retryable(error)) throw error;
        tr(status, "queue.retrying");
        await sleep(waitFor(error, backoff), signal);
        backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
        continue;
      }
      const due = place.number === null ? room.opened : place.number <= room.admitted_through;
      if (due) {
        const token = await claim(place);
        if (token) return admitted(token, place.until);
        if (place.expired) return expired();
        session.setQueueState(place.ticket, aheadAtJoin);
        tr(ticketLine, "queue.ticket", { ticket: ticketLabel(place.ticket) });
        ticketLine.dataset.ticket = place.ticket;
      }
      renderStatus(place, room);
      await sleep(Math.max(POLL_MIN_MS, Number(room.poll_after_ms) || POLL_DEFAULT_MS), signal);
    }
  }

  function start() {
    run().catch((error) => {
      if (error?.name !== "AbortError" && !signal.aborted) scope.fail(error);
    });
  }

  rejoin.addEventListener("click", () => {
    clearMessage();
    session.clearQueueState();
    aheadAtJoin = 0;
    start();
  });

  document.title = `${t("queue.title")} · ${t("app.name")}`;
  loadShow().then((show) => {
    const card = showCard(show, { compact: true });
    if (card && !signal.aborted) showSlot.replaceChildren(card);
  });
  start();
  return () => clearInterval(openingTicker);
}

/** The place number a ticket carries (null for a ticket drawn at the opening). */
function ticketNumber(ticket) {
  const payload = ticketPayload(ticket);
  return Number.isInteger(payload?.n) ? payload.n : null;
}

function ticketPayload(ticket) {
  try {
    const body = String(ticket ?? "").split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(body + "=".repeat((4 - (body.length % 4)) % 4)));
  } catch {
    return null;
  }
}

/**
 * What to show for a ticket. The server's ticket is a signed token, base64url(JSON payload)
 * "." tag, whose payload carries the place number `n`; its first characters are the same for
 * everyone (the encoded `{"k":"ticket"`), so show "#n", or else the end of the token.
 */
function ticketLabel(ticket) {
  const number = ticketNumber(ticket);
  if (number !== null) return `#${number}`;
  const text = String(ticket ?? "");
  return text.length > 12 ? `…${text.slice(-12)}` : text;
}

function retryable(error) {
  return error instanceof ApiError && (error.status === 0 || error.status === 429 || error.status >= 500);
}

function waitFor(error, backoff) {
  if (error.retryAfterSeconds) return Math.max(POLL_MIN_MS, error.retryAfterSeconds * 1000);
  return backoff;
}
