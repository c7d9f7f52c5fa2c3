// A chapter's earlier versions (newest first) with their time, length and what
// replaced them, and the dialog that compares any text with the current one
// (diff.js: word by word in English, character by character in Chinese).

import { api } from "./api.js";
import { h, replace, toast, errorMessage, paragraphs } from "./dom.js";
import { t, formatDate, wordsLabel } from "./i18n.js";
import { diffText } from "./diff.js";
import { countWords } from "./wordcount.js";

export class DiffDialog {
  constructor(language) {
    this.language = language;
    this.dialog = document.getElementById("diff-dialog");
    this.title = document.getElementById("diff-title");
    this.legend = document.getElementById("diff-legend");
    this.stats = document.getElementById("diff-stats");
    this.view = document.getElementById("diff-view");
    this.actionButton = document.getElementById("diff-action");
    this.error = document.getElementById("diff-error");
    this.action = null;
    this.opener = null;
    document.getElementById("diff-close").addEventListener("click", () => this.dialog.close());
    this.dialog.addEventListener("close", () => {
      if (this.opener?.isConnected) this.opener.focus();
    });
    this.actionButton.addEventListener("click", () => this.act());
  }

  /** Compare `before` (described by beforeLabel) with `after`; action: {label, run} offered beside Close. */
  open({ title, before, after, beforeLabel, afterLabel, action = null }) {
    this.opener = document.activeElement;
    this.action = action;
    this.title.textContent = title;
    replace(
      this.legend,
      h("span", {}, h("del", { class: "diff-del" }, t("diff.removed")), " ", t("diff.only_in", { what: beforeLabel })),
      h("span", {}, h("ins", { class: "diff-ins" }, t("diff.added")), " ", t("diff.only_in", { what: afterLabel })),
    );
    const segments = diffText(before, after);
    const removed = segments.filter((s) => s.type === "delete").reduce((n, s) => n + countWords(s.text), 0);
    const added = segments.filter((s) => s.type === "insert").reduce((n, s) => n + countWords(s.text), 0);
    const changed = segments.some((s) => s.type !== "equal");
    this.stats.textContent = changed
      ? t("diff.stats", { removed: wordsLabel(removed, this.language), added: wordsLabel(added, this.language) })
      : t("diff.same");
    replace(
      this.view,
      segments.map((s) =>
        s.type === "equal" ? s.text : s.type === "delete" ? h("del", { class: "diff-del" }, s.text) : h("ins", { class: "diff-ins" }, s.text),
      ),
    );
    this.actionButton.hidden = !action;
    this.actionButton.disabled = false;
    this.actionButton.textContent = action?.label ?? "";
    this.error.hidden = true;
    this.dialog.showModal();
    this.view.scrollTop = 0;
    this.view.querySelector("del, ins")?.scrollIntoView({ block: "center" });
    (action ? this.actionButton : document.getElementById("diff-close")).focus();
  }

  async act() {
    if (!this.action) return;
    this.actionButton.disabled = true;
    try {
      await this.action.run();
      this.dialog.close();
    } catch (error) {
      this.error.hidden = false;
      this.error.textContent = errorMessage(error);
      this.actionButton.disabled = false;
    }
  }
}

export class RevisionList {
  /** current(): the editor's text now; restore(revision): restores it, or throws what went wrong. */
  constructor({ box, path, language, dialog, current, restore }) {
    Object.assign(this, { box, path, language, dialog, current, restore });
  }

  async load() {
    try {
      const data = await api("GET", `${this.path}/revisions`);
      this.render(data.items);
    } catch (error) {
      replace(this.box, h("p", { class: "form-error" }, errorMessage(error)));
    }
  }

  render(items) {
    if (!items.length) {
      replace(this.box, h("p", { class: "muted" }, t("chapter.no_revisions")));
      return;
    }
    replace(
      this.box,
      h("ul", { class: "revision-list" },
        items.map((revision) =>
          h("li", {},
            h("details", { class: "revision", dataset: { revisionId: String(revision.id) } },
              h("summary", {},
                h("span", { class: "revision-when" }, formatDate(revision.created_at)),
                h("span", { class: "revision-words muted" }, wordsLabel(revision.word_count, this.language)),
                h("span", { class: `tag tag-source tag-source-${revision.source}` }, t(`revision.source_${revision.source}`))),
              h("div", { class: "revision-actions" },
                h("button", { type: "button", class: "btn btn-sm", onclick: () => this.compare(revision) }, t("revision.compare")),
                h("button", { type: "button", class: "btn btn-sm btn-primary", onclick: () => this.restoreNow(revision) }, t("revision.restore"))),
              h("div", { class: "revision-text prose" }, paragraphs(revision.content)))))),
    );
  }

  compare(revision) {
    const when = formatDate(revision.created_at);
    this.dialog.open({
      title: t("revision.compare_title", { when }),
      before: revision.content,
      after: this.current(),
      beforeLabel: t("revision.version_of", { when }),
      afterLabel: t("revision.current_text"),
      action: { label: t("revision.restore"), run: () => this.restore(revision) },
    });
  }

  async restoreNow(revision) {
    try {
      await this.restore(revision);
    } catch (error) {
      toast(errorMessage(error), { kind: "error" });
    }
  }
}
