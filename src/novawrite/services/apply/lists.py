"""The four list kinds: characters, world settings, timeline events, foreshadowing.

Names are checked again against the database, since the author may have added
some while the task ran: a list result adds, it never deletes, and it never
repeats a name (trimmed, case-insensitive) the novel has or the result already gave.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from novawrite.db.models import Chapter, Character, Foreshadowing, TimelineEvent, WorldSetting
from novawrite.generators.characters import CharactersParams, CharactersResult
from novawrite.generators.foreshadowings import ForeshadowingsParams, ForeshadowingsResult
from novawrite.generators.prompts import name_key
from novawrite.generators.timeline_events import TimelineEventsParams, TimelineEventsResult
from novawrite.generators.world_settings import WorldSettingsParams, WorldSettingsResult


async def fresh_items(
    session: AsyncSession, model: type[Any], novel_id: int, key_field: str, items: Sequence[Any]
) -> list[Any]:
    """The items whose name is neither in the novel now nor earlier in ``items``."""
    column = getattr(model, key_field)
    rows = await session.scalars(select(column).where(model.novel_id == novel_id))
    taken = {name_key(name) for name in rows}
    fresh = []
    for item in items:
        key = name_key(getattr(item, key_field))
        if key and key not in taken:
            taken.add(key)
            fresh.append(item)
    return fresh


def fit(text: str, length: int) -> str:
    """Trim a model's string to its column, so PostgreSQL never rejects a long name."""
    text = text.strip()
    return text[:length]


async def apply_characters(
    session: AsyncSession, novel_id: int, params: CharactersParams, result: CharactersResult
) -> None:
    for item in await fresh_items(session, Character, novel_id, "name", result.characters):
        session.add(
            Character(
                novel_id=novel_id,
                name=fit(item.name, 200),
                role=fit(item.role, 200),
                description=item.description.strip(),
                traits=[t.strip() for t in item.traits if t.strip()],
                arc=item.arc.strip(),
                relationships=item.relationships.strip(),
            )
        )


async def apply_world_settings(
    session: AsyncSession, novel_id: int, params: WorldSettingsParams, result: WorldSettingsResult
) -> None:
    for item in await fresh_items(session, WorldSetting, novel_id, "name", result.world_settings):
        session.add(
            WorldSetting(
                novel_id=novel_id,
                name=fit(item.name, 200),
                # Categories are a short vocabulary; models sometimes capitalise them.
                category=fit(item.category.strip().lower(), 100),
                description=item.description.strip(),
            )
        )


async def apply_timeline_events(
    session: AsyncSession, novel_id: int, params: TimelineEventsParams, result: TimelineEventsResult
) -> None:
    """The events continue after the novel's timeline as it is now, in the order of their positions."""
    last = await session.scalar(select(func.max(TimelineEvent.position)).where(TimelineEvent.novel_id == novel_id))
    position = last or 0
    events = sorted(result.timeline_events, key=lambda e: e.position)
    for event in await fresh_items(session, TimelineEvent, novel_id, "title", events):
        position += 1
        session.add(
            TimelineEvent(
                novel_id=novel_id,
                position=position,
                time_label=fit(event.time_label, 200),
                title=fit(event.title, 300),
                description=event.description.strip(),
                chapter_number=event.chapter_number,
            )
        )


async def apply_foreshadowings(
    session: AsyncSession, novel_id: int, params: ForeshadowingsParams, result: ForeshadowingsResult
) -> None:
    """The model names chapters by number; they are stored as the chapters numbered so now (unknown: null)."""
    numbered = await session.execute(
        select(Chapter.number, func.min(Chapter.id)).where(Chapter.novel_id == novel_id).group_by(Chapter.number)
    )
    chapter_ids: dict[int, int] = {number: cid for number, cid in numbered}
    for item in await fresh_items(session, Foreshadowing, novel_id, "title", result.foreshadowings):
        planted, payoff = item.planted_chapter, item.payoff_chapter
        if planted is not None and payoff is not None and payoff < planted:
            # A payoff before its planting is a model slip; keep the planting, drop the date.
            payoff = None
        session.add(
            Foreshadowing(
                novel_id=novel_id,
                title=fit(item.title, 300),
                description=item.description.strip(),
                status=item.status,
                planted_chapter_id=chapter_ids.get(planted) if planted is not None else None,
                payoff_chapter_id=chapter_ids.get(payoff) if payoff is not None else None,
            )
        )
