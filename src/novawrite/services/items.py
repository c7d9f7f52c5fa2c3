"""The novel's lists, item by item: characters, world settings, timeline events, foreshadowing.

Names (titles for timeline events and foreshadowing) are unique within a list of
one novel, compared the way generation compares them (``name_key``: trimmed,
inner whitespace collapsed, case-folded), so "Lin Feng" and " lin  feng" are the
same name. Names the novel already had twice (before items were editable) stay as
they are until one is renamed.

Timeline events keep the positions 1..n: an event put at a position pushes the
ones from there on down, a deleted one closes its gap. A position past the end
means the end.

Every write locks the novel's row first (see ``services.editing``), so the name
check and the ``If-Match`` check see no other writer in between.

A foreshadowing names its planted and payoff chapters by id; an id that is not a
chapter of the same novel is 422. Its view adds those chapters' numbers and
``overdue``, so it reads the chapters it names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from novawrite.db.engine import Database, valid_id
from novawrite.db.models import Character, Foreshadowing, TimelineEvent, WorldSetting
from novawrite.errors import Conflict, NotFound, ValidationFailed
from novawrite.generators.prompts import name_key
from novawrite.services.editing import locked_novel_id
from novawrite.services.etags import check_if_match, etag_of
from novawrite.services.novels import (
    chapter_facts,
    character_view,
    foreshadowing_view,
    owned_novel_id,
    timeline_event_view,
    world_setting_view,
)

Item = Character | WorldSetting | TimelineEvent | Foreshadowing


@dataclass(frozen=True)
class ItemKind:
    model: type[Item]
    #: The field that must not repeat within the list: ``name`` or ``title``.
    key: str
    view: Callable[[Any], dict[str, Any]]
    noun: str


CHARACTERS = ItemKind(Character, "name", character_view, "Character")
WORLD_SETTINGS = ItemKind(WorldSetting, "name", world_setting_view, "World setting")
TIMELINE_EVENTS = ItemKind(TimelineEvent, "title", timeline_event_view, "Timeline event")
FORESHADOWINGS = ItemKind(Foreshadowing, "title", lambda f: foreshadowing_view(f, {}), "Foreshadowing")
#: A foreshadowing's members that name a chapter of its novel.
CHAPTER_REFERENCES = ("planted_chapter_id", "payoff_chapter_id")


class Items:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, user_id: int, novel_id: object, kind: ItemKind, item_id: object) -> dict[str, Any]:
        async with self._db.read_session() as session:
            try:
                nid = await owned_novel_id(session, user_id, novel_id)
            except NotFound:
                raise NotFound(f"{kind.noun} not found") from None
            return await _view(session, kind, await _item(session, kind, nid, item_id))

    async def create(self, user_id: int, novel_id: object, kind: ItemKind, fields: dict[str, Any]) -> dict[str, Any]:
        async with self._db.session() as session:
            nid = await locked_novel_id(session, user_id, novel_id)
            await _refuse_taken(session, kind, nid, fields[kind.key])
            await _refuse_foreign_chapters(session, nid, fields)
            position = fields.pop("position", None)
            item = kind.model(novel_id=nid, **fields)
            if isinstance(item, TimelineEvent):
                await _place(session, nid, item, position)
            session.add(item)
            await session.flush()
            return await _view(session, kind, item)

    async def update(
        self,
        user_id: int,
        novel_id: object,
        kind: ItemKind,
        item_id: object,
        changes: dict[str, Any],
        if_match: str | None,
    ) -> dict[str, Any]:
        async with self._db.session() as session:
            nid = await locked_novel_id(session, user_id, novel_id)
            item = await _item(session, kind, nid, item_id)
            check_if_match(if_match, etag_of(await _view(session, kind, item)))
            name = changes.get(kind.key)
            if name is not None and name_key(name) != name_key(getattr(item, kind.key)):
                await _refuse_taken(session, kind, nid, name)
            await _refuse_foreign_chapters(session, nid, changes)
            position = changes.pop("position", None)
            for field, value in changes.items():
                setattr(item, field, value)
            if isinstance(item, TimelineEvent) and position is not None:
                await _place(session, nid, item, position)
            await session.flush()
            return await _view(session, kind, item)

    async def delete(
        self, user_id: int, novel_id: object, kind: ItemKind, item_id: object, if_match: str | None
    ) -> None:
        async with self._db.session() as session:
            nid = await locked_novel_id(session, user_id, novel_id)
            item = await _item(session, kind, nid, item_id)
            check_if_match(if_match, etag_of(await _view(session, kind, item)))
            await session.delete(item)
            await session.flush()
            if isinstance(item, TimelineEvent):
                await _place(session, nid, None, None)


async def _item(session: AsyncSession, kind: ItemKind, novel_id: int, item_id: object) -> Any:
    iid = valid_id(item_id)
    model = kind.model
    item = (
        None
        if iid is None
        else (await session.execute(select(model).where(model.id == iid, model.novel_id == novel_id))).scalar()
    )
    if item is None:
        raise NotFound(f"{kind.noun} not found")
    return item


async def _view(session: AsyncSession, kind: ItemKind, item: Any) -> dict[str, Any]:
    if isinstance(item, Foreshadowing):
        chapters = await chapter_facts(session, item.novel_id, (item.planted_chapter_id, item.payoff_chapter_id))
        return foreshadowing_view(item, chapters)
    return kind.view(item)


async def _refuse_foreign_chapters(session: AsyncSession, novel_id: int, fields: dict[str, Any]) -> None:
    """422 for a chapter reference that is not a chapter of the novel (null is no reference)."""
    named = {name: fields[name] for name in CHAPTER_REFERENCES if fields.get(name) is not None}
    if not named:
        return
    ids = {name: valid_id(value) for name, value in named.items()}
    found = await chapter_facts(session, novel_id, ids.values())
    wrong = [name for name, cid in ids.items() if cid is None or cid not in found]
    if wrong:
        raise ValidationFailed([{"field": name, "message": "Not a chapter of this novel"} for name in wrong])


async def _refuse_taken(session: AsyncSession, kind: ItemKind, novel_id: int, name: str) -> None:
    column = getattr(kind.model, kind.key)
    wanted = name_key(name)
    for (taken,) in await session.execute(select(column).where(kind.model.novel_id == novel_id)):
        if name_key(taken) == wanted:
            raise Conflict("name_taken", f"Another {kind.noun.lower()} of this novel has this {kind.key}")


async def _place(session: AsyncSession, novel_id: int, event: TimelineEvent | None, position: int | None) -> None:
    """Put ``event`` at ``position`` (None: last) and number the novel's events 1..n in order."""
    events = [
        e
        for e in await session.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.novel_id == novel_id)
            .order_by(TimelineEvent.position, TimelineEvent.id)
        )
        if e is not event
    ]
    if event is not None:
        index = len(events) if position is None else min(position - 1, len(events))
        events.insert(index, event)
    for number, e in enumerate(events, start=1):
        if e.position != number:
            e.position = number
