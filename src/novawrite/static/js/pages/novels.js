// The novels list: create, open, delete; a badge on novels with running generations.

import { api } from "../api.js";
import { h, replace, toast, confirmDialog, showFormError, errorMessage, formValues, isTerminal } from "../dom.js";
import { t, formatDate } from "../i18n.js";
import { initShell } from "../shell.js";

const list = document.getElementById("novel-list");
const form = document.getElementById("create-novel");
const formError = document.getElementById("create-error");
let novels = [];
let active = new Map(); // task id -> Task (pending or running)

function render() {
  list.setAttribute("aria-busy", "false");
  if (!novels.length) {
    replace(list, h("div", { class: "empty card" }, h("p", {}, t("novels.empty"))));
    return;
  }
  replace(list, h("ul", { class: "cards" }, novels.map(card)));
}

function card(novel) {
  const running = [...active.values()].filter((task) => String(task.novel_id) === String(novel.id)).length;
  const meta = [novel.genre, novel.language === "en" ? "English" : "中文", t("novels.updated", { date: formatDate(novel.updated_at || novel.created_at) })]
    .filter(Boolean)
    .join(" · ");
  return h(
    "li",
    { class: "card novel-card", dataset: { novelId: String(novel.id) } },
    h("div", { class: "novel-card-head" },
      h("h3", {}, h("a", { href: `/novels/${encodeURIComponent(novel.id)}`, class: "stretched" }, novel.title)),
      running ? h("span", { class: "badge badge-running" }, t("novels.running", { n: running })) : null),
    h("p", { class: "novel-card-meta" }, meta),
    novel.synopsis ? h("p", { class: "novel-card-synopsis" }, novel.synopsis) : null,
    h("div", { class: "novel-card-actions" },
      h("button", { type: "button", class: "btn btn-sm btn-ghost btn-danger-text", "aria-label": t("novels.delete_named", { title: novel.title }), onclick: () => remove(novel) }, t("novels.delete"))),
  );
}

async function remove(novel) {
  const ok = await confirmDialog({ title: t("novels.delete_title", { title: novel.title }), body: t("novels.delete_body"), ok: t("novels.delete") });
  if (!ok) return;
  try {
    await api("DELETE", `/api/novels/${encodeURIComponent(novel.id)}`);
    novels = novels.filter((n) => n.id !== novel.id);
    render();
    toast(t("novels.deleted", { title: novel.title }), { kind: "success" });
  } catch (error) {
    toast(errorMessage(error), { kind: "error" });
  }
}

async function loadActive() {
  try {
    const data = await api("GET", "/api/tasks/active");
    active = new Map(data.items.map((task) => [String(task.id), task]));
    render();
  } catch {
    /* the badges are a nicety */
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const values = formValues(form);
  const title = values.title.trim();
  if (!title) {
    showFormError(formError, { message: t("novels.title_required") });
    form.title.focus();
    return;
  }
  showFormError(formError, null);
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const novel = await api("POST", "/api/novels", {
      body: { title, genre: values.genre.trim(), synopsis: values.synopsis.trim(), language: values.language },
    });
    location.assign(`/novels/${encodeURIComponent(novel.id)}`);
  } catch (error) {
    showFormError(formError, error);
    button.disabled = false;
  }
});

const { live } = await initShell();
try {
  novels = (await api("GET", "/api/novels")).items;
  render();
} catch (error) {
  replace(list, h("p", { class: "form-error" }, errorMessage(error)));
}
live.on((update) => {
  if (update.kind === "snapshot") {
    active = new Map(update.tasks.map((task) => [String(task.id), task]));
    render();
    return;
  }
  const id = String(update.kind === "task" ? update.task.id : update.data.task_id);
  const status = update.kind === "task" ? update.task.status : update.data.status;
  if (isTerminal(status) ? active.has(id) : !active.has(id)) loadActive();
});
live.start();
