// The chapter editor: title, summary and text saved as the author types (autosave.js),
// with the chapter's ETag as If-Match, a live word count, a save indicator, and
// nothing typed ever lost:
// - every edit is copied to localStorage (a draft per tab) until the server has it;
// - text the server did not take (the chapter changed elsewhere, or a generation
//   started writing it) and drafts found on load are "kept copies": listed beside
//   the editor, in localStorage, until the author uses or discards them.

import { ApiError, api } from "./api.js";
import { Autosave } from "./autosave.js";
import { h, replace, toast, errorMessage } from "./dom.js";
import { t, formatDate, formatTime, wordsLabel } from "./i18n.js";
import { countWords } from "./wordcount.js";

const FIELDS = ["title", "summary", "content"];
const MAX_KEPT = 20;

export const chapterPath = (novelId, chapterId) => `/api/novels/${encodeURIComponent(novelId)}/chapters/${encodeURIComponent(chapterId)}`;

/** A request whose ETag matters: resolves {body, etag}, throws ApiError as api() does. */
export async function tagged(method, path, options = {}) {
  const response = await api(method, path, { ...options, raw: true });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return { body, etag: response.headers.get("ETag") };
}

function readJSON(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key) ?? "null") ?? fallback;
  } catch {
    return fallback;
  }
}

function writeJSON(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
    return true;
  } catch {
    return false; // storage full or refused: the page still works, the warning on leaving still holds
  }
}

/** This tab's id, kept across reloads (sessionStorage), so each tab has its own draft. */
function tabId() {
  try {
    let id = sessionStorage.getItem("novawrite:tab");
    if (!id) {
      id = crypto.randomUUID();
      sessionStorage.setItem("novawrite:tab", id);
    }
    return id;
  } catch {
    return "tab";
  }
}

/** The start of a text, on one line. */
const snippet = (text) => {
  const flat = String(text ?? "").replace(/\s+/g, " ").trim();
  return flat.length > 140 ? `${flat.slice(0, 140)}…` : flat;
};

const same = (a, b) => FIELDS.every((name) => (a?.[name] ?? "") === (b?.[name] ?? ""));

export class ChapterEditor {
  /**
   * onSaved(chapter): the server's chapter after a save; onCompare(kept): show a kept copy
   * against the current text; onTaskConflict(taskId): a save met a generation writing the chapter;
   * onUse(): a kept copy is going into the editor (the page shows the editor).
   */
  constructor({ novelId, chapterId, language, onSaved, onCompare, onTaskConflict, onUse }) {
    Object.assign(this, { novelId, chapterId, language, onSaved, onCompare, onTaskConflict, onUse });
    this.path = chapterPath(novelId, chapterId);
    this.form = document.getElementById("chapter-editor");
    this.fields = {
      title: document.getElementById("edit-chapter-title"),
      summary: document.getElementById("edit-chapter-summary"),
      content: document.getElementById("edit-chapter-content"),
    };
    this.statusBox = document.getElementById("save-status");
    this.wordsBox = document.getElementById("editor-words");
    this.titleError = document.getElementById("edit-chapter-title-error");
    this.lockBox = document.getElementById("editor-lock");
    this.conflictBox = document.getElementById("editor-conflict");
    this.keptBox = document.getElementById("kept-text");
    this.keptList = document.getElementById("kept-list");
    this.draftKey = `novawrite:draft:${chapterId}:${tabId()}`;
    this.keptKey = `novawrite:kept:${chapterId}`;
    this.locked = false;
    this.savedAt = null;
    this.autosave = new Autosave({
      read: () => this.values(),
      send: (changes, etag) => this.send(changes, etag),
      onState: (state, detail) => this.showState(state, detail),
    });

    for (const field of Object.values(this.fields)) field.addEventListener("input", () => this.edited());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.autosave.flush();
    });
    this.form.addEventListener("keydown", (event) => {
      if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
        event.preventDefault();
        this.autosave.flush();
      }
    });
    addEventListener("beforeunload", (event) => {
      if (!this.autosave.dirty) return;
      event.preventDefault();
      event.returnValue = "";
    });
    addEventListener("online", () => {
      if (this.autosave.state === "retrying") this.autosave.flush();
    });
    document.getElementById("conflict-load").addEventListener("click", () => this.loadLatest());
    document.getElementById("conflict-copy").addEventListener("click", () => this.copy(this.typed()));
    document.getElementById("conflict-download").addEventListener("click", () => this.download(this.typed()));
  }

  /** The fields as typed. */
  typed() {
    return Object.fromEntries(FIELDS.map((name) => [name, this.fields[name].value]));
  }

  /** The values to save: an empty title is not a title (the field says so) and stays as saved. */
  values() {
    const typed = this.typed();
    const title = typed.title.trim();
    return { ...typed, title: title || (this.autosave?.base.title ?? "") };
  }

  get etag() {
    return this.autosave.etag;
  }

  get dirty() {
    return this.autosave.dirty;
  }

  /** The server's chapter is the editor's now (first load, a generation's result, a restore). */
  load(chapter, etag) {
    for (const name of FIELDS) this.fields[name].value = chapter[name] ?? "";
    this.conflictBox.hidden = true;
    this.setLocked(false);
    this.autosave.reset(this.pick(chapter), etag);
    this.savedAt = null;
    this.updateWords();
    this.checkTitle();
  }

  pick(chapter) {
    return Object.fromEntries(FIELDS.map((name) => [name, chapter[name] ?? ""]));
  }

  edited() {
    this.autosave.edited();
    this.checkTitle();
    this.writeDraft();
    this.scheduleWords();
  }

  checkTitle() {
    const empty = !this.fields.title.value.trim();
    this.titleError.hidden = !empty;
    this.titleError.textContent = empty ? t("editor.title_required") : "";
    if (empty) this.fields.title.setAttribute("aria-invalid", "true");
    else this.fields.title.removeAttribute("aria-invalid");
  }

  async send(changes, etag) {
    const { body, etag: next } = await tagged("PATCH", this.path, { body: changes, headers: etag ? { "If-Match": etag } : {} });
    this.onSaved?.(body);
    return { etag: next };
  }

  // --- the indicator ------------------------------------------------------------------

  showState(state, detail) {
    const box = this.statusBox;
    box.hidden = false;
    box.dataset.state = state;
    if (state === "saved") {
      this.savedAt = new Date();
      this.removeDraft();
      box.textContent = t("editor.saved");
      box.title = t("editor.saved_at", { time: formatTime(this.savedAt) });
    } else {
      box.title = "";
      box.textContent = state === "invalid" ? t("editor.invalid", { reason: errorMessage(detail) }) : t(`editor.${state}`);
    }
    if (state === "conflict") this.showConflict();
    if (state === "locked" && detail?.code === "task_conflict") {
      this.setAside("generation");
      this.onTaskConflict?.(detail.error?.task_id);
    }
  }

  updateWords() {
    this.wordsFrame = null;
    this.wordsBox.textContent = wordsLabel(countWords(this.fields.content.value), this.language);
  }

  scheduleWords() {
    this.wordsFrame ??= requestAnimationFrame(() => this.updateWords());
  }

  // --- locked while a generation writes the chapter -------------------------------------

  /** A generation writes this chapter: unsaved text is set aside, the fields are read-only. */
  lock() {
    if (this.locked) return;
    this.setAside("generation");
    this.autosave.lock();
    this.setLocked(true);
  }

  setLocked(locked) {
    this.locked = locked;
    for (const field of Object.values(this.fields)) {
      field.readOnly = locked;
      if (locked) field.setAttribute("aria-readonly", "true");
      else field.removeAttribute("aria-readonly");
    }
    this.form.classList.toggle("is-locked", locked);
    this.lockBox.hidden = !locked;
  }

  /** The text being written, shown in the read-only editor as it streams. */
  showStreaming(text) {
    if (!this.locked) return;
    this.fields.content.value = text;
    this.scheduleWords();
  }

  // --- 412: changed elsewhere -------------------------------------------------------------

  showConflict() {
    this.conflictBox.hidden = false;
  }

  /** Load the server's version; what was typed becomes a kept copy first. */
  async loadLatest() {
    const button = document.getElementById("conflict-load");
    button.disabled = true;
    try {
      const { body, etag } = await tagged("GET", this.path);
      this.setAside("conflict");
      this.load(body, etag);
      this.onSaved?.(body);
      document.getElementById("kept-heading").focus();
    } catch (error) {
      toast(errorMessage(error), { kind: "error" });
    } finally {
      button.disabled = false;
    }
  }

  // --- drafts and kept copies -------------------------------------------------------------

  writeDraft() {
    if (this.locked) return;
    if (this.autosave.changes()) writeJSON(this.draftKey, { ...this.typed(), etag: this.etag, at: Date.now() });
    else this.removeDraft();
  }

  removeDraft() {
    try {
      localStorage.removeItem(this.draftKey);
    } catch {
      /* nothing stored */
    }
  }

  /**
   * On load: drafts of this chapter that the server never received (this tab's, after a
   * reload, or a closed tab's) become kept copies, offered back beside the editor. Call
   * before load(), which clears this tab's draft.
   */
  adoptDrafts(server, etag) {
    const prefix = `novawrite:draft:${this.chapterId}:`;
    const found = [];
    try {
      for (let i = 0; i < localStorage.length; i += 1) {
        const key = localStorage.key(i);
        if (key?.startsWith(prefix)) found.push(key);
      }
    } catch {
      return;
    }
    for (const key of found) {
      const draft = readJSON(key, null);
      localStorage.removeItem(key);
      if (draft && !same(draft, server)) this.keep({ ...draft, reason: draft.etag === etag ? "draft" : "draft_stale" });
    }
    // Copies the server has since caught up with need no offer.
    const kept = this.kept().filter((entry) => !same(entry, server));
    this.storeKept(kept);
    this.renderKept();
  }

  /** Unsaved text goes to the kept copies (reason: conflict | generation). */
  setAside(reason) {
    if (!this.autosave.changes()) return;
    this.keep({ ...this.typed(), etag: this.etag, at: Date.now(), reason });
    this.removeDraft();
    this.renderKept();
  }

  kept() {
    const list = readJSON(this.keptKey, []);
    return Array.isArray(list) ? list : [];
  }

  storeKept(list) {
    if (list.length) writeJSON(this.keptKey, list.slice(-MAX_KEPT));
    else localStorage.removeItem(this.keptKey);
  }

  keep(entry) {
    const list = this.kept().filter((other) => !same(other, entry));
    list.push({ id: crypto.randomUUID?.() ?? String(Date.now()), ...entry });
    this.storeKept(list);
  }

  discard(id) {
    this.storeKept(this.kept().filter((entry) => entry.id !== id));
    this.renderKept();
  }

  /** Put a kept copy into the editor; it is then saved like anything typed. */
  use(entry) {
    if (this.locked) return;
    this.setAside("replaced");
    for (const name of FIELDS) this.fields[name].value = entry[name] ?? "";
    this.storeKept(this.kept().filter((other) => other.id !== entry.id));
    this.renderKept();
    this.edited();
    this.updateWords();
    this.onUse?.();
    this.fields.content.focus();
  }

  renderKept() {
    const list = this.kept().sort((a, b) => b.at - a.at);
    this.keptBox.hidden = !list.length;
    replace(
      this.keptList,
      list.map((entry) => {
        const heading = entry.title || t("editor.untitled");
        return h(
          "li",
          { class: "kept-entry", dataset: { keptId: entry.id } },
          h("p", { class: "kept-what" }, h("strong", {}, heading), " · ", wordsLabel(countWords(entry.content), this.language), " · ", formatDate(new Date(entry.at).toISOString())),
          h("p", { class: "kept-snippet" }, snippet(entry.content)),
          h("p", { class: "hint" }, t(`editor.kept_${entry.reason}`)),
          h("div", { class: "kept-actions" },
            h("button", { type: "button", class: "btn btn-sm btn-primary", disabled: this.locked, onclick: () => this.use(entry) }, t("editor.kept_use")),
            h("button", { type: "button", class: "btn btn-sm", onclick: () => this.onCompare?.(entry) }, t("editor.kept_compare")),
            h("button", { type: "button", class: "btn btn-sm", onclick: () => this.copy(entry) }, t("editor.copy")),
            h("button", { type: "button", class: "btn btn-sm", onclick: () => this.download(entry) }, t("editor.download")),
            h("button", { type: "button", class: "btn btn-sm btn-danger", onclick: () => this.discard(entry.id) }, t("editor.kept_discard"))),
        );
      }),
    );
  }

  asText(values) {
    return [values.title, values.summary, values.content].filter((part) => part && part.trim()).join("\n\n");
  }

  async copy(values) {
    try {
      await navigator.clipboard.writeText(this.asText(values));
      toast(t("editor.copied"), { kind: "success" });
    } catch {
      toast(t("editor.copy_failed"), { kind: "error" });
    }
  }

  download(values) {
    const blob = new Blob([this.asText(values)], { type: "text/plain;charset=utf-8" });
    const url = URL.createObjectURL(blob);
    const link = h("a", { href: url, download: `${(values.title || "chapter").replace(/[\\/:*?"<>|]+/g, "_").slice(0, 80)}.txt`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
}
