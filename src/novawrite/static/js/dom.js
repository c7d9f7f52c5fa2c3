// Small DOM helpers shared by the pages: element building, toasts, a confirm
// dialog, progress bars, status badges, paragraphs and form errors.

import { t, statusLabel } from "./i18n.js";

/** h("a", {href: "/", class: "x"}, "text", child) -> element. Strings become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A text as paragraphs: one <p> per non-blank line. */
export function paragraphs(text) {
  return String(text || "")
    .split(/\n+/)
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => h("p", {}, line));
}

// --- toasts -------------------------------------------------------------------------

export function toast(message, { kind = "info", href = null, timeout = 6000 } = {}) {
  const region = document.getElementById("toasts");
  if (!region) return;
  const body = href ? h("a", { href }, message) : h("span", {}, message);
  const close = h("button", { type: "button", class: "toast-close", "aria-label": t("common.dismiss") }, "×");
  const item = h("div", { class: `toast toast-${kind}` }, body, close);
  const remove = () => item.remove();
  close.addEventListener("click", remove);
  region.append(item);
  if (timeout) setTimeout(remove, timeout);
}

// --- confirm dialog -----------------------------------------------------------------

/** Resolves true when the author confirms. Uses the layout's <dialog>. */
export function confirmDialog({ title, body, ok }) {
  const dialog = document.getElementById("confirm-dialog");
  dialog.querySelector(".dialog-title").textContent = title;
  dialog.querySelector(".confirm-body").textContent = body || "";
  dialog.querySelector(".confirm-ok").textContent = ok || t("common.ok");
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "cancel";
    dialog.showModal();
    dialog.querySelector(".confirm-ok").focus();
  });
}

// --- status ---------------------------------------------------------------------

/** Show a task's status on its badge. */
export function setStatusBadge(badge, status) {
  badge.className = `badge badge-${status}`;
  badge.textContent = statusLabel(status);
}

// --- progress -----------------------------------------------------------------------

export function progressBar(label) {
  return h(
    "div",
    { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": 0, "aria-label": label },
    h("div", { class: "progress-fill" }),
  );
}

export function setProgress(bar, percent, status) {
  const value = Math.max(0, Math.min(100, Math.round(percent || 0)));
  bar.setAttribute("aria-valuenow", String(value));
  bar.setAttribute("aria-valuetext", `${value}%`);
  bar.style.setProperty("--value", `${value}%`);
  if (status) bar.dataset.status = status;
}

// --- forms --------------------------------------------------------------------------

export function showFormError(el, error) {
  if (!error) {
    el.hidden = true;
    el.textContent = "";
    return;
  }
  el.hidden = false;
  el.textContent = errorMessage(error);
}

/** Show `message` in a field's error note and mark its inputs invalid; no message clears both. */
export function markInvalid(note, inputs, message) {
  note.hidden = !message;
  note.textContent = message ?? "";
  for (const input of inputs) {
    if (message) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", note.id);
    } else {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    }
  }
}

/** A readable message for an ApiError (or any error). */
export function errorMessage(error) {
  const code = error?.code;
  if (code === "validation_error" && Array.isArray(error.details) && error.details.length) {
    return error.details.map((d) => `${d.field}: ${d.message}`).join("; ");
  }
  if (code && t(`error.${code}`) !== `error.${code}`) return t(`error.${code}`);
  if (error?.status === undefined && error instanceof TypeError) return t("error.network");
  return error?.message || t("error.unknown");
}

export function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

export function intOrUndefined(value) {
  if (value === undefined || value === null || String(value).trim() === "") return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? Math.trunc(n) : undefined;
}

export const TERMINAL = new Set(["completed", "failed", "cancelled"]);
export const isTerminal = (status) => TERMINAL.has(status);
