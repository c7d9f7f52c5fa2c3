// node --test tests/js: the chapter editor's autosave (debounce, one save in flight, 412/409, retries).
import { test } from "node:test";
import assert from "node:assert/strict";

import { Autosave } from "../../src/novawrite/static/js/autosave.js";

/** A clock and timers the test moves by hand. */
class FakeTime {
  constructor() {
    this.now = 0;
    this.timers = new Map();
    this.next = 1;
  }
  clock = () => this.now;
  setTimer = (fn, ms) => {
    const id = this.next++;
    this.timers.set(id, { fn, at: this.now + ms });
    return id;
  };
  clearTimer = (id) => this.timers.delete(id);
  async advance(ms) {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((x, y) => x[1].at - y[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
      await settle();
    }
    this.now = end;
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

/** A server that holds its answers until the test releases them. */
function harness(initial = { content: "v0" }) {
  const time = new FakeTime();
  const editor = { ...initial };
  const sent = [];
  const states = [];
  let version = 0;
  const save = new Autosave({
    read: () => ({ ...editor }),
    send: (changes, etag) =>
      new Promise((resolve, reject) => sent.push({ changes, etag, resolve: () => resolve({ etag: `"e${++version}"` }), reject })),
    onState: (state) => states.push(state),
    delay: 800,
    maxWait: 5000,
    clock: time.clock,
    setTimer: time.setTimer,
    clearTimer: time.clearTimer,
  });
  save.reset({ ...initial }, '"e0"');
  const type = (value) => {
    editor.content = value;
    save.edited();
  };
  return { time, editor, sent, states, save, type };
}

test("debounced: a burst of typing is one save, sent after a pause", async () => {
  const { time, sent, save, type } = harness();
  type("v1");
  await time.advance(500);
  type("v12");
  await time.advance(500);
  type("v123");
  assert.equal(sent.length, 0);
  assert.equal(save.state, "pending");
  await time.advance(799);
  assert.equal(sent.length, 0);
  await time.advance(1);
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0].changes, { content: "v123" });
  assert.equal(sent[0].etag, '"e0"');
  assert.equal(save.state, "saving");
  sent[0].resolve();
  await settle();
  assert.equal(save.state, "saved");
  assert.equal(save.dirty, false);
});

test("continuous typing still saves every maxWait", async () => {
  const { time, sent, type } = harness();
  for (let i = 1; i <= 20; i += 1) {
    type(`v${i}`);
    await time.advance(300);
  }
  assert.equal(sent.length, 1); // at 5000 ms after the first change, not later
  assert.equal(sent[0].changes.content, "v17");
});

test("one request in flight: a change made during a save is sent after it, with the new ETag", async () => {
  const { time, sent, save, type } = harness();
  type("first");
  await time.advance(800);
  assert.equal(sent.length, 1);
  type("second");
  await time.advance(5000);
  assert.equal(sent.length, 1, "nothing else is sent while a save is in flight");
  assert.equal(save.dirty, true);
  sent[0].resolve();
  await settle();
  assert.equal(save.state, "pending");
  await time.advance(800);
  assert.equal(sent.length, 2);
  assert.deepEqual(sent[1].changes, { content: "second" });
  assert.equal(sent[1].etag, '"e1"');
  sent[1].resolve();
  await settle();
  assert.equal(save.state, "saved");
});

test("only changed fields are sent; typing back to the saved text sends nothing", async () => {
  const { time, sent, save, editor } = harness({ title: "T", content: "c" });
  editor.title = "T2";
  save.edited();
  await time.advance(800);
  assert.deepEqual(sent[0].changes, { title: "T2" });
  sent[0].resolve();
  await settle();
  editor.content = "cx";
  save.edited();
  editor.content = "c";
  save.edited();
  assert.equal(save.state, "saved");
  await time.advance(10_000);
  assert.equal(sent.length, 1);
});

test("412: saving stops, nothing is resent until the page resets the baseline", async () => {
  const { time, sent, save, states, type, editor } = harness();
  type("mine");
  await time.advance(800);
  sent[0].reject(Object.assign(new Error("changed"), { status: 412, code: "precondition_failed" }));
  await settle();
  assert.equal(save.state, "conflict");
  type("mine, more");
  await time.advance(60_000);
  assert.equal(sent.length, 1);
  assert.equal(save.dirty, true); // the page must not let this go silently
  assert.ok(states.includes("conflict"));
  // The author loads the server's text: it becomes the editor's and the baseline.
  editor.content = "theirs";
  save.reset({ content: "theirs" }, '"e9"');
  assert.equal(save.state, "saved");
  type("theirs, edited");
  await time.advance(800);
  assert.equal(sent[1].etag, '"e9"');
});

test("409 task_conflict locks; network errors retry with backoff; 422 waits for the next edit", async () => {
  const { time, sent, save, type } = harness();
  type("a");
  await time.advance(800);
  sent[0].reject(Object.assign(new Error("writing"), { status: 409, code: "task_conflict", error: { task_id: "t1" } }));
  await settle();
  assert.equal(save.state, "locked");
  await time.advance(60_000);
  assert.equal(sent.length, 1);

  save.reset({ content: "generated" }, '"e5"');
  type("b");
  await time.advance(800);
  sent[1].reject(new TypeError("Failed to fetch"));
  await settle();
  assert.equal(save.state, "retrying");
  await time.advance(1999);
  assert.equal(sent.length, 2);
  await time.advance(1);
  assert.equal(sent.length, 3);
  sent[2].reject(Object.assign(new Error("busy"), { status: 503 }));
  await settle();
  await time.advance(3999);
  assert.equal(sent.length, 3);
  await time.advance(1);
  assert.equal(sent.length, 4, "the second retry waits twice as long");
  sent[3].reject(Object.assign(new Error("too long"), { status: 422, code: "validation_error" }));
  await settle();
  assert.equal(save.state, "invalid");
  await time.advance(60_000);
  assert.equal(sent.length, 4);
  type("bc");
  await time.advance(800);
  assert.equal(sent.length, 5);
});

test("flush sends at once and resolves when the server has everything", async () => {
  const { sent, save, type } = harness();
  type("now");
  const flushed = save.flush();
  await settle();
  assert.equal(sent.length, 1);
  sent[0].resolve();
  assert.equal(await flushed, true);
  assert.equal(save.state, "saved");
});
