"""Chapter content: the text of one chapter, streamed as it is written.

The prompt's context is assembled within ``CONTEXT_BUDGET`` tokens whatever the
novel's length (see ``chapter_context``). The chapter's short summary, kept for
later chapters' context, is derived without another model call: the chapter's
outline summary followed by the last sentences of the text (where the chapter
leaves its people, which is what the next chapter needs most). It costs nothing
and cannot fail; a model-written summary would be better prose at the price of a
second call per chapter.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from novawrite.generators.base import GenerationContext, InvalidModelOutput, NovelView, stream_with_retries
from novawrite.generators.chapter_context import CONTEXT_BUDGET, chapter_context, estimate_tokens, fit_tokens
from novawrite.generators.prompts import clip, instructions_block, join_blocks, pick, system_prompt
from novawrite.providers.base import Prompt
from novawrite.providers.requests import ChapterRequest
from novawrite.text import count_words

__all__ = ["CONTEXT_BUDGET", "build_chapter_prompt", "estimate_tokens"]

# How much of the text so far a continuation prompt repeats after a cut stream.
_CONTINUE_TOKENS = 1000
# Progress events are sent when the percentage moves this much, not per piece.
_PROGRESS_STEP = 2


class ChapterParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    novel_id: int
    chapter_id: int
    target_words: int = Field(default=2000, ge=100, le=20000)
    overwrite: bool = False
    instructions: str = Field(default="", max_length=4000)


class ChapterResult(BaseModel):
    content: str
    word_count: int
    summary: str


def _task(novel: NovelView, params: ChapterParams) -> str:
    assert novel.target is not None
    number = novel.target.chapter.number
    return pick(
        novel.language,
        f"请写出第 {number} 章的正文，约 {params.target_words} 字。紧接上一章的结尾，按本章大纲推进情节，"
        "人物言行符合设定，该埋下或回收的伏笔自然融入。多用场景、动作和对话，少用概述；章末留下悬念。"
        "只输出正文，不要章节标题、不要解释。",
        f"Write the text of chapter {number}, about {params.target_words} words. Pick up where the previous "
        "chapter ends, follow this chapter's outline, keep every character true to their description, and work "
        "in the foreshadowing to plant or pay off. Show scenes, action and dialogue rather than summary; end on "
        "a hook. Output only the chapter's prose: no title, no notes.",
    )


def build_chapter_prompt(novel: NovelView, params: ChapterParams, text_so_far: str = "") -> Prompt:
    """The prompt for a chapter; with ``text_so_far``, the prompt to continue a cut stream."""
    if novel.target is None:
        raise ValueError("a chapter prompt needs the novel's target chapter")
    lang = novel.language
    ctx = chapter_context(novel)
    user = join_blocks(ctx.text, _task(novel, params), instructions_block(lang, params.instructions))
    if text_so_far:
        tail = fit_tokens(text_so_far, _CONTINUE_TOKENS, keep="end")
        user += (
            "\n\n"
            + pick(
                lang,
                "本章已写出的部分到此中断，请从断开处原样接着写，不要重复已写内容：\n",
                "The chapter so far was cut off here; continue exactly where it stops, without repeating it:\n",
            )
            + tail
        )
    target = novel.target
    request: ChapterRequest = {
        **novel.as_context(),
        "chapter_number": target.chapter.number,
        "chapter_title": target.chapter.title,
        "chapter_summary": target.chapter.summary,
        "volume_number": target.volume_number,
        "target_words": params.target_words,
        "characters_present": list(ctx.characters),
        "foreshadow_plant": list(ctx.plant),
        "foreshadow_payoff": list(ctx.payoff),
        "previous_ending": clip(target.previous_ending[-200:], 200),
        "next_title": ctx.next_title,
        "instructions": params.instructions,
        "written_chars": len(text_so_far),
    }
    return Prompt(kind="chapter", system=system_prompt(lang, json_output=False), user=user, context=request)


_SENTENCE = re.compile(r"[^。！？!?.…]+(?:[。！？!?.…]+[”\"’')）」』]*)?")


def last_sentences(text: str, count: int = 2) -> str:
    sentences = [s.strip() for s in _SENTENCE.findall(text.strip()) if s.strip()]
    return "".join(sentences[-count:]) if count and sentences else ""


def summarize(novel: NovelView, content: str) -> str:
    """A short summary for later chapters' context, without a model call (module docstring)."""
    assert novel.target is not None
    outline = clip(novel.target.chapter.summary, 200)
    ending = fit_tokens(last_sentences(content), 120, keep="end")
    if not ending:
        return outline
    joiner = pick(novel.language, "结尾：", "It ends: ")
    return f"{outline} {joiner}{ending}".strip() if outline else ending


async def generate(ctx: GenerationContext) -> ChapterResult:
    params = ctx.params
    assert isinstance(params, ChapterParams)
    novel = ctx.novel
    if novel.target is None:
        raise ValueError("chapter task without a target chapter")
    lang = ctx.language
    number = novel.target.chapter.number
    target = params.target_words
    words = 0
    shown = 1

    async def on_text(piece: str) -> None:
        nonlocal words, shown
        await ctx.progress.chunk(piece)
        # Counting the piece alone may split a Latin word in two; close enough for progress.
        words += count_words(piece)
        percent = min(99, max(1, 100 * words // target))
        if percent >= shown + _PROGRESS_STEP:
            shown = percent
            await ctx.progress.update(
                percent,
                pick(
                    lang,
                    f"正在写第 {number} 章：约 {words}/{target} 字",
                    f"Writing chapter {number}: about {words} of {target} words",
                ),
            )

    await ctx.progress.update(1, pick(lang, f"正在写第 {number} 章", f"Writing chapter {number}"))
    # After a requeue the earlier attempt's text is already out as chunk events: continue after it.
    text = await stream_with_retries(
        ctx, lambda so_far: build_chapter_prompt(novel, params, so_far), on_text=on_text, initial=ctx.resume_text
    )
    if not text.strip():
        raise InvalidModelOutput("The model wrote no text for the chapter")
    final = count_words(text)
    await ctx.progress.update(
        max(shown, 99), pick(lang, f"第 {number} 章已写完，共 {final} 字", f"Chapter {number} written: {final} words")
    )
    return ChapterResult(content=text, word_count=final, summary=summarize(novel, text))
