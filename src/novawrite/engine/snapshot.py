"""The read-only view of a novel that a generator gets, taken in one read snapshot.

It is read before every task runs, so it is plain SQL on the raw driver
(``novawrite.db.raw``); the statements are ``novawrite.engine.queries``'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from novawrite.db.engine import Database
from novawrite.db.raw import Tx
from novawrite.engine import queries as q
from novawrite.generators.base import (
    ChapterView,
    CharacterView,
    ForeshadowingView,
    NovelGone,
    NovelView,
    TargetChapter,
    TimelineEventView,
    VolumeView,
    WorldSettingView,
)

PREVIOUS_ENDING_CHARS = 1500
#: The JSON columns of ``NOVEL_SNAPSHOT_PG``, in ``_read_novel``'s order.
SNAPSHOT_LISTS = ("volumes", "chapters", "characters", "world_settings", "timeline", "foreshadowings")


def _chapter_view(c: Any) -> ChapterView:
    return ChapterView(
        id=c["id"],
        number=c["number"],
        title=c["title"],
        summary=c["summary"],
        word_count=c["word_count"],
        recap=c["recap"] or "",
        has_content=c["word_count"] > 0,
    )


async def _read_novel(
    tx: Tx, novel_id: int
) -> tuple[Any, list[Any], list[Any], list[Any], list[Any], list[Any], list[Any]]:
    """The novel's row and its volumes, chapters, characters, world settings, timeline and foreshadowing
    (rows read by column name or, for the three lists, by position). On PostgreSQL one statement; on
    SQLite, whose reads cost no round trip, one read per table."""
    if tx.dialect == "postgresql":
        row = await tx.fetchrow(q.NOVEL_SNAPSHOT_PG, novel_id)
        if row is None:
            raise NovelGone(f"novel {novel_id} no longer exists")
        lists = (orjson.loads(row[name]) for name in SNAPSHOT_LISTS)
        volumes, chapters, characters, worlds, timeline, fores = lists
        return row, volumes, chapters, characters, worlds, timeline, fores
    novel = await tx.fetchrow(q.NOVEL, novel_id)
    if novel is None:
        raise NovelGone(f"novel {novel_id} no longer exists")
    volumes = await tx.fetch(q.VOLUMES, novel_id)
    chapters = await tx.fetch(q.CHAPTERS, novel_id) if volumes else []
    return (
        novel,
        volumes,
        chapters,
        await tx.fetch(q.CHARACTERS, novel_id),
        await tx.fetch(q.WORLD_SETTINGS, novel_id),
        await tx.fetch(q.TIMELINE, novel_id),
        await tx.fetch(q.FORESHADOWINGS, novel_id),
    )


async def load_novel_view(
    db: Database, novel_id: int, chapter_id: int | None = None, texts: Sequence[int] = ()
) -> NovelView:
    """``texts``: chapters whose whole text the generator reads (those of another novel are left out)."""
    async with db.raw_read() as tx:
        novel, volumes, chapters, characters, worlds, timeline, fores = await _read_novel(tx, novel_id)
        chapters_by_volume: dict[int, list[Any]] = {v["id"]: [] for v in volumes}
        for c in chapters:
            chapters_by_volume.setdefault(c["volume_id"], []).append(c)
        numbers = {c["id"]: c["number"] for chapters in chapters_by_volume.values() for c in chapters}
        contents: dict[int, str] = {}
        for text_id in dict.fromkeys(texts):
            row = await tx.fetchrow(q.CHAPTER_CONTENT, text_id, novel_id)
            if row is not None:
                contents[text_id] = row[0] or ""
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
                row = await tx.fetchrow(q.CONTENT, ordered[index - 1][1]["id"])
                previous = row[0] if row is not None else ""
            row = await tx.fetchrow(q.CONTENT, chapter["id"])
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
        foreshadowings=tuple(
            ForeshadowingView(
                id=f["id"],
                title=f["title"],
                description=f["description"],
                status=f["status"],
                planted_chapter=numbers.get(f["planted_chapter_id"]),
                payoff_chapter=numbers.get(f["payoff_chapter_id"]),
            )
            for f in fores
        ),
        target=target,
        texts=contents,
    )
