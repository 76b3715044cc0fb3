// Formatting of times, money and countdowns. Server times are ISO-8601 UTC; the page shows
// them on the hall's clock (KST, Asia/Seoul), Korean style in Korean:
// "2026년 12월 24일 (목) 오후 7:00", money as "165,000원".

import { h } from "./dom.js";
import { getLang, t, tr } from "./i18n.js";

/** Milliseconds since the epoch for an ISO time; a time without a zone is taken as UTC. */
export function parseTime(value) {
  if (value === null || value === undefined || value === "") return NaN;
  if (typeof value === "number") return value < 1e12 ? value * 1000 : value;
  const text = String(value);
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(text);
  return Date.parse(hasZone ? text : `${text}Z`);
}

/** "2026. 12. 24. 오후 7:00:05" — a moment in a list or a log (KST). */
export function formatDateTime(value) {
  return t("fmt.datetime", { at: value });
}

/** "2026년 12월 24일 (목) 오후 7:00" — the show's start, as a ticket prints it. */
export function formatShowTime(value) {
  return t("fmt.show", { at: value });
}

/** A <span> showing a moment, re-translated when the language changes. */
export function timeSpan(value, key = "fmt.datetime", attrs = {}) {
  return tr(h("span", attrs), key, { at: value });
}

/** "165,000원" / "₩165,000". */
export function formatMoney(amount) {
  if (amount === null || amount === undefined || Number.isNaN(amount)) return "—";
  return t("money", { amount: Number(amount) });
}

/** "02:59" for 179.2 seconds (rounded up, so 0:00 appears only when time is really up). */
export function clockText(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

/** "1일 02:03:04" / "02:03:04" for a long countdown (the opening). */
export function longClockText(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  const d = Math.floor(s / 86400);
  const hms = [Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60), s % 60].map((x) => String(x).padStart(2, "0")).join(":");
  if (!d) return hms;
  return getLang() === "en" ? `${d} d ${hms}` : `${d}일 ${hms}`;
}

/** datetime-local input value (KST, the hall's clock) → ISO UTC string, or "" when empty. */
export function localInputToIso(value) {
  if (!value) return "";
  const withSeconds = value.length === 16 ? `${value}:00` : value;
  const ms = Date.parse(`${withSeconds}+09:00`);
  return Number.isNaN(ms) ? "" : new Date(ms).toISOString();
}
