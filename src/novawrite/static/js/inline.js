// Inline editors: a small form that takes the place of what it edits (a title, an
// outline, a character), and the toast that undoes a deletion.
//
// Keyboard: Enter in a one-line field saves, Ctrl/Cmd+Enter saves from a text area,
// Escape cancels; focus goes to the first field on opening and back to the opener
// (the page decides which) on closing.

import { h, errorMessage } from "./dom.js";
import { t } from "./i18n.js";

let serial = 0;

/**
 * fields: [{name, label, value, kind: "text"|"textarea"|"number"|"select", options: [[value, label]],
 *           required, maxlength, rows, min, max, hint}]
 * onSave(values, form): resolves when saved (the page closes the form); throws an ApiError to show it.
 * onCancel(): the author cancelled (Escape or Cancel).
 */
export function inlineForm({ key, label, fields, submitLabel = t("common.save"), onSave, onCancel }) {
  const id = `inline-${++serial}`;
  const inputs = new Map();
  const notes = new Map();
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const save = h("button", { type: "submit", class: "btn btn-sm btn-primary" }, submitLabel);
  const cancel = h("button", { type: "button", class: "btn btn-sm" }, t("common.cancel"));
  const form = h("form", { class: "inline-form", "aria-label": label, novalidate: true, dataset: { editKey: key } });
  for (const field of fields) {
    const inputId = `${id}-${field.name}`;
    const note = h("p", { class: "field-error", id: `${inputId}-error`, hidden: true });
    let input;
    if (field.kind === "textarea") {
      input = h("textarea", { id: inputId, name: field.name, rows: field.rows ?? 3, maxlength: field.maxlength });
    } else if (field.kind === "select") {
      input = h("select", { id: inputId, name: field.name }, field.options.map(([value, text]) => h("option", { value }, text)));
    } else {
      input = h("input", {
        id: inputId,
        name: field.name,
        type: field.kind === "number" ? "number" : "text",
        inputmode: field.kind === "number" ? "numeric" : null,
        min: field.min,
        max: field.max,
        maxlength: field.maxlength,
        required: field.required,
      });
    }
    input.value = field.value ?? "";
    input.setAttribute("aria-describedby", [field.hint ? `${inputId}-hint` : null, `${inputId}-error`].filter(Boolean).join(" "));
    inputs.set(field.name, input);
    notes.set(field.name, note);
    form.append(
      h("div", { class: "field" },
        h("label", { for: inputId }, field.label),
        input,
        field.hint ? h("p", { class: "hint", id: `${inputId}-hint` }, field.hint) : null,
        note),
    );
  }
  const initial = values();
  form.append(error, h("div", { class: "inline-actions" }, h("span", { class: "hint inline-keys" }, t("inline.keys")), cancel, save));

  function values() {
    return Object.fromEntries([...inputs].map(([name, input]) => [name, input.value]));
  }

  function showError(problem) {
    for (const [name, note] of notes) {
      note.hidden = true;
      note.textContent = "";
      inputs.get(name).removeAttribute("aria-invalid");
    }
    if (!problem) {
      error.hidden = true;
      error.textContent = "";
      return;
    }
    const details = problem.code === "validation_error" && Array.isArray(problem.details) ? problem.details : [];
    const marked = [];
    for (const detail of details) {
      const name = String(detail.field).split(".").pop();
      if (!inputs.has(name)) continue;
      notes.get(name).hidden = false;
      notes.get(name).textContent = detail.message;
      inputs.get(name).setAttribute("aria-invalid", "true");
      marked.push(name);
    }
    if (problem.field && inputs.has(problem.field)) {
      notes.get(problem.field).hidden = false;
      notes.get(problem.field).textContent = problem.message;
      inputs.get(problem.field).setAttribute("aria-invalid", "true");
      marked.push(problem.field);
    }
    error.hidden = false;
    error.textContent = marked.length ? t("inline.check_fields") : errorMessage(problem);
    if (marked.length) inputs.get(marked[0]).focus();
  }

  async function submit() {
    for (const field of fields) {
      if (field.required && !inputs.get(field.name).value.trim()) {
        showError({ field: field.name, message: t("inline.required", { field: field.label }) });
        return;
      }
    }
    save.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      await onSave(values(), form);
    } catch (problem) {
      showError(problem);
    } finally {
      save.disabled = false;
      form.removeAttribute("aria-busy");
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      onCancel();
    } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      submit();
    }
  });
  form.addEventListener("focusin", (event) => {
    form.lastFocus = event.target;
  });
  cancel.addEventListener("click", () => onCancel());
  form.showError = showError;
  form.values = values;
  form.inputs = inputs;
  form.dirty = () => JSON.stringify(values()) !== JSON.stringify(initial);
  form.focusFirst = () => inputs.values().next().value?.focus();
  return form;
}

/**
 * A toast with an Undo button that stays while focused or hovered. Focus moves to
 * Undo (what had focus was just deleted); Escape dismisses it.
 */
export function undoToast(message, onUndo, { timeout = 12_000, focusAfter = null } = {}) {
  const region = document.getElementById("toasts");
  const undo = h("button", { type: "button", class: "btn btn-sm toast-undo" }, t("inline.undo"));
  const close = h("button", { type: "button", class: "toast-close", "aria-label": t("common.dismiss") }, "×");
  const item = h("div", { class: "toast toast-info toast-action" }, h("span", {}, message), undo, close);
  let timer = null;
  const remove = () => {
    clearTimeout(timer);
    const hadFocus = item.contains(document.activeElement);
    item.remove();
    if (hadFocus) focusAfter?.()?.focus();
  };
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(remove, timeout);
  };
  undo.addEventListener("click", async () => {
    undo.disabled = true;
    try {
      await onUndo();
      remove();
    } catch {
      undo.disabled = false;
    }
  });
  close.addEventListener("click", remove);
  item.addEventListener("keydown", (event) => {
    if (event.key === "Escape") remove();
  });
  for (const name of ["mouseenter", "focusin"]) item.addEventListener(name, () => clearTimeout(timer));
  for (const name of ["mouseleave", "focusout"]) item.addEventListener(name, (event) => !item.contains(event.relatedTarget) && arm());
  region.append(item);
  arm();
  undo.focus();
  return item;
}
