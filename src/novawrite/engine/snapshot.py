"""The read-only view of a novel that a generator gets, taken in one read snapshot.

It is read before every task runs, so it is plain SQL on the raw driver
(``novawrite.db.raw``).
"""

from __future__ import annotations

from typing import Any

from novawrite.db.engine import Database
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

NOVEL = "SELECT id, title, genre, synopsis, language, outline FROM novels WHERE id = $1"
VOLUMES = "SELECT id, number, title, summary FROM volumes WHERE novel_id = $1 ORDER BY number"
CHAPTERS = """
SELECT id, volume_id, number, title, summary, word_count, content_summary FROM chapters
WHERE novel_id = $1 ORDER BY number"""
CHARACTERS = "SELECT name, role, description FROM characters WHERE novel_id = $1 ORDER BY id"
WORLD_SETTINGS = "SELECT name, category, description FROM world_settings WHERE novel_id = $1 ORDER BY id"
TIMELINE = """
SELECT position, time_label, title, description FROM timeline_events WHERE novel_id = $1 ORDER BY position, id"""
FORESHADOWINGS = """
SELECT title, description, status, planted_chapter, payoff_chapter FROM foreshadowings WHERE novel_id = $1 ORDER BY id"""
CONTENT = "SELECT content FROM chapters WHERE id = $1"


class NovelGone(Exception):
    """The task's novel (or chapter) was deleted."""


def _chapter_view(c: Any) -> ChapterView:
    return ChapterView(
        id=c["id"],
        number=c["number"],
        title=c["title"],
        summary=c["summary"],
        word_count=c["word_count"],
        content_summary=c["content_summary"],
        has_content=c["word_count"] > 0,
    )


async def load_novel_view(db: Database, novel_id: int, chapter_id: int | None = None) -> NovelView:
    async with db.raw_read() as tx:
        novel = await tx.fetchrow(NOVEL, novel_id)
        if novel is None:
            raise NovelGone(f"novel {novel_id} no longer exists")
        volumes = await tx.fetch(VOLUMES, novel_id)
        chapters_by_volume: dict[int, list[Any]] = {v["id"]: [] for v in volumes}
        if volumes:
            for c in await tx.fetch(CHAPTERS, novel_id):
                chapters_by_volume.setdefault(c["volume_id"], []).append(c)
        characters = await tx.fetch(CHARACTERS, novel_id)
        worlds = await tx.fetch(WORLD_SETTINGS, novel_id)
        timeline = await tx.fetch(TIMELINE, novel_id)
        fores = await tx.fetch(FORESHADOWINGS, novel_id)
        volume_views = tuple(
            VolumeView(
                v["number"], v["title"], v["summary"], tuple(_chapter_view(c) for c in chapters_by_volume[v["id"]])
            )
            for v in volumes
        )
        target = None
        if chapter_id is not None:
            ordered = [(v["number"], c) for v in volumes for c in chapters_by_volume[v["id"]]]
            index = next((i for i, (_, c) in enumerate(ordered) if c["id"] == chapter_id), None)
            if index is None:
                raise NovelGone(f"chapter {chapter_id} no longer exists")
            volume_number, chapter = ordered[index]
            previous = ""
            if index > 0:
                row = await tx.fetchrow(CONTENT, ordered[index - 1][1]["id"])
                previous = row[0] if row is not None else ""
            row = await tx.fetchrow(CONTENT, chapter["id"])
            target = TargetChapter(
                chapter=_chapter_view(chapter),
                volume_number=volume_number,
                previous_ending=(previous or "")[-PREVIOUS_ENDING_CHARS:],
                existing_content=(row[0] if row is not None else "") or "",
            )
    return NovelView(
        id=novel["id"],
        title=novel["title"],
        genre=novel["genre"],
        synopsis=novel["synopsis"],
        language=novel["language"],
        outline=novel["outline"],
        volumes=volume_views,
        characters=tuple(CharacterView(*c) for c in characters),
        world_settings=tuple(WorldSettingView(*w) for w in worlds),
        timeline_events=tuple(TimelineEventView(*t) for t in timeline),
        foreshadowings=tuple(ForeshadowingView(*f) for f in fores),
        target=target,
    )
