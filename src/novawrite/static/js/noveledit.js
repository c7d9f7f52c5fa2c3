// The novel page's edit mode: the outline, volume and chapter titles and summaries,
// and each character, world setting, timeline event and foreshadowing edited in
// place (inline.js); chapters added at the end of a volume or deleted (confirmed);
// items added, or deleted with an Undo that re-creates the item from its fields
// (a new item with a new id, at its old timeline position).
//
// Every edit of an item, volume or chapter first GETs it, for its current fields
// and ETag, and saves with If-Match: a change made elsewhere meanwhile is never
// overwritten unseen (the form says so and keeps what was typed; saving again
// replaces it). Open forms survive the page re-rendering a section (a generation
// finishing, a chapter being written): they are put back where they were.

import { api } from "./api.js";
import { h, toast, confirmDialog, errorMessage } from "./dom.js";
import { t, wordsLabel } from "./i18n.js";
import { tagged } from "./editor.js";
import { inlineForm, undoToast } from "./inline.js";

const text = (name, labelKey, options = {}) => ({ name, labelKey, kind: "text", maxlength: 5000, ...options });
const area = (name, labelKey, options = {}) => ({ name, labelKey, kind: "textarea", maxlength: 5000, ...options });
const number = (name, labelKey, options = {}) => ({ name, labelKey, kind: "number", min: 1, max: 1000000, ...options });
/** A select of the novel's chapters (by id), "none" first. */
const chapterSelect = (name, labelKey) => ({ name, labelKey, kind: "select", chapters: true });

export const ITEMS = {
  characters: {
    segment: "characters",
    nameField: "name",
    fields: [text("name", "item.name", { required: true, maxlength: 200 }), text("role", "item.role"), area("description", "item.description"), text("traits", "item.traits", { hintKey: "item.traits_hint" }), area("arc", "item.arc", { rows: 2 }), area("relationships", "item.relationships", { rows: 2 })],
  },
  world_settings: {
    segment: "world-settings",
    nameField: "name",
    fields: [text("name", "item.name", { required: true, maxlength: 200 }), text("category", "item.category"), area("description", "item.description")],
  },
  timeline_events: {
    segment: "timeline-events",
    nameField: "title",
    fields: [text("title", "item.title", { required: true, maxlength: 200 }), text("time_label", "item.time_label"), area("description", "item.description"), number("position", "item.position", { hintKey: "item.position_hint" }), number("chapter_number", "item.chapter_number", { optional: true })],
  },
  foreshadowings: {
    segment: "foreshadowings",
    nameField: "title",
    fields: [text("title", "item.title", { required: true, maxlength: 200 }), area("description", "item.description"), { name: "status", labelKey: "item.status", kind: "select", options: ["planted", "hinted", "resolved", "abandoned"] }, chapterSelect("planted_chapter_id", "item.planted_chapter"), chapterSelect("payoff_chapter_id", "item.payoff_chapter")],
    // Served but not accepted back (an Undo re-creates the item without them).
    readOnly: ["planted_chapter", "payoff_chapter", "overdue"],
  },
};

const FOCUSABLE = "button, a[href], input, textarea, select";

/** An item's fields as the form shows them (strings). */
function toForm(spec, item) {
  return Object.fromEntries(
    spec.fields.map((field) => {
      const value = item?.[field.name];
      if (field.name === "traits") return [field.name, (value ?? []).join(", ")];
      if (field.chapters) return [field.name, value === null || value === undefined ? "" : String(value)];
      if (field.kind === "select") return [field.name, value ?? field.options[0]];
      return [field.name, value === null || value === undefined ? "" : String(value)];
    }),
  );
}

/** The form's strings as the API's fields; throws {field, message} for a bad number. */
function fromForm(spec, values) {
  const body = {};
  for (const field of spec.fields) {
    const raw = String(values[field.name] ?? "");
    if (field.name === "traits") {
      body.traits = raw.split(/[,，、;；]/).map((trait) => trait.trim()).filter(Boolean);
    } else if (field.chapters) {
      body[field.name] = raw ? Number(raw) : null;
    } else if (field.kind === "number") {
      if (!raw.trim()) {
        if (field.optional) body[field.name] = null;
        continue;
      }
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 1 || n > 1000000) throw { field: field.name, message: t("inline.whole_number") };
      body[field.name] = n;
    } else {
      body[field.name] = field.kind === "select" ? raw : raw.trim();
    }
  }
  return body;
}

function changed(before, after) {
  const out = {};
  for (const [name, value] of Object.entries(after)) if (JSON.stringify(value) !== JSON.stringify(before[name])) out[name] = value;
  return out;
}

function chapterOptions(novel) {
  const chapters = (novel?.volumes ?? []).flatMap((volume) => volume.chapters);
  return [["", t("foreshadowing.none_option")], ...chapters.map((c) => [String(c.id), `${t("novel.chapter_n", { n: c.number })} ${c.title}`])];
}

function fieldsOf(spec, novel) {
  return spec.fields.map((field) => ({
    ...field,
    label: t(field.labelKey),
    hint: field.hintKey ? t(field.hintKey) : null,
    options: field.chapters ? chapterOptions(novel) : field.options?.map((value) => [value, t(`foreshadowing.${value}`)]),
  }));
}

export class NovelEditing {
  /**
   * novel(): the novel as shown; reload(section): fetch the novel and re-render that section
   * ("outline" for the outline and the tree, or a list's name); setNovel(novel, section): use a
   * novel the API returned.
   */
  constructor({ novelId, novel, reload, setNovel }) {
    Object.assign(this, { novelId, novel, reload, setNovel });
    this.base = `/api/novels/${encodeURIComponent(novelId)}`;
    this.on = false;
    this.opened = new Map(); // edit key -> the open form
    addEventListener("beforeunload", (event) => {
      if (![...this.opened.values()].some((form) => form.dirty())) return;
      event.preventDefault();
      event.returnValue = "";
    });
  }

  // --- the page's hooks ----------------------------------------------------------------

  /** A tool button (Edit, Delete, Add), labelled for what it acts on. */
  tool(labelKey, name, onclick, extra = "") {
    return h("button", { type: "button", class: `btn btn-sm btn-ghost tool ${extra}`, "aria-label": t(labelKey, { name }), title: t(labelKey, { name }), onclick }, t(`${labelKey}_short`));
  }

  outlineTools() {
    if (!this.on) return null;
    return h("div", { class: "edit-tools" }, this.tool("edit.outline", "", () => this.editOutline(), "tool-edit"));
  }

  volumeTools(volume) {
    if (!this.on) return null;
    const name = t("novel.volume_n", { n: volume.number });
    return h("div", { class: "edit-tools" }, this.tool("edit.edit_named", name, () => this.editVolume(volume), "tool-edit"));
  }

  addChapterTools(volume) {
    if (!this.on) return null;
    const name = t("novel.volume_n", { n: volume.number });
    return h("div", { class: "volume-add", dataset: { editKey: `add-chapter:${volume.id}` } },
      h("button", { type: "button", class: "btn btn-sm tool-add", onclick: () => this.addChapter(volume) }, t("edit.add_chapter", { name })));
  }

  chapterTools(chapter, volume) {
    if (!this.on) return null;
    const name = t("novel.chapter_n", { n: chapter.number });
    return h("div", { class: "edit-tools" },
      this.tool("edit.edit_named", name, () => this.editChapter(chapter), "tool-edit"),
      this.tool("edit.delete_named", name, () => this.deleteChapter(chapter, volume), "tool-delete btn-danger-text"));
  }

  itemTools(section, item) {
    if (!this.on) return null;
    const name = item[ITEMS[section].nameField];
    return h("div", { class: "edit-tools" },
      this.tool("edit.edit_named", name, () => this.editItem(section, item), "tool-edit"),
      this.tool("edit.delete_named", name, () => this.deleteItem(section, item), "tool-delete btn-danger-text"));
  }

  /** The Add button under a list (in its slot, #add-<section>). */
  renderAdd(section) {
    const slot = document.getElementById(`add-${section}`);
    if (!slot) return;
    slot.dataset.editKey = `add:${section}`;
    slot.replaceChildren(...(this.on ? [h("button", { type: "button", class: "btn btn-sm tool-add", onclick: () => this.addItem(section) }, t(`edit.add_${section}`))] : []));
  }

  /** After a section re-rendered: open forms go back in place of what they edit. */
  reattach(container) {
    for (const [key, form] of this.opened) {
      const host = container.querySelector(`[data-edit-key="${CSS.escape(key)}"]`) ?? (container.dataset?.editKey === key ? container : null);
      if (!host) {
        if (!form.isConnected && !document.querySelector(`[data-edit-key="${CSS.escape(key)}"]`)) this.opened.delete(key); // its item is gone
        continue;
      }
      if (host.firstChild === form) continue;
      const refocus = form.contains(form.lastFocus) && (document.activeElement === document.body || !document.activeElement);
      host.replaceChildren(form);
      host.classList.add("is-editing");
      if (refocus) form.lastFocus.focus();
    }
  }

  /** Leave edit mode; open forms with changes are confirmed first. */
  async setMode(on) {
    if (!on && [...this.opened.values()].some((form) => form.dirty())) {
      const ok = await confirmDialog({ title: t("edit.discard_title"), body: t("edit.discard_body"), ok: t("edit.discard_ok") });
      if (!ok) return false;
    }
    if (!on) this.opened.clear();
    this.on = on;
    return true;
  }

  // --- opening and closing forms ------------------------------------------------------------

  open(key, form) {
    const host = document.querySelector(`[data-edit-key="${CSS.escape(key)}"]`);
    if (!host) return;
    this.opened.set(key, form);
    host.replaceChildren(form);
    host.classList.add("is-editing");
    form.focusFirst();
  }

  /** Close the form (the section re-renders without it) and focus what opened it. */
  async close(key, section, { reload = false, focus = ".tool-edit, .tool-add" } = {}) {
    this.opened.delete(key);
    if (reload) await this.reload(section);
    else this.setNovel(null, section);
    const host = document.querySelector(`[data-edit-key="${CSS.escape(key)}"]`);
    (host?.querySelector(focus) ?? host?.querySelector(FOCUSABLE) ?? document.getElementById(`h-${section === "outline" ? "outline" : section}`))?.focus();
  }

  isOpen(key) {
    const form = this.opened.get(key);
    if (form) form.focusFirst();
    return Boolean(form);
  }

  // --- the outline ---------------------------------------------------------------------------

  editOutline() {
    const key = "outline";
    if (this.isOpen(key)) return;
    const form = inlineForm({
      key,
      label: t("novel.outline"),
      fields: [{ name: "outline", label: t("novel.outline"), kind: "textarea", rows: 14, maxlength: 100000, value: this.novel().outline ?? "" }],
      onSave: async ({ outline }) => {
        const novel = await api("PATCH", this.base, { body: { outline } });
        this.opened.delete(key);
        this.setNovel(novel, "outline");
        this.focusKey(key);
        toast(t("edit.saved"), { kind: "success" });
      },
      onCancel: () => this.close(key, "outline"),
    });
    this.open(key, form);
  }

  focusKey(key) {
    document.querySelector(`[data-edit-key="${CSS.escape(key)}"] .tool-edit`)?.focus();
  }

  // --- volumes and chapters ------------------------------------------------------------------

  /** A form for a resource with an ETag: GET it first, PATCH only what changed, with If-Match. */
  async editTagged({ key, path, label, fields, section, mapError = (error) => error }) {
    if (this.isOpen(key)) return;
    let current;
    try {
      current = await tagged("GET", path);
    } catch (error) {
      toast(errorMessage(error), { kind: "error" });
      if (error.status === 404) this.reload(section);
      return;
    }
    const form = inlineForm({
      key,
      label,
      fields: fields.map((field) => ({ ...field, value: field.toForm ? field.toForm(current.body) : current.body[field.name] ?? "" })),
      onSave: async (values) => {
        const body = changed(current.body, fields.reduce((out, field) => ({ ...out, ...(field.fromForm ? field.fromForm(values) : { [field.name]: values[field.name] }) }), {}));
        if (!Object.keys(body).length) return this.close(key, section);
        try {
          await tagged("PATCH", path, { body, headers: { "If-Match": current.etag } });
        } catch (error) {
          if (error.status !== 412) throw mapError(error);
          current = await tagged("GET", path); // the next save replaces that change, knowingly
          throw { message: t("inline.changed_elsewhere") };
        }
        await this.close(key, section, { reload: true });
        toast(t("edit.saved"), { kind: "success" });
      },
      onCancel: () => this.close(key, section),
    });
    this.open(key, form);
  }

  editVolume(volume) {
    this.editTagged({
      key: `volume:${volume.id}`,
      path: `${this.base}/volumes/${encodeURIComponent(volume.id)}`,
      label: t("edit.edit_named", { name: t("novel.volume_n", { n: volume.number }) }),
      section: "outline",
      fields: [
        { name: "title", label: t("item.title"), kind: "text", required: true, maxlength: 500, fromForm: (v) => ({ title: v.title.trim() }) },
        { name: "summary", label: t("editor.summary"), kind: "textarea", maxlength: 5000, fromForm: (v) => ({ summary: v.summary.trim() }) },
      ],
    });
  }

  editChapter(chapter) {
    this.editTagged({
      key: `chapter:${chapter.id}`,
      path: `${this.base}/chapters/${encodeURIComponent(chapter.id)}`,
      label: t("edit.edit_named", { name: t("novel.chapter_n", { n: chapter.number }) }),
      section: "outline",
      fields: [
        { name: "title", label: t("editor.title"), kind: "text", required: true, maxlength: 500, fromForm: (v) => ({ title: v.title.trim() }) },
        { name: "summary", label: t("editor.summary"), kind: "textarea", maxlength: 5000, fromForm: (v) => ({ summary: v.summary.trim() }) },
      ],
    });
  }

  addChapter(volume) {
    const key = `add-chapter:${volume.id}`;
    if (this.isOpen(key)) return;
    const form = inlineForm({
      key,
      label: t("edit.add_chapter", { name: t("novel.volume_n", { n: volume.number }) }),
      submitLabel: t("edit.add"),
      fields: [
        { name: "title", label: t("editor.title"), kind: "text", required: true, maxlength: 500 },
        { name: "summary", label: t("editor.summary"), kind: "textarea", maxlength: 5000 },
      ],
      onSave: async ({ title, summary }) => {
        const chapter = await api("POST", `${this.base}/volumes/${encodeURIComponent(volume.id)}/chapters`, { body: { title: title.trim(), summary: summary.trim() } });
        await this.close(key, "outline", { reload: true });
        toast(t("edit.chapter_added", { name: `${t("novel.chapter_n", { n: chapter.number })} ${chapter.title}` }), { kind: "success" });
      },
      onCancel: () => this.close(key, "outline"),
    });
    this.open(key, form);
  }

  async deleteChapter(chapter, volume) {
    const name = `${t("novel.chapter_n", { n: chapter.number })} ${chapter.title}`;
    const body = chapter.has_content ? t("edit.delete_chapter_text", { words: wordsLabel(chapter.word_count, this.novel().language) }) : t("edit.delete_chapter_body");
    if (!(await confirmDialog({ title: t("edit.delete_chapter_title", { name }), body, ok: t("edit.delete") }))) return;
    const path = `${this.base}/chapters/${encodeURIComponent(chapter.id)}`;
    try {
      await api("DELETE", chapter.has_content ? `${path}?force=true` : path);
    } catch (error) {
      if (error.code !== "chapter_has_content") {
        toast(errorMessage(error), { kind: "error" });
        return;
      }
      // No text, but earlier versions: they would go too.
      if (!(await confirmDialog({ title: t("edit.delete_chapter_title", { name }), body: t("edit.delete_chapter_revisions"), ok: t("edit.delete") }))) return;
      try {
        await api("DELETE", `${path}?force=true`);
      } catch (again) {
        toast(errorMessage(again), { kind: "error" });
        return;
      }
    }
    await this.reload("outline");
    toast(t("edit.chapter_deleted", { name }), { kind: "success" });
    document.querySelector(`[data-edit-key="add-chapter:${CSS.escape(String(volume.id))}"] button`)?.focus();
  }

  // --- list items ----------------------------------------------------------------------------

  itemPath(section, id) {
    return `${this.base}/${ITEMS[section].segment}${id === undefined ? "" : `/${encodeURIComponent(id)}`}`;
  }

  nameError(section, error) {
    if (error.code === "name_taken") return { field: ITEMS[section].nameField, message: t(`inline.name_taken_${section}`) };
    return error;
  }

  editItem(section, item) {
    const spec = ITEMS[section];
    this.editTagged({
      key: `${section}:${item.id}`,
      path: this.itemPath(section, item.id),
      label: t("edit.edit_named", { name: item[spec.nameField] }),
      section,
      fields: fieldsOf(spec, this.novel()).map((field) => ({
        ...field,
        toForm: (current) => toForm(spec, current)[field.name],
        fromForm: (values) => ({ [field.name]: fromForm(spec, values)[field.name] }),
      })),
      mapError: (error) => this.nameError(section, error),
    });
  }

  addItem(section) {
    const key = `add:${section}`;
    if (this.isOpen(key)) return;
    const spec = ITEMS[section];
    const form = inlineForm({
      key,
      label: t(`edit.add_${section}`),
      submitLabel: t("edit.add"),
      fields: fieldsOf(spec, this.novel()).map((field) => ({ ...field, value: toForm(spec, null)[field.name] })),
      onSave: async (values) => {
        const body = fromForm(spec, values);
        for (const [name, value] of Object.entries(body)) if (value === null) delete body[name];
        if (section === "timeline_events" && body.position === undefined) delete body.position;
        try {
          await api("POST", this.itemPath(section), { body });
        } catch (error) {
          throw this.nameError(section, error);
        }
        await this.close(key, section, { reload: true, focus: ".tool-add" });
        toast(t("edit.added", { name: body[spec.nameField] }), { kind: "success" });
      },
      onCancel: () => this.close(key, section, { focus: ".tool-add" }),
    });
    this.open(key, form);
  }

  async deleteItem(section, item) {
    const spec = ITEMS[section];
    const path = this.itemPath(section, item.id);
    let current;
    try {
      current = await tagged("GET", path);
      await api("DELETE", path, { headers: { "If-Match": current.etag } });
    } catch (error) {
      toast(error.status === 412 ? t("inline.changed_elsewhere_delete") : errorMessage(error), { kind: "error" });
      await this.reload(section);
      return;
    }
    this.opened.delete(`${section}:${item.id}`);
    await this.reload(section);
    const name = current.body[spec.nameField];
    const { id, ...fields } = current.body;
    for (const name of spec.readOnly ?? []) delete fields[name];
    undoToast(t("edit.deleted", { name }), async () => {
      try {
        await api("POST", this.itemPath(section), { body: fields });
      } catch (error) {
        toast(errorMessage(this.nameError(section, error)), { kind: "error" });
        throw error;
      }
      await this.reload(section);
      toast(t("edit.undone", { name }), { kind: "success" });
    }, { focusAfter: () => document.querySelector(`[data-edit-key="add:${section}"] button`) });
  }
}
