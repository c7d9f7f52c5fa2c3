// One row of a task list: kind, novel, status, progress, message, when.

import { h, progressBar, setProgress, setStatusBadge, isTerminal } from "./dom.js";
import { t, kindLabel, formatDate } from "./i18n.js";

export class TaskRow {
  constructor(task, novelTitle) {
    this.id = String(task.id);
    this.task = task;
    const kind = kindLabel(task.task_type);
    this.badge = h("span", { class: "badge" });
    this.bar = progressBar(t("task.progress_of", { kind }));
    this.pct = h("span", { class: "progress-pct", "aria-hidden": "true" });
    this.message = h("span", { class: "task-row-message" });
    this.el = h(
      "li",
      { class: "task-row", dataset: { taskId: this.id } },
      h("div", { class: "task-row-main" },
        h("a", { href: `/tasks/${encodeURIComponent(this.id)}`, class: "task-row-kind" }, kind),
        h("span", { class: "task-row-novel muted" }, novelTitle || `#${task.novel_id}`)),
      h("div", { class: "task-row-status" }, this.badge),
      h("div", { class: "task-row-progress" }, h("div", { class: "progress-block" }, this.bar, this.pct), this.message),
      h("time", { class: "task-row-time muted", datetime: task.created_at }, formatDate(task.created_at)),
    );
    this.update(task);
  }

  update({ status, progress, message, error }) {
    // A finished task stays finished: a response that left the server earlier must not undo it.
    if (isTerminal(this.status) && !isTerminal(status)) return;
    if (status) {
      this.status = status;
      this.el.dataset.status = status;
      setStatusBadge(this.badge, status);
    }
    if (progress !== undefined && progress !== null) {
      setProgress(this.bar, progress, this.status);
      this.pct.textContent = `${Math.round(progress)}%`;
    }
    if (message !== undefined && message !== null) this.message.textContent = message;
    if (error?.message) this.message.textContent = error.message;
  }
}
