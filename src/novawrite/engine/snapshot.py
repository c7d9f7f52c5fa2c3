"""The read-only view of a novel that a generator gets, taken in one short read (SQLAlchemy Core)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from novawrite.db.engine import Database
from novawrite.db.models import Chapter, Character, Foreshadowing, Novel, TimelineEvent, Volume, WorldSetting
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

N, V, C = Novel.__table__, Volume.__table__, Chapter.__table__
CH, W, TL, F = Character.__table__, WorldSetting.__table__, TimelineEvent.__table__, Foreshadowing.__table__


class NovelGone(Exception):
    """The task's novel (or chapter) was deleted."""


def _chapter_view(c: Any) -> ChapterView:
    return ChapterView(
        id=c.id, number=c.number, title=c.title, summary=c.summary, word_count=c.word_count,
        content_summary=c.content_summary, has_content=c.word_count > 0,
    )


async def load_novel_view(db: Database, novel_id: int, chapter_id: int | None = None) -> NovelView:
    async with db.read() as conn:
        novel = (
            await conn.execute(
                select(N.c.id, N.c.title, N.c.genre, N.c.synopsis, N.c.language, N.c.outline).where(N.c.id == novel_id)
            )
        ).first()
        if novel is None:
            raise NovelGone(f"novel {novel_id} no longer exists")
        volumes = (await conn.execute(select(V.c.id, V.c.number, V.c.title, V.c.summary).where(V.c.novel_id == novel_id).order_by(V.c.number))).all()
        chapters_by_volume: dict[int, list] = {v.id: [] for v in volumes}
        if volumes:
            rows = await conn.execute(
                select(C.c.id, C.c.volume_id, C.c.number, C.c.title, C.c.summary, C.c.word_count, C.c.content_summary)
                .where(C.c.novel_id == novel_id)
                .order_by(C.c.number)
            )
            for c in rows:
                chapters_by_volume.setdefault(c.volume_id, []).append(c)
        characters = (await conn.execute(select(CH.c.name, CH.c.role, CH.c.description).where(CH.c.novel_id == novel_id).order_by(CH.c.id))).all()
        worlds = (await conn.execute(select(W.c.name, W.c.category, W.c.description).where(W.c.novel_id == novel_id).order_by(W.c.id))).all()
        timeline = (await conn.execute(select(TL.c.position, TL.c.time_label, TL.c.title, TL.c.description).where(TL.c.novel_id == novel_id).order_by(TL.c.position, TL.c.id))).all()
        fores = (await conn.execute(select(F.c.title, F.c.description, F.c.status, F.c.planted_chapter, F.c.payoff_chapter).where(F.c.novel_id == novel_id).order_by(F.c.id))).all()
        volume_views = tuple(
            VolumeView(v.number, v.title, v.summary, tuple(_chapter_view(c) for c in chapters_by_volume[v.id]))
            for v in volumes
        )
        target = None
        if chapter_id is not None:
            ordered = [(v.number, c) for v in volumes for c in chapters_by_volume[v.id]]
            index = next((i for i, (_, c) in enumerate(ordered) if c.id == chapter_id), None)
            if index is None:
                raise NovelGone(f"chapter {chapter_id} no longer exists")
            volume_number, chapter = ordered[index]
            ids = [chapter.id] + ([ordered[index - 1][1].id] if index > 0 else [])
            rows = await conn.execute(select(C.c.id, C.c.content).where(C.c.id.in_(ids)))
            texts = {row.id: row.content for row in rows}
            previous = texts.get(ordered[index - 1][1].id, "") if index > 0 else ""
            target = TargetChapter(
                chapter=_chapter_view(chapter),
                volume_number=volume_number,
                previous_ending=previous[-PREVIOUS_ENDING_CHARS:],
                existing_content=texts.get(chapter.id, ""),
            )
    return NovelView(
        id=novel.id, title=novel.title, genre=novel.genre, synopsis=novel.synopsis, language=novel.language,
        outline=novel.outline, volumes=volume_views,
        characters=tuple(CharacterView(*c) for c in characters),
        world_settings=tuple(WorldSettingView(*w) for w in worlds),
        timeline_events=tuple(TimelineEventView(*t) for t in timeline),
        foreshadowings=tuple(ForeshadowingView(*f) for f in fores),
        target=target,
    )
