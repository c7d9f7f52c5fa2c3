// Live task updates for a whole page: ONE EventSource on /api/events (a snapshot
// of the active tasks, then every event of the author's tasks), or, when the
// browser has no EventSource or the stream keeps failing, polling of the tasks
// the page watches: one poller per task, GET /api/tasks/{id} with If-None-Match
// 2 s after its last answer, until the task reaches a terminal status. Everything
// stops when the page is hidden for good (pagehide), so nothing keeps polling
// after unload.
//
// Every GET /api/tasks/{id} of the page goes through one TaskReader (getTask for
// the pages, the pollers here): never two requests for one task in flight at once.
//
// Listeners receive one of:
//   {kind: "snapshot", tasks: [Task]}            after (re)connecting the stream
//   {kind: "event", event: "progress", data: {task_id, seq, status, progress, message, ...}}
//   {kind: "task", task: Task, previous: status|undefined}   a polled task that changed

import { api, ApiError } from "./api.js";
import { isTerminal } from "./dom.js";

const POLL_MS = 2000;
const MAX_STREAM_FAILURES = 3;
const EVENT_TYPES = ["status", "progress", "chunk", "completed", "failed", "cancelled"];

/**
 * GET /api/tasks/{id}, one request per task at a time. Callers in the same moment
 * (one event handled by several listeners) share one request, sent once they all
 * asked; a caller while a request is out gets the next one, sent when that one
 * returns, so its answer is never older than its call (a poller may take the one
 * that is out). Each task's last body and ETag are kept: requests carry
 * If-None-Match, and a 304 answers with the kept body.
 *
 * An answer is {status, entry: {task, etag, version, at}} when the task was read
 * (200 or 304), else {status: HTTP status, body} or {status: 0, error} (offline, aborted).
 */
class TaskReader {
  #kept = new Map(); // task id -> {task, etag, version, at}
  #flights = new Map(); // task id -> {promise, sent, next: {promise, resolve} | null}
  #abort = new AbortController();
  #versions = 0;

  read(id, { fresh = true } = {}) {
    const flight = this.#flights.get(id);
    if (!flight) return this.#launch(id).promise;
    if (!flight.sent || !fresh) return flight.promise;
    if (!flight.next) {
      let resolve;
      const promise = new Promise((done) => (resolve = done));
      flight.next = { promise, resolve };
    }
    return flight.next.promise;
  }

  kept(id) {
    return this.#kept.get(id) ?? null;
  }

  abort() {
    this.#abort.abort();
    this.#abort = new AbortController();
  }

  #launch(id) {
    const flight = { promise: null, sent: false, next: null };
    this.#flights.set(id, flight);
    flight.promise = (async () => {
      await null; // leave once the current handler is done: whoever asks in it shares this request
      flight.sent = true;
      const answer = await this.#send(id);
      if (flight.next) flight.next.resolve(this.#launch(id).promise); // the one asked for meanwhile, now
      else this.#flights.delete(id);
      return answer;
    })();
    return flight;
  }

  async #send(id) {
    const kept = this.#kept.get(id);
    const headers = kept?.etag ? { "If-None-Match": kept.etag } : {};
    try {
      const response = await api("GET", `/api/tasks/${encodeURIComponent(id)}`, { headers, signal: this.#abort.signal, raw: true });
      if (response.status === 304 && kept) {
        kept.at = performance.now();
        return { status: 304, entry: kept };
      }
      const body = await response.json().catch(() => null);
      if (!response.ok || !body) return { status: response.ok ? 0 : response.status, body };
      const entry = { task: body, etag: response.headers.get("ETag"), version: ++this.#versions, at: performance.now() };
      this.#kept.set(id, entry);
      return { status: 200, entry };
    } catch (error) {
      return { status: 0, error };
    }
  }
}

const reader = new TaskReader();

/** The task as the server has it now (a copy of the page's own); throws an ApiError as api() does. */
export async function getTask(id) {
  const answer = await reader.read(String(id));
  if (answer.entry) return structuredClone(answer.entry.task);
  if (answer.error) throw answer.error;
  throw new ApiError(answer.status, answer.body);
}

export class Live {
  constructor() {
    this.listeners = new Set();
    this.modeListeners = new Set();
    this.lastSeq = new Map(); // task id -> highest seq delivered (events are deduped by it)
    this.status = new Map(); // task id -> last known status
    this.watched = new Set(); // task ids to poll in polling mode
    this.pollers = new Map(); // task id -> {timer, busy, last}: one poller per task
    this.shown = new Map(); // task id -> version of the last body emitted (or known to the page)
    this.mode = "idle";
    this.source = null;
    this.failures = 0;
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
    if (typeof taskOrId === "object" && taskOrId.status) {
      this.status.set(id, taskOrId.status);
      const kept = reader.kept(id);
      // The page already shows what the reader holds: a 304 on it is no news.
      if (kept && kept.task.updated_at === taskOrId.updated_at && kept.task.status === taskOrId.status) {
        this.shown.set(id, kept.version);
      }
    }
    this.watched.add(id);
    this.pollSoon(id);
  }

  startPolling() {
    if (this.stopped) return;
    this.setMode("polling");
    for (const id of this.watched) this.pollSoon(id);
  }

  /** Arm the task's poller for POLL_MS after the task's last answer (at once if none), unless it is armed or out. */
  pollSoon(id) {
    if (this.stopped || this.mode !== "polling" || !this.watched.has(id) || isTerminal(this.status.get(id))) return;
    let poller = this.pollers.get(id);
    if (!poller) this.pollers.set(id, (poller = { timer: null, busy: false, last: -Infinity }));
    if (poller.timer !== null || poller.busy) return;
    const since = Math.max(poller.last, reader.kept(id)?.at ?? -Infinity);
    const delay = Math.max(0, since + POLL_MS - performance.now());
    poller.timer = setTimeout(() => {
      poller.timer = null;
      this.poll(id, poller);
    }, delay);
  }

  async poll(id, poller) {
    const since = Math.max(poller.last, reader.kept(id)?.at ?? -Infinity);
    if (performance.now() - since < POLL_MS) {
      this.pollSoon(id); // the page read the task meanwhile: wait from that answer
      return;
    }
    poller.busy = true;
    let answer;
    try {
      answer = await reader.read(id, { fresh: false });
    } finally {
      poller.busy = false;
      poller.last = performance.now();
    }
    if (this.stopped) return;
    this.take(id, answer);
    this.pollSoon(id);
  }

  take(id, answer) {
    if (answer.status === 404) {
      this.status.set(id, "cancelled"); // gone (e.g. its novel was deleted): stop polling it
      this.watched.delete(id);
      return;
    }
    const entry = answer.entry;
    if (!entry || this.shown.get(id) === entry.version) return; // offline, or nothing new
    this.shown.set(id, entry.version);
    const previous = this.status.get(id);
    this.status.set(id, entry.task.status);
    this.emit({ kind: "task", task: structuredClone(entry.task), previous });
  }

  stop() {
    this.stopped = true;
    for (const poller of this.pollers.values()) {
      clearTimeout(poller.timer);
      poller.timer = null;
    }
    reader.abort();
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
 * Normalise a live update about one task into {id, status, progress, message, event (the
 * event's type, null for a polled task), task (when known in full), state (the task, or what
 * an event says of it: what a card or row is updated with), data (an event's data)}.
 * Snapshots are not covered: they carry several tasks.
 */
export function taskUpdate(update) {
  if (update.kind === "task") {
    const task = update.task;
    return { id: String(task.id), status: task.status, progress: task.progress, message: task.message, task, state: task, event: null };
  }
  if (update.kind === "event") {
    const d = update.data;
    // What the event says of the task, as much of a Task as a card needs: a requeue's status event
    // carries the new attempt, and one waiting for a quota its resume_at.
    const state = { status: d.status, progress: d.progress, message: d.message, error: d.error, attempt: d.attempt, resume_at: d.resume_at };
    return { id: String(d.task_id), status: d.status, progress: d.progress, message: d.message, task: null, state, event: update.event, data: d };
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
      task = await getTask(id);
    } catch {
      /* gone already */
    }
    const latest = this.#pending.get(id);
    this.#pending.delete(id);
    return { task, newer: latest && latest !== update ? latest : null };
  }
}
