// Task history with filters (status, kind, novel), rows updated live.

import { api } from "../api.js";
import { h, replace, errorMessage, isTerminal } from "../dom.js";
import { t } from "../i18n.js";
import { initShell } from "../shell.js";
import { TaskLookup, taskUpdate } from "../live.js";
import { TaskRow } from "../taskrow.js";

const filters = document.getElementById("task-filters");
const listBox = document.getElementById("task-list");
const more = document.getElementById("load-more");
const rows = new Map(); // task id -> TaskRow
const seen = new Set(); // task ids looked up (new tasks from the stream)
let titles = new Map(); // novel id -> title
let list = null;
let cursor = null;
let generation = 0;
let live = null;

function currentFilters() {
  const query = {};
  for (const name of ["status", "task_type", "novel_id"]) {
    const value = filters.elements[name].value;
    if (value) query[name] = value;
  }
  return query;
}

function matches(task) {
  const f = currentFilters();
  return (!f.status || f.status === task.status) && (!f.task_type || f.task_type === task.task_type) && (!f.novel_id || String(task.novel_id) === f.novel_id);
}

function addRow(task, where = "append") {
  const row = new TaskRow(task, titles.get(String(task.novel_id)));
  rows.set(row.id, row);
  if (!list) {
    list = h("ul", { class: "task-rows" });
    replace(listBox, list);
  }
  if (where === "prepend") list.prepend(row.el);
  else list.append(row.el);
  if (!isTerminal(task.status)) live.watch(task);
}

async function load(reset) {
  const mine = reset ? ++generation : generation;
  if (reset) {
    rows.clear();
    list = null;
    cursor = null;
    listBox.setAttribute("aria-busy", "true");
  }
  const query = new URLSearchParams({ ...currentFilters(), limit: "20" });
  if (cursor) query.set("cursor", cursor);
  let page;
  try {
    page = await api("GET", `/api/tasks?${query}`);
  } catch (error) {
    replace(listBox, h("p", { class: "form-error" }, errorMessage(error)));
    return;
  }
  if (mine !== generation) return;
  listBox.setAttribute("aria-busy", "false");
  if (reset && !page.items.length) {
    replace(listBox, h("div", { class: "empty card" }, h("p", {}, t("tasks.empty"))));
  }
  for (const task of page.items) if (!rows.has(String(task.id))) addRow(task);
  cursor = page.next_cursor;
  more.hidden = !cursor;
}

function syncUrl() {
  const query = new URLSearchParams(currentFilters()).toString();
  history.replaceState(null, "", query ? `/tasks?${query}` : "/tasks");
}

const lookups = new TaskLookup();

async function learn(id, update = null) {
  seen.add(id);
  const { task, newer } = await lookups.fetch(id, update);
  if (task && !rows.has(id) && matches(task)) {
    addRow(task, "prepend");
    if (newer) onLive(newer); // it moved on (or finished) meanwhile
  }
}

function onLive(update) {
  if (update.kind === "snapshot") {
    for (const task of update.tasks) {
      const row = rows.get(String(task.id));
      if (row) row.update(task);
      else if (!seen.has(String(task.id)) && matches(task)) {
        seen.add(String(task.id));
        learn(String(task.id));
      }
    }
    return;
  }
  const u = taskUpdate(update);
  if (!u) return;
  const row = rows.get(u.id);
  if (row) {
    // A filter on status: the row keeps showing where the task went.
    row.update(u.state);
  } else if (lookups.has(u.id)) {
    lookups.hold(u.id, update);
  } else if (!seen.has(u.id)) {
    learn(u.id, update);
  }
}

async function start() {
  const params = new URLSearchParams(location.search);
  ({ live } = await initShell());
  try {
    const novels = (await api("GET", "/api/novels")).items;
    titles = new Map(novels.map((n) => [String(n.id), n.title]));
    const select = filters.elements.novel_id;
    for (const n of novels) select.append(h("option", { value: String(n.id) }, n.title));
  } catch {
    /* the filter just lists no novels */
  }
  for (const name of ["status", "task_type", "novel_id"]) {
    const value = params.get(name);
    const select = filters.elements[name];
    if (value && [...select.options].some((o) => o.value === value)) select.value = value;
  }
  filters.addEventListener("change", () => {
    syncUrl();
    load(true);
  });
  filters.addEventListener("submit", (event) => event.preventDefault());
  more.addEventListener("click", () => load(false));
  live.on(onLive);
  await load(true);
  live.start();
}

start();
