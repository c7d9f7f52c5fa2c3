"""Chapter content: the text of one chapter, streamed as it is written, then its recap.

The prompt is assembled within the chapter context budget whatever the novel's
length (``chapter_context``). Once the text is complete, the recap step
(``recap``) reads it and reports what happens in it and which open foreshadowing
threads it hinted at or resolved; both are applied with the text, in one
transaction (``services.apply.chapter``), so a chapter and its recap never
disagree.

A recap that cannot be had (the answer still broken after its one repair, or the
provider failing for good) does not throw the chapter away: the task completes
with the text, ``recap`` null and ``recap_error`` saying why, and
``recap_chapters`` can write it later. The text's length is checkpointed once it
is complete, so a task requeued during its recap call does not stream more text
after the end.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from novawrite.generators.base import GenerationContext, InvalidModelOutput, NovelView, stream_with_retries
from novawrite.generators.chapter_context import CONTEXT_BUDGET, chapter_context, estimate_tokens, fit_tokens
from novawrite.generators.prompts import clip, instructions_block, join_blocks, pick, system_prompt
from novawrite.generators.recap import ThreadChange, recap_chapter
from novawrite.providers.base import Prompt, ProviderError
from novawrite.providers.requests import ChapterRequest
from novawrite.text import count_words

__all__ = ["CONTEXT_BUDGET", "build_chapter_prompt", "estimate_tokens"]

# How much of the text so far a continuation prompt repeats after a cut stream.
_CONTINUE_TOKENS = 1000
# Progress events are sent when the percentage moves this much, not per piece.
_PROGRESS_STEP = 2
# The least context a prompt gets, whatever the task and the instructions leave of the budget.
_MIN_CONTEXT = 1000
# The checkpoint member holding the length of the complete text (see the module docstring).
_TEXT_DONE = "text_chars"


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
    #: What happens in the text, or None when the recap step failed (``recap_error`` says why).
    recap: str | None = None
    #: The open foreshadowing threads the chapter moved on (hinted at or resolved).
    threads: list[ThreadChange] = Field(default_factory=list)
    recap_error: str | None = None


def _task(novel: NovelView, params: ChapterParams) -> str:
    assert novel.target is not None
    number = novel.target.chapter.number
    return pick(
        novel.language,
        f"请写出第 {number} 章的正文，约 {params.target_words} 字。紧接上一章的结尾，按本章大纲推进情节，"
        "人物言行符合设定，该埋下的伏笔自然融入，以本章为回收章的伏笔务必在本章回收。"
        "多用场景、动作和对话，少用概述；章末留下悬念。只输出正文，不要章节标题、不要解释。",
        f"Write the text of chapter {number}, about {params.target_words} words. Pick up where the previous "
        "chapter ends, follow this chapter's plan, keep every character true to their description, work in the "
        "foreshadowing to plant, and pay off every thread whose payoff chapter this is. Show scenes, action and "
        "dialogue rather than summary; end on a hook. Output only the chapter's prose: no title, no notes.",
    )


def build_chapter_prompt(
    novel: NovelView, params: ChapterParams, text_so_far: str = "", budget: int = CONTEXT_BUDGET
) -> Prompt:
    """The prompt for a chapter within ``budget`` estimated tokens, the system prompt included;
    with ``text_so_far``, the prompt to continue a cut stream."""
    if novel.target is None:
        raise ValueError("a chapter prompt needs the novel's target chapter")
    lang = novel.language
    system = system_prompt(lang, json_output=False)
    own = join_blocks(_task(novel, params), instructions_block(lang, params.instructions))
    spent = estimate_tokens(system) + estimate_tokens(own) + 2
    if text_so_far:
        spent += _CONTINUE_TOKENS + 60
    ctx = chapter_context(novel, max(budget - spent, _MIN_CONTEXT))
    user = join_blocks(ctx.text, own)
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
    return Prompt(kind="chapter", system=system, user=user, context=request)


async def generate(ctx: GenerationContext, budget: int = CONTEXT_BUDGET) -> ChapterResult:
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
        percent = min(95, max(1, 100 * words // target))
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
    if ctx.resume_text and (ctx.checkpoint or {}).get(_TEXT_DONE) == len(ctx.resume_text):
        text = ctx.resume_text  # an earlier attempt finished the text and stopped in its recap
    else:
        # After a requeue the earlier attempt's text is already out as chunk events: continue after it.
        text = await stream_with_retries(
            ctx,
            lambda so_far: build_chapter_prompt(novel, params, so_far, budget),
            on_text=on_text,
            initial=ctx.resume_text,
        )
    if not text.strip():
        raise InvalidModelOutput("The model wrote no text for the chapter")
    await ctx.checkpoint_save({_TEXT_DONE: len(text)})
    final = count_words(text)
    shown = max(shown, 96)
    await ctx.progress.update(
        shown, pick(lang, f"第 {number} 章已写完，正在写回顾", f"Chapter {number} written; writing its recap")
    )
    result = ChapterResult(content=text, word_count=final)
    try:
        recap = await recap_chapter(ctx, novel.target.chapter, text, percent=shown)
    except (InvalidModelOutput, ProviderError) as exc:
        result.recap_error = getattr(exc, "message", None) or str(exc)
    else:
        result.recap, result.threads = recap.recap, recap.threads
    await ctx.progress.update(
        99, pick(lang, f"第 {number} 章已写完，共 {final} 字", f"Chapter {number} written: {final} words")
    )
    return result
