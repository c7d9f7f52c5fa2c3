"""The novel's memory: chapter recaps and the foreshadowing statuses the recap step moves.

A thread only moves forward (planted -> hinted -> resolved); a resolved or
abandoned one stays as it is, whatever a later recap reports, so the author's
"abandoned" is never undone by a generation. Changes name threads by id and apply
only to threads of the same novel.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from novawrite.db.models import Chapter, Foreshadowing
from novawrite.generators.recap import ThreadChange, advances
from novawrite.generators.recap_chapters import RecapChaptersParams, RecapChaptersResult, text_digest


async def apply_thread_changes(session: AsyncSession, novel_id: int, changes: Iterable[ThreadChange]) -> None:
    wanted = {c.foreshadowing_id: c.status for c in changes}
    if not wanted:
        return
    threads = await session.scalars(
        select(Foreshadowing).where(Foreshadowing.novel_id == novel_id, Foreshadowing.id.in_(list(wanted)))
    )
    for thread in threads:
        status = wanted[thread.id]
        if advances(thread.status, status):
            thread.status = status


async def apply_recaps(
    session: AsyncSession, novel_id: int, params: RecapChaptersParams, result: RecapChaptersResult
) -> None:
    """Store each recap on its chapter (stale when the text changed since it was read), then the threads."""
    for item in result.recaps:
        chapter = await session.get(Chapter, item.chapter_id)
        if chapter is None or chapter.novel_id != novel_id:
            continue  # deleted while the task ran
        chapter.recap = item.recap
        chapter.recap_stale = text_digest(chapter.content) != item.content_sha256
        await apply_thread_changes(session, novel_id, item.threads)
