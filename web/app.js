// Entry module: the header, the router and the error policy shared by every screen.
//   401            → forget the session, back to the log-in screen
//   403 not_admitted → forget the admission, back to the waiting room
//   anything else  → a human message in #message (never a blank page)

import { api, ApiError } from "./js/api.js";
import { h, txt } from "./js/dom.js";
import { getLang, setLang, t, tr } from "./js/i18n.js";
import { attachMessageArea, clearMessage, showError, showMessage } from "./js/messages.js";
import { DEFAULT_HASH, current, go, startRouter, takeNotice } from "./js/router.js";
import * as session from "./js/session.js";
import { renderShowStrip } from "./js/show.js";
import * as bookingScreen from "./js/screens/booking.js";
import * as bookingsScreen from "./js/screens/bookings.js";
import * as loginScreen from "./js/screens/login.js";
import * as logsScreen from "./js/screens/logs.js";
import * as queueScreen from "./js/screens/queue.js";
import * as seatsScreen from "./js/screens/seats.js";

const SCREENS = {
  login: loginScreen,
  queue: queueScreen,
  seats: seatsScreen,
  bookings: bookingsScreen,
  booking: bookingScreen,
  logs: logsScreen,
};

const view = document.getElementById("view");
let unmount = null;

/** The error policy; screens hand every error they do not handle themselves to this. */
function fail(error) {
  if (error?.name === "AbortError") return;
  if (error instanceof ApiError && error.status === 401 && error.code !== "bad_credentials") {
    const here = location.hash;
    session.clearSession();
    if (here && !here.startsWith("#/login")) session.setReturnTo(here);
    go("#/login", { key: "auth.session_expired", kind: "error", code: error.code });
    return;
  }
  if (error instanceof ApiError && error.code === "not_admitted") {
    session.clearAdmission();
    const route = current();
    if (route.name === "booking") session.setAfterAdmission(location.hash);
    go("#/queue", { key: "error.not_admitted", kind: "error", code: "not_admitted" });
    return;
  }
  showError(error);
}

function renderHeader(route) {
  const me = session.member();
  const nav = document.getElementById("nav");
  const nickname = document.getElementById("member-nickname");
  const logout = document.getElementById("logout-button");
  nav.hidden = !me;
  nickname.hidden = !me;
  logout.hidden = !me;
  if (!me) {
    nav.replaceChildren();
    return;
  }
  const link = (hash, key, name) =>
    h("a", { href: hash, class: route.name === name ? "active" : "", "aria-current": route.name === name ? "page" : null }, txt("span", key));
  nav.replaceChildren(
    link("#/seats", "nav.seats", "seats"),
    link("#/bookings", "nav.bookings", "bookings"),
    link("#/admin/logs", me.role === "admin" ? "nav.logs.admin" : "nav.logs.mine", "logs"),
  );
  nickname.replaceChildren(h("span", { class: "member-name" }, me.nickname || me.username));
  if (me.role === "admin") nickname.append(txt("span", "nav.admin", undefined, { class: "badge" }));
  nickname.dataset.memberId = me.id;
  nickname.dataset.role = me.role;
}

/** One button: the other language's name, in that language ("English" / "한국어"). */
function renderLangToggle() {
  const toggle = document.getElementById("lang-toggle");
  const paint = () => {
    toggle.textContent = t("lang.other");
    toggle.lang = getLang() === "en" ? "ko" : "en";
    toggle.title = t("lang.switch");
    toggle.dataset.lang = getLang();
  };
  toggle.addEventListener("click", () => {
    setLang(getLang() === "en" ? "ko" : "en");
    paint();
  });
  paint();
  document.documentElement.lang = getLang();
}

function handleRoute(route) {
  if (unmount) {
    try {
      unmount();
    } catch (error) {
      console.error(error);
    }
    unmount = null;
  }
  clearMessage();
  const notice = takeNotice();

  if (route.name === "home") {
    go(session.token() ? DEFAULT_HASH : "#/login", notice);
    return;
  }
  if (!route.public && !session.token()) {
    session.setReturnTo(location.hash);
    go("#/login", notice || { key: "auth.required" });
    return;
  }
  if (route.name !== "queue") session.setAfterAdmission(null);
  renderHeader(route);
  if (notice) showMessage(notice.key, notice.params, notice);

  const screen = SCREENS[route.name];
  view.replaceChildren();
  view.dataset.screen = route.name;
  if (!screen) {
    view.append(
      h("section", { class: "card narrow" }, txt("h1", "common.not_found"), h("a", { href: DEFAULT_HASH, class: "button" }, txt("span", "common.go_home"))),
    );
    return;
  }
  const controller = new AbortController();
  const scope = { signal: controller.signal, fail, route };
  let cleanup = null;
  try {
    cleanup = screen.mount(view, route, scope);
  } catch (error) {
    console.error(error);
    fail(error);
  }
  unmount = () => {
    controller.abort();
    if (typeof cleanup === "function") cleanup();
  };
}

async function refreshMember() {
  if (!session.token()) return;
  try {
    const { data } = await api.me();
    if (data) {
      session.setMember(data);
      renderHeader(current());
    }
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) fail(error);
  }
}

function start() {
  attachMessageArea(document.getElementById("message"));
  renderLangToggle();
  tr(document.getElementById("logout-button"), "nav.logout");
  tr(document.getElementById("brand-name"), "app.name");
  tr(document.getElementById("footer-text"), "app.footer");
  renderShowStrip(document.getElementById("show-strip"));
  document.getElementById("logout-button").addEventListener("click", () => {
    session.clearSession();
    go("#/login", { key: "auth.logged_out", kind: "info" });
  });
  window.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    fail(event.reason);
  });
  window.addEventListener("error", (event) => {
    if (event.error) showError(event.error);
  });
  // For browser tests: select a seat by id through the same path as a click on the canvas.
  window.encore = seatsScreen.testApi;
  startRouter(handleRoute);
  refreshMember();
}

start();
