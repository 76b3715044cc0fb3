// A hash router: "#/bookings/abc" → {path: "/bookings/abc", name: "booking", params: {id: "abc"}}.
// `go(hash, notice)` navigates and carries a message to show on the next screen (the message
// area is otherwise cleared on every navigation).

const ROUTES = [
  { name: "login", pattern: /^\/login$/, public: true },
  { name: "queue", pattern: /^\/queue$/ },
  { name: "seats", pattern: /^\/seats$/ },
  { name: "bookings", pattern: /^\/bookings$/ },
  { name: "booking", pattern: /^\/bookings\/([^/]+)$/, keys: ["id"] },
  { name: "logs", pattern: /^\/admin\/logs$/ },
];

export const DEFAULT_HASH = "#/seats";

let onRoute = () => {};
let pendingNotice = null;

export function parse(hash) {
  const path = (hash || "").replace(/^#/, "").split("?")[0] || "/";
  for (const route of ROUTES) {
    const match = route.pattern.exec(path);
    if (!match) continue;
    const params = {};
    (route.keys || []).forEach((key, i) => {
      params[key] = decodeURIComponent(match[i + 1]);
    });
    return { name: route.name, path, params, public: Boolean(route.public) };
  }
  return { name: path === "/" ? "home" : "not_found", path, params: {}, public: path === "/" };
}

export function current() {
  return parse(location.hash);
}

/** Navigate to `hash`; `notice` ({key, params, kind, code, detail}) is shown on arrival. */
export function go(hash, notice = null) {
  pendingNotice = notice;
  if (location.hash === hash) onRoute(parse(hash));
  else location.hash = hash;
}

/** The notice handed over by the last `go`, once. */
export function takeNotice() {
  const notice = pendingNotice;
  pendingNotice = null;
  return notice;
}

export function startRouter(handler) {
  onRoute = handler;
  window.addEventListener("hashchange", () => onRoute(parse(location.hash)));
  onRoute(parse(location.hash));
}
