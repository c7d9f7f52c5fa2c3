"""Novels and their chapters, always scoped to their owner.

A novel of another user is indistinguishable from one that does not exist: every
lookup filters by ``user_id`` and raises ``NotFound``.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import selectinload

from novawrite.db.engine import Database, valid_id
from novawrite.db.models import (
    Chapter,
    ChapterRevision,
    Character,
    Foreshadowing,
    Novel,
    TimelineEvent,
    Volume,
    WorldSetting,
    utcnow,
)
from novawrite.errors import NotFound

#: A thread in one of these statuses is closed: it is never overdue and the recap step never moves it.
CLOSED_THREAD_STATUSES = ("resolved", "abandoned")


def novel_summary(novel: Novel) -> dict[str, Any]:
    return {
        "id": novel.id,
        "title": novel.title,
        "genre": novel.genre,
        "synopsis": novel.synopsis,
        "language": novel.language,
        "created_at": novel.created_at,
        "updated_at": novel.updated_at,
    }


def novel_detail(novel: Novel) -> dict[str, Any]:
    facts = {c.id: ChapterFacts(c.number, bool(c.content)) for v in novel.volumes for c in v.chapters}
    return {
        **novel_summary(novel),
        "outline": novel.outline,
        "volumes": [
            {
                "id": v.id,
                "number": v.number,
                "title": v.title,
                "summary": v.summary,
                "chapters": [
                    {
                        "id": c.id,
                        "number": c.number,
                        "title": c.title,
                        "summary": c.summary,
                        "word_count": c.word_count,
                        "has_content": bool(c.content),
                        "recap": c.recap,
                        "recap_stale": c.recap_stale,
                    }
                    for c in v.chapters
                ],
            }
            for v in novel.volumes
        ],
        "characters": [character_view(c) for c in novel.characters],
        "world_settings": [world_setting_view(w) for w in novel.world_settings],
        "timeline_events": [timeline_event_view(t) for t in novel.timeline_events],
        "foreshadowings": [foreshadowing_view(f, facts) for f in novel.foreshadowings],
    }


def volume_view(volume: Volume) -> dict[str, Any]:
    return {"id": volume.id, "number": volume.number, "title": volume.title, "summary": volume.summary}


def character_view(c: Character) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "role": c.role,
        "description": c.description,
        "traits": list(c.traits or []),
        "arc": c.arc,
        "relationships": c.relationships,
    }


def world_setting_view(w: WorldSetting) -> dict[str, Any]:
    return {"id": w.id, "name": w.name, "category": w.category, "description": w.description}


def timeline_event_view(t: TimelineEvent) -> dict[str, Any]:
    return {
        "id": t.id,
        "position": t.position,
        "time_label": t.time_label,
        "title": t.title,
        "description": t.description,
        "chapter_number": t.chapter_number,
    }


class ChapterFacts(NamedTuple):
    """What a foreshadowing's view needs of the chapters it names."""

    number: int
    has_content: bool


def foreshadowing_view(f: Foreshadowing, chapters: Mapping[int, ChapterFacts]) -> dict[str, Any]:
    """``chapters``: at least the chapters ``f`` names, by id."""
    planted = chapters.get(f.planted_chapter_id) if f.planted_chapter_id is not None else None
    payoff = chapters.get(f.payoff_chapter_id) if f.payoff_chapter_id is not None else None
    return {
        "id": f.id,
        "title": f.title,
        "description": f.description,
        "status": f.status,
        "planted_chapter_id": f.planted_chapter_id,
        "payoff_chapter_id": f.payoff_chapter_id,
        "planted_chapter": planted.number if planted is not None else None,
        "payoff_chapter": payoff.number if payoff is not None else None,
        "overdue": payoff is not None and payoff.has_content and f.status not in CLOSED_THREAD_STATUSES,
    }


async def chapter_facts(session: AsyncSession, novel_id: int, ids: Iterable[int | None]) -> dict[int, ChapterFacts]:
    """Number and whether it has text, of the chapters ``ids`` that belong to the novel."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(
        select(Chapter.id, Chapter.number, Chapter.content != "").where(
            Chapter.novel_id == novel_id, Chapter.id.in_(wanted)
        )
    )
    return {cid: ChapterFacts(number, bool(has)) for cid, number, has in rows}


def chapter_detail(chapter: Chapter) -> dict[str, Any]:
    return {
        "id": chapter.id,
        "volume_id": chapter.volume_id,
        "number": chapter.number,
        "title": chapter.title,
        "summary": chapter.summary,
        "content": chapter.content,
        "word_count": chapter.word_count,
        "recap": chapter.recap,
        "recap_stale": chapter.recap_stale,
    }


async def owned_novel_id(conn: AsyncConnection | AsyncSession, user_id: int, novel_id: object) -> int:
    """``novel_id`` when the user owns that novel, else NotFound."""
    nid = valid_id(novel_id)
    if nid is None:
        raise NotFound("Novel not found")
    found = (await conn.execute(select(Novel.id).where(Novel.id == nid, Novel.user_id == user_id))).scalar()
    if found is None:
        raise NotFound("Novel not found")
    return nid


async def load_novel(session: AsyncSession, user_id: int, novel_id: object) -> Novel:
    nid = valid_id(novel_id)
    if nid is None:
        raise NotFound("Novel not found")
    novel = (
        await session.execute(
            select(Novel)
            .where(Novel.id == nid, Novel.user_id == user_id)
            .options(
                selectinload(Novel.volumes).selectinload(Volume.chapters),
                selectinload(Novel.characters),
                selectinload(Novel.world_settings),
                selectinload(Novel.timeline_events),
                selectinload(Novel.foreshadowings),
            )
        )
    ).scalar_one_or_none()
    if novel is None:
        raise NotFound("Novel not found")
    return novel


class Novels:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, user_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        async with self._db.session() as session:
            now = utcnow()
            novel = Novel(user_id=user_id, created_at=now, updated_at=now, **fields)
            session.add(novel)
            await session.flush()
            novel_id = novel.id
        return await self.get(user_id, novel_id)

    async def owned(self, user_id: int, novel_id: object) -> int:
        """The novel's id as an int when the user owns it, else NotFound."""
        async with self._db.read() as conn:
            return await owned_novel_id(conn, user_id, novel_id)

    async def list(self, user_id: int) -> list[dict[str, Any]]:
        async with self._db.read_session() as session:
            novels = (
                await session.execute(select(Novel).where(Novel.user_id == user_id).order_by(Novel.id.desc()))
            ).scalars()
            return [novel_summary(n) for n in novels]

    async def get(self, user_id: int, novel_id: object) -> dict[str, Any]:
        async with self._db.read_session() as session:
            return novel_detail(await load_novel(session, user_id, novel_id))

    async def update(self, user_id: int, novel_id: object, changes: dict[str, Any]) -> dict[str, Any]:
        async with self._db.session() as session:
            novel = await load_novel(session, user_id, novel_id)
            for name, value in changes.items():
                setattr(novel, name, value)
            novel.updated_at = utcnow()
            await session.flush()
            return novel_detail(novel)

    async def delete(self, user_id: int, novel_id: object) -> int:
        """Delete a novel with everything in it; returns its id. Its tasks are cancelled by the caller first."""
        async with self._db.write() as conn:
            nid = await owned_novel_id(conn, user_id, novel_id)
            await conn.execute(delete(Novel).where(Novel.id == nid))
        return nid

    async def check_chapters(self, user_id: int, novel_id: object, chapter_ids: Iterable[object]) -> None:
        """NotFound unless the user owns the novel and every id is one of its chapters."""
        async with self._db.read() as conn:
            nid = await owned_novel_id(conn, user_id, novel_id)
            ids = [valid_id(c) for c in chapter_ids]
            wanted = {i for i in ids if i is not None}
            if None in ids:
                raise NotFound("Chapter not found")
            found = set(
                (
                    await conn.execute(select(Chapter.id).where(Chapter.novel_id == nid, Chapter.id.in_(wanted)))
                ).scalars()
            )
            if found != wanted:
                raise NotFound("Chapter not found")

    async def chapter(self, user_id: int, novel_id: object, chapter_id: object) -> dict[str, Any]:
        async with self._db.read_session() as session:
            return chapter_detail(await owned_chapter(session, user_id, novel_id, chapter_id))

    async def revisions(self, user_id: int, novel_id: object, chapter_id: object) -> builtins.list[dict[str, Any]]:
        async with self._db.read_session() as session:
            chapter = await owned_chapter(session, user_id, novel_id, chapter_id)
            rows = (
                await session.execute(
                    select(ChapterRevision)
                    .where(ChapterRevision.chapter_id == chapter.id)
                    .order_by(ChapterRevision.id.desc())
                )
            ).scalars()
            return [
                {
                    "id": r.id,
                    "created_at": r.created_at,
                    "word_count": r.word_count,
                    "content": r.content,
                    "source": r.source,
                }
                for r in rows
            ]


async def owned_chapter(session: AsyncSession, user_id: int, novel_id: object, chapter_id: object) -> Chapter:
    nid, cid = valid_id(novel_id), valid_id(chapter_id)
    if nid is None or cid is None:
        raise NotFound("Chapter not found")
    chapter = (
        await session.execute(
            select(Chapter)
            .join(Novel, Novel.id == Chapter.novel_id)
            .where(Chapter.id == cid, Chapter.novel_id == nid, Novel.user_id == user_id)
        )
    ).scalar_one_or_none()
    if chapter is None:
        raise NotFound("Chapter not found")
    return chapter
