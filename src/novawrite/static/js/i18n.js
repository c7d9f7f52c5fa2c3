// UI strings: the page embeds its language's table (from static/i18n/messages.json,
// the same table the templates use), so no request and no flash of the other language.

const table = JSON.parse(document.getElementById("nw-i18n")?.textContent || "{}");

export const lang = document.body.dataset.lang === "en" ? "en" : "zh";
export const locale = lang === "zh" ? "zh-CN" : "en";

/** t("tasks.count", {n: 3}) -> the string with {n} filled in; the key itself when missing. */
export function t(key, vars = {}) {
  const text = table[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (match, name) => (name in vars ? String(vars[name]) : match));
}

export const kindLabel = (taskType) => t(`kind.${taskType}`);
export const statusLabel = (status) => t(`status.${status}`);

const numberFormat = new Intl.NumberFormat(locale);
export const formatNumber = (n) => numberFormat.format(n ?? 0);

const dateFormat = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" });
const timeFormat = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

export function formatDate(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateFormat.format(date);
}

export function formatTime(date) {
  return timeFormat.format(date);
}

/** Word count as the novel counts it: characters for Chinese, words for English. */
export function wordsLabel(n, novelLanguage) {
  return t(novelLanguage === "en" ? "common.words_en" : "common.words_zh", { n: formatNumber(n) });
}
