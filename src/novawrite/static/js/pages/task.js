// One task: status, progress, message, event log, text so far, result, error,
// usage; Cancel and Retry.

import { api, readEventStream } from "../api.js";
import { h, replace, toast, setProgress, setStatusBadge, errorMessage, isTerminal } from "../dom.js";
import { t, locale, kindLabel, statusLabel, formatDate, formatTime, formatNumber } from "../i18n.js";
import { initShell } from "../shell.js";
import { getTask, taskUpdate } from "../live.js";
import { TextFollower } from "../textstream.js";

const taskId = document.body.dataset.taskId;
const root = document.getElementById("task-root");
const bar = document.getElementById("task-progress");
const cancelButton = document.getElementById("cancel-button");
const retryButton = document.getElementById("retry-button");
const logBox = document.getElementById("event-log");
let task = null;
let novel = null;
let follower = null;
let live = null;
let shownTerminal = false;

// --- rendering --------------------------------------------------------------------

function render() {
  const kind = kindLabel(task.task_type);
  document.title = `${kind} · ${statusLabel(task.status)} · NovaWrite`;
  document.getElementById("crumb-task").textContent = kind;
  document.getElementById("task-heading").textContent = kind;
  const novelBox = document.getElementById("task-novel");
  replace(novelBox, novel ? h("a", { href: `/novels/${encodeURIComponent(task.novel_id)}` }, novel.title) : `#${task.novel_id}`);
  renderState(task);
  renderFacts();
  const target = document.getElementById("open-target");
  const chapterId = task.params?.chapter_id;
  target.hidden = false;
  target.href = chapterId
    ? `/novels/${encodeURIComponent(task.novel_id)}/chapters/${encodeURIComponent(chapterId)}`
    : `/novels/${encodeURIComponent(task.novel_id)}`;
  target.textContent = chapterId ? t("task.open_chapter") : t("task.open_novel");
  const errorCard = document.getElementById("error-card");
  errorCard.hidden = !task.error;
  if (task.error) {
    replace(document.getElementById("task-error"), h("code", {}, task.error.code), " ", task.error.message || "");
  }
  const resultCard = document.getElementById("result-card");
  resultCard.hidden = task.result === null || task.result === undefined || task.task_type === "write_chapter_content";
  if (!resultCard.hidden) replace(document.getElementById("task-result"), renderValue(task.result));
  root.setAttribute("aria-busy", "false");
}

function renderState({ status, progress, message }) {
  // A finished task stays finished: a response that left the server earlier must not undo it.
  if (shownTerminal && !isTerminal(status)) return;
  if (isTerminal(status)) shownTerminal = true;
  if (status) {
    task.status = status;
    setStatusBadge(document.getElementById("task-status"), status);
    document.body.dataset.taskStatus = status;
  }
  if (progress !== undefined && progress !== null) {
    task.progress = progress;
    setProgress(bar, progress, task.status);
    document.getElementById("task-pct").textContent = `${Math.round(progress)}%`;
  }
  if (message !== undefined && message !== null) {
    task.message = message;
    document.getElementById("task-message").textContent = message;
  }
  cancelButton.hidden = isTerminal(task.status);
  cancelButton.disabled = Boolean(task.cancel_requested) && !isTerminal(task.status);
  retryButton.hidden = !(task.status === "failed" || task.status === "cancelled");
}

function renderFacts() {
  const facts = [
    [t("task.kind"), kindLabel(task.task_type)],
    [t("task.status"), statusLabel(task.status)],
    [t("task.attempt"), String(task.attempt ?? 1)],
    task.retry_of ? [t("task.retry_of"), h("a", { href: `/tasks/${encodeURIComponent(task.retry_of)}` }, shortId(task.retry_of))] : null,
    [t("task.created"), formatDate(task.created_at)],
    task.started_at ? [t("task.started"), formatDate(task.started_at)] : null,
    task.finished_at ? [t("task.finished"), formatDate(task.finished_at)] : null,
    [t("task.usage"), task.usage ? t("task.tokens", { prompt: formatNumber(task.usage.prompt_tokens), output: formatNumber(task.usage.output_tokens) }) : "—"],
    [t("task.params"), paramsText(task.params)],
    [t("task.id"), h("code", { class: "task-id" }, String(task.id))],
  ].filter(Boolean);
  replace(document.getElementById("task-facts"), facts.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

const shortId = (id) => String(id).slice(0, 8);

function paramsText(params) {
  const entries = Object.entries(params || {}).filter(([key, value]) => key !== "novel_id" && value !== null && value !== "");
  if (!entries.length) return "—";
  return h("ul", { class: "params" }, entries.map(([key, value]) => h("li", {}, h("span", { class: "muted" }, `${key}: `), typeof value === "object" ? JSON.stringify(value) : String(value))));
}

/** A readable view of any JSON result: long text as paragraphs, named items as cards, short fields inline. */
function renderValue(value) {
  if (value === null || value === undefined || value === "") return h("span", { class: "muted" }, "—");
  if (typeof value === "string") {
    const lines = value.split(/\n+/).filter(Boolean);
    return lines.length > 1 || value.length > 120 ? h("div", { class: "result-text" }, lines.map((line) => h("p", {}, line))) : h("span", {}, value);
  }
  if (typeof value !== "object") return h("span", {}, String(value));
  if (Array.isArray(value)) {
    if (!value.length) return h("span", { class: "muted" }, "—");
    if (value.every((item) => item === null || typeof item !== "object")) return h("span", {}, value.join(locale === "zh-CN" ? "、" : ", "));
    return h("ol", { class: "result-list" }, value.map((item) => h("li", {}, renderItem(item))));
  }
  return h("dl", { class: "result-fields" }, Object.entries(value).map(([key, v]) => h("div", { class: "result-field" }, h("dt", {}, key.replace(/_/g, " ")), h("dd", {}, renderValue(v)))));
}

function renderItem(item) {
  if (item === null || typeof item !== "object" || Array.isArray(item)) return renderValue(item);
  const name = item.name ?? item.title;
  const rest = Object.fromEntries(Object.entries(item).filter(([key]) => key !== "name" && key !== "title"));
  return [name !== undefined ? h("strong", { class: "result-name" }, String(name)) : null, Object.keys(rest).length ? renderValue(rest) : null];
}

// --- the event log: stored events replayed, then live ones, each seq once ------------

const logged = new Set();
let chunkEntry = null;

function logEvent(type, data) {
  const seq = Number(data.seq);
  if (!Number.isFinite(seq) || logged.has(seq)) return;
  logged.add(seq);
  if (type === "chunk") {
    const size = (data.text || "").length;
    if (chunkEntry && chunkEntry.last === seq - 1) {
      chunkEntry.last = seq;
      chunkEntry.count += 1;
      chunkEntry.chars += size;
      chunkEntry.label.textContent = t("task.chunks", { count: chunkEntry.count, chars: formatNumber(chunkEntry.chars) });
      return;
    }
    const label = h("span", { class: "log-text" }, t("task.chunks", { count: 1, chars: formatNumber(size) }));
    chunkEntry = { last: seq, count: 1, chars: size, label };
    insertLog(seq, h("li", { class: "log-entry log-chunk", dataset: { seq: String(seq) } }, logHead(seq, "chunk", data), label));
    return;
  }
  chunkEntry = null;
  const text = type === "failed" && data.error ? `${data.error.code}: ${data.error.message}` : data.message || "";
  insertLog(seq, h("li", { class: `log-entry log-${type}`, dataset: { seq: String(seq) } }, logHead(seq, type, data), h("span", { class: "log-text" }, text)));
}

function logHead(seq, type, data) {
  return h("span", { class: "log-head" },
    h("span", { class: "log-seq" }, `#${seq}`),
    h("span", { class: `log-type badge badge-${type === "chunk" || type === "progress" ? "running" : data.status}` }, t(`event.${type}`)),
    h("span", { class: "log-progress muted" }, `${Math.round(data.progress ?? 0)}%`),
    h("span", { class: "log-time muted" }, formatTime(new Date())));
}

function insertLog(seq, el) {
  // Keep the log in seq order whichever source delivered first.
  const later = [...logBox.children].find((child) => Number(child.dataset.seq) > seq);
  logBox.insertBefore(el, later || null);
}

let replay = null;
let firstLiveSeq = null;

async function replayEvents() {
  replay = new AbortController();
  addEventListener("pagehide", () => replay?.abort());
  try {
    await readEventStream(`/api/tasks/${encodeURIComponent(taskId)}/events`, (message) => {
      const data = JSON.parse(message.data);
      logEvent(message.event, data);
      // Once the replay meets what the live stream delivered, the log has no gap.
      if (firstLiveSeq !== null && data.seq >= firstLiveSeq - 1) replay.abort();
    }, replay.signal);
  } catch {
    /* aborted, or the stream ended */
  }
}

// --- live -------------------------------------------------------------------------

async function refresh() {
  try {
    task = await getTask(taskId);
  } catch (error) {
    toast(errorMessage(error), { kind: "error" });
    return;
  }
  render();
  if (follower) {
    await follower.load();
    showOutput(follower.text);
  }
}

function showOutput(text) {
  const card = document.getElementById("output-card");
  card.hidden = false;
  const box = document.getElementById("task-output");
  const partial = isTerminal(task.status) && task.status !== "completed";
  box.classList.toggle("streaming", !isTerminal(task.status));
  replace(
    box,
    partial ? h("p", { class: "notice" }, t("task.partial_not_saved")) : null,
    text ? String(text).split(/\n+/).filter(Boolean).map((line) => h("p", {}, line)) : h("p", { class: "muted" }, t("chapter.waiting")),
    isTerminal(task.status) ? null : h("span", { class: "caret", "aria-hidden": "true" }),
  );
}

function onLive(update) {
  if (update.kind === "snapshot") {
    const item = update.tasks.find((x) => String(x.id) === taskId);
    if (item) {
      Object.assign(task, item);
      render();
      follower?.load();
    } else if (!isTerminal(task.status)) {
      refresh();
    }
    return;
  }
  const u = taskUpdate(update);
  if (!u || u.id !== taskId) return;
  if (update.kind === "event") {
    if (firstLiveSeq === null) firstLiveSeq = Number(u.data.seq);
    logEvent(update.event, u.data);
    renderState(u);
    if (update.event === "chunk") follower?.chunk(u.data.seq, u.data.text);
    if (isTerminal(update.event)) refresh();
  } else {
    Object.assign(task, u.task);
    render();
    follower?.load();
  }
}

cancelButton.addEventListener("click", async () => {
  cancelButton.disabled = true;
  try {
    const answer = await api("POST", `/api/tasks/${encodeURIComponent(taskId)}/cancel`);
    if (!isTerminal(task.status)) {
      task = answer;
      render();
    }
    toast(t("task.cancel_requested"));
  } catch (error) {
    if (error.code === "task_finished") refresh();
    else {
      cancelButton.disabled = false;
      toast(errorMessage(error), { kind: "error" });
    }
  }
});

retryButton.addEventListener("click", async () => {
  retryButton.disabled = true;
  try {
    const next = await api("POST", `/api/tasks/${encodeURIComponent(taskId)}/retry`);
    location.assign(`/tasks/${encodeURIComponent(next.id)}`);
  } catch (error) {
    retryButton.disabled = false;
    toast(errorMessage(error), { kind: "error" });
  }
});

// --- start ------------------------------------------------------------------------

({ live } = await initShell());
try {
  task = await getTask(taskId);
} catch (error) {
  if (error.status === 404) {
    root.hidden = true;
    document.getElementById("task-missing").hidden = false;
    document.getElementById("crumb-task").textContent = t("task.not_found_short");
  } else {
    toast(errorMessage(error), { kind: "error" });
  }
}
if (task) {
  try {
    novel = await api("GET", `/api/novels/${encodeURIComponent(task.novel_id)}`);
  } catch {
    novel = null;
  }
  render();
  if (task.task_type === "write_chapter_content") {
    follower = new TextFollower(taskId, showOutput);
    follower.load();
  }
  live.on(onLive);
  if (!isTerminal(task.status)) live.watch(task);
  live.start();
  replayEvents();
}
