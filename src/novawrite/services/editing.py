"""The author's edits of a novel's structure and text: volumes, chapters, revisions.

Every write runs in one transaction that first locks the novel's row (``FOR
UPDATE`` on PostgreSQL; SQLite has one writer anyway), so the ``If-Match`` check,
the renumbering of chapters and the write see no other writer of the same novel
in between.

Chapter numbers run through the whole novel (volume 2 of 10-chapter volumes
starts at 11). Adding a chapter at the end of a volume moves every later number
up by one, deleting one moves them down; the timeline's chapter numbers follow, so
they keep naming the same chapters (foreshadowing names chapters by id).

**Editing sessions.** Autosave must not flood the history: content edits of one
chapter less than ``SESSION_GAP`` apart form one session, which keeps one
revision: the text as it was before the session began. The session lives in the
chapter's row (``edit_session_at`` and ``edit_session_digest``, the digest of
the text the last edit left), so it holds across requests, processes and
restarts. A session goes on only while the text is still what the author's last
edit left: once a generation or a restore has replaced it, the next edit starts
a new session, and so keeps the text it replaces.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from novawrite.db.engine import Database, valid_id
from novawrite.db.models import (
    ACTIVE_STATUSES,
    Chapter,
    ChapterRevision,
    Novel,
    RevisionSource,
    Task,
    TimelineEvent,
    Volume,
    utcnow,
)
from novawrite.errors import Conflict, NotFound
from novawrite.services.etags import check_if_match, etag_of
from novawrite.services.novels import chapter_detail, owned_novel_id, volume_view
from novawrite.text import count_words

#: Content edits closer than this belong to one editing session (one revision).
SESSION_GAP = timedelta(minutes=10)

Clock = Callable[[], datetime]


async def locked_novel_id(session: AsyncSession, user_id: int, novel_id: object) -> int:
    """The novel's id, its row locked for this transaction, when the user owns it; else NotFound."""
    nid = valid_id(novel_id)
    if nid is None:
        raise NotFound("Novel not found")
    found = (
        await session.execute(select(Novel.id).where(Novel.id == nid, Novel.user_id == user_id).with_for_update())
    ).scalar()
    if found is None:
        raise NotFound("Novel not found")
    return nid


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Editing:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        #: The time of edits and revisions; tests set their own.
        self.clock = clock

    # --- Volumes ---------------------------------------------------------------------------

    async def volume(self, user_id: int, novel_id: object, volume_id: object) -> dict[str, Any]:
        async with self._db.read_session() as session:
            nid = await owned_novel_id(session, user_id, novel_id)
            return volume_view(await _volume(session, nid, volume_id))

    async def update_volume(
        self, user_id: int, novel_id: object, volume_id: object, changes: dict[str, Any], if_match: str | None
    ) -> dict[str, Any]:
        async with self._db.session() as session:
            nid = await locked_novel_id(session, user_id, novel_id)
            volume = await _volume(session, nid, volume_id)
            check_if_match(if_match, etag_of(volume_view(volume)))
            for name, value in changes.items():
                setattr(volume, name, value)
            await session.flush()
            return volume_view(volume)

    # --- Chapters --------------------------------------------------------------------------

    async def update_chapter(
        self, user_id: int, novel_id: object, chapter_id: object, changes: dict[str, Any], if_match: str | None
    ) -> dict[str, Any]:
        async with self._db.session() as session:
            nid = await locked_novel_id(session, user_id, novel_id)
            chapter = await _chapter(session, nid, chapter_id)
            check_if_match(if_match, etag_of(chapter_detail(chapter)))
            content = changes.pop("content", None)
            if content is not None and content != chapter.content:
                await _refuse_while_written(session, nid, chapter.id)
                self._edit_content(session, chapter, content)
            for name, value in changes.items():
                if value != getattr(chapter, name):
                    setattr(chapter, name, value)
                    setattr(chapter, f"{name}_by_author", True)  # a regenerated outline keeps it
            await session.flush()
            return chapter_detail(chapter)

    def _edit_content(self, session: AsyncSession, chapter: Chapter, content: str) -> None:
        now = self.clock()
        started = chapter.edit_session_at
        ongoing = (
            started is not None
            and timedelta(0) <= now - started < SESSION_GAP
            and chapter.edit_session_digest == digest(chapter.content)
        )
        if not ongoing:
            _keep(session, chapter, RevisionSource.AUTHOR, now)
        _set_content(chapter, content)
        chapter.edit_session_at, chapter.edit_session_digest = now, digest(content)

    async def add_chapter(
        self, user_id: int, novel_id: object, volume_id: object, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """A new chapter at the end of the volume; the numbers after it move up by one."""
        async with self._db.session() as session:
            nid = await locked_novel_id(session, user_id, novel_id)
            volume = await _volume(session, nid, volume_id)
            last = (
                await session.execute(select(func.max(Chapter.number)).where(Chapter.volume_id == volume.id))
            ).scalar()
            if last is None:  # an empty volume: after the chapters of the volumes before it
                last = (
                    await session.execute(
                        select(func.max(Chapter.number))
                        .join(Volume, Volume.id == Chapter.volume_id)
                        .where(Chapter.novel_id == nid, Volume.number < volume.number)
                    )
                ).scalar()
            number = (last or 0) + 1
            await _renumber(session, nid, from_number=number, by=1)
            chapter = Chapter(
                novel_id=nid,
                volume_id=volume.id,
                number=number,
                title=fields["title"],
                summary=fields.get("summary", ""),
                content="",
                word_count=0,
                in_outline=True,
            )
            session.add(chapter)
            await session.flush()
            return chapter_detail(chapter)

    async def delete_chapter(
        self, user_id: int, novel_id: object, chapter_id: object, *, force: bool, if_match: str | None
    ) -> None:
        """Delete a chapter and renumber the rest; one with text only when ``force``, none a task writes."""
        async with self._db.session() as session:
            nid = await locked_novel_id(session, user_id, novel_id)
            chapter = await _chapter(session, nid, chapter_id)
            check_if_match(if_match, etag_of(chapter_detail(chapter)))
            await _refuse_while_written(session, nid, chapter.id)
            if not force and await _holds_text(session, chapter):
                raise Conflict(
                    "chapter_has_content", "The chapter holds text; delete it with ?force=true to lose that text"
                )
            number = chapter.number
            await session.delete(chapter)
            await session.flush()
            await _renumber(session, nid, from_number=number + 1, by=-1, removed=number)

    # --- Revisions -------------------------------------------------------------------------

    async def restore(
        self, user_id: int, novel_id: object, chapter_id: object, revision_id: object, if_match: str | None
    ) -> dict[str, Any]:
        """The revision's text becomes the content; the text it replaces becomes a revision."""
        async with self._db.session() as session:
            nid = await locked_novel_id(session, user_id, novel_id)
            chapter = await _chapter(session, nid, chapter_id)
            rid = valid_id(revision_id)
            revision = (
                None
                if rid is None
                else (
                    await session.execute(
                        select(ChapterRevision).where(
                            ChapterRevision.id == rid, ChapterRevision.chapter_id == chapter.id
                        )
                    )
                ).scalar_one_or_none()
            )
            if revision is None:
                raise NotFound("Revision not found")
            check_if_match(if_match, etag_of(chapter_detail(chapter)))
            if revision.content != chapter.content:
                await _refuse_while_written(session, nid, chapter.id)
                _keep(session, chapter, RevisionSource.RESTORED, self.clock())
                _set_content(chapter, revision.content)
            # The next edit starts a session of its own, keeping the restored text.
            chapter.edit_session_at = chapter.edit_session_digest = None
            await session.flush()
            return chapter_detail(chapter)


# --- Helpers ---------------------------------------------------------------------------------


def _keep(session: AsyncSession, chapter: Chapter, source: RevisionSource, now: datetime) -> None:
    """Keep the chapter's current text as a revision (empty text holds no words to keep)."""
    if chapter.content:
        session.add(
            ChapterRevision(
                chapter_id=chapter.id,
                content=chapter.content,
                word_count=count_words(chapter.content),
                created_at=now,
                source=source.value,
            )
        )


def _set_content(chapter: Chapter, content: str) -> None:
    chapter.content = content
    chapter.word_count = count_words(content)
    # The recap described the text it replaced: kept (an edit is mostly small, and later
    # chapters' context is better with it than without) but marked stale until
    # recap-chapters reads the new text.
    chapter.recap_stale = chapter.recap is not None


async def _volume(session: AsyncSession, novel_id: int, volume_id: object) -> Volume:
    vid = valid_id(volume_id)
    volume = (
        None
        if vid is None
        else (
            await session.execute(select(Volume).where(Volume.id == vid, Volume.novel_id == novel_id))
        ).scalar_one_or_none()
    )
    if volume is None:
        raise NotFound("Volume not found")
    return volume


async def _chapter(session: AsyncSession, novel_id: int, chapter_id: object) -> Chapter:
    cid = valid_id(chapter_id)
    chapter = (
        None
        if cid is None
        else (
            await session.execute(select(Chapter).where(Chapter.id == cid, Chapter.novel_id == novel_id))
        ).scalar_one_or_none()
    )
    if chapter is None:
        raise NotFound("Chapter not found")
    return chapter


async def _refuse_while_written(session: AsyncSession, novel_id: int, chapter_id: int) -> None:
    """409 ``task_conflict`` naming the pending or running task that writes this chapter, if there is one."""
    task_id = (
        await session.execute(
            select(Task.id)
            .where(
                Task.novel_id == novel_id,
                Task.task_type == "write_chapter_content",
                Task.scope == chapter_id,
                Task.status.in_(ACTIVE_STATUSES),
            )
            .limit(1)
        )
    ).scalar()
    if task_id is not None:
        raise Conflict("task_conflict", "A task is writing this chapter", task_id=task_id)


async def _holds_text(session: AsyncSession, chapter: Chapter) -> bool:
    if chapter.content:
        return True
    revision = await session.execute(
        select(ChapterRevision.id).where(ChapterRevision.chapter_id == chapter.id).limit(1)
    )
    return revision.scalar() is not None


async def _renumber(
    session: AsyncSession, novel_id: int, *, from_number: int, by: int, removed: int | None = None
) -> None:
    """Move the chapters numbered ``from_number`` and up by ``by``, and the chapter numbers that name them.

    In two steps, through negative numbers, since a (volume, number) must stay unique
    after every row, not only at the end of the statement. ``removed``: the number
    of a deleted chapter, which the timeline stops naming.
    """
    moved = Chapter.novel_id == novel_id
    await session.execute(
        update(Chapter)
        .where(moved, Chapter.number >= from_number)
        .values(number=-(Chapter.number + by))
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Chapter)
        .where(moved, Chapter.number < 0)
        .values(number=-Chapter.number)
        .execution_options(synchronize_session=False)
    )
    # Foreshadowing names chapters by id (a deleted one's references become null by the foreign key).
    references = ((TimelineEvent, TimelineEvent.chapter_number),)
    for model, column in references:
        if removed is not None:
            await session.execute(
                update(model)
                .where(model.novel_id == novel_id, column == removed)
                .values({column.key: None})
                .execution_options(synchronize_session=False)
            )
        await session.execute(
            update(model)
            .where(model.novel_id == novel_id, column >= from_number)
            .values({column.key: column + by})
            .execution_options(synchronize_session=False)
        )
