// Log in and register: the API sets the session and CSRF cookies on login.

import { api, ApiError } from "./api.js";
import { showFormError, errorMessage } from "./dom.js";
import { t, locale } from "./i18n.js";
import { initLanguageSwitch } from "./shell.js";

/**
 * Where to go after logging in: ?next= when it resolves to a page of this origin,
 * else "/". Resolved the way the browser will resolve it rather than checked as a
 * string: URL parsers drop tabs and newlines and read a backslash as a slash, so
 * "/%09/evil.example" or "/%5Cevil.example" names another host.
 */
function nextUrl() {
  const next = new URLSearchParams(location.search).get("next");
  if (!next) return "/";
  let target;
  try {
    target = new URL(next, location.origin);
  } catch {
    return "/";
  }
  if (target.origin !== location.origin || target.protocol !== location.protocol) return "/";
  return target.pathname + target.search + target.hash;
}

/** "in 15 minutes" / "15分钟后" for a Retry-After header (seconds or an HTTP date); null when absent. */
function waitText(retryAfter) {
  if (!retryAfter) return null;
  let seconds = Number(retryAfter);
  if (!Number.isFinite(seconds)) seconds = (Date.parse(retryAfter) - Date.now()) / 1000;
  if (!Number.isFinite(seconds)) return null;
  seconds = Math.max(1, Math.ceil(seconds));
  const format = new Intl.RelativeTimeFormat(locale, { numeric: "always" });
  if (seconds < 60) return format.format(seconds, "second");
  if (seconds < 3600) return format.format(Math.ceil(seconds / 60), "minute");
  return format.format(Math.ceil(seconds / 3600), "hour");
}

/** Log in; a 429 (too many failed attempts) says how long to wait. */
async function login(username, password) {
  const response = await api("POST", "/api/auth/login", { body: { username, password }, authRedirect: false, raw: true });
  if (response.ok) return;
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const error = new ApiError(response.status, body);
  if (response.status === 429) {
    const wait = waitText(response.headers.get("Retry-After"));
    error.message = wait ? t("auth.too_many_attempts", { wait }) : t("error.too_many_attempts");
  }
  throw error;
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
      await login(username, password);
      location.assign(nextUrl());
    } catch (error) {
      let message;
      if (error.status === 401) message = t("auth.wrong_credentials");
      else if (error.status === 429) message = error.message;
      else message = errorMessage(error);
      showFormError(errorBox, { message });
      button.disabled = false;
    }
  });
  form.username.focus();
}
