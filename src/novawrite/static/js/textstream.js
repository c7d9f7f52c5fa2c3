// The text of a streaming (chapter) task as it is written: what GET
// /api/tasks/{id}/output held when fetched, continued by chunk events.
//
// The output and the stream overlap: chunks that arrive around the fetch may
// already be in the fetched text. The stream delivers chunks in order, so the
// fetched text ends with some prefix of the chunks received since (possibly a
// part of one, if the server had not yet cut it into an event): the longest
// suffix of the output that is a prefix of the received chunks is counted once.
// Once a chunk lies wholly beyond the output, later ones simply append.

import { api } from "./api.js";

export class TextFollower {
  constructor(taskId, onText) {
    this.taskId = String(taskId);
    this.onText = onText;
    this.text = "";
    this.complete = false;
    this.lastSeq = 0;
    this.base = null; // the fetched output, until synced
    this.received = ""; // chunks received since the fetch started
    this.synced = false;
    this.generation = 0;
  }

  /** (Re)fetch the text so far; chunks arriving meanwhile are buffered and merged. */
  async load() {
    const generation = ++this.generation;
    this.base = null;
    this.received = "";
    this.synced = false;
    let output;
    try {
      output = await api("GET", `/api/tasks/${encodeURIComponent(this.taskId)}/output`);
    } catch {
      return;
    }
    if (generation !== this.generation) return;
    this.base = String(output?.text ?? "");
    this.complete = Boolean(output?.complete);
    this.merge(0);
  }

  chunk(seq, text) {
    seq = Number(seq);
    if (Number.isFinite(seq)) {
      if (seq <= this.lastSeq) return;
      this.lastSeq = seq;
    }
    if (!text) return;
    if (this.synced) {
      this.text += text;
      this.onText(this.text);
      return;
    }
    this.received += text;
    if (this.base !== null) this.merge(text.length);
  }

  merge(lastChunkLength) {
    const base = this.base;
    const received = this.received;
    let overlap = 0;
    for (let start = Math.max(0, base.length - received.length); start < base.length; start++) {
      if (received.startsWith(base.slice(start))) {
        overlap = base.length - start;
        break;
      }
    }
    this.text = base + received.slice(overlap);
    if (lastChunkLength > 0 && received.length - overlap >= lastChunkLength) {
      this.synced = true;
      this.base = null;
      this.received = "";
    }
    this.onText(this.text);
  }
}
