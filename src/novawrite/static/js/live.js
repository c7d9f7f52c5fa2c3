// Live task updates for a whole page: ONE EventSource on /api/events (a snapshot
// of the active tasks, then every event of the author's tasks), or, when the
// browser has no EventSource or the stream keeps failing, polling of the tasks
// the page watches: GET /api/tasks/{id} every 2 s with If-None-Match, until each
// reaches a terminal status. Everything stops when the page is hidden for good
// (pagehide), so nothing keeps polling after unload.
//
// Listeners receive one of:
//   {kind: "snapshot", tasks: [Task]}            after (re)connecting the stream
//   {kind: "event", event: "progress", data: {task_id, seq, status, progress, message, ...}}
//   {kind: "task", task: Task, previous: status|undefined}   a polled task that changed

import { api } from "./api.js";
import { isTerminal } from "./dom.js";

const POLL_MS = 2000;
const MAX_STREAM_FAILURES = 3;
const EVENT_TYPES = ["status", "progress", "chunk", "completed", "failed", "cancelled"];

export class Live {
  constructor() {
    this.listeners = new Set();
    this.modeListeners = new Set();
    this.lastSeq = new Map(); // task id -> highest seq delivered (events are deduped by it)
    this.status = new Map(); // task id -> last known status
    this.watched = new Set(); // task ids to poll in polling mode
    this.etags = new Map();
    this.mode = "idle";
    this.source = null;
    this.failures = 0;
    this.timer = null;
    this.abort = null;
    this.inflight = false;
    this.again = false;
    this.stopped = false;
    addEventListener("pagehide", () => this.stop());
    addEventListener("pageshow", (event) => {
      if (event.persisted) {
        this.stopped = false;
        this.start();
      }
    });
  }

  on(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onMode(listener) {
    this.modeListeners.add(listener);
    listener(this.mode);
  }

  emit(update) {
    for (const listener of this.listeners) {
      try {
        listener(update);
      } catch (error) {
        console.error(error);
      }
    }
  }

  setMode(mode) {
    this.mode = mode;
    document.body.dataset.liveMode = mode;
    for (const listener of this.modeListeners) listener(mode);
  }

  start() {
    if (this.stopped) return;
    if (typeof EventSource === "undefined") {
      this.startPolling();
      return;
    }
    this.openStream();
  }

  openStream() {
    const source = new EventSource("/api/events");
    this.source = source;
    source.addEventListener("open", () => {
      this.failures = 0;
      this.setMode("stream");
    });
    source.addEventListener("snapshot", (message) => {
      this.failures = 0;
      this.setMode("stream");
      const data = parse(message.data);
      const tasks = Array.isArray(data?.items) ? data.items : [];
      for (const task of tasks) this.status.set(String(task.id), task.status);
      this.emit({ kind: "snapshot", tasks });
    });
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (message) => this.onStreamEvent(type, message));
    }
    source.addEventListener("error", () => {
      if (this.stopped || source !== this.source) return;
      this.failures += 1;
      // CLOSED: the server refused the stream outright; otherwise the browser is
      // reconnecting on its own, and we give it a few tries.
      if (source.readyState === EventSource.CLOSED || this.failures >= MAX_STREAM_FAILURES) {
        source.close();
        this.source = null;
        this.startPolling();
      } else {
        this.setMode("reconnecting");
      }
    });
  }

  onStreamEvent(type, message) {
    const data = parse(message.data);
    if (!data || data.task_id === undefined) return;
    const id = String(data.task_id);
    const seq = Number(data.seq ?? message.lastEventId);
    if (Number.isFinite(seq)) {
      if (seq <= (this.lastSeq.get(id) ?? 0)) return;
      this.lastSeq.set(id, seq);
    }
    if (data.status) this.status.set(id, data.status);
    this.emit({ kind: "event", event: type, data });
  }

  /** Follow a task (an id or a Task) in polling mode; harmless in stream mode. */
  watch(taskOrId) {
    const id = String(typeof taskOrId === "object" ? taskOrId.id : taskOrId);
    if (typeof taskOrId === "object" && taskOrId.status) this.status.set(id, taskOrId.status);
    this.watched.add(id);
    if (this.mode === "polling") this.schedule(0);
  }

  startPolling() {
    if (this.stopped) return;
    this.setMode("polling");
    this.schedule(0);
  }

  schedule(delay) {
    if (this.stopped || this.mode !== "polling") return;
    if (this.inflight) {
      this.again = true;
      return;
    }
    if (this.timer !== null) {
      if (delay > 0) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pollOnce();
    }, delay);
  }

  async pollOnce() {
    const ids = [...this.watched].filter((id) => !isTerminal(this.status.get(id)));
    if (!ids.length || this.stopped) return; // idle until the next watch()
    this.inflight = true;
    this.abort = new AbortController();
    try {
      await Promise.all(ids.map((id) => this.pollTask(id, this.abort.signal)));
    } finally {
      this.inflight = false;
      this.abort = null;
    }
    if (this.again) {
      this.again = false;
      this.schedule(0);
    } else if ([...this.watched].some((id) => !isTerminal(this.status.get(id)))) {
      this.schedule(POLL_MS);
    }
  }

  async pollTask(id, signal) {
    const headers = {};
    const etag = this.etags.get(id);
    if (etag) headers["If-None-Match"] = etag;
    let response;
    try {
      response = await api("GET", `/api/tasks/${encodeURIComponent(id)}`, { headers, signal, raw: true });
    } catch {
      return; // offline or aborted: try again next round
    }
    if (response.status === 304) return;
    if (response.status === 404) {
      this.status.set(id, "cancelled"); // gone (e.g. its novel was deleted): stop polling it
      this.watched.delete(id);
      return;
    }
    if (!response.ok) return;
    const task = await response.json().catch(() => null);
    if (!task || this.stopped) return;
    const tag = response.headers.get("ETag");
    if (tag) this.etags.set(id, tag);
    const previous = this.status.get(id);
    this.status.set(id, task.status);
    this.emit({ kind: "task", task, previous });
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
    this.abort?.abort();
    this.source?.close();
    this.source = null;
  }
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Normalise a live update about one task into {id, status, progress, message,
 * terminal: "completed"|"failed"|"cancelled"|null, task (when known in full)}.
 * Snapshots are not covered: they carry several tasks.
 */
export function taskUpdate(update) {
  if (update.kind === "task") {
    const task = update.task;
    return { id: String(task.id), status: task.status, progress: task.progress, message: task.message, task, event: null };
  }
  if (update.kind === "event") {
    const d = update.data;
    return { id: String(d.task_id), status: d.status, progress: d.progress, message: d.message, task: null, event: update.event, data: d };
  }
  return null;
}

/**
 * Looking up tasks the page has not seen yet (started in another tab), while
 * holding the newest live update about each that arrives during the look-up,
 * so that the page can replay it once it knows the task.
 */
export class TaskLookup {
  #pending = new Map(); // task id -> the newest update since the look-up began

  /** True while ``id`` is being looked up; then ``hold`` the update instead. */
  has(id) {
    return this.#pending.has(id);
  }

  hold(id, update) {
    this.#pending.set(id, update);
  }

  /** The task (null when gone) and the newest update that came after ``update``, if any. */
  async fetch(id, update) {
    this.#pending.set(id, update);
    let task = null;
    try {
      task = await api("GET", `/api/tasks/${encodeURIComponent(id)}`);
    } catch {
      /* gone already */
    }
    const latest = this.#pending.get(id);
    this.#pending.delete(id);
    return { task, newer: latest && latest !== update ? latest : null };
  }
}
