// One chapter: its text, read or edited (editor.js: autosave with If-Match, drafts,
// kept copies), "Write this chapter" (overwrite confirmed when it has text), the
// text streaming in live while it is written (the editor read-only meanwhile),
// earlier revisions compared with the text and restored (revisions.js), and the
// unsaved text of the chapter's last task when it failed or was cancelled.

import { api } from "../api.js";
import { h, replace, toast, confirmDialog, showFormError, errorMessage, intOrUndefined, isTerminal, paragraphs } from "../dom.js";
import { t, formatDate, wordsLabel } from "../i18n.js";
import { KINDS } from "../kinds.js";
import { initShell } from "../shell.js";
import { getTask, taskUpdate } from "../live.js";
import { TaskCard } from "../taskcard.js";
import { TextFollower } from "../textstream.js";
import { ChapterEditor, chapterPath, tagged } from "../editor.js";
import { DiffDialog, RevisionList } from "../revisions.js";
import { RecapPanel, recapsChapter } from "../recap.js";

const novelId = document.body.dataset.novelId;
const chapterId = document.body.dataset.chapterId;
const root = document.getElementById("chapter-root");
const textBox = document.getElementById("chapter-text");
const form = document.getElementById("write-form");
const formError = document.getElementById("write-error");
const writeButton = document.getElementById("write-button");
const slot = document.getElementById("chapter-task");
const partialBox = document.getElementById("chapter-partial");
const editToggle = document.getElementById("edit-toggle");
const path = chapterPath(novelId, chapterId);
let novel = null;
let chapter = null;
let chapterEtag = null;
let editor = null;
let revisions = null;
let diffDialog = null;
let recap = null;
let live = null;
let current = null; // {card, follower, finished} of the task writing this chapter

function renderChapter() {
  const all = novel.volumes.flatMap((v) => v.chapters.map((c) => ({ ...c, volume: v })));
  const index = all.findIndex((c) => String(c.id) === String(chapter.id));
  const volume = all[index]?.volume;
  const label = t("novel.chapter_n", { n: chapter.number });
  document.title = `${label} ${chapter.title} · ${novel.title} · NovaWrite`;
  const crumb = document.getElementById("crumb-novel");
  crumb.textContent = novel.title;
  document.getElementById("crumb-chapter").textContent = `${label} ${chapter.title}`;
  document.getElementById("chapter-eyebrow").textContent = [volume ? `${t("novel.volume_n", { n: volume.number })} ${volume.title}` : null, label]
    .filter(Boolean)
    .join(" · ");
  document.getElementById("chapter-heading").textContent = chapter.title || label;
  const summary = document.getElementById("chapter-summary");
  summary.textContent = chapter.summary || "";
  summary.hidden = !chapter.summary || editing();
  for (const [id, target] of [["prev-chapter", all[index - 1]], ["next-chapter", all[index + 1]]]) {
    const link = document.getElementById(id);
    link.hidden = !target;
    if (target) {
      link.href = `/novels/${encodeURIComponent(novelId)}/chapters/${encodeURIComponent(target.id)}`;
      link.title = `${t("novel.chapter_n", { n: target.number })} ${target.title}`;
    }
  }
  if (!current || isTerminal(current.card.status)) renderSavedText();
  recap?.render(chapter);
  root.setAttribute("aria-busy", "false");
}

function renderSavedText() {
  textBox.classList.remove("streaming");
  textBox.removeAttribute("aria-busy");
  if (chapter.content) {
    replace(textBox, h("p", { class: "word-count muted" }, wordsLabel(chapter.word_count, novel.language)), paragraphs(chapter.content));
  } else {
    replace(textBox, h("p", { class: "empty-inline muted" }, t("chapter.empty")));
  }
}

function renderStreaming(text) {
  editor?.showStreaming(text);
  textBox.classList.add("streaming");
  textBox.setAttribute("aria-busy", "true");
  replace(textBox, paragraphs(text), h("span", { class: "caret", "aria-hidden": "true" }));
  if (!text) textBox.prepend(h("p", { class: "muted" }, t("chapter.waiting")));
}

function loadRevisions() {
  revisions?.load();
}

/**
 * After a recap task: the chapter's recap, and its new ETag for the editor when the
 * saved fields are still those the editor last had (a recap changes the ETag, not the text).
 */
async function reloadRecap() {
  const { body, etag } = await tagged("GET", path);
  chapter = { ...chapter, recap: body.recap, recap_stale: body.recap_stale };
  const autosave = editor.autosave;
  const same = Object.entries(editor.pick(body)).every(([name, value]) => autosave.base[name] === value);
  if (same && !autosave.inFlight && !autosave.blocked) {
    chapterEtag = etag;
    autosave.reset(editor.pick(body), etag);
  }
  return chapter;
}

async function reloadChapter() {
  let answer;
  [novel, answer] = await Promise.all([api("GET", `/api/novels/${encodeURIComponent(novelId)}`), tagged("GET", path)]);
  chapter = answer.body;
  chapterEtag = answer.etag;
}

// --- reading and editing ------------------------------------------------------------

const editing = () => editToggle.getAttribute("aria-pressed") === "true";

/** Edit mode shows the editor in place of the text; the URL keeps it (#edit) across reloads. */
function setEditing(on, { focus = true } = {}) {
  editToggle.setAttribute("aria-pressed", String(on));
  root.classList.toggle("is-editing", on);
  editor.form.hidden = !on;
  textBox.hidden = on;
  document.getElementById("chapter-summary").hidden = on || !chapter.summary;
  history.replaceState(history.state, "", on ? "#edit" : location.pathname + location.search);
  if (on && focus) editor.fields.content.focus();
  if (!on) editor.autosave.flush();
}

/** The server's chapter after a save: headings, read view and the novel's word counts follow. */
function saved(body) {
  chapter = { ...chapter, ...body };
  renderChapter();
}

/** Restore a revision from the list or the diff view: unsaved text is saved first, never replaced unseen. */
async function restore(revision) {
  if (editor.locked) throw new Error(t("editor.locked_short"));
  if (editor.dirty && !(await editor.autosave.flush())) throw new Error(t("editor.restore_unsaved"));
  let answer;
  try {
    answer = await tagged("POST", `${path}/revisions/${encodeURIComponent(revision.id)}/restore`, { headers: editor.etag ? { "If-Match": editor.etag } : {} });
  } catch (error) {
    if (error.status === 412) {
      await reloadChapter();
      editor.load(chapter, chapterEtag);
      renderChapter();
      throw new Error(t("editor.restore_changed"));
    }
    if (error.code === "task_conflict" && error.error?.task_id) adoptWriter(error.error.task_id);
    throw error;
  }
  chapter = answer.body;
  chapterEtag = answer.etag;
  editor.load(chapter, chapterEtag);
  renderChapter();
  loadRevisions();
  toast(t("revision.restored", { when: formatDate(revision.created_at) }), { kind: "success" });
}

/** A save or restore met a generation writing this chapter: follow it (the editor stays read-only until it ends). */
async function adoptWriter(taskId) {
  let task = null;
  try {
    task = taskId ? await getTask(taskId) : null;
  } catch {
    task = null;
  }
  if (task && !isTerminal(task.status)) {
    follow(task);
    return;
  }
  try {
    await reloadChapter(); // it finished meanwhile: its text is the chapter's
    editor.load(chapter, chapterEtag);
    renderChapter();
    loadRevisions();
  } catch (error) {
    toast(errorMessage(error), { kind: "error" });
  }
}

function compareKept(entry) {
  diffDialog.open({
    title: t("editor.kept_compare_title"),
    before: entry.content,
    after: editor.fields.content.value,
    beforeLabel: t("editor.kept_label"),
    afterLabel: t("revision.current_text"),
    action: editor.locked ? null : { label: t("editor.kept_use"), run: async () => editor.use(entry) },
  });
}

// --- the writing task ---------------------------------------------------------------

function follow(task) {
  const id = String(task.id);
  if (current?.card.id === id) {
    current.card.update(task);
    return;
  }
  const card = new TaskCard(task, { onRetry: (next) => follow(next), onDismiss: () => current?.card === card && hidePartial() });
  const follower = new TextFollower(id, (text) => {
    if (current?.follower === follower && !isTerminal(card.status)) renderStreaming(text);
  });
  // finished: finish() has run, or was not needed; the card itself may turn terminal first (Cancel on a pending task).
  current = { card, follower, finished: isTerminal(task.status) };
  replace(slot, card.el);
  hidePartial();
  if (isTerminal(task.status)) {
    showPartial();
    return;
  }
  live.watch(task);
  writeButton.disabled = true;
  editor.lock();
  renderStreaming("");
  follower.load();
}

async function finish(event) {
  const { card } = current;
  current.finished = true;
  writeButton.disabled = false;
  try {
    await reloadChapter();
  } catch (error) {
    toast(errorMessage(error), { kind: "error" });
  }
  if (current?.card !== card) return; // another task took over meanwhile
  editor.load(chapter, chapterEtag); // editable again, with the new text
  if (event === "completed") {
    renderChapter();
    loadRevisions();
    card.el.classList.add("task-card-done");
  } else {
    renderSavedText();
    showPartial();
  }
}

// --- the text a failed or cancelled task left ------------------------------------------

const STOPPED = new Set(["failed", "cancelled"]);

/** Show what the current task wrote before it failed or was cancelled (its /output), if anything. */
async function showPartial() {
  const { card, follower } = current;
  await follower.load();
  if (current?.card !== card || !card.el.isConnected || !STOPPED.has(card.status) || !follower.text) return;
  document.getElementById("partial-heading").textContent = t(`chapter.partial_${card.status}`);
  replace(document.getElementById("partial-text"), paragraphs(follower.text));
  partialBox.hidden = false;
}

function hidePartial() {
  partialBox.hidden = true;
  replace(document.getElementById("partial-text"));
}

/** The newest write task of this chapter. */
async function lastChapterTask() {
  const query = new URLSearchParams({ task_type: "write_chapter_content", chapter_id: chapterId, limit: "1" });
  const data = await api("GET", `/api/novels/${encodeURIComponent(novelId)}/tasks?${query}`);
  return data.items[0] ?? null;
}

/** On load: a last task that stopped before saving gets its card (Retry) and its text. */
async function followLastStopped() {
  let task = null;
  try {
    task = await lastChapterTask();
  } catch {
    return; // the page works without it
  }
  if (task && !current && STOPPED.has(task.status)) follow(task);
}

function onLive(update) {
  recap?.onLive(update);
  if (!current) {
    if (update.kind === "snapshot") {
      const task = update.tasks.find(isThisChapter);
      if (task) follow(task);
    } else if (update.kind === "task" && isThisChapter(update.task) && !isTerminal(update.task.status)) {
      follow(update.task);
    }
    return;
  }
  const { card, follower } = current;
  if (update.kind === "snapshot") {
    const task = update.tasks.find((item) => String(item.id) === card.id);
    if (task) {
      card.update(task);
      follower.load(); // chunks sent while the stream was down are in the output
    } else if (!current.finished) {
      getTask(card.id)
        .then((t2) => {
          card.update(t2);
          if (isTerminal(t2.status) && current.card === card && !current.finished) finish(t2.status);
        })
        .catch(() => {});
    } else {
      const other = update.tasks.find(isThisChapter);
      if (other) follow(other);
    }
    return;
  }
  const u = taskUpdate(update);
  if (!u || u.id !== card.id) {
    if (u && update.kind === "event" && update.event === "status" && isTerminal(card.status)) maybeAdopt(u.id);
    return;
  }
  if (current.finished) return;
  if (update.kind === "event" && update.event === "chunk") {
    follower.chunk(u.data.seq, u.data.text);
  } else if (update.kind === "task" && !isTerminal(u.status)) {
    follower.load(); // polling: no chunk events, fetch the text so far
  }
  card.update(u.state);
  if (isTerminal(u.status)) finish(u.event && isTerminal(u.event) ? u.event : u.status);
}

function isThisChapter(task) {
  return task.task_type === "write_chapter_content" && String(task.params?.chapter_id) === String(chapterId) && !isTerminal(task.status);
}

async function maybeAdopt(id) {
  // A new task, perhaps started for this chapter in another tab.
  try {
    const task = await getTask(id);
    if (isThisChapter(task)) follow(task);
  } catch {
    /* not ours to show */
  }
}

async function submit(overwrite) {
  const targetWords = intOrUndefined(form.target_words.value);
  if (targetWords === undefined || targetWords < 100 || targetWords > 20000) {
    showFormError(formError, { message: t("gen.range", { field: t("chapter.target_words"), min: 100, max: 20000 }) });
    form.target_words.focus();
    return;
  }
  const body = { novel_id: novel.id, chapter_id: chapter.id, target_words: targetWords, overwrite };
  const instructions = form.instructions.value.trim();
  if (instructions) body.instructions = instructions;
  showFormError(formError, null);
  writeButton.disabled = true;
  try {
    const task = await api("POST", KINDS.write_chapter_content.route, { body });
    follow(task);
  } catch (error) {
    writeButton.disabled = false;
    if (error.code === "chapter_has_content" && !overwrite) {
      if (await confirmOverwrite()) submit(true);
    } else if (error.code === "task_conflict" && error.error?.task_id) {
      toast(t("gen.already_running", { kind: t("kind.write_chapter_content") }));
      try {
        follow(await getTask(error.error.task_id));
      } catch {
        /* finished meanwhile */
      }
    } else {
      showFormError(formError, error);
    }
  }
}

function confirmOverwrite() {
  return confirmDialog({
    title: t("chapter.overwrite_title"),
    body: t("chapter.overwrite_body", { words: wordsLabel(chapter.word_count, novel.language) }),
    ok: t("chapter.overwrite_ok"),
  });
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!chapter) return;
  if (chapter.content || chapter.word_count > 0) {
    if (!(await confirmOverwrite())) return;
    submit(true);
  } else {
    submit(false);
  }
});

// --- start ------------------------------------------------------------------------

({ live } = await initShell());
live.on(onLive);
try {
  await reloadChapter();
} catch (error) {
  if (error.status === 404) {
    root.hidden = true;
    document.getElementById("chapter-missing").hidden = false;
  } else {
    toast(errorMessage(error), { kind: "error" });
  }
}
if (chapter) {
  editor = new ChapterEditor({
    novelId,
    chapterId,
    language: novel.language,
    onSaved: saved,
    onCompare: compareKept,
    onTaskConflict: adoptWriter,
    onUse: () => editing() || setEditing(true, { focus: false }),
  });
  recap = new RecapPanel({ novelId, chapterId, live, reload: reloadRecap });
  diffDialog = new DiffDialog(novel.language);
  revisions = new RevisionList({
    box: document.getElementById("revisions"),
    path,
    language: novel.language,
    dialog: diffDialog,
    current: () => editor.fields.content.value,
    restore,
  });
  const before = editor.kept().length;
  editor.adoptDrafts(chapter, chapterEtag);
  editor.load(chapter, chapterEtag);
  if (editor.kept().length > before) toast(t("editor.drafts_found"), { kind: "info", href: "#kept-heading" });
  editToggle.disabled = false;
  editToggle.addEventListener("click", () => setEditing(!editing()));
  if (location.hash === "#edit") setEditing(true, { focus: false });
  renderChapter();
  loadRevisions();
  try {
    const active = await api("GET", "/api/tasks/active");
    const task = active.items.find(isThisChapter);
    if (task) follow(task);
    const recapTask = active.items.find((item) => recapsChapter(item, chapterId));
    if (recapTask) recap.follow(recapTask);
  } catch {
    /* the live snapshot will bring it */
  }
  if (!current || isTerminal(current.card.status)) writeButton.disabled = false;
  live.start();
  if (!current) followLastStopped();
}
