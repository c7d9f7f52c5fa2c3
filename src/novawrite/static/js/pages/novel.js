// The novel workspace: its fields (editable in place), outline and
// volume/chapter tree, characters, world settings, timeline, foreshadowing; a
// Generate action per kind whose task is followed live in its section, and the
// section refreshed when it completes. Edit mode (noveledit.js) edits the outline,
// volumes, chapters and list items in place.

import { api } from "../api.js";
import { h, replace, toast, showFormError, markInvalid, paragraphs, errorMessage, intOrUndefined, isTerminal } from "../dom.js";
import { t, kindLabel, wordsLabel } from "../i18n.js";
import { KINDS } from "../kinds.js";
import { initShell } from "../shell.js";
import { TaskLookup, getTask, taskUpdate } from "../live.js";
import { TaskCard } from "../taskcard.js";
import { NovelEditing } from "../noveledit.js";
import { BatchPanel } from "../batch.js";

const novelId = document.body.dataset.novelId;
const root = document.getElementById("novel-root");
let novel = null;
let live = null;
const cards = new Map(); // task_type -> TaskCard (the section's current task)
const chapterTasks = new Map(); // chapter id -> Task-like {id, status, progress}
const mine = new Map(); // task id -> task_type, for tasks of this novel
const others = new Set(); // task ids known to belong to another novel
const editing = new NovelEditing({
  novelId,
  novel: () => novel,
  reload: (section) => reloadNovel(section),
  setNovel: (next, section) => {
    if (next) novel = next;
    renderSection(section);
  },
});

const batch = new BatchPanel({
  novelId,
  novel: () => novel,
  watch: (task) => live.watch(task),
  changed: () => reloadNovel("chapter"),
});

// --- rendering --------------------------------------------------------------------

function emptyState(key) {
  return h("p", { class: "empty-inline muted" }, t(key));
}

function renderHeader() {
  document.title = `${novel.title} · NovaWrite`;
  document.getElementById("novel-title").textContent = novel.title;
  document.getElementById("crumb-novel").textContent = novel.title;
  const chapters = novel.volumes.reduce((n, v) => n + v.chapters.length, 0);
  const written = novel.volumes.reduce((n, v) => n + v.chapters.filter((c) => c.has_content).length, 0);
  const words = novel.volumes.reduce((n, v) => n + v.chapters.reduce((m, c) => m + (c.word_count || 0), 0), 0);
  const meta = [
    novel.genre,
    novel.language === "en" ? "English" : "中文",
    chapters ? t("novel.chapters_written", { written, total: chapters }) : null,
    words ? wordsLabel(words, novel.language) : null,
  ].filter(Boolean);
  document.getElementById("novel-meta").textContent = meta.join(" · ");
  const synopsis = document.getElementById("novel-synopsis");
  synopsis.textContent = novel.synopsis || "";
  synopsis.hidden = !novel.synopsis;
  document.getElementById("novel-tasks-link").href = `/tasks?novel_id=${encodeURIComponent(novel.id)}`;
  recapAllButton.hidden = !written;
  batch.render();
}

// --- recaps of the written chapters ---------------------------------------------------

const recapAllButton = document.getElementById("recap-all-button");

/** The chapters with text whose recap is missing or older than their text. */
function chaptersToRecap() {
  return novel.volumes.flatMap((v) => v.chapters).filter((c) => c.has_content && (!c.recap || c.recap_stale));
}

recapAllButton.addEventListener("click", async () => {
  const chapters = chaptersToRecap();
  if (!chapters.length) {
    toast(t("recap.all_none"), { kind: "info" });
    return;
  }
  recapAllButton.disabled = true;
  try {
    attach(await api("POST", "/api/ai/recap-chapters", { body: { novel_id: novel.id, chapter_ids: chapters.map((c) => c.id) } }));
  } catch (error) {
    if (error.code === "task_conflict" && error.error?.task_id) learnConflict(String(error.error.task_id));
    else toast(errorMessage(error), { kind: "error" });
  } finally {
    recapAllButton.disabled = false;
  }
});

function renderOutline() {
  const box = document.getElementById("outline-text");
  replace(document.getElementById("outline-tools"), editing.outlineTools());
  box.classList.remove("is-editing");
  if (!novel.outline) {
    replace(box, emptyState("novel.outline_empty"));
    box.classList.remove("clamped");
    editing.reattach(box);
    return;
  }
  const toggle = h("button", { type: "button", class: "btn btn-ghost btn-sm outline-toggle", "aria-expanded": "false" }, t("novel.show_more"));
  const body = h("div", { class: "outline-body" }, paragraphs(novel.outline));
  replace(box, body, toggle);
  box.classList.add("clamped");
  toggle.addEventListener("click", () => {
    const open = box.classList.toggle("clamped") === false;
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = open ? t("novel.show_less") : t("novel.show_more");
  });
  requestAnimationFrame(() => {
    toggle.hidden = body.scrollHeight <= body.clientHeight + 4 && box.classList.contains("clamped");
  });
  editing.reattach(box);
}

function renderTree() {
  const tree = document.getElementById("volume-tree");
  if (!novel.volumes.length) {
    replace(tree, emptyState("novel.tree_empty"));
    return;
  }
  replace(
    tree,
    novel.volumes.map((volume) =>
      h(
        "section",
        { class: "volume", "aria-label": t("novel.volume_n", { n: volume.number }) },
        h("div", { class: "volume-head", dataset: { editKey: `volume:${volume.id}` } },
          h("h4", { class: "volume-title" }, h("span", { class: "volume-number" }, t("novel.volume_n", { n: volume.number })), volume.title),
          volume.summary ? h("p", { class: "volume-summary muted" }, volume.summary) : null,
          editing.volumeTools(volume)),
        h("ol", { class: "chapter-list" }, volume.chapters.map((chapter) => chapterItem(chapter, volume))),
        editing.addChapterTools(volume),
      ),
    ),
  );
  editing.reattach(tree);
}

function chapterItem(chapter, volume) {
  const task = chapterTasks.get(String(chapter.id));
  const running = task && !isTerminal(task.status);
  const status = running
    ? h("span", { class: "badge badge-running chapter-writing" }, t("novel.writing", { p: Math.round(task.progress || 0) }))
    : chapter.has_content
      ? h("span", { class: "chapter-words" }, wordsLabel(chapter.word_count, novel.language))
      : h("span", { class: "chapter-words muted" }, t("novel.not_written"));
  return h(
    "li",
    { class: "chapter-item", dataset: { chapterId: String(chapter.id), editKey: `chapter:${chapter.id}` } },
    h("a", { href: `/novels/${encodeURIComponent(novel.id)}/chapters/${encodeURIComponent(chapter.id)}` },
      h("span", { class: "chapter-number" }, t("novel.chapter_n", { n: chapter.number })),
      h("span", { class: "chapter-title" }, chapter.title)),
    status,
    editing.on && chapter.summary ? h("p", { class: "chapter-summary-line muted" }, chapter.summary) : null,
    editing.chapterTools(chapter, volume),
  );
}

const LISTS = {
  characters: (c) => [h("div", { class: "item-head" }, h("strong", {}, c.name), c.role ? h("span", { class: "tag" }, c.role) : null), c.description ? h("p", {}, c.description) : null],
  world_settings: (w) => [h("div", { class: "item-head" }, h("strong", {}, w.name), w.category ? h("span", { class: "tag" }, w.category) : null), w.description ? h("p", {}, w.description) : null],
  timeline_events: (e) => [h("div", { class: "item-head" }, e.time_label ? h("span", { class: "tag tag-time" }, e.time_label) : null, h("strong", {}, e.title)), e.description ? h("p", {}, e.description) : null],
  foreshadowings: (f) => foreshadowingItem(f),
};

/** A thread: title, status and overdue badge, "Planted in chapter N → payoff in chapter M" (linked), description. */
function foreshadowingItem(f) {
  const status = f.status ? (t(`foreshadowing.${f.status}`) === `foreshadowing.${f.status}` ? f.status : t(`foreshadowing.${f.status}`)) : null;
  const chapterLink = (id, number) =>
    id !== null && id !== undefined && number !== null && number !== undefined
      ? h("a", { href: `/novels/${encodeURIComponent(novel.id)}/chapters/${encodeURIComponent(id)}`, class: "thread-chapter" }, t("novel.chapter_n", { n: number }))
      : h("span", { class: "muted" }, t("foreshadowing.no_chapter"));
  return [
    h("div", { class: "item-head" },
      h("strong", {}, f.title),
      status ? h("span", { class: `tag tag-${f.status}` }, status) : null,
      f.overdue ? h("span", { class: "badge badge-overdue" }, t("foreshadowing.overdue"), h("span", { class: "visually-hidden" }, ` (${t("foreshadowing.overdue_hint")})`)) : null),
    h("p", { class: "thread-chapters" },
      `${t("foreshadowing.planted_in")} `, chapterLink(f.planted_chapter_id, f.planted_chapter),
      h("span", { "aria-hidden": "true" }, " → "),
      `${t("foreshadowing.payoff_in")} `, chapterLink(f.payoff_chapter_id, f.payoff_chapter)),
    f.description ? h("p", {}, f.description) : null,
  ];
}

function renderList(section) {
  const list = document.getElementById(`list-${section}`);
  const items = novel[section] || [];
  editing.renderAdd(section);
  if (!items.length) {
    replace(list, h("li", { class: "empty-inline muted" }, t(`novel.${section}_empty`)));
    return;
  }
  replace(
    list,
    items.map((item) => h("li", { class: "item", dataset: { editKey: `${section}:${item.id}` } }, LISTS[section](item), editing.itemTools(section, item))),
  );
  editing.reattach(list);
}

function renderSection(section) {
  if (section === "outline") {
    renderOutline();
    renderTree();
  } else if (section === "chapter") {
    renderTree();
  } else {
    renderList(section);
  }
  renderHeader();
}

function renderAll() {
  renderHeader();
  renderOutline();
  renderTree();
  for (const section of Object.keys(LISTS)) renderList(section);
  root.setAttribute("aria-busy", "false");
  for (const button of document.querySelectorAll(".generate-button")) button.disabled = false;
  editButton.disabled = false;
  editModeButton.disabled = false;
}

/** Edit mode on or off: the sections re-render with or without their tools. */
async function setEditMode(on) {
  if (!(await editing.setMode(on))) return;
  editModeButton.setAttribute("aria-pressed", String(on));
  root.classList.toggle("is-edit-mode", on);
  document.getElementById("edit-mode-hint").hidden = !on;
  renderOutline();
  renderTree();
  for (const section of Object.keys(LISTS)) renderList(section);
}

async function reloadNovel(section) {
  try {
    novel = await api("GET", `/api/novels/${encodeURIComponent(novelId)}`);
  } catch (error) {
    toast(errorMessage(error), { kind: "error" });
    return;
  }
  if (section) renderSection(section);
  else renderAll();
}

// --- tasks ------------------------------------------------------------------------

function slotOf(taskType) {
  return document.querySelector(`.task-slot[data-kind="${taskType}"]`);
}

/** Show a task of this novel where it belongs and follow it. */
function attach(task) {
  const id = String(task.id);
  mine.set(id, task.task_type);
  live.watch(task);
  if (task.task_type === "write_chapters") {
    batch.follow(task);
    return;
  }
  if (task.task_type === "write_chapter_content") {
    const chapterId = String(task.params?.chapter_id ?? "");
    if (chapterId) {
      chapterTasks.set(chapterId, { id, status: task.status, progress: task.progress });
      renderTree();
    }
    return;
  }
  const slot = slotOf(task.task_type);
  if (!slot) return;
  const current = cards.get(task.task_type);
  if (current && current.id === id) {
    current.update(task);
    return;
  }
  const card = new TaskCard(task, {
    onRetry: (next) => attach(next),
    onDismiss: () => cards.get(task.task_type) === card && cards.delete(task.task_type),
  });
  cards.set(task.task_type, card);
  replace(slot, card.el);
}

function onTaskState(id, state, terminalEvent) {
  const taskType = mine.get(id);
  if (!taskType || taskType === "write_chapters") return; // the batch card follows its own
  if (taskType === "write_chapter_content") {
    for (const [chapterId, task] of chapterTasks) {
      if (task.id !== id) continue;
      Object.assign(task, { status: state.status ?? task.status, progress: state.progress ?? task.progress });
      const item = document.querySelector(`.chapter-item[data-chapter-id="${CSS.escape(chapterId)}"] .chapter-writing`);
      if (item && !isTerminal(task.status)) item.textContent = t("novel.writing", { p: Math.round(task.progress || 0) });
      if (isTerminal(task.status)) {
        chapterTasks.delete(chapterId);
        if (terminalEvent === "completed") reloadNovel("chapter");
        else renderTree();
      }
    }
    return;
  }
  const card = cards.get(taskType);
  if (card && card.id === id) card.update(state);
  if (terminalEvent === "completed") {
    reloadNovel(KINDS[taskType]?.section).then(() => {
      // The result is in the section now; the finished card has done its job.
      if (cards.get(taskType) === card) {
        card.el.classList.add("task-card-done");
        setTimeout(() => cards.get(taskType) === card && (card.el.remove(), cards.delete(taskType)), 8000);
      }
    });
  }
}

const lookups = new TaskLookup();

async function learn(id, update) {
  // A task we have not seen (started in another tab): is it this novel's?
  others.add(id);
  const { task, newer } = await lookups.fetch(id, update);
  if (!task || String(task.novel_id) !== String(novelId)) return;
  others.delete(id);
  if (!isTerminal(task.status)) {
    attach(task);
    if (newer) onLive(newer); // it moved on (or finished) meanwhile
  } else if (task.status === "completed") {
    mine.set(id, task.task_type);
    if (task.task_type === "write_chapter_content") reloadNovel("chapter");
    else reloadNovel(KINDS[task.task_type]?.section);
  }
}

function onLive(update) {
  batch.onLive(update);
  if (update.kind === "snapshot") {
    const activeIds = new Set();
    for (const task of update.tasks) {
      activeIds.add(String(task.id));
      if (String(task.novel_id) === String(novelId)) attach(task);
    }
    // Tasks we followed that finished while the stream was down: look them up.
    for (const [id] of mine) {
      const card = [...cards.values()].find((c) => c.id === id);
      const chapterTask = [...chapterTasks.values()].find((c) => c.id === id);
      const status = card?.status ?? chapterTask?.status;
      if (!activeIds.has(id) && status && !isTerminal(status)) {
        getTask(id)
          .then((task) => onTaskState(id, task, task.status))
          .catch(() => {});
      }
    }
    return;
  }
  const u = taskUpdate(update);
  if (!u) return;
  if (!mine.has(u.id)) {
    if (lookups.has(u.id)) lookups.hold(u.id, update);
    else if (!others.has(u.id) && !isTerminal(u.status)) learn(u.id, update);
    return;
  }
  const terminal = isTerminal(u.status) ? (u.event && isTerminal(u.event) ? u.event : u.status) : null;
  onTaskState(u.id, u.state, terminal);
}

// --- the Generate dialog -------------------------------------------------------------

const dialog = document.getElementById("generate-dialog");
const form = document.getElementById("generate-form");
const formError = document.getElementById("generate-error");
let dialogKind = null;
let opener = null;

function openGenerate(kind, button) {
  dialogKind = kind;
  opener = button;
  const spec = KINDS[kind];
  document.getElementById("generate-title").textContent = t("gen.title", { kind: kindLabel(kind) });
  form.querySelector('[data-for="generate_outline"]').hidden = kind !== "generate_outline";
  const countField = form.querySelector('[data-for="count"]');
  countField.hidden = !spec.countMax;
  if (spec.countMax) {
    form.count.max = String(spec.countMax);
    form.count.value = String(spec.countDefault);
  }
  const note = document.getElementById("generate-note");
  const regenerating = kind === "generate_outline" && novel?.outline;
  note.hidden = !regenerating;
  note.textContent = regenerating ? t("gen.outline_regenerate_note") : "";
  form.instructions.value = "";
  showFormError(formError, null);
  dialog.showModal();
  (kind === "generate_outline" ? form.volumes : spec.countMax ? form.count : form.instructions).focus();
}

function readRange(input, min, max) {
  const value = intOrUndefined(input.value);
  if (value === undefined || value < min || value > max) {
    throw Object.assign(new Error(t("gen.range", { field: input.labels[0].textContent, min, max })), { input });
  }
  return value;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const kind = dialogKind;
  const spec = KINDS[kind];
  const body = { novel_id: novel.id };
  try {
    if (kind === "generate_outline") {
      body.volumes = readRange(form.volumes, 1, 20);
      body.chapters_per_volume = readRange(form.chapters_per_volume, 1, 100);
    } else if (spec.countMax) {
      body.count = readRange(form.count, 1, spec.countMax);
    }
  } catch (error) {
    showFormError(formError, { message: error.message });
    error.input?.focus();
    return;
  }
  const instructions = form.instructions.value.trim();
  if (instructions) body.instructions = instructions;
  const submit = document.getElementById("generate-submit");
  submit.disabled = true;
  try {
    const task = await api("POST", spec.route, { body });
    dialog.close();
    attach(task);
  } catch (error) {
    if (error.code === "task_conflict" && error.error?.task_id) {
      dialog.close();
      toast(t("gen.already_running", { kind: kindLabel(kind) }), { kind: "info" });
      learnConflict(String(error.error.task_id));
    } else {
      showFormError(formError, error);
    }
  } finally {
    submit.disabled = false;
  }
});

async function learnConflict(id) {
  try {
    attach(await getTask(id));
  } catch {
    /* finished meanwhile */
  }
}

document.getElementById("generate-cancel").addEventListener("click", () => dialog.close());
dialog.addEventListener("close", () => opener?.focus());
for (const button of document.querySelectorAll(".generate-button")) {
  button.addEventListener("click", () => openGenerate(button.dataset.kind, button));
}

// --- editing the novel's fields -------------------------------------------------------

const EDITABLE = ["title", "genre", "synopsis", "language"];
const editButton = document.getElementById("edit-novel-button");
const editBox = document.getElementById("novel-edit");
const editForm = document.getElementById("edit-form");
const editError = document.getElementById("edit-error");
const editSubmit = document.getElementById("edit-submit");

const editInput = (name) => editForm.elements.namedItem(name);

function showEdit(open) {
  editBox.hidden = !open;
  editButton.setAttribute("aria-expanded", String(open));
  if (!open) {
    editButton.focus();
    return;
  }
  for (const name of EDITABLE) editInput(name).value = novel[name] ?? "";
  showFieldErrors([]);
  showFormError(editError, null);
  editInput("title").focus();
}

/** The fields the author changed, trimmed as the create form trims them. */
function changedFields() {
  const body = {};
  for (const name of EDITABLE) {
    const value = name === "language" ? editInput(name).value : editInput(name).value.trim();
    if (value !== (novel[name] ?? "")) body[name] = value;
  }
  return body;
}

/** Put each 422 detail next to its field; returns the fields marked, in form order. */
function showFieldErrors(details) {
  const messages = new Map(details.map((detail) => [String(detail.field), detail.message]));
  for (const name of EDITABLE) {
    markInvalid(document.getElementById(`edit-${name}-error`), [editInput(name)], messages.get(name));
  }
  return EDITABLE.filter((name) => messages.has(name));
}

function showEditError(error) {
  const details = error.code === "validation_error" && Array.isArray(error.details) ? error.details : [];
  const marked = showFieldErrors(details);
  // Details that belong to no field of the form stay in the summary.
  const summary = marked.length && marked.length === details.length ? { message: t("novel.edit_invalid") } : error;
  showFormError(editError, summary);
  if (marked.length) editInput(marked[0]).focus();
}

editForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = changedFields();
  if (!Object.keys(body).length) {
    showEdit(false);
    return;
  }
  editSubmit.disabled = true;
  try {
    novel = await api("PATCH", `/api/novels/${encodeURIComponent(novelId)}`, { body });
  } catch (error) {
    showEditError(error);
    return;
  } finally {
    editSubmit.disabled = false;
  }
  showEdit(false);
  renderHeader();
  renderTree(); // word counts read differently once the language changed
  toast(t("novel.saved"), { kind: "success" });
});

editButton.addEventListener("click", () => showEdit(editBox.hidden));
const editModeButton = document.getElementById("edit-mode-button");
editModeButton.addEventListener("click", () => setEditMode(!editing.on));
document.getElementById("edit-cancel").addEventListener("click", () => showEdit(false));

// --- start ------------------------------------------------------------------------

({ live } = await initShell());
live.on(onLive);
try {
  novel = await api("GET", `/api/novels/${encodeURIComponent(novelId)}`);
} catch (error) {
  if (error.status === 404 || error.code === "not_found") {
    root.hidden = true;
    document.getElementById("novel-missing").hidden = false;
    document.getElementById("crumb-novel").textContent = t("novel.not_found_short");
  } else {
    toast(errorMessage(error), { kind: "error" });
  }
}
if (novel) {
  renderAll();
  try {
    const active = await api("GET", "/api/tasks/active");
    for (const task of active.items) if (String(task.novel_id) === String(novel.id)) attach(task);
  } catch {
    /* the live snapshot will bring them */
  }
  await batch.restore();
  live.start();
}
