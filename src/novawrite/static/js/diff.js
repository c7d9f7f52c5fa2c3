// Differences between two texts, for comparing a chapter's revisions with its text.
//
// Myers' O(ND) algorithm over tokens: words for English (and any Latin-script
// run), single characters for Chinese, so a diff reads word by word in one
// language and character by character in the other. Texts run to 200,000
// characters, so the diff goes in two steps: lines first, then tokens within the
// changed lines only. Each step gives up past a number of edits (memory grows as
// edits squared) and then shows the block as removed and added whole. No DOM:
// node tests import it.

const CJK = "\\u3040-\\u30ff\\u3400-\\u4dbf\\u4e00-\\u9fff\\uf900-\\ufaff\\uac00-\\ud7af\\u{20000}-\\u{2fa1f}";
const WORD_CHAR = `(?:(?![${CJK}])[\\p{L}\\p{N}_])`;
const TOKEN = new RegExp(`\\n|[^\\S\\n]+|[${CJK}]|${WORD_CHAR}+(?:['’-]${WORD_CHAR}+)*|[^]`, "gu");

/** The tokens of a text, which join back into it: words, single CJK characters, spaces, newlines, marks. */
export function tokenize(text) {
  return String(text ?? "").match(TOKEN) ?? [];
}

/** Lines with their "\n", which join back into the text. */
export function splitLines(text) {
  return String(text ?? "").match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/**
 * The shortest edit turning sequence a into b, as runs [{op: "equal"|"delete"|"insert", items}]
 * (equal and delete items from a, insert items from b); null when it needs more than maxEdits edits.
 */
export function diffSequences(a, b, { maxEdits = Infinity } = {}) {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start += 1;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA -= 1;
    endB -= 1;
  }
  const middle = myers(a.slice(start, endA), b.slice(start, endB), maxEdits);
  if (middle === null) return null;
  const runs = [];
  const push = (op, item) => {
    const last = runs[runs.length - 1];
    if (last && last.op === op) last.items.push(item);
    else runs.push({ op, items: [item] });
  };
  for (let i = 0; i < start; i += 1) push("equal", a[i]);
  for (const [op, item] of middle) push(op, item);
  for (let i = endA; i < a.length; i += 1) push("equal", a[i]);
  return runs;
}

/** [[op, item], ...] from a to b, or null past maxEdits edits. */
function myers(a, b, maxEdits) {
  const n = a.length;
  const m = b.length;
  if (n === 0) return b.map((item) => ["insert", item]);
  if (m === 0) return a.map((item) => ["delete", item]);
  const max = n + m;
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace = []; // trace[d]: v before round d, for k in -d-1..d+1 (index k + d + 1)
  for (let d = 0; d <= max; d += 1) {
    if (d > maxEdits) return null;
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1]) ? v[offset + k + 1] : v[offset + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x += 1;
        y += 1;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) return backtrack(trace, a, b);
    }
  }
  return null; // not reached: d = n + m always ends
}

function backtrack(trace, a, b) {
  const ops = [];
  let x = a.length;
  let y = b.length;
  for (let d = trace.length - 1; d > 0; d -= 1) {
    const snap = trace[d];
    const at = (k) => snap[k + d + 1];
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      ops.push(["equal", a[x - 1]]);
      x -= 1;
      y -= 1;
    }
    if (x === prevX) ops.push(["insert", b[prevY]]);
    else ops.push(["delete", a[prevX]]);
    x = prevX;
    y = prevY;
  }
  while (x > 0 && y > 0) {
    ops.push(["equal", a[x - 1]]);
    x -= 1;
    y -= 1;
  }
  return ops.reverse();
}

/**
 * The differences from text `before` to text `after` as segments [{type: "equal"|"delete"|"insert", text}];
 * the equal and delete segments join into `before`, the equal and insert ones into `after`.
 */
export function diffText(before, after, { maxEdits = 3000 } = {}) {
  const linesA = splitLines(before);
  const linesB = splitLines(after);
  const lineRuns = diffSequences(linesA, linesB, { maxEdits }) ?? [
    { op: "delete", items: linesA },
    { op: "insert", items: linesB },
  ];
  const segments = [];
  const add = (type, text) => {
    if (!text) return;
    const last = segments[segments.length - 1];
    if (last && last.type === type) last.text += text;
    else segments.push({ type, text });
  };
  let removed = "";
  let added = "";
  const refine = () => {
    if (removed && added) {
      const runs = diffSequences(tokenize(removed), tokenize(added), { maxEdits });
      if (runs) for (const run of runs) add(run.op, run.items.join(""));
      else {
        add("delete", removed);
        add("insert", added);
      }
    } else {
      add("delete", removed);
      add("insert", added);
    }
    removed = "";
    added = "";
  };
  for (const run of lineRuns) {
    if (run.op === "delete") removed += run.items.join("");
    else if (run.op === "insert") added += run.items.join("");
    else {
      refine();
      add("equal", run.items.join(""));
    }
  }
  refine();
  return tidy(segments);
}

// A lone space or character left equal between two changes makes a diff hard to
// read (Chinese especially: a shared 的 between two rewritten phrases). Such a
// sliver (never a line break) joins both sides of the change around it.
const SLIVER = /^(?:[^\S\n]+|[^\s])$/u;

function tidy(segments) {
  const out = [];
  let removed = "";
  let added = "";
  const flush = () => {
    if (removed) out.push({ type: "delete", text: removed });
    if (added) out.push({ type: "insert", text: added });
    removed = "";
    added = "";
  };
  segments.forEach((segment, i) => {
    if (segment.type === "delete") removed += segment.text;
    else if (segment.type === "insert") added += segment.text;
    else if ((removed || added) && i + 1 < segments.length && SLIVER.test(segment.text)) {
      removed += segment.text;
      added += segment.text;
    } else {
      flush();
      out.push({ ...segment });
    }
  });
  flush();
  return out;
}
