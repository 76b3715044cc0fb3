// The one message area (#message): the current notice or error, in both languages.
// It carries data-kind (info / success / error) and data-code (the API error code, if any)
// so that a person and a browser test read the same thing.

import { ApiError } from "./api.js";
import { has, t, tr } from "./i18n.js";
import { h } from "./dom.js";

let box = null;
let hideTimer = null;

export function attachMessageArea(el) {
  box = el;
}

/** Show `key` (an i18n key) with params. options: kind, code, detail (raw text), timeoutMs. */
export function showMessage(key, params, options = {}) {
  if (!box) return;
  const { kind = "info", code = "", detail = "", timeoutMs = 0 } = options;
  clearTimeout(hideTimer);
  box.replaceChildren();
  box.hidden = false;
  box.dataset.kind = kind;
  box.dataset.code = code;
  box.setAttribute("role", kind === "error" ? "alert" : "status");
  const text = tr(h("span", { class: "message-text" }), key, params);
  // The × is drawn by CSS so that the area's text is the message alone.
  const close = h("button", { type: "button", class: "message-close", "aria-label": t("common.close"), title: t("common.close"), onclick: clearMessage });
  box.append(text);
  if (detail) box.append(h("span", { class: "message-detail" }, detail));
  box.append(close);
  if (timeoutMs) hideTimer = setTimeout(clearMessage, timeoutMs);
}

export function clearMessage() {
  if (!box) return;
  clearTimeout(hideTimer);
  box.replaceChildren();
  box.hidden = true;
  box.dataset.kind = "";
  box.dataset.code = "";
}

/** Clear the message only if it is still the one with this code (a recovered condition). */
export function clearMessageIf(code) {
  if (box && box.dataset.code === code) clearMessage();
}

/** The i18n key, params and raw detail that explain an error to a person. */
export function describeError(error) {
  if (!(error instanceof ApiError)) {
    return { key: "error.unexpected", params: {}, detail: String(error?.message || error || ""), code: "unexpected" };
  }
  const body = error.body || {};
  const params = {
    seconds: error.retryAfterSeconds ?? undefined,
    max: body.max_seats ?? body.max ?? undefined,
  };
  const key = `error.${error.code}`;
  if (has(key)) {
    const detail = error.code === "validation_error" ? error.message : "";
    return { key, params, detail, code: error.code };
  }
  const fallback =
    error.status === 0
      ? "error.network_error"
      : error.status >= 500
        ? "error.server_error"
        : { 401: "error.unauthorized", 403: "error.forbidden", 404: "error.not_found", 409: "error.conflict", 429: "error.rate_limited" }[
            error.status
          ] || "error.unexpected";
  return { key: fallback, params, detail: error.message && error.message !== error.code ? error.message : error.code, code: error.code };
}

export function showError(error) {
  const { key, params, detail, code } = describeError(error);
  showMessage(key, params, { kind: "error", code, detail });
}
