// The chapter page's recap: what happens in the chapter, as the model summed it up
// for the chapters after it, with a note when the text changed since, and a button
// that (re)writes it through a recap_chapters task, followed live like any task.

import { api } from "./api.js";
import { h, replace, toast, errorMessage, isTerminal } from "./dom.js";
import { t } from "./i18n.js";
import { getTask, taskUpdate } from "./live.js";
import { TaskCard } from "./taskcard.js";

const ROUTE = "/api/ai/recap-chapters";

/** True for an unfinished recap_chapters task that covers this chapter. */
export function recapsChapter(task, chapterId) {
  return task.task_type === "recap_chapters" && !isTerminal(task.status) && (task.params?.chapter_ids ?? []).map(String).includes(String(chapterId));
}

export class RecapPanel {
  /** live: the page's Live; reload(): the chapter as the server has it now. */
  constructor({ novelId, chapterId, live, reload }) {
    Object.assign(this, { novelId, chapterId, live, reload });
    this.box = document.getElementById("recap-text");
    this.stale = document.getElementById("recap-stale");
    this.button = document.getElementById("recap-button");
    this.slot = document.getElementById("recap-task");
    this.chapter = null;
    this.card = null; // the TaskCard of the recap task followed
    this.button.addEventListener("click", () => this.start());
  }

  get running() {
    return Boolean(this.card && !isTerminal(this.card.status));
  }

  render(chapter) {
    this.chapter = chapter;
    const hasText = Boolean(chapter.content?.trim()) || chapter.word_count > 0;
    if (chapter.recap) {
      replace(this.box, String(chapter.recap).split(/\n+/).map((line) => line.trim()).filter(Boolean).map((line) => h("p", {}, line)));
    } else {
      replace(this.box, h("p", { class: "muted" }, t(hasText ? "recap.none" : "recap.no_text")));
    }
    this.stale.hidden = !(chapter.recap && chapter.recap_stale);
    this.button.hidden = !hasText;
    this.button.textContent = t(chapter.recap ? "recap.update" : "recap.write");
    this.button.disabled = this.running;
  }

  async start() {
    this.button.disabled = true;
    try {
      this.follow(await api("POST", ROUTE, { body: { novel_id: Number(this.novelId), chapter_ids: [Number(this.chapterId)] } }));
    } catch (error) {
      this.button.disabled = false;
      if (error.code === "task_conflict" && error.error?.task_id) {
        try {
          this.follow(await getTask(error.error.task_id));
          return;
        } catch {
          /* finished meanwhile */
        }
      }
      toast(errorMessage(error), { kind: "error" });
    }
  }

  follow(task) {
    if (this.card?.id === String(task.id)) {
      this.card.update(task);
      return;
    }
    this.card = new TaskCard(task, { onRetry: (next) => this.follow(next), onDismiss: () => (this.card = null) });
    replace(this.slot, this.card.el);
    this.button.disabled = !isTerminal(task.status);
    if (!isTerminal(task.status)) this.live.watch(task);
  }

  /** The page's live updates: a recap task of this chapter is followed until it ends. */
  onLive(update) {
    if (update.kind === "snapshot") {
      const mine = this.card && update.tasks.find((task) => String(task.id) === this.card.id);
      if (mine) this.card.update(mine);
      else if (this.running) getTask(this.card.id).then((task) => this.changed(task, task.status)).catch(() => {});
      else {
        const other = update.tasks.find((task) => recapsChapter(task, this.chapterId));
        if (other) this.follow(other);
      }
      return;
    }
    const u = taskUpdate(update);
    if (!u) return;
    if (!this.card || u.id !== this.card.id) {
      if (u.task && recapsChapter(u.task, this.chapterId) && !this.running) this.follow(u.task);
      return;
    }
    this.changed(u.state, u.event && isTerminal(u.event) ? u.event : u.status);
  }

  async changed(state, status) {
    const card = this.card;
    const wasRunning = this.running;
    card.update(state);
    this.button.disabled = this.running;
    if (!wasRunning || !isTerminal(status) || status !== "completed") return;
    try {
      const chapter = await this.reload();
      if (chapter) this.render(chapter);
    } catch (error) {
      toast(errorMessage(error), { kind: "error" });
    }
    if (this.card === card) card.el.classList.add("task-card-done");
  }
}
