// Log in and sign up, side by side. A new member is logged in right after signing up.

import { api, ApiError } from "../api.js";
import { field, h, txt } from "../dom.js";
import { showError, showMessage } from "../messages.js";
import { DEFAULT_HASH, go } from "../router.js";
import * as session from "../session.js";

// A fresh visitor goes through the waiting room first; it moves on to the seats by itself.
const AFTER_LOGIN_HASH = "#/queue";

function input(id, type, autocomplete, extra = {}) {
  return h("input", { id, name: id, type, autocomplete, required: true, maxlength: 64, spellcheck: "false", ...extra });
}

export function mount(root, _route, scope) {
  if (session.token()) {
    go(DEFAULT_HASH);
    return null;
  }

  const loginUser = input("login-username", "text", "username", { autocapitalize: "off" });
  const loginPass = input("login-password", "password", "current-password", { maxlength: 128 });
  const loginButton = h("button", { id: "login-button", type: "submit", class: "button primary", i18n: "login.button" });
  const loginForm = h(
    "form",
    { class: "card form", "aria-labelledby": "login-title" },
    txt("h1", "login.title", undefined, { id: "login-title" }),
    txt("p", "login.intro", undefined, { class: "muted" }),
    field("login.username", loginUser),
    field("login.password", loginPass),
    loginButton,
  );

  const signUser = input("signup-username", "text", "username", { autocapitalize: "off" });
  const signPass = input("signup-password", "password", "new-password", { maxlength: 128 });
  const signNick = input("signup-nickname", "text", "nickname");
  const signButton = h("button", { id: "signup-button", type: "submit", class: "button", i18n: "signup.button" });
  const signForm = h(
    "form",
    { class: "card form", "aria-labelledby": "signup-title" },
    txt("h2", "signup.title", undefined, { id: "signup-title" }),
    txt("p", "signup.intro", undefined, { class: "muted" }),
    field("login.username", signUser),
    field("login.password", signPass),
    field("signup.nickname", signNick),
    signButton,
  );

  root.append(h("div", { class: "auth" }, loginForm, signForm));
  loginUser.focus();

  let busy = false;

  async function logIn(username, password, welcomeKey) {
    const { data } = await api.logIn(username, password);
    session.setSession(data.token, data.member);
    if (scope.signal.aborted) return;
    const next = session.takeReturnTo();
    go(next && !next.startsWith("#/login") ? next : AFTER_LOGIN_HASH, {
      key: welcomeKey,
      params: { nickname: data.member.nickname || data.member.username },
      kind: "success",
      timeoutMs: 5000,
    });
  }

  async function submit(button, work) {
    if (busy) return;
    busy = true;
    loginButton.disabled = true;
    signButton.disabled = true;
    try {
      await work();
    } catch (error) {
      if (scope.signal.aborted) return;
      if (error instanceof ApiError && (error.status === 401 || error.status === 409 || error.status === 422 || error.status === 400)) {
        showError(error);
      } else {
        scope.fail(error);
      }
    } finally {
      busy = false;
      loginButton.disabled = false;
      signButton.disabled = false;
      if (!scope.signal.aborted) button.focus();
    }
  }

  loginForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!loginForm.reportValidity()) return;
    submit(loginButton, () => logIn(loginUser.value.trim(), loginPass.value, "login.welcome"));
  });

  signForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!signForm.reportValidity()) return;
    submit(signButton, async () => {
      const username = signUser.value.trim();
      await api.signUp(username, signPass.value, signNick.value.trim());
      showMessage("signup.done", { nickname: signNick.value.trim() }, { kind: "success" });
      await logIn(username, signPass.value, "signup.done");
    });
  });

  return null;
}
