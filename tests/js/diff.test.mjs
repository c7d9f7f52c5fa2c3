// node --test tests/js: the diff module the chapter page compares revisions with.
import { test } from "node:test";
import assert from "node:assert/strict";

import { diffSequences, diffText, splitLines, tokenize } from "../../src/novawrite/static/js/diff.js";

const join = (segments, ...types) => segments.filter((s) => types.includes(s.type)).map((s) => s.text).join("");

function assertRebuilds(before, after) {
  const segments = diffText(before, after);
  assert.equal(join(segments, "equal", "delete"), before);
  assert.equal(join(segments, "equal", "insert"), after);
  for (let i = 1; i < segments.length; i += 1) assert.notEqual(segments[i].type, segments[i - 1].type);
  return segments;
}

test("tokens: English words whole, Chinese characters one by one, and they join back", () => {
  assert.deepEqual(tokenize("Don't  stop, well-known 42!"), ["Don't", "  ", "stop", ",", " ", "well-known", " ", "42", "!"]);
  assert.deepEqual(tokenize("他说：hello世界"), ["他", "说", "：", "hello", "世", "界"]);
  assert.deepEqual(tokenize("a\n\nb"), ["a", "\n", "\n", "b"]);
  const text = "第一章 The Start…\r\n𠀀😀 é";
  assert.equal(tokenize(text).join(""), text);
  assert.deepEqual(splitLines("one\ntwo\n\nthree"), ["one\n", "two\n", "\n", "three"]);
  assert.deepEqual(splitLines(""), []);
});

test("shortest edit of two sequences", () => {
  const runs = diffSequences([..."ABCABBA"], [..."CBABAC"]);
  const edits = runs.filter((r) => r.op !== "equal").reduce((n, r) => n + r.items.length, 0);
  assert.equal(edits, 5); // Myers' paper: D = 5
  const a = runs.filter((r) => r.op !== "insert").flatMap((r) => r.items).join("");
  const b = runs.filter((r) => r.op !== "delete").flatMap((r) => r.items).join("");
  assert.equal(a, "ABCABBA");
  assert.equal(b, "CBABAC");
  assert.deepEqual(diffSequences([], []), []);
  assert.deepEqual(diffSequences(["x"], []), [{ op: "delete", items: ["x"] }]);
  assert.deepEqual(diffSequences([], ["y"]), [{ op: "insert", items: ["y"] }]);
  assert.equal(diffSequences([..."abcdef"], [..."uvwxyz"], { maxEdits: 3 }), null);
});

test("English is compared word by word", () => {
  const segments = assertRebuilds("The quick brown fox jumps.", "The quick red fox leaps.");
  assert.deepEqual(segments, [
    { type: "equal", text: "The quick " },
    { type: "delete", text: "brown" },
    { type: "insert", text: "red" },
    { type: "equal", text: " fox " },
    { type: "delete", text: "jumps" },
    { type: "insert", text: "leaps" },
    { type: "equal", text: "." },
  ]);
});

test("Chinese is compared character by character", () => {
  const segments = assertRebuilds("少年拜入青云门。", "少年终于拜入青云门下。");
  assert.deepEqual(segments, [
    { type: "equal", text: "少年" },
    { type: "insert", text: "终于" },
    { type: "equal", text: "拜入青云门" },
    { type: "insert", text: "下" },
    { type: "equal", text: "。" },
  ]);
});

test("unchanged paragraphs stay whole; a lone shared character between changes joins them", () => {
  const before = "First paragraph stays.\nSecond one changes here.\nThird stays too.";
  const after = "First paragraph stays.\nSecond one was rewritten here.\nThird stays too.\nA new fourth.";
  const segments = assertRebuilds(before, after);
  assert.equal(segments[0].text, "First paragraph stays.\nSecond one ");
  const inserted = segments.filter((s) => s.type === "insert").map((s) => s.text.trim());
  assert.deepEqual(inserted.slice(0, 1), ["was rewritten"]);
  assert.match(inserted.join(" "), /A new fourth/);
  assert.deepEqual(segments.filter((s) => s.type === "delete").map((s) => s.text.trim()), ["changes"]);
  // 他 and 她 differ, and the 的 between the two changes is a sliver: one change, not three.
  assert.deepEqual(assertRebuilds("他的书", "她的画"), [
    { type: "delete", text: "他的书" },
    { type: "insert", text: "她的画" },
  ]);
});

test("identical, empty and completely different texts", () => {
  assert.deepEqual(assertRebuilds("same\ntext", "same\ntext"), [{ type: "equal", text: "same\ntext" }]);
  assert.deepEqual(assertRebuilds("", "new"), [{ type: "insert", text: "new" }]);
  assert.deepEqual(assertRebuilds("old", ""), [{ type: "delete", text: "old" }]);
  assert.deepEqual(diffText("", ""), []);
});

test("long texts: a large chapter with scattered edits is fast; too many edits fall back to whole blocks", () => {
  const paragraph = (i) => `Paragraph ${i} tells of the river, the city and the map that never holds still.\n`;
  const before = Array.from({ length: 2500 }, (_, i) => paragraph(i)).join(""); // ~200,000 characters
  const after = before.replace("Paragraph 100 tells", "Paragraph 100 sings").replace("Paragraph 2000 ", "Paragraph two thousand ");
  const started = Date.now();
  const segments = assertRebuilds(before, after);
  assert.ok(Date.now() - started < 2000, "a 200,000-character diff takes under 2 s");
  assert.deepEqual(segments.filter((s) => s.type !== "equal").map((s) => s.text), ["tells", "sings", "2000", "two thousand"]);

  const random = (seed, n) => Array.from({ length: n }, (_, i) => String.fromCharCode(0x4e00 + ((seed * 7919 + i * 104729) % 2000))).join("");
  const a = random(1, 6000);
  const b = random(2, 6000);
  const whole = assertRebuilds(a, b);
  assert.ok(whole.length <= 3);
});
