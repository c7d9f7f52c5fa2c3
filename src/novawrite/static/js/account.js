// The account menu in the header: who is signed in, and the change-password form.
// A disclosure (button with aria-expanded) over a panel; Escape or a click outside
// closes it and gives the focus back to the button.

import { api } from "./api.js";
import { showFormError, errorMessage } from "./dom.js";
import { t } from "./i18n.js";

const FIELDS = ["current_password", "new_password", "repeat_password"];

function fieldError(name) {
  return document.getElementById(`${name.replace("_", "-")}-error`);
}

function markField(form, name, message) {
  const input = form.elements[name];
  const box = fieldError(name);
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
  box.hidden = !message;
  box.textContent = message || "";
}

function check(values) {
  const problems = {};
  if (!values.current_password) problems.current_password = t("account.current_required");
  if (values.new_password !== values.repeat_password) problems.repeat_password = t("account.mismatch");
  return problems;
}

/** Problems a 422 names, by field, in the page's language (the server speaks English). */
function serverProblems(error) {
  const problems = {};
  for (const detail of Array.isArray(error.details) ? error.details : []) {
    const field = String(detail.field || "").split(".").pop();
    if (field === "new_password") problems.new_password = t("account.new_invalid");
    else if (field === "current_password") problems.current_password = t("account.wrong_current");
  }
  return problems;
}

export function initAccountMenu(me) {
  const root = document.getElementById("account");
  const button = document.getElementById("account-button");
  const panel = document.getElementById("account-menu");
  const form = document.getElementById("password-form");
  if (!root || !button || !panel || !form) return;
  const formError = document.getElementById("password-error");
  const done = document.getElementById("password-done");
  const submit = document.getElementById("password-submit");

  root.hidden = false;
  document.getElementById("current-user").textContent = me.username;
  document.getElementById("account-who").textContent = t("account.signed_in_as", { name: me.username });
  button.setAttribute("aria-label", t("account.menu_named", { name: me.username }));

  const reset = () => {
    form.reset();
    for (const name of FIELDS) markField(form, name, null);
    showFormError(formError, null);
  };
  const setOpen = (open, { restoreFocus = true } = {}) => {
    if (open === !panel.hidden) return;
    panel.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) {
      done.textContent = "";
      form.elements.current_password.focus();
    } else {
      reset();
      if (restoreFocus) button.focus();
    }
  };

  button.addEventListener("click", () => setOpen(panel.hidden));
  document.getElementById("password-cancel").addEventListener("click", () => setOpen(false));
  root.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden) {
      event.preventDefault();
      setOpen(false);
    }
  });
  document.addEventListener("pointerdown", (event) => {
    if (!panel.hidden && !root.contains(event.target)) setOpen(false, { restoreFocus: false });
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(FIELDS.map((name) => [name, form.elements[name].value]));
    done.textContent = "";
    showFormError(formError, null);
    let problems = check(values);
    for (const name of FIELDS) markField(form, name, problems[name]);
    const first = FIELDS.find((name) => problems[name]);
    if (first) {
      form.elements[first].focus();
      return;
    }
    submit.disabled = true;
    try {
      await api("POST", "/api/auth/password", {
        body: { current_password: values.current_password, new_password: values.new_password },
        authRedirect: false,
      });
      reset();
      done.textContent = t("account.password_changed");
    } catch (error) {
      if (error.status === 401) {
        // Either the current password is wrong or the session itself has ended:
        // asking who we are tells them apart (and sends an ended session to /login).
        try {
          await api("GET", "/api/auth/me");
        } catch {
          return;
        }
        problems = { current_password: t("account.wrong_current") };
      } else if (error.status === 422) {
        problems = serverProblems(error);
      } else {
        problems = {};
      }
      for (const name of FIELDS) markField(form, name, problems[name]);
      const field = FIELDS.find((name) => problems[name]);
      if (field) form.elements[field].focus();
      else showFormError(formError, { message: errorMessage(error) });
    } finally {
      submit.disabled = false;
    }
  });
}
