"""The outline: volumes and chapters matched by number, every chapter's text kept."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from novawrite.db.models import Chapter, ChapterRevision, Novel, Volume
from novawrite.generators.base import NovelGone
from novawrite.generators.outline import OutlineParams, OutlineResult


async def apply_outline(session: AsyncSession, novel_id: int, params: OutlineParams, result: OutlineResult) -> None:
    """Write the outline, keeping every chapter's text.

    Volumes and chapters are matched by (volume number, chapter number): a match
    gets the new title and summary, except those the author edited by hand, and
    keeps its content. A chapter the new outline
    drops is deleted only when it holds no text (no content, no revisions);
    otherwise it stays, marked ``in_outline=False``, and so does its volume.
    """
    novel = await session.get(Novel, novel_id)
    if novel is None:
        raise NovelGone(f"novel {novel_id} is gone")
    novel.outline = result.outline
    existing = list(
        await session.scalars(select(Volume).where(Volume.novel_id == novel_id).options(selectinload(Volume.chapters)))
    )
    wanted = {(v.number, c.number) for v in result.volumes for c in v.chapters}
    await _drop_unlisted(session, existing, wanted, {v.number for v in result.volumes})

    by_number = {v.number: v for v in existing}
    for planned in result.volumes:
        volume = by_number.get(planned.number)
        chapters: dict[int, Chapter] = {}
        if volume is None:
            volume = Volume(
                novel_id=novel_id, number=planned.number, title=planned.title[:500], summary=planned.summary
            )
            session.add(volume)
            await session.flush()  # its id, for the chapters below
        else:
            volume.title, volume.summary = planned.title[:500], planned.summary
            chapters = {c.number: c for c in volume.chapters}
        for entry in planned.chapters:
            chapter = chapters.get(entry.number)
            if chapter is None:
                session.add(
                    Chapter(
                        novel_id=novel_id,
                        volume_id=volume.id,
                        number=entry.number,
                        title=entry.title[:500],
                        summary=entry.summary,
                        in_outline=True,
                    )
                )
            else:
                # Only the plan changes (content, word_count and recap are the text's), and of
                # the plan only what the author has not written by hand.
                chapter.in_outline = True
                if not chapter.title_by_author:
                    chapter.title = entry.title[:500]
                if not chapter.summary_by_author:
                    chapter.summary = entry.summary


async def _drop_unlisted(
    session: AsyncSession, volumes: Iterable[Volume], wanted: set[tuple[int, int]], wanted_volumes: set[int]
) -> None:
    volumes = list(volumes)
    dropped = [c for v in volumes for c in v.chapters if (v.number, c.number) not in wanted]
    revised: set[int] = set()
    if dropped:
        revised = set(
            await session.scalars(
                select(ChapterRevision.chapter_id).where(ChapterRevision.chapter_id.in_([c.id for c in dropped]))
            )
        )
    kept_in: set[int] = set()
    for chapter in dropped:
        if chapter.content or chapter.id in revised:
            chapter.in_outline = False
            kept_in.add(chapter.volume_id)
        else:
            await session.delete(chapter)
    for volume in volumes:
        if volume.number not in wanted_volumes and volume.id not in kept_in:
            await session.delete(volume)
