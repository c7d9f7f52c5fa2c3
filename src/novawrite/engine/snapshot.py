"""The read-only view of a novel that a generator gets, taken in one short read."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from novawrite.db.engine import Database
from novawrite.db.models import Chapter, Novel, Volume
from novawrite.generators.base import (
    ChapterView,
    CharacterView,
    ForeshadowingView,
    NovelView,
    TargetChapter,
    TimelineEventView,
    VolumeView,
    WorldSettingView,
)

PREVIOUS_ENDING_CHARS = 1500


class NovelGone(Exception):
    """The task's novel (or chapter) was deleted."""


def _chapter_view(c: Chapter) -> ChapterView:
    return ChapterView(
        id=c.id,
        number=c.number,
        title=c.title,
        summary=c.summary,
        word_count=c.word_count,
        content_summary=c.content_summary,
        has_content=c.word_count > 0,  # content itself is deferred
    )


async def load_novel_view(db: Database, novel_id: int, chapter_id: int | None = None) -> NovelView:
    async with db.read_session() as session:
        # Chapter text is deferred: only the target chapter and the one before it are read.
        novel = (
            await session.execute(
                select(Novel)
                .where(Novel.id == novel_id)
                .options(
                    selectinload(Novel.volumes).selectinload(Volume.chapters).defer(Chapter.content),
                    selectinload(Novel.characters),
                    selectinload(Novel.world_settings),
                    selectinload(Novel.timeline_events),
                    selectinload(Novel.foreshadowings),
                )
            )
        ).scalar_one_or_none()
        if novel is None:
            raise NovelGone(f"novel {novel_id} no longer exists")
        volumes = tuple(
            VolumeView(v.number, v.title, v.summary, tuple(_chapter_view(c) for c in v.chapters))
            for v in novel.volumes
        )
        target = None
        if chapter_id is not None:
            ordered = [(v.number, c) for v in novel.volumes for c in v.chapters]
            index = next((i for i, (_, c) in enumerate(ordered) if c.id == chapter_id), None)
            if index is None:
                raise NovelGone(f"chapter {chapter_id} no longer exists")
            volume_number, chapter = ordered[index]
            ids = [chapter.id] + ([ordered[index - 1][1].id] if index > 0 else [])
            rows = await session.execute(select(Chapter.id, Chapter.content).where(Chapter.id.in_(ids)))
            texts = {row.id: row.content for row in rows}
            previous = texts.get(ordered[index - 1][1].id, "") if index > 0 else ""
            target = TargetChapter(
                chapter=_chapter_view(chapter),
                volume_number=volume_number,
                previous_ending=previous[-PREVIOUS_ENDING_CHARS:],
                existing_content=texts.get(chapter.id, ""),
            )
        return NovelView(
            id=novel.id,
            title=novel.title,
            genre=novel.genre,
            synopsis=novel.synopsis,
            language=novel.language,
            outline=novel.outline,
            volumes=volumes,
            characters=tuple(CharacterView(c.name, c.role, c.description) for c in novel.characters),
            world_settings=tuple(WorldSettingView(w.name, w.category, w.description) for w in novel.world_settings),
            timeline_events=tuple(
                TimelineEventView(t.position, t.time_label, t.title, t.description) for t in novel.timeline_events
            ),
            foreshadowings=tuple(
                ForeshadowingView(f.title, f.description, f.status, f.planted_chapter, f.payoff_chapter)
                for f in novel.foreshadowings
            ),
            target=target,
        )
