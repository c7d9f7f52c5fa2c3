// Counting words as the server counts them (src/novawrite/text.py): each CJK
// character (ideograph, kana, hangul syllable) is one, each run of other letters
// and digits, joined by apostrophes or hyphens, is one word. No DOM: node tests import it.

const CJK = "\\u3040-\\u30ff\\u3400-\\u4dbf\\u4e00-\\u9fff\\uf900-\\ufaff\\uac00-\\ud7af\\u{20000}-\\u{2fa1f}";
// Python's \w less the CJK ranges: a letter, digit or underscore that is not CJK.
const WORD_CHAR = `(?:(?![${CJK}])[\\p{L}\\p{N}_])`;
const TOKEN = new RegExp(`[${CJK}]|${WORD_CHAR}+(?:['’-]${WORD_CHAR}+)*`, "gu");

export function countWords(text) {
  let n = 0;
  for (const _ of String(text ?? "").matchAll(TOKEN)) n += 1;
  return n;
}
