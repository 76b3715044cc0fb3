// The waiting room: join (POST /api/queue), then poll GET /api/queue?ticket=T at the server's
// suggested interval (poll_after_ms, never below 500 ms) until admitted or expired.
// progress = 1 - ahead / ahead_at_join, where ahead_at_join is remembered per ticket.

import { api, ApiError, sleep } from "../api.js";
import { h, txt } from "../dom.js";
import { t, tr } from "../i18n.js";
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
  const bar = h("div", { class: "progress-fill", style: "width: 0%" });
  const progress = h(
    "div",
    { id: "queue-progress", class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": 0 },
    bar,
  );
  const progressText = h("p", { class: "muted small", id: "queue-progress-text" });
  const eta = h("p", { id: "queue-eta", class: "queue-eta" });
  const state = h("p", { id: "queue-state", class: "queue-state", dataset: { state: "joining" } });
  const ticketLine = h("p", { id: "queue-ticket", class: "muted small" });
  const rejoin = h("button", { id: "queue-rejoin", type: "button", class: "button primary", hidden: true, i18n: "queue.rejoin" });
  const status = h("p", { class: "muted small", id: "queue-connection" });

  root.append(
    h(
      "section",
      { class: "card narrow queue" },
      txt("h1", "queue.title"),
      h("div", { class: "queue-counter" }, ahead, aheadLabel),
      aheadSentence,
      progress,
      progressText,
      eta,
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
    ahead.textContent = String(n);
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
  }

  function admitted(token) {
    session.setAdmissionToken(token);
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

  async function run() {
    rejoin.hidden = true;
    tr(state, "queue.joining");
    state.dataset.state = "joining";
    let backoff = POLL_MIN_MS;
    let answer = null;
    while (!signal.aborted && !answer) {
      try {
        answer = await join();
      } catch (error) {
        if (!retryable(error)) throw error;
        tr(status, "queue.retrying");
        await sleep(waitFor(error, backoff), signal);
        backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
      }
    }
    let ticket = answer.ticket;
    render(answer);
    status.textContent = "";
    backoff = POLL_MIN_MS;
    let firstPoll = true;

    for (;;) {
      if (signal.aborted) return;
      if (answer.state === "admitted" && answer.admission_token) return admitted(answer.admission_token);
      if (answer.state === "expired") return expired();
      if (answer.state === "waiting") {
        delete state.dataset.i18n;
        state.textContent = "";
      }
      // "admitted" without a token (the join answer) falls through to one poll, which carries it.
      const interval =
        answer.state === "admitted" && firstPoll ? 0 : Math.max(POLL_MIN_MS, Number(answer.poll_after_ms) || POLL_DEFAULT_MS);
      firstPoll = false;
      await sleep(interval, signal);
      try {
        const { data } = await api.pollQueue(ticket, signal);
        answer = { ...data, ticket };
        render(answer);
        status.textContent = "";
        backoff = POLL_MIN_MS;
      } catch (error) {
        if (error?.name === "AbortError") return;
        if (error instanceof ApiError && error.status === 404) {
          // The server no longer knows this ticket: join again (a new place at the end).
          session.clearQueueState();
          answer = await join();
          ticket = answer.ticket;
          render(answer);
          continue;
        }
        if (!retryable(error)) throw error;
        tr(status, "queue.retrying");
        await sleep(waitFor(error, backoff), signal);
        backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
      }
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

  document.title = `${t("queue.title")} · Encore`;
  start();
  return null;
}

/**
 * What to show for a ticket. The server's ticket is a signed token, base64url(JSON payload)
 * "." tag, whose payload carries the place number `n`; its first characters are the same for
 * everyone (the encoded `{"k":"ticket"`), so show "#n", or else the end of the token.
 */
function ticketLabel(ticket) {
  const text = String(ticket ?? "");
  try {
    const body = text.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
    const payload = JSON.parse(atob(body + "=".repeat((4 - (body.length % 4)) % 4)));
    if (Number.isInteger(payload?.n)) return `#${payload.n}`;
  } catch {
    /* not a token we can read: fall through */
  }
  return text.length > 12 ? `…${text.slice(-12)}` : text;
}

function retryable(error) {
  return error instanceof ApiError && (error.status === 0 || error.status === 429 || error.status >= 500);
}

function waitFor(error, backoff) {
  if (error.retryAfterSeconds) return Math.max(POLL_MIN_MS, error.retryAfterSeconds * 1000);
  return backoff;
}
