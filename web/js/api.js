// The one way the page talks to the server: JSON over fetch, bearer token, problem bodies
// turned into ApiError, and Idempotency-Key handling for the two writes that need it.

import * as session from "./session.js";

/** A refused or failed request. `status` 0 means the network failed before any answer. */
export class ApiError extends Error {
  constructor({ status, code, message, body = null, retryAfterSeconds = null }) {
    super(message || code);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.body = body;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

const CODE_BY_STATUS = {
  400: "validation_error",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  409: "conflict",
  422: "validation_error",
  429: "rate_limited",
};

// ---- server clock: countdowns use the server's time when the two clocks disagree

let clockOffsetMs = 0;
const CLOCK_SKEW_TOLERANCE_MS = 2000; // the Date header has one-second resolution

function noteServerDate(response) {
  const header = response.headers.get("Date");
  if (!header) return;
  const server = Date.parse(header);
  if (Number.isNaN(server)) return;
  const offset = server - Date.now();
  clockOffsetMs = Math.abs(offset) > CLOCK_SKEW_TOLERANCE_MS ? offset : 0;
}

/** Milliseconds since the epoch by the server's clock (as well as we know it). */
export function serverNow() {
  return Date.now() + clockOffsetMs;
}

// ---- requests

function retryAfter(response) {
  const value = response.headers.get("Retry-After");
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.round((at - Date.now()) / 1000));
}

/**
 * Send one request. Resolves `{status, data, headers}` for 2xx and 304 (data null on 304/204),
 * rejects with ApiError otherwise.
 *
 * options: method, body (JSON), auth (default true), admission (send X-Admission-Token),
 *          idempotencyKey, headers, signal, cache.
 */
export async function request(path, options = {}) {
  const { method = "GET", body, auth = true, admission = false, idempotencyKey, signal, cache } = options;
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) {
    const bearer = session.token();
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
  }
  if (admission) {
    const admissionToken = session.admissionToken();
    if (!admissionToken) {
      throw new ApiError({ status: 403, code: "not_admitted", message: "no admission token in this tab" });
    }
    headers["X-Admission-Token"] = admissionToken;
  }
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;

  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: cache || "no-store",
      credentials: "same-origin",
    });
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    throw new ApiError({ status: 0, code: "network_error", message: String(error?.message || error) });
  }
  noteServerDate(response);

  if (response.status === 304 || response.status === 204) {
    return { status: response.status, data: null, headers: response.headers };
  }
  const text = await response.text().catch(() => "");
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.ok) return { status: response.status, data, headers: response.headers };

  const code =
    (data && typeof data.code === "string" && data.code) ||
    CODE_BY_STATUS[response.status] ||
    (response.status >= 500 ? "server_error" : `http_${response.status}`);
  let message = data && typeof data.message === "string" ? data.message : "";
  if (!message && data && data.detail) message = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
  throw new ApiError({
    status: response.status,
    code,
    message: message || response.statusText || code,
    body: data,
    retryAfterSeconds: retryAfter(response),
  });
}

export const get = (path, options) => request(path, { ...options, method: "GET" });
export const post = (path, body, options) => request(path, { ...options, method: "POST", body });
export const del = (path, options) => request(path, { ...options, method: "DELETE" });

export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new DOMException("aborted", "AbortError"));
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new DOMException("aborted", "AbortError"));
      },
      { once: true },
    );
  });
}

// ---- idempotency keys
//
// One key per user action. The key is kept while the action's outcome is unknown (in flight,
// network failure, 5xx, 429, idempotency_in_flight) so that pressing the button again — or a
// reload — retries the *same* action and the server answers the first result again. It is
// dropped once the server gave a definite answer, so the next action gets a fresh key.
// A second call for an action that is still running joins the running one (double click).

const IDEMPOTENCY_STORE = "encore.idempotency";
const IN_FLIGHT_RETRIES_MAX = 10;
const IN_FLIGHT_RETRY_MS = 600;
const UNKNOWN_RETRIES_MAX = 2; // network failure or 502/503/504: the same key makes a retry safe
const UNKNOWN_RETRY_MS = [800, 2000];
const RETRY_AFTER_MAX_SECONDS = 5;
const running = new Map();

export function uuid() {
  if (globalThis.crypto?.randomUUID) {
    try {
      return crypto.randomUUID();
    } catch {
      /* not a secure context: fall through */
    }
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function loadKeys() {
  try {
    return JSON.parse(sessionStorage.getItem(IDEMPOTENCY_STORE) || "{}");
  } catch {
    return {};
  }
}

function saveKeys(keys) {
  try {
    sessionStorage.setItem(IDEMPOTENCY_STORE, JSON.stringify(keys));
  } catch {
    /* kept in memory through `running` for this action at least */
  }
}

/** The key for `action` with this exact `body`: the pending one if it matches, else a new one. */
export function idempotencyKey(action, body) {
  const keys = loadKeys();
  const signature = JSON.stringify(body);
  const pending = keys[action];
  if (pending && pending.signature === signature) return pending.key;
  const key = uuid();
  keys[action] = { key, signature };
  saveKeys(keys);
  return key;
}

export function settleIdempotencyKey(action) {
  const keys = loadKeys();
  if (action in keys) {
    delete keys[action];
    saveKeys(keys);
  }
}

function retriable(error) {
  if (!(error instanceof ApiError)) return false;
  if (error.status === 429) return error.retryAfterSeconds != null && error.retryAfterSeconds <= RETRY_AFTER_MAX_SECONDS;
  return error.status === 0 || error.status === 502 || error.status === 503 || error.status === 504;
}

function outcomeUnknown(error) {
  return (
    error instanceof ApiError &&
    (error.status === 0 || error.status >= 500 || error.status === 429 || error.code === "idempotency_in_flight")
  );
}

/**
 * Run `send(key)` as one idempotent user action. `action` names it ("hold",
 * "pay:<booking id>"); `body` is what is sent. Retries with the same key on
 * `idempotency_in_flight`, and a couple of times when the outcome is unknown (network
 * failure, 502/503/504, a short 429); joins an identical call already running.
 */
export function idempotent(action, body, send) {
  const signature = `${action} ${JSON.stringify(body)}`;
  const current = running.get(action);
  if (current && current.signature === signature) return current.promise;

  const promise = (async () => {
    const key = idempotencyKey(action, body);
    let unknownRetries = 0;
    for (let attempt = 0; ; attempt += 1) {
      try {
        const result = await send(key);
        settleIdempotencyKey(action);
        return result;
      } catch (error) {
        if (error instanceof ApiError && error.code === "idempotency_in_flight" && attempt < IN_FLIGHT_RETRIES_MAX) {
          await sleep(IN_FLIGHT_RETRY_MS);
          continue;
        }
        if (retriable(error) && unknownRetries < UNKNOWN_RETRIES_MAX) {
          const waitMs = error.retryAfterSeconds != null ? error.retryAfterSeconds * 1000 : UNKNOWN_RETRY_MS[unknownRetries];
          unknownRetries += 1;
          await sleep(Math.max(IN_FLIGHT_RETRY_MS, waitMs));
          continue;
        }
        if (!outcomeUnknown(error)) settleIdempotencyKey(action);
        throw error;
      }
    }
  })();
  running.set(action, { signature, promise });
  promise.then(
    () => running.get(action)?.promise === promise && running.delete(action),
    () => running.get(action)?.promise === promise && running.delete(action),
  );
  return promise;
}

// ---- the calls (paths and bodies as in docs/API.md)

export const api = {
  signUp: (username, password, nickname) => post("/api/members", { username, password, nickname }, { auth: false }),
  logIn: (username, password) => post("/api/sessions", { username, password }, { auth: false }),
  me: () => get("/api/me"),

  joinQueue: () => post("/api/queue", {}),
  // the same bytes for everyone, answered by the HTTP cache: sent without Authorization
  queueStatus: (signal) => get("/api/queue/status", { signal, auth: false }),
  claimAdmission: (ticket) => post("/api/queue/admission", { ticket }),

  show: () => get("/api/show", { cache: "default", auth: false }),
  venue: () => get("/api/venue", { cache: "default" }),
  seats: (etag, signal) => get("/api/seats", { signal, headers: etag ? { "If-None-Match": etag } : {} }),

  hold: (seatIds) => {
    const body = { seat_ids: [...seatIds].sort((a, b) => a - b) };
    return idempotent("hold", body, (key) => post("/api/holds", body, { admission: true, idempotencyKey: key }));
  },
  release: (bookingId) => del(`/api/holds/${encodeURIComponent(bookingId)}`),
  pay: (bookingId, provider) => {
    const body = { provider };
    return idempotent(`pay:${bookingId}`, body, (key) =>
      post(`/api/bookings/${encodeURIComponent(bookingId)}/payments`, body, { admission: true, idempotencyKey: key }),
    );
  },
  booking: (bookingId, signal) => get(`/api/bookings/${encodeURIComponent(bookingId)}`, { signal }),
  myBookings: (signal) => get("/api/me/bookings", { signal }),

  adminLogs: (query) => get(`/api/admin/logs${queryString(query)}`),
  adminDashboard: (signal) => get("/api/admin/dashboard", { signal }),
  myLogs: (query) => get(`/api/me/logs${queryString(query)}`),
};

function queryString(query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}
