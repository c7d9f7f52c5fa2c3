// Log in and register: the API sets the session and CSRF cookies on login.

import { api } from "./api.js";
import { showFormError, errorMessage } from "./dom.js";
import { t } from "./i18n.js";
import { initLanguageSwitch } from "./shell.js";

function nextUrl() {
  const next = new URLSearchParams(location.search).get("next");
  // Only a path on this site: never "//host" or "https://...".
  return next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
}

function check(mode, username, password) {
  if (!/^[A-Za-z0-9_.-]{3,64}$/.test(username)) return t("auth.username_invalid");
  if (mode === "register" && (password.length < 8 || password.length > 256)) return t("auth.password_invalid");
  if (!password) return t("auth.password_required");
  return null;
}

export function initAuth(mode) {
  initLanguageSwitch();
  const form = document.getElementById("auth-form");
  const errorBox = document.getElementById("auth-error");
  const switchLink = document.getElementById("switch-link");
  if (switchLink && location.search) switchLink.href += location.search;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = form.username.value.trim();
    const password = form.password.value;
    const problem = check(mode, username, password);
    if (problem) {
      showFormError(errorBox, { message: problem });
      (problem === t("auth.username_invalid") ? form.username : form.password).focus();
      return;
    }
    showFormError(errorBox, null);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      if (mode === "register") await api("POST", "/api/auth/register", { body: { username, password }, authRedirect: false });
      await api("POST", "/api/auth/login", { body: { username, password }, authRedirect: false });
      location.assign(nextUrl());
    } catch (error) {
      const message = error.status === 401 ? t("auth.wrong_credentials") : errorMessage(error);
      showFormError(errorBox, { message });
      button.disabled = false;
    }
  });
  form.username.focus();
}
