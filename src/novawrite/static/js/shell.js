// What every signed-in page shares: the header (account menu, logout, language switch,
// notification permission, live indicator), the live hub, and the toast plus
// browser notification when any of the author's tasks finishes.

import { initAccountMenu } from "./account.js";
import { api } from "./api.js";
import { toast, errorMessage } from "./dom.js";
import { t, kindLabel } from "./i18n.js";
import { Live, getTask } from "./live.js";

export function initLanguageSwitch() {
  const button = document.getElementById("lang-switch");
  button?.addEventListener("click", () => {
    const next = button.dataset.switchTo === "en" ? "en" : "zh";
    document.cookie = `nw_lang=${next}; path=/; max-age=31536000; samesite=lax`;
    location.reload();
  });
}

function initNotifications() {
  const button = document.getElementById("notify-button");
  if (!button || !("Notification" in window)) return;
  const refresh = () => {
    button.hidden = Notification.permission !== "default";
  };
  refresh();
  // Asked from this click only, never on load.
  button.addEventListener("click", async () => {
    try {
      await Notification.requestPermission();
    } finally {
      refresh();
    }
  });
}

function initLiveIndicator(live) {
  const box = document.getElementById("live-indicator");
  if (!box) return;
  live.onMode((mode) => {
    if (mode === "idle") return;
    box.hidden = false;
    box.dataset.mode = mode;
    box.querySelector(".live-label").textContent = t(`live.${mode}`);
  });
}

function notify(title, body, tag) {
  if (document.visibilityState !== "hidden") return;
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  try {
    new Notification(title, { body, tag });
  } catch {
    // Some browsers allow notifications only from a service worker; the toast stays.
  }
}

async function announce(taskId, event, polled) {
  let task = polled; // a poll's answer is the whole task: no second request for it
  try {
    task ??= await getTask(taskId);
  } catch {
    task = null;
  }
  const kind = task ? kindLabel(task.task_type) : t("task.title");
  let text;
  if (event === "completed") text = t("notice.completed", { kind });
  else if (event === "failed") text = t("notice.failed", { kind, reason: task?.error?.message || "" });
  else text = t("notice.cancelled", { kind });
  const toastKind = event === "completed" ? "success" : event === "failed" ? "error" : "info";
  toast(text, { kind: toastKind, href: `/tasks/${encodeURIComponent(taskId)}` });
  notify("NovaWrite", text, `task-${taskId}`);
}

/**
 * Start the page: check the session (a 401 goes to /login), wire the header and
 * open the live hub. Returns {me, live}.
 */
export async function initShell() {
  initLanguageSwitch();
  initNotifications();
  let me;
  try {
    me = await api("GET", "/api/auth/me");
  } catch (error) {
    // No session (expired, or revoked by a logout or a password change elsewhere):
    // api() is already taking the page to /login; the page has nothing to start.
    if (error.status === 401) return new Promise(() => {});
    throw error;
  }
  initAccountMenu(me);
  const logout = document.getElementById("logout-button");
  if (logout) {
    logout.hidden = false;
    logout.addEventListener("click", async () => {
      try {
        await api("POST", "/api/auth/logout", { authRedirect: false });
      } catch (error) {
        if (error.status !== 401) toast(errorMessage(error), { kind: "error" });
      }
      location.assign("/login");
    });
  }
  const live = new Live();
  initLiveIndicator(live);
  // Announce each finished task once, however it was learnt (stream or polling).
  const announced = new Set();
  const known = new Map();
  live.on((update) => {
    if (update.kind === "snapshot") {
      for (const task of update.tasks) known.set(String(task.id), task.status);
      return;
    }
    const id = String(update.kind === "task" ? update.task.id : update.data.task_id);
    const status = update.kind === "task" ? update.task.status : update.data.status;
    const event = update.kind === "event" ? update.event : status;
    const before = update.kind === "task" ? update.previous : known.get(id);
    known.set(id, status);
    if (!["completed", "failed", "cancelled"].includes(event) || announced.has(id)) return;
    // A polled task seen finished on its first poll finished before we looked.
    if (update.kind === "task" && before === undefined) return;
    announced.add(id);
    announce(id, event, update.kind === "task" ? update.task : null);
  });
  return { me, live };
}
