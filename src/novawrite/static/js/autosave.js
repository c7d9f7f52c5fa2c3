// Saving an editor's fields while the author types, without losing or overwriting anything.
//
// Debounced (a pause in typing, or at most maxWait after the first unsaved change),
// one request at a time: a change made while a save is in flight is sent after it,
// from the ETag that save returned. A 412 (changed elsewhere) or a 409 task_conflict
// (a generation writes the chapter) blocks saving until the page resets the
// baseline; a network error or 5xx retries with backoff; a 4xx such as 422 waits
// for the next edit. No DOM and injectable timers: node tests drive it.

export const STATES = ["saved", "pending", "saving", "retrying", "invalid", "conflict", "locked"];

export class Autosave {
  /**
   * read(): the editor's values now ({field: string}).
   * send(changes, etag): resolves {etag} once the server has them; rejects with an error
   *   carrying `status` (an HTTP status, undefined for a network failure), `code`, `error`.
   * onState(state, detail): each state change (detail: the error for invalid/conflict/locked).
   */
  constructor({ read, send, onState = () => {}, delay = 800, maxWait = 5000, retryBase = 2000, retryMax = 30000, clock = () => Date.now(), setTimer = (fn, ms) => setTimeout(fn, ms), clearTimer = (id) => clearTimeout(id) }) {
    Object.assign(this, { read, send, onState, delay, maxWait, retryBase, retryMax, clock, setTimer, clearTimer });
    this.base = {}; // the values the server holds (as last sent or loaded)
    this.etag = null;
    this.state = "saved";
    this.blocked = null; // "conflict" | "locked": nothing is sent until reset()
    this.inFlight = null;
    this.timer = null;
    this.firstChange = null;
    this.lastChange = 0;
    this.failures = 0;
  }

  /** The server's values and ETag are these (loaded, or after a conflict or a generation); saving resumes. */
  reset(values, etag) {
    this.base = { ...values };
    this.etag = etag;
    this.blocked = null;
    this.failures = 0;
    this.cancelTimer();
    this.firstChange = null;
    if (this.changes()) this.edited();
    else this.setState("saved");
  }

  /** The fields that differ from the server's, or null. */
  changes() {
    const now = this.read();
    const changed = {};
    for (const [name, value] of Object.entries(now)) if (value !== this.base[name]) changed[name] = value;
    return Object.keys(changed).length ? changed : null;
  }

  /** Unsaved text exists (typed, or on its way). */
  get dirty() {
    return this.inFlight !== null || this.changes() !== null;
  }

  /** Call on every edit. */
  edited() {
    this.lastChange = this.clock();
    if (this.blocked) return;
    this.firstChange ??= this.lastChange;
    if (this.inFlight) return; // sent when the save in flight ends
    if (!this.changes()) {
      this.firstChange = null;
      this.cancelTimer();
      this.setState("saved");
      return;
    }
    this.setState("pending");
    this.schedule();
  }

  /** Block saving (a generation is writing): the values stay as they are until reset(). */
  lock(detail) {
    this.blocked = "locked";
    this.cancelTimer();
    this.setState("locked", detail);
  }

  /** Save now (Ctrl+S, leaving edit mode); resolves when nothing is left to send or saving is blocked. */
  async flush() {
    this.cancelTimer();
    for (let guard = 0; guard < 5 && !this.blocked; guard += 1) {
      if (this.inFlight) await this.inFlight.catch(() => {});
      else if (this.changes() && this.state !== "invalid") await this.run();
      else break;
    }
    return !this.dirty;
  }

  schedule(wait) {
    this.cancelTimer();
    const now = this.clock();
    const due = wait ?? Math.max(0, Math.min(this.lastChange + this.delay, (this.firstChange ?? now) + this.maxWait) - now);
    this.timer = this.setTimer(() => {
      this.timer = null;
      this.run();
    }, due);
  }

  cancelTimer() {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
  }

  async run() {
    if (this.inFlight || this.blocked) return;
    const changes = this.changes();
    if (!changes) {
      this.firstChange = null;
      this.setState("saved");
      return;
    }
    this.firstChange = null;
    this.setState("saving");
    const request = this.send(changes, this.etag);
    this.inFlight = request;
    let answer;
    try {
      answer = await request;
    } catch (error) {
      this.inFlight = null;
      this.failed(error);
      return;
    }
    this.inFlight = null;
    this.failures = 0;
    // What was sent is what the server holds now; compare with that, not with its echo,
    // so a value the server normalises is not sent again and again.
    Object.assign(this.base, changes);
    this.etag = answer.etag;
    if (this.blocked) return;
    if (this.changes()) {
      this.firstChange ??= this.clock();
      this.setState("pending");
      this.schedule();
    } else {
      this.setState("saved");
    }
  }

  failed(error) {
    const status = error?.status;
    if (status === 412) {
      this.blocked = "conflict";
      this.setState("conflict", error);
    } else if (status === 409 && error.code === "task_conflict") {
      this.blocked = "locked";
      this.setState("locked", error);
    } else if (status === undefined || status >= 500 || status === 429) {
      this.failures += 1;
      this.setState("retrying", error);
      this.schedule(Math.min(this.retryMax, this.retryBase * 2 ** (this.failures - 1)));
    } else {
      this.setState("invalid", error); // 422 and the like: the next edit tries again
    }
  }

  setState(state, detail) {
    this.state = state;
    this.onState(state, detail);
  }
}
