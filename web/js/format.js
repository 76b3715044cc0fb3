// Formatting of times, money and countdowns. Server times are ISO-8601 UTC.

import { getLang } from "./i18n.js";

/** Milliseconds since the epoch for an ISO time; a time without a zone is taken as UTC. */
export function parseTime(value) {
  if (value === null || value === undefined || value === "") return NaN;
  if (typeof value === "number") return value < 1e12 ? value * 1000 : value;
  const text = String(value);
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(text);
  return Date.parse(hasZone ? text : `${text}Z`);
}

function locale() {
  return getLang() === "en" ? "en-GB" : "ko-KR";
}

export function formatDateTime(value) {
  const ms = parseTime(value);
  if (Number.isNaN(ms)) return "—";
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "medium" }).format(new Date(ms));
}

export function formatMoney(amount) {
  if (amount === null || amount === undefined || Number.isNaN(amount)) return "—";
  return `₩${Number(amount).toLocaleString("ko-KR")}`;
}

/** "02:59" for 179.2 seconds (rounded up, so 0:00 appears only when time is really up). */
export function clockText(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

/** datetime-local input value (local time) → ISO UTC string, or "" when empty. */
export function localInputToIso(value) {
  if (!value) return "";
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? "" : new Date(ms).toISOString();
}
