// Writing a range of chapters in one batch (a write_chapters task): the dialog that
// starts it, and a card that follows it live: "n of total", the text of the chapter
// being written (its child task's chunks), each chapter's status, Cancel/Retry and
// the result. The batch's children are ordinary write_chapter_content tasks whose
// parent_id is the batch; they are listed again whenever the batch moves on or an
// unknown task speaks while the batch runs, so nothing is missed across reloads.

import { api } from "./api.js";
import { h, replace, toast, showFormError, markInvalid, errorMessage, intOrUndefined, isTerminal } from "./dom.js";
import { t, statusLabel } from "./i18n.js";
import { KINDS } from "./kinds.js";
import { getTask, taskUpdate } from "./live.js";
import { TaskCard } from "./taskcard.js";
import { TextFollower } from "./textstream.js";

const FIELDS = ["chapter_ids", "target_words", "max_tokens", "overwrite", "instructions"];

export class BatchPanel {
  /** novel(): the novel as shown; watch(task): follow a task live; changed(): the chapters changed. */
  constructor({ novelId, novel, watch, changed }) {
    Object.assign(this, { novelId: String(novelId), novel, watch, changed });
    this.button = document.getElementById("batch-button");
    this.slot = document.getElementById("batch-slot");
    this.dialog = document.getElementById("batch-dialog");
    this.form = document.getElementById("batch-form");
    this.error = document.getElementById("batch-error");
    this.batch = null; // the batch task followed
    this.card = null;
    this.children = new Map(); // chapter id -> child task (the newest for it)
    this.follower = null; // TextFollower of the running child
    this.refreshing = null;
    this.refreshAgain = false;
    this.button.addEventListener("click", () => this.open());
    document.getElementById("batch-cancel").addEventListener("click", () => this.dialog.close());
    this.dialog.addEventListener("close", () => this.button.focus());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    for (const select of [this.form.from, this.form.to]) select.addEventListener("change", () => this.summarize());
    // A field the author changes is no longer marked wrong.
    this.form.addEventListener("input", (event) => {
      const field = event.target.name === "from" || event.target.name === "to" ? "chapter_ids" : event.target.name;
      const note = FIELDS.includes(field) && document.getElementById(`batch-${field}-error`);
      if (!note || note.hidden) return;
      note.hidden = true;
      for (const input of this.inputsOf(field)) {
        input.removeAttribute("aria-invalid");
        input.removeAttribute("aria-describedby");
      }
      if (!this.form.querySelector(".field-error:not([hidden])")) showFormError(this.error, null);
    });
  }

  chapters() {
    return (this.novel()?.volumes ?? []).flatMap((v) => v.chapters);
  }

  /** Show the button once the novel has chapters. */
  render() {
    this.button.hidden = !this.chapters().length;
    if (this.batch) this.renderBatch();
  }

  // --- the dialog ---------------------------------------------------------------------

  open() {
    const chapters = this.chapters();
    if (!chapters.length) return;
    const options = () => chapters.map((c) => h("option", { value: String(c.id) }, `${t("novel.chapter_n", { n: c.number })} · ${c.title}`));
    replace(this.form.from, options());
    replace(this.form.to, options());
    const first = chapters.find((c) => !c.has_content) ?? chapters[0];
    this.form.from.value = String(first.id);
    this.form.to.value = String(chapters[chapters.length - 1].id);
    this.form.overwrite.checked = false;
    this.form.instructions.value = "";
    this.showErrors([]);
    showFormError(this.error, null);
    this.summarize();
    this.dialog.showModal();
    this.form.from.focus();
  }

  range() {
    const ids = this.chapters().map((c) => String(c.id));
    const from = ids.indexOf(this.form.from.value);
    const to = ids.indexOf(this.form.to.value);
    return from < 0 || to < from ? [] : ids.slice(from, to + 1).map(Number);
  }

  summarize() {
    const n = this.range().length;
    document.getElementById("batch-summary").textContent = n ? t("batch.summary", { n }) : t("batch.range_order");
  }

  /** Put each problem next to its field; the fields marked, in form order. */
  showErrors(details) {
    const messages = new Map();
    for (const detail of details) {
      const field = String(detail.field ?? "").split(".")[0];
      if (FIELDS.includes(field) && !messages.has(field)) messages.set(field, detail.message);
    }
    for (const field of FIELDS) {
      markInvalid(document.getElementById(`batch-${field}-error`), this.inputsOf(field), messages.get(field));
    }
    return FIELDS.filter((field) => messages.has(field));
  }

  inputsOf(field) {
    return field === "chapter_ids" ? [this.form.from, this.form.to] : [this.form.elements.namedItem(field)];
  }

  async submit() {
    const body = { novel_id: Number(this.novelId), chapter_ids: this.range(), overwrite: this.form.overwrite.checked };
    const problems = [];
    if (!body.chapter_ids.length) problems.push({ field: "chapter_ids", message: t("batch.range_order") });
    const words = intOrUndefined(this.form.target_words.value);
    if (words === undefined || words < 100 || words > 20000) problems.push({ field: "target_words", message: t("batch.words_range") });
    else body.target_words = words;
    if (this.form.max_tokens.value.trim()) {
      const budget = intOrUndefined(this.form.max_tokens.value);
      if (budget === undefined || budget < 1) problems.push({ field: "max_tokens", message: t("batch.budget_range") });
      else body.max_tokens = budget;
    }
    const instructions = this.form.instructions.value.trim();
    if (instructions) body.instructions = instructions;
    if (problems.length) {
      this.invalid(problems, { message: t("batch.invalid") });
      return;
    }
    this.showErrors([]);
    showFormError(this.error, null);
    const submit = document.getElementById("batch-submit");
    submit.disabled = true;
    try {
      const task = await api("POST", KINDS.write_chapters.route, { body });
      this.dialog.close();
      this.follow(task);
    } catch (error) {
      if (error.code === "task_conflict" && error.error?.task_id) {
        this.dialog.close();
        toast(t("batch.attached"), { kind: "info" });
        try {
          this.follow(await getTask(error.error.task_id));
        } catch {
          /* finished meanwhile */
        }
      } else if (error.code === "validation_error" && Array.isArray(error.details)) {
        this.invalid(error.details, error);
      } else {
        showFormError(this.error, error);
      }
    } finally {
      submit.disabled = false;
    }
  }

  invalid(details, summary) {
    const marked = this.showErrors(details);
    showFormError(this.error, marked.length === details.length ? { message: t("batch.invalid") } : summary);
    if (marked.length) this.inputsOf(marked[0])[0].focus();
  }

  // --- the card -----------------------------------------------------------------------

  /** The active or the latest batch of the novel, after a reload. */
  async restore() {
    try {
      const page = await api("GET", `/api/novels/${encodeURIComponent(this.novelId)}/tasks?task_type=write_chapters&limit=1`);
      if (page.items?.length && !this.batch) this.follow(page.items[0]);
    } catch {
      /* the live snapshot brings an active one */
    }
  }

  follow(task) {
    if (this.batch && this.card && String(task.id) === this.card.id) {
      if (!this.card.el.isConnected) replace(this.slot, this.card.el);
      this.updateBatch(task);
      return;
    }
    this.batch = task;
    this.children.clear();
    this.follower = null;
    this.card = new TaskCard(task, { onRetry: (next) => this.follow(next), onDismiss: () => this.forget() });
    this.count = h("p", { class: "batch-count" });
    this.result = h("p", { class: "batch-result", hidden: true });
    this.textHeading = h("h4", { class: "batch-text-title", id: `batch-text-${task.id}` });
    this.text = h("div", { class: "batch-text prose", role: "log", "aria-labelledby": this.textHeading.id, tabindex: "0" });
    this.textBox = h("div", { class: "batch-text-box", hidden: true }, this.textHeading, this.text);
    this.list = h("ol", { class: "batch-children", "aria-label": t("batch.children") });
    this.card.el.classList.add("batch-card");
    this.card.el.querySelector(".task-card-top").after(this.count);
    this.card.el.append(this.result, this.textBox, this.list);
    replace(this.slot, this.card.el);
    if (!isTerminal(task.status)) this.watch(task);
    this.renderBatch();
    this.refresh();
  }

  forget() {
    this.batch = null;
    this.card = null;
    this.follower = null;
  }

  updateBatch(state) {
    if (!this.card) return;
    const wasTerminal = isTerminal(this.card.status);
    this.card.update(state);
    if (isTerminal(this.card.status) && !isTerminal(this.batch.status)) this.batch.status = this.card.status;
    for (const key of ["result", "params", "status", "progress", "message"]) if (state[key] !== undefined && state[key] !== null) this.batch[key] = state[key];
    this.renderBatch();
    if (!wasTerminal && isTerminal(this.card.status)) {
      // The final word: the result, and every child's last status.
      getTask(this.card.id).then((task) => {
        Object.assign(this.batch, task);
        this.card?.update(task);
        this.refresh();
      }).catch(() => {});
      this.changed();
    }
  }

  /** The batch's chapters in reading order. */
  batchChapters() {
    const named = new Set((this.batch?.params?.chapter_ids ?? []).map(String));
    return this.chapters().filter((c) => named.has(String(c.id)));
  }

  renderBatch() {
    if (!this.card) return;
    const chapters = this.batchChapters();
    const result = this.batch.result ?? {};
    const written = new Set((result.written ?? []).map(String));
    const skipped = new Set((result.skipped ?? []).map(String));
    const total = (this.batch.params?.chapter_ids ?? []).length || chapters.length;
    let done = 0;
    for (const id of this.batch.params?.chapter_ids ?? []) {
      const key = String(id);
      if (written.has(key) || skipped.has(key) || this.children.get(key)?.status === "completed") done += 1;
    }
    this.count.textContent = t("batch.done_of", { n: done, total });
    this.result.hidden = !this.batch.result;
    this.result.textContent = this.batch.result ? t("batch.result", { written: written.size, skipped: skipped.size }) : "";
    const novelId = encodeURIComponent(this.novelId);
    replace(
      this.list,
      chapters.map((chapter) => {
        const child = this.children.get(String(chapter.id));
        const status = child?.status ?? (skipped.has(String(chapter.id)) ? "skipped" : "waiting");
        const label = child ? statusLabel(child.status) : t(`batch.${status}`);
        return h(
          "li",
          { class: "batch-child", dataset: { chapterId: String(chapter.id), status } },
          h("a", { href: `/novels/${novelId}/chapters/${encodeURIComponent(chapter.id)}` }, `${t("novel.chapter_n", { n: chapter.number })} · ${chapter.title}`),
          h("span", { class: `badge badge-${child ? child.status : "pending"}` }, label),
        );
      }),
    );
  }

  /** List the batch's children again (one request at a time, the last asked for runs after). */
  refresh() {
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    const batchId = this.card?.id;
    if (!batchId) return;
    this.refreshing = api("GET", `/api/novels/${encodeURIComponent(this.novelId)}/tasks?parent_id=${encodeURIComponent(batchId)}&limit=100`)
      .then((page) => {
        if (this.card?.id !== batchId) return;
        // Newest first: the oldest child of a chapter is overridden by its newer ones.
        for (const child of [...(page.items ?? [])].reverse()) this.takeChild(child);
        this.renderBatch();
      })
      .catch(() => {})
      .finally(() => {
        this.refreshing = null;
        if (this.refreshAgain) {
          this.refreshAgain = false;
          this.refresh();
        }
      });
  }

  takeChild(child) {
    const chapterId = String(child.params?.chapter_id ?? "");
    if (!chapterId) return;
    const known = this.children.get(chapterId);
    if (known && known.id === child.id && isTerminal(known.status) && !isTerminal(child.status)) return;
    this.children.set(chapterId, child);
    if (!isTerminal(child.status)) this.showText(child);
  }

  /** Follow the running child's text. */
  showText(child) {
    if (this.follower?.taskId === String(child.id)) return;
    const chapter = this.chapters().find((c) => String(c.id) === String(child.params?.chapter_id));
    this.textHeading.textContent = t("batch.current_text", { title: chapter ? `${t("novel.chapter_n", { n: chapter.number })} · ${chapter.title}` : "" });
    this.textBox.hidden = false;
    replace(this.text);
    this.follower = new TextFollower(child.id, (text) => {
      replace(this.text, text.split(/\n+/).filter((line) => line.trim()).map((line) => h("p", {}, line)));
      this.text.scrollTop = this.text.scrollHeight;
    });
    this.follower.load();
  }

  childOf(id) {
    for (const child of this.children.values()) if (String(child.id) === id) return child;
    return null;
  }

  /** The page's live updates: the batch, its children and the running child's chunks. */
  onLive(update) {
    if (update.kind === "snapshot") {
      for (const task of update.tasks) {
        if (task.task_type === "write_chapters" && String(task.novel_id) === this.novelId) this.follow(task);
      }
      if (this.card && !isTerminal(this.card.status)) {
        const active = update.tasks.find((task) => String(task.id) === this.card.id);
        if (!active) getTask(this.card.id).then((task) => this.updateBatch(task)).catch(() => {});
        this.follower?.load();
        this.refresh();
      }
      return;
    }
    const u = taskUpdate(update);
    if (!u || !this.card) {
      if (u?.task?.task_type === "write_chapters" && String(u.task.novel_id) === this.novelId && !isTerminal(u.status)) this.follow(u.task);
      return;
    }
    if (u.id === this.card.id) {
      this.updateBatch(u.state);
      this.refresh(); // the batch moved on: a child started or ended
      return;
    }
    const child = this.childOf(u.id);
    if (!child) {
      if (!isTerminal(this.card.status)) this.refresh(); // perhaps a child just started
      return;
    }
    if (update.kind === "event" && update.event === "chunk") {
      if (this.follower?.taskId === u.id) this.follower.chunk(u.data.seq, u.data.text);
      return;
    }
    if (update.kind === "task" && this.follower?.taskId === u.id) this.follower.load(); // polling: no chunks
    if (u.status && !(isTerminal(child.status) && !isTerminal(u.status))) child.status = u.status;
    this.renderBatch();
  }
}
