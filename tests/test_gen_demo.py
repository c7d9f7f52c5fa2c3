"""The demo provider: deterministic, in the novel's language, paced, and valid for every kind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from novawrite.generators import chapter, characters, foreshadowings, outline, timeline_events, world_settings
from novawrite.providers import demo as demo_module
from novawrite.providers.base import Prompt, ProviderError
from novawrite.providers.demo import DemoProvider
from novawrite.providers.demo.story import CAST_SIZE, Story
from tests.gen_support import ScriptedProvider, big_novel, context, make_novel


async def _outline(novel: Any) -> outline.OutlineResult:
    ctx, _ = context(
        novel, outline.OutlineParams(novel_id=1, volumes=2, chapters_per_volume=4), DemoProvider(delay_ms=0)
    )
    return await outline.generate(ctx)


async def test_same_novel_same_plan_other_novel_other_plan() -> None:
    novel = make_novel("zh")
    assert await _outline(novel) == await _outline(novel)
    other = await _outline(replace(novel, title="雪夜行舟", synopsis="一位落魄书生在雪夜渡口救下一名神秘女子。"))
    assert other != await _outline(novel)


async def test_chinese_novel_gets_chinese_and_english_novel_gets_english() -> None:
    zh = await _outline(make_novel("zh"))
    en = await _outline(make_novel("en"))
    assert sum("\u4e00" <= ch <= "\u9fff" for ch in zh.outline) > len(zh.outline) // 2
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in en.outline)


async def test_the_synopsis_hero_leads_the_plan_and_the_cast() -> None:
    novel = make_novel("zh")  # "少年林远在山村……"
    plan = await _outline(novel)
    assert "林远" in plan.volumes[0].summary
    ctx, _ = context(novel, characters.CharactersParams(novel_id=1, count=3), DemoProvider(delay_ms=0))
    cast = (await characters.generate(ctx)).characters
    assert (cast[0].name, cast[0].role) == ("林远", "主角")


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("authors", [0, 3, 9])
def test_the_cast_draws_only_the_names_it_keeps(language: str, authors: int) -> None:
    # The demo runs in the event loop: a story drawing its whole name sequence (2,000 draws)
    # to keep eight stalled the loop 12-17 ms under load (scripts/bench looplag).
    existing = [f"作者角色{i}" if language == "zh" else f"Author Character {i}" for i in range(authors)]
    request = {"title": "t", "genre": "玄幻", "synopsis": "少年林远在山村长大。", "language": language}
    drawn = 0

    class Counting(Story):
        def name_sequence(self) -> Iterator[str]:
            nonlocal drawn
            for name in super().name_sequence():
                drawn += 1
                yield name

    story = Counting({**request, "character_names": existing})
    whole = [n for n in Story(request).name_sequence() if n not in existing]
    assert story.cast == (existing + whole)[:CAST_SIZE]
    assert drawn == max(0, CAST_SIZE - authors)


@pytest.mark.parametrize(
    ("synopsis", "hook"),
    [
        ("少年林远在山村长大。一日，他捡到一枚古戒！", "少年林远在山村长大"),
        ("Version 2.0 of the world is here. Then the rest", "Version 2.0 of the world is here"),
        ("Who knocks? Nobody. Run", "Who knocks"),
        ("  A lone sentence with no stop  ", "A lone sentence with no stop"),
        ("x" * 200 + ". End", "x" * 79 + "…"),
        ("。！", None),  # nothing but marks: the language's default hook
    ],
)
def test_the_hook_is_the_synopsis_first_sentence(synopsis: str, hook: str | None) -> None:
    story = Story({"title": "t", "genre": "fantasy", "synopsis": synopsis, "language": "en"})
    assert story.hook == (hook or story.text.default_hook.format(item=story.bank.items[0]))


async def test_foreshadowing_and_timeline_point_at_real_chapters() -> None:
    novel = big_novel(chapters=40, per_volume=10, language="en", target=1)
    ctx, _ = context(novel, foreshadowings.ForeshadowingsParams(novel_id=1), DemoProvider(delay_ms=0))
    for item in (await foreshadowings.generate(ctx)).foreshadowings:
        assert item.planted_chapter is not None and item.payoff_chapter is not None
        assert 1 <= item.planted_chapter < item.payoff_chapter <= 40
    ctx, _ = context(novel, timeline_events.TimelineEventsParams(novel_id=1), DemoProvider(delay_ms=0))
    numbers = [e.chapter_number for e in (await timeline_events.generate(ctx)).timeline_events]
    assert all(n is not None and 1 <= n <= 40 for n in numbers)
    assert numbers == sorted(numbers)


async def test_world_settings_cover_several_categories() -> None:
    ctx, _ = context(make_novel("en"), world_settings.WorldSettingsParams(novel_id=1), DemoProvider(delay_ms=0))
    items = (await world_settings.generate(ctx)).world_settings
    assert {"location", "faction", "rule", "item"} <= {i.category for i in items}


class SleepCounter:
    """Stands in for the demo module's ``asyncio`` to count its pauses without waiting."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> SleepCounter:
    counter = SleepCounter()
    monkeypatch.setattr(demo_module, "asyncio", counter)
    return counter


async def test_demo_pauses_once_per_generated_item(pauses: SleepCounter) -> None:
    ctx, _ = context(
        make_novel("en"), outline.OutlineParams(novel_id=1, volumes=2, chapters_per_volume=5), DemoProvider(delay_ms=30)
    )
    await outline.generate(ctx)
    assert len(pauses.pauses) == 2 + 10  # two volumes, ten chapters
    assert set(pauses.pauses) == {0.03}

    pauses.pauses.clear()
    ctx, _ = context(make_novel("zh"), characters.CharactersParams(novel_id=1, count=4), DemoProvider(delay_ms=30))
    await characters.generate(ctx)
    assert len(pauses.pauses) == 4


async def test_demo_streams_a_chapter_with_a_pause_before_each_piece(pauses: SleepCounter) -> None:
    ctx, rec = context(
        big_novel(chapters=10, per_volume=10, language="zh", target=3),
        chapter.ChapterParams(novel_id=1, chapter_id=3, target_words=500),
        DemoProvider(delay_ms=30),
    )
    await chapter.generate(ctx)
    assert len(rec.chunks) > 10
    assert len(pauses.pauses) == len(rec.chunks) + 1  # and one for the recap's answer


async def test_a_continuation_picks_up_where_the_text_stopped() -> None:
    provider = DemoProvider(delay_ms=0)
    novel = big_novel(chapters=10, per_volume=10, language="en", target=3)
    params = chapter.ChapterParams(novel_id=1, chapter_id=3, target_words=300)
    whole = "".join([p.text async for p in provider.stream_text(chapter.build_chapter_prompt(novel, params))])
    head = whole[:100]
    rest = "".join([p.text async for p in provider.stream_text(chapter.build_chapter_prompt(novel, params, head))])
    assert head + rest == whole


async def test_every_json_answer_fits_its_schema() -> None:
    # ScriptedProvider without edits is the demo: generate() validates every answer.
    novel = make_novel("en")
    for module, params in [
        (outline, outline.OutlineParams(novel_id=1, volumes=1, chapters_per_volume=2)),
        (characters, characters.CharactersParams(novel_id=1, count=7)),
        (world_settings, world_settings.WorldSettingsParams(novel_id=1, count=7)),
        (timeline_events, timeline_events.TimelineEventsParams(novel_id=1, count=12)),
        (foreshadowings, foreshadowings.ForeshadowingsParams(novel_id=1, count=7)),
    ]:
        provider = ScriptedProvider()
        ctx, _ = context(novel, params, provider)
        await module.generate(ctx)
        assert all(p.context.get("repair") is None for p in provider.prompts), module.__name__


async def test_unknown_kind_is_a_fatal_provider_error() -> None:
    provider = DemoProvider(delay_ms=0)
    with pytest.raises(ProviderError) as caught:
        await provider.generate_json(Prompt(kind="poem", system="", user="", context={}), outline.OutlinePlan)
    assert not caught.value.transient


async def test_many_items_never_run_out_of_names() -> None:
    provider = DemoProvider(delay_ms=0)
    for kind, field in [
        ("world_settings", "world_settings"),
        ("timeline_events", "timeline_events"),
        ("foreshadowings", "foreshadowings"),
        ("characters", "characters"),
    ]:
        prompt = Prompt(kind=kind, system="", user="", context={**make_novel("zh").as_context(), "count": 60})
        items = json.loads((await provider.generate_json(prompt, outline.OutlinePlan)).text)[field]
        key = "name" if field in ("characters", "world_settings") else "title"
        assert len({i[key] for i in items}) == 60, kind
