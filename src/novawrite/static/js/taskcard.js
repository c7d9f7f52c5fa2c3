// A compact live view of one task, used where a generation runs inside another
// page (a novel's section, a chapter): status, progress bar, message, and
// Cancel, or Retry and Dismiss once it failed or was cancelled.

import { api } from "./api.js";
import { h, progressBar, setProgress, setStatusBadge, toast, errorMessage, isTerminal } from "./dom.js";
import { t, kindLabel } from "./i18n.js";

export class TaskCard {
  /** onRetry(newTask) is called with the task a retry created; onDismiss() after Dismiss. */
  constructor(task, { onRetry, onDismiss } = {}) {
    this.id = String(task.id);
    this.taskType = task.task_type;
    this.onRetry = onRetry;
    this.onDismiss = onDismiss;
    const label = kindLabel(task.task_type);
    this.badge = h("span", { class: "badge" });
    this.bar = progressBar(t("task.progress_of", { kind: label }));
    this.pct = h("span", { class: "progress-pct", "aria-hidden": "true" });
    this.message = h("p", { class: "task-message" });
    this.cancelButton = h("button", { type: "button", class: "btn btn-sm btn-danger", onclick: () => this.cancel() }, t("task.cancel"));
    this.retryButton = h("button", { type: "button", class: "btn btn-sm btn-primary", hidden: true, onclick: () => this.retry() }, t("task.retry"));
    this.dismissButton = h("button", { type: "button", class: "btn btn-sm", hidden: true, onclick: () => this.dismiss() }, t("common.dismiss"));
    this.el = h(
      "div",
      { class: "task-card", dataset: { taskId: this.id }, "aria-live": "polite" },
      h("div", { class: "task-card-top" }, this.badge, h("a", { href: `/tasks/${encodeURIComponent(this.id)}`, class: "task-link" }, t("task.details"))),
      h("div", { class: "progress-block" }, this.bar, this.pct),
      this.message,
      h("div", { class: "task-card-actions" }, this.cancelButton, this.retryButton, this.dismissButton),
    );
    this.progress = 0;
    this.attempt = task.attempt ?? 1;
    this.update(task);
  }

  update({ status, progress, message, error, attempt, resume_at: resumeAt, cancel_requested: cancelRequested }) {
    // A finished task stays finished: a response that left the server earlier must not undo it.
    if (isTerminal(this.status) && !isTerminal(status)) return;
    // Within one attempt progress never goes down and a running task never turns pending again;
    // an update saying so (a poll answered just before a live event) is older than what is shown.
    if (attempt !== undefined && attempt < this.attempt) return;
    const sameAttempt = attempt === undefined || attempt === this.attempt;
    if (sameAttempt && !isTerminal(status)) {
      if (progress !== undefined && progress !== null && progress < this.progress) return;
      if (status === "pending" && this.status === "running") return;
    }
    if (attempt !== undefined) this.attempt = attempt;
    if (status) {
      this.status = status;
      this.el.dataset.status = status;
      setStatusBadge(this.badge, status);
    }
    if (progress !== undefined && progress !== null) {
      this.progress = progress;
      setProgress(this.bar, progress, this.status);
      this.pct.textContent = `${Math.round(progress)}%`;
    }
    if (message !== undefined && message !== null) this.message.textContent = message;
    if (error?.message) this.message.textContent = error.message;
    if (this.status === "pending" && resumeAt) {
      // Waiting for the provider's quota: say until when, in the reader's time.
      const time = new Date(resumeAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
      this.message.textContent = t("task.quota_wait", { time });
    }
    const finished = isTerminal(this.status);
    this.cancelButton.hidden = finished;
    if (cancelRequested) this.cancelButton.disabled = true;
    this.retryButton.hidden = !(this.status === "failed" || this.status === "cancelled");
    this.dismissButton.hidden = !finished;
    if (this.status === "completed") setProgress(this.bar, 100, "completed");
  }

  async cancel() {
    this.cancelButton.disabled = true;
    try {
      const task = await api("POST", `/api/tasks/${encodeURIComponent(this.id)}/cancel`);
      this.update(task);
    } catch (error) {
      if (error.code !== "task_finished") {
        this.cancelButton.disabled = false;
        toast(errorMessage(error), { kind: "error" });
      }
    }
  }

  async retry() {
    this.retryButton.disabled = true;
    try {
      const task = await api("POST", `/api/tasks/${encodeURIComponent(this.id)}/retry`);
      this.onRetry?.(task);
    } catch (error) {
      this.retryButton.disabled = false;
      toast(errorMessage(error), { kind: "error" });
    }
  }

  dismiss() {
    this.el.remove();
    this.onDismiss?.();
  }
}
