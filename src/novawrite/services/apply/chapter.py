"""A chapter's text and its recap: the new text replaces the old, which is kept as a revision;
the recap and the foreshadowing changes it reported are written in the same transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from novawrite.db.models import Chapter, ChapterRevision
from novawrite.generators.base import NovelGone
from novawrite.generators.chapter import ChapterParams, ChapterResult
from novawrite.services.apply.memory import apply_thread_changes
from novawrite.text import count_words


async def apply_chapter(session: AsyncSession, novel_id: int, params: ChapterParams, result: ChapterResult) -> None:
    chapter = await session.get(Chapter, params.chapter_id)
    if chapter is None or chapter.novel_id != novel_id:
        raise NovelGone(f"chapter {params.chapter_id} is gone")
    if chapter.content:
        # The text it replaces stays readable under /revisions.
        session.add(
            ChapterRevision(chapter_id=chapter.id, content=chapter.content, word_count=count_words(chapter.content))
        )
    chapter.content = result.content
    chapter.word_count = count_words(result.content)
    # Without a recap (the step failed) the old one no longer describes this text: none is better.
    chapter.recap = result.recap
    chapter.recap_stale = False
    await apply_thread_changes(session, novel_id, result.threads)
