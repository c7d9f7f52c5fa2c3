"""The recap step: what actually happens in a written chapter, and which open threads it touched.

One structured model call (prompt kind ``chapter_recap``), repaired once when the
answer does not parse or its recap is blank (``ask_json``). The recap is held to
``RECAP_WORDS`` words in English and ``RECAP_CHARS`` characters in Chinese by
trimming, not by asking again: a model that overshoots is cut at the last whole
sentence that fits, which costs nothing and cannot fail.

The model names the open foreshadowing threads the chapter hinted at or resolved
by their ids; ids it was not shown are dropped, and a thread only moves forward
(planted -> hinted -> resolved; resolved and abandoned never move), so a confused
answer cannot reopen anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from novawrite.generators.base import ChapterView, ForeshadowingView, GenerationContext, NovelView, ask_json
from novawrite.generators.chapter_context import estimate_tokens, fit_tokens
from novawrite.generators.prompts import clip, join_blocks, pick, system_prompt
from novawrite.providers.base import Prompt
from novawrite.providers.requests import RecapRequest, ThreadRequest
from novawrite.text import count_words

RECAP_WORDS = 300
RECAP_CHARS = 600
#: Threads whose status may still move.
OPEN_STATUSES = ("planted", "hinted")
# How much of a chapter the recap call reads: a longer text keeps its start and its end.
_TEXT_TOKENS = 24_000
# Open threads shown to the model, the ones due soonest first.
_MAX_THREADS = 40

ThreadStatus = Literal["hinted", "resolved"]


class ThreadReport(BaseModel):
    """One thread the model says the chapter touched."""

    id: int
    change: ThreadStatus

    @field_validator("change", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class RecapAnswer(BaseModel):
    """The model's answer (the JSON schema it is asked to fit)."""

    recap: str
    foreshadowing: list[ThreadReport] = Field(default_factory=list)

    @field_validator("recap")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the recap is empty")
        return value


class ThreadChange(BaseModel):
    foreshadowing_id: int
    status: ThreadStatus


class ChapterRecap(BaseModel):
    recap: str
    threads: list[ThreadChange] = Field(default_factory=list)


# --- The recap's length --------------------------------------------------------------------

_SENTENCE = re.compile(r"[^。！？!?.…]+(?:[。！？!?.…]+[”\"’')）」』]*)?")


def recap_length(text: str, language: str) -> int:
    return len(text.strip()) if language == "zh" else count_words(text)


def limit_recap(text: str, language: str) -> str:
    """``text`` within the recap's limit: whole sentences while they fit, else a cut first sentence."""
    text = " ".join(text.split())
    limit = RECAP_CHARS if language == "zh" else RECAP_WORDS
    if recap_length(text, language) <= limit:
        return text
    kept = ""
    for sentence in (s.strip() for s in _SENTENCE.findall(text)):
        candidate = (kept + sentence) if language == "zh" else f"{kept} {sentence}".strip()
        if recap_length(candidate, language) > limit:
            break
        kept = candidate
    if kept:
        return kept
    if language == "zh":
        return text[: limit - 1] + "…"
    return " ".join(text.split()[: limit - 1]) + "…"


# --- Threads -------------------------------------------------------------------------------


def open_threads(
    novel: NovelView, chapter_number: int, statuses: Mapping[int, str] | None = None
) -> list[ForeshadowingView]:
    """The threads a chapter may touch: open (by ``statuses`` when given, which a batch of
    recaps keeps up to date), planted by this chapter or earlier (or nowhere), due soonest first."""
    statuses = statuses or {}

    def status(f: ForeshadowingView) -> str:
        return statuses.get(f.id, f.status)

    found = [
        f
        for f in novel.foreshadowings
        if status(f) in OPEN_STATUSES and (f.planted_chapter is None or f.planted_chapter <= chapter_number)
    ]
    found.sort(key=lambda f: (abs((f.payoff_chapter or 10**9) - chapter_number), f.id))
    return found[:_MAX_THREADS]


def thread_changes(reports: Iterable[ThreadReport], shown: Iterable[ForeshadowingView]) -> list[ThreadChange]:
    """The reports about threads the model was shown that move them forward; one change per thread."""
    current = {f.id: f.status for f in shown}
    wanted: dict[int, ThreadStatus] = {}
    for report in reports:
        if report.id not in current:
            continue
        if report.change == "resolved" or wanted.get(report.id) != "resolved":
            wanted[report.id] = report.change
    return [
        ThreadChange(foreshadowing_id=fid, status=status)
        for fid, status in wanted.items()
        if advances(current[fid], status)
    ]


def advances(current: str, new: str) -> bool:
    """Whether a thread at ``current`` moves to ``new``: only forward, never out of resolved or abandoned."""
    order = {"planted": 0, "hinted": 1, "resolved": 2}
    return current in OPEN_STATUSES and order[new] > order[current]


# --- The prompt ----------------------------------------------------------------------------


def _clip_text(text: str) -> str:
    text = text.strip()
    if estimate_tokens(text) <= _TEXT_TOKENS:
        return text
    return fit_tokens(text, _TEXT_TOKENS // 2) + "\n……\n" + fit_tokens(text, _TEXT_TOKENS // 2, keep="end")


def _thread_row(lang: str, f: ForeshadowingView) -> str:
    planted = f.planted_chapter if f.planted_chapter is not None else "?"
    payoff = f.payoff_chapter if f.payoff_chapter is not None else "?"
    return pick(
        lang,
        f"- id {f.id}：{f.title}（第{planted}章埋下，计划第{payoff}章回收，状态 {f.status}）：{clip(f.description, 160)}",
        f"- id {f.id}: {f.title} (planted in chapter {planted}, payoff planned for chapter {payoff}, "
        f"status {f.status}): {clip(f.description, 240)}",
    )


def build_recap_prompt(novel: NovelView, chapter: ChapterView, text: str, threads: list[ForeshadowingView]) -> Prompt:
    lang = novel.language
    limit = RECAP_CHARS if lang == "zh" else RECAP_WORDS
    body = _clip_text(text)
    heading = pick(
        lang,
        f"【第{chapter.number}章《{chapter.title}》正文】",
        f"[The text of chapter {chapter.number}, {chapter.title}]",
    )
    rows = [_thread_row(lang, f) for f in threads]
    thread_block = (
        pick(lang, "【尚未回收的伏笔】", "[Open foreshadowing threads]") + "\n" + "\n".join(rows) if rows else ""
    )
    task = pick(
        lang,
        f"请为这一章写回顾，放在 recap 字段：用不超过 {limit} 字概括本章正文里实际发生的事——谁做了什么、"
        "什么改变了、章末人物身处何处、心里想着什么。只写正文里真的发生的事，不写计划中有而正文没写的内容。"
        "然后在 foreshadowing 列表中报告本章触及的伏笔：id 为上面列出的伏笔编号，change 为 hinted"
        "（本章暗示或推进了它）或 resolved（本章揭晓、回收了它）。本章没有触及的伏笔不要列出；没有就给空列表。",
        f"Write this chapter's recap in `recap`: at most {limit} words on what actually happens in the text "
        "above: who does what, what changes, where the characters are and what they want as it ends. Only what "
        "the text shows, nothing that was planned but not written. Then list in `foreshadowing` the open threads "
        "above that the chapter touched: `id` as listed, `change` either 'hinted' (the chapter hints at or "
        "advances it) or 'resolved' (the chapter reveals or pays it off). Leave out threads it did not touch; "
        "an empty list is fine.",
    )
    user = join_blocks(
        pick(lang, f"《{novel.title}》", f"{novel.title}"),
        f"{heading}\n{body}",
        thread_block,
        task,
    )
    request: RecapRequest = {
        **novel.as_context(),
        "chapter_number": chapter.number,
        "chapter_title": chapter.title,
        "chapter_summary": chapter.summary,
        "text": body,
        "open_threads": [_thread_request(f) for f in threads],
        "max_length": limit,
    }
    return Prompt(kind="chapter_recap", system=system_prompt(lang, json_output=True), user=user, context=request)


def _thread_request(f: ForeshadowingView) -> ThreadRequest:
    return {
        "id": f.id,
        "title": f.title,
        "description": f.description,
        "status": f.status,
        "planted_chapter": f.planted_chapter,
        "payoff_chapter": f.payoff_chapter,
    }


async def recap_chapter(
    ctx: GenerationContext,
    chapter: ChapterView,
    text: str,
    *,
    statuses: Mapping[int, str] | None = None,
    percent: int | None = None,
) -> ChapterRecap:
    """The chapter's recap and thread changes; ``InvalidModelOutput`` after one failed repair."""
    novel = ctx.novel
    threads = open_threads(novel, chapter.number, statuses)
    if statuses:
        threads = [replace(f, status=statuses.get(f.id, f.status)) for f in threads]
    answer = await ask_json(ctx, build_recap_prompt(novel, chapter, text, threads), RecapAnswer, percent=percent)
    return ChapterRecap(
        recap=limit_recap(answer.recap, novel.language), threads=thread_changes(answer.foreshadowing, threads)
    )
