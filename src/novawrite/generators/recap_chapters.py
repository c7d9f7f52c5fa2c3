"""``recap_chapters``: the recaps of chapters that already have text (imported, hand-written, edited).

The chapters are recapped one by one in reading order, each by the recap step of a
written chapter (``recap``). Thread statuses carry from one chapter to the next
within the task, so a thread resolved in chapter 3 is not offered to chapter 5 as
open. Chapters without text (or gone since the submit) are skipped and listed. A
chapter whose recap answer stays broken after its repair is listed under
``failed`` and the others go on; the task fails only when every chapter failed.

Each recap carries the digest of the text it read: applying it marks the recap
stale when the author changed the text while the task ran.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from novawrite.generators.base import ChapterIds, ChapterView, GenerationContext, InvalidModelOutput
from novawrite.generators.chapter_context import ordered_chapters
from novawrite.generators.prompts import pick
from novawrite.generators.recap import ChapterRecap, recap_chapter


class RecapChaptersParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    novel_id: int
    chapter_ids: ChapterIds


class ChapterRecapItem(ChapterRecap):
    chapter_id: int
    #: sha256 of the text the recap was made from.
    content_sha256: str


class FailedRecap(BaseModel):
    chapter_id: int
    error: str


class RecapChaptersResult(BaseModel):
    recaps: list[ChapterRecapItem] = Field(default_factory=list)
    #: Chapters without text (or no longer in the novel).
    skipped: list[int] = Field(default_factory=list)
    failed: list[FailedRecap] = Field(default_factory=list)


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def chapters_read(params: Any) -> list[int]:
    """The chapters a recap_chapters task reads whole (``TaskKind.reads_chapters``)."""
    assert isinstance(params, RecapChaptersParams)
    return list(params.chapter_ids)


async def generate(ctx: GenerationContext) -> RecapChaptersResult:
    params = ctx.params
    assert isinstance(params, RecapChaptersParams)
    novel = ctx.novel
    lang = novel.language
    wanted = set(params.chapter_ids)
    todo: list[ChapterView] = [
        c for _, c in ordered_chapters(novel) if c.id in wanted and novel.texts.get(c.id, "").strip()
    ]
    chosen = {c.id for c in todo}
    result = RecapChaptersResult(skipped=[cid for cid in params.chapter_ids if cid not in chosen])
    statuses = {f.id: f.status for f in novel.foreshadowings}
    for done, chapter in enumerate(todo):
        percent = 1 + 98 * done // len(todo)
        await ctx.progress.update(
            percent,
            pick(
                lang,
                f"正在写第 {chapter.number} 章的回顾（{done + 1}/{len(todo)}）",
                f"Recapping chapter {chapter.number} ({done + 1} of {len(todo)})",
            ),
        )
        text = novel.texts[chapter.id]
        try:
            recap = await recap_chapter(ctx, chapter, text, statuses=statuses, percent=percent)
        except InvalidModelOutput as exc:
            result.failed.append(FailedRecap(chapter_id=chapter.id, error=str(exc)))
            continue
        for change in recap.threads:
            statuses[change.foreshadowing_id] = change.status
        result.recaps.append(
            ChapterRecapItem(chapter_id=chapter.id, content_sha256=text_digest(text), **recap.model_dump())
        )
    if todo and not result.recaps:
        raise InvalidModelOutput(f"No chapter could be recapped: {result.failed[0].error}")
    await ctx.progress.update(
        99,
        pick(
            lang,
            f"已写好 {len(result.recaps)} 章的回顾",
            f"Recapped {len(result.recaps)} chapter{'s' if len(result.recaps) != 1 else ''}",
        ),
    )
    return result
