"""Applying results to a real, migrated database (SQLite and PostgreSQL, via ``database_url``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from novawrite.db.engine import Database
from novawrite.db.models import (
    Chapter,
    ChapterRevision,
    Character,
    Foreshadowing,
    Novel,
    TimelineEvent,
    User,
    Volume,
    WorldSetting,
)
from novawrite.generators import chapter, characters, foreshadowings, outline, timeline_events, world_settings
from novawrite.generators.base import NovelGone
from novawrite.services.apply.chapter import apply_chapter
from novawrite.services.apply.lists import (
    apply_characters,
    apply_foreshadowings,
    apply_timeline_events,
    apply_world_settings,
)
from novawrite.services.apply.outline import apply_outline as write_outline
from novawrite.services.editing import Editing
from novawrite.text import count_words


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def novel_id(db: Database) -> int:
    async with db.session() as session:
        user = User(username="author", password_hash="x")
        session.add(user)
        await session.flush()
        novel = Novel(user_id=user.id, title="Tide", genre="", synopsis="", language="en")
        session.add(novel)
        await session.flush()
        return novel.id


def make_outline(shape: dict[int, list[int]], tag: str) -> outline.OutlineResult:
    return outline.OutlineResult(
        outline=f"outline {tag}",
        volumes=[
            outline.VolumeOutline(
                number=v,
                title=f"V{v} {tag}",
                summary=f"volume {v} {tag}",
                chapters=[
                    outline.ChapterOutline(number=n, title=f"C{n} {tag}", summary=f"chapter {n} {tag}") for n in ns
                ],
            )
            for v, ns in shape.items()
        ],
    )


async def apply_outline(db: Database, novel_id: int, result: outline.OutlineResult) -> None:
    async with db.session() as session:
        await write_outline(session, novel_id, outline.OutlineParams(novel_id=novel_id), result)


async def chapters_by_key(db: Database, novel_id: int) -> dict[tuple[int, int], Chapter]:
    async with db.read_session() as session:
        rows = await session.execute(
            select(Volume.number, Chapter)
            .join(Chapter, Chapter.volume_id == Volume.id)
            .where(Chapter.novel_id == novel_id)
        )
        return {(v, c.number): c for v, c in rows}


async def test_regenerating_the_outline_keeps_every_chapters_content(db: Database, novel_id: int) -> None:
    await apply_outline(db, novel_id, make_outline({1: [1, 2, 3], 2: [4, 5, 6], 3: [7]}, "a"))
    first = await chapters_by_key(db, novel_id)
    assert len(first) == 7 and all(c.in_outline for c in first.values())

    async with db.session() as session:
        for key, text in [((1, 2), "Chapter two's text."), ((2, 5), "Chapter five's text.")]:
            row = await session.get(Chapter, first[key].id)
            assert row is not None
            row.content, row.word_count, row.recap = text, count_words(text), "sum"
        # Chapter 6 has no text now but an older revision: that text is kept too.
        session.add(ChapterRevision(chapter_id=first[(2, 6)].id, content="old six", word_count=2))

    # The new outline has one volume of four chapters: 4-7 move or vanish.
    await apply_outline(db, novel_id, make_outline({1: [1, 2, 3, 4]}, "b"))
    after = await chapters_by_key(db, novel_id)

    two = after[(1, 2)]
    assert (two.title, two.summary, two.content, two.recap, two.in_outline) == (
        "C2 b",
        "chapter 2 b",
        "Chapter two's text.",
        "sum",
        True,
    )
    assert two.word_count == count_words("Chapter two's text.")
    assert after[(1, 4)].in_outline and after[(1, 4)].content == ""
    five = after[(2, 5)]
    assert (five.content, five.in_outline, five.title) == ("Chapter five's text.", False, "C5 a")
    assert after[(2, 6)].in_outline is False
    assert (2, 4) not in after  # empty and dropped: deleted
    assert (3, 7) not in after
    async with db.read_session() as session:
        volumes = {v.number: v for v in await session.scalars(select(Volume).where(Volume.novel_id == novel_id))}
        novel = await session.get(Novel, novel_id)
    assert set(volumes) == {1, 2}  # volume 2 kept for its chapters' text, volume 3 gone
    assert volumes[1].title == "V1 b"
    assert novel is not None and novel.outline == "outline b"

    # Back to the first shape: chapter 5 is in the outline again, text intact.
    await apply_outline(db, novel_id, make_outline({1: [1, 2, 3], 2: [4, 5, 6], 3: [7]}, "c"))
    again = await chapters_by_key(db, novel_id)
    assert (again[(2, 5)].content, again[(2, 5)].in_outline, again[(2, 5)].title) == (
        "Chapter five's text.",
        True,
        "C5 c",
    )
    assert again[(2, 5)].id == five.id
    # Chapter 4 of volume 1 never had text: dropped again, it is deleted.
    assert set(again) == {(1, 1), (1, 2), (1, 3), (2, 4), (2, 5), (2, 6), (3, 7)}


async def test_regenerating_the_outline_keeps_what_the_author_wrote_by_hand(db: Database, novel_id: int) -> None:
    await apply_outline(db, novel_id, make_outline({1: [1, 2, 3]}, "a"))
    first = await chapters_by_key(db, novel_id)
    async with db.read_session() as session:
        novel = await session.get(Novel, novel_id)
    assert novel is not None
    editing = Editing(db)
    await editing.update_chapter(novel.user_id, novel_id, first[(1, 1)].id, {"title": "My own title"}, None)
    await editing.update_chapter(
        novel.user_id, novel_id, first[(1, 2)].id, {"summary": "My plan", "content": "My text."}, None
    )
    # Sending a field back unchanged is no edit of it.
    await editing.update_chapter(novel.user_id, novel_id, first[(1, 3)].id, {"title": "C3 a"}, None)

    await apply_outline(db, novel_id, make_outline({1: [1, 2, 3]}, "b"))
    after = await chapters_by_key(db, novel_id)
    assert (after[(1, 1)].title, after[(1, 1)].summary) == ("My own title", "chapter 1 b")
    assert (after[(1, 2)].title, after[(1, 2)].summary, after[(1, 2)].content) == ("C2 b", "My plan", "My text.")
    assert (after[(1, 3)].title, after[(1, 3)].summary) == ("C3 b", "chapter 3 b")


async def test_list_applies_add_and_never_duplicate_names(db: Database, novel_id: int) -> None:
    async with db.session() as session:
        session.add(Character(novel_id=novel_id, name="Mara Vale"))
        session.add(WorldSetting(novel_id=novel_id, name="Ashen Reach", category="location"))
        session.add(TimelineEvent(novel_id=novel_id, position=4, title="The Flood"))
        session.add(Foreshadowing(novel_id=novel_id, title="The Key"))

    def person(name: str) -> characters.CharacterItem:
        return characters.CharacterItem(name=name, role="ally", description="d", traits=["calm", " "], arc="a")

    async with db.session() as session:
        await apply_characters(
            session,
            novel_id,
            characters.CharactersParams(novel_id=novel_id),
            characters.CharactersResult(
                characters=[person(" mara  VALE "), person("Jonah"), person("jonah "), person("Iris")]
            ),
        )
        await apply_world_settings(
            session,
            novel_id,
            world_settings.WorldSettingsParams(novel_id=novel_id),
            world_settings.WorldSettingsResult(
                world_settings=[
                    world_settings.WorldSettingItem(name="ashen reach", category="location", description="d"),
                    world_settings.WorldSettingItem(name="Salt Road", category="Location", description="d"),
                ]
            ),
        )
        await apply_timeline_events(
            session,
            novel_id,
            timeline_events.TimelineEventsParams(novel_id=novel_id),
            timeline_events.TimelineEventsResult(
                timeline_events=[
                    timeline_events.TimelineEventItem(position=1, time_label="t", title="the flood", description="d"),
                    timeline_events.TimelineEventItem(
                        position=2, time_label="t", title="The Thaw", description="d", chapter_number=3
                    ),
                    timeline_events.TimelineEventItem(position=3, time_label="t", title="The Return", description="d"),
                ]
            ),
        )
        await apply_foreshadowings(
            session,
            novel_id,
            foreshadowings.ForeshadowingsParams(novel_id=novel_id),
            foreshadowings.ForeshadowingsResult(
                foreshadowings=[
                    foreshadowings.ForeshadowingItem(title="THE KEY", description="d"),
                    foreshadowings.ForeshadowingItem(
                        title="The Map", description="d", planted_chapter=9, payoff_chapter=3
                    ),
                ]
            ),
        )

    async with db.read_session() as session:
        people = list(
            await session.scalars(select(Character).where(Character.novel_id == novel_id).order_by(Character.id))
        )
        places = list(
            await session.scalars(
                select(WorldSetting).where(WorldSetting.novel_id == novel_id).order_by(WorldSetting.id)
            )
        )
        events = list(
            await session.scalars(
                select(TimelineEvent).where(TimelineEvent.novel_id == novel_id).order_by(TimelineEvent.position)
            )
        )
        clues = list(
            await session.scalars(
                select(Foreshadowing).where(Foreshadowing.novel_id == novel_id).order_by(Foreshadowing.id)
            )
        )
    assert [p.name for p in people] == ["Mara Vale", "Jonah", "Iris"]
    assert people[1].traits == ["calm"]
    assert [(w.name, w.category) for w in places] == [("Ashen Reach", "location"), ("Salt Road", "location")]
    assert [(e.position, e.title, e.chapter_number) for e in events] == [
        (4, "The Flood", None),
        (5, "The Thaw", 3),
        (6, "The Return", None),
    ]
    # The novel has no chapter 9: the model's chapter numbers name no chapter (tests/test_foreshadowing.py).
    assert [(f.title, f.status, f.planted_chapter_id, f.payoff_chapter_id) for f in clues] == [
        ("The Key", "planted", None, None),
        ("The Map", "planted", None, None),
    ]


async def test_chapter_apply_keeps_the_replaced_text_as_a_revision(db: Database, novel_id: int) -> None:
    await apply_outline(db, novel_id, make_outline({1: [1, 2]}, "a"))
    ids = {k: c.id for k, c in (await chapters_by_key(db, novel_id)).items()}

    async def write(chapter_id: int, text: str) -> None:
        async with db.session() as session:
            result = chapter.ChapterResult(content=text, word_count=count_words(text), recap=f"about {text[:5]}")
            await apply_chapter(
                session, novel_id, chapter.ChapterParams(novel_id=novel_id, chapter_id=chapter_id), result
            )

    await write(ids[(1, 1)], "第一稿，风起。")
    await write(ids[(1, 1)], "Second draft, the storm.")
    async with db.read_session() as session:
        row = await session.get(Chapter, ids[(1, 1)])
        revisions = list(
            await session.scalars(select(ChapterRevision).where(ChapterRevision.chapter_id == ids[(1, 1)]))
        )
    assert row is not None
    assert (row.content, row.word_count, row.recap) == ("Second draft, the storm.", 4, "about Secon")
    assert [(r.content, r.word_count) for r in revisions] == [("第一稿，风起。", 5)]

    with pytest.raises(NovelGone):
        await write(999_999, "nowhere")
