"""The generators, on the demo provider and on a scripted fake: no HTTP, no database."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from novawrite.generators import chapter, characters, foreshadowings, outline, timeline_events, world_settings
from novawrite.generators.base import (
    CharacterView,
    InvalidModelOutput,
    RetryPolicy,
    TimelineEventView,
    WorldSettingView,
    stream_with_retries,
)
from novawrite.generators.chapter_context import CONTEXT_BUDGET, estimate_tokens, fit_tokens
from novawrite.generators.outline import is_placeholder
from novawrite.generators.prompts import name_key
from novawrite.providers.base import Completion, Prompt, ProviderError
from novawrite.providers.demo import DemoProvider
from novawrite.services.kinds import default_kinds
from novawrite.text import count_words
from novawrite.web.api_tasks import submit_route
from tests.gen_support import ScriptedProvider, big_novel, context, make_novel

LANGUAGES = ["zh", "en"]


def assert_progress_ok(percents: list[int]) -> None:
    assert percents, "no progress reported"
    assert percents == sorted(percents), f"progress went down: {percents}"
    assert all(0 <= p <= 99 for p in percents), "only the engine says 100, on completion"


# --- Outline --------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
async def test_outline_on_demo_is_complete_with_progress_per_volume(language: str) -> None:
    params = outline.OutlineParams(novel_id=1)
    ctx, rec = context(make_novel(language), params, DemoProvider(delay_ms=0))
    result = await outline.generate(ctx)

    assert [v.number for v in result.volumes] == [1, 2, 3]
    numbers = [c.number for v in result.volumes for c in v.chapters]
    assert numbers == list(range(1, 31))
    assert result.outline.strip()
    for v in result.volumes:
        assert not is_placeholder(v.title) and not is_placeholder(v.summary)
        for c in v.chapters:
            assert not is_placeholder(c.title) and not is_placeholder(c.summary)
    assert_progress_ok(rec.percents)
    messages = [m for _, m in rec.updates]
    expected = "正在规划第 2 卷（共 3 卷）" if language == "zh" else "Outlining volume 2 of 3"
    assert expected in messages
    # The demo writes from the novel's own fields.
    assert ("青岚剑歌" if language == "zh" else "The Lantern Keeper") in result.outline


async def test_a_200_chapter_outline_arrives_complete_in_batches_of_at_most_20() -> None:
    provider = ScriptedProvider()
    params = outline.OutlineParams(novel_id=1, volumes=2, chapters_per_volume=100)
    ctx, rec = context(make_novel("en"), params, provider)
    result = await outline.generate(ctx)

    chapters = [c for v in result.volumes for c in v.chapters]
    assert [c.number for c in chapters] == list(range(1, 201))
    assert all(c.title.strip() and c.summary.strip() for c in chapters)
    batches = provider.calls("outline_chapters")
    assert len(batches) == 10
    assert all(len(p.context["chapter_numbers"]) <= outline.MAX_BATCH for p in batches)
    assert_progress_ok(rec.percents)
    assert "Outlining volume 2 of 2, chapters 181-200" in [m for _, m in rec.updates]


async def test_missing_and_placeholder_chapters_are_asked_for_again() -> None:
    def drop_some(prompt: Prompt, data: dict[str, Any]) -> dict[str, Any]:
        if prompt.kind != "outline_chapters" or prompt.context["chapter_numbers"] != [1, 2, 3, 4, 5]:
            return data
        kept = [c for c in data["chapters"] if c["number"] not in (2, 4)]
        kept[-1]["summary"] = "略"  # chapter 5 "written" as a placeholder
        return {"chapters": kept}

    provider = ScriptedProvider(edit=drop_some)
    params = outline.OutlineParams(novel_id=1, volumes=1, chapters_per_volume=5)
    ctx, _ = context(make_novel("zh"), params, provider)
    result = await outline.generate(ctx)

    asked = [p.context["chapter_numbers"] for p in provider.calls("outline_chapters")]
    assert asked == [[1, 2, 3, 4, 5], [2, 4, 5]]
    assert [c.number for c in result.volumes[0].chapters] == [1, 2, 3, 4, 5]
    assert all(not is_placeholder(c.summary) for c in result.volumes[0].chapters)


async def test_a_chapter_that_never_arrives_fails_as_invalid_model_output() -> None:
    def always_drop_3(prompt: Prompt, data: dict[str, Any]) -> dict[str, Any]:
        if prompt.kind == "outline_chapters":
            data["chapters"] = [c for c in data["chapters"] if c["number"] != 3]
        return data

    provider = ScriptedProvider(edit=always_drop_3)
    ctx, _ = context(make_novel("en"), outline.OutlineParams(novel_id=1, volumes=1, chapters_per_volume=4), provider)
    with pytest.raises(InvalidModelOutput, match=r"\[3\]"):
        await outline.generate(ctx)
    assert len(provider.calls("outline_chapters")) == 1 + outline.MAX_FILL_ROUNDS


async def test_a_retry_reuses_the_batches_an_earlier_attempt_saved() -> None:
    params = outline.OutlineParams(novel_id=1, volumes=5, chapters_per_volume=10)
    saved: list[dict[str, Any]] = []

    async def save(data: dict[str, Any]) -> None:
        saved.append(data)

    def fail_fourth_batch(prompt: Prompt, call: int) -> ProviderError | None:
        if prompt.kind == "outline_chapters" and prompt.context["volume_number"] == 4:
            return ProviderError("boom", transient=False, status=400)
        return None

    first = ScriptedProvider(fail=fail_fourth_batch)
    ctx, _ = context(make_novel("en"), params, first, save_checkpoint=save)
    with pytest.raises(ProviderError):
        await outline.generate(ctx)
    assert len(first.calls("outline_chapters")) == 4
    checkpoint = saved[-1]
    assert sorted(int(n) for n in checkpoint["chapters"]) == list(range(1, 31))

    second = ScriptedProvider()
    ctx, rec = context(make_novel("en"), params, second, checkpoint=checkpoint, save_checkpoint=save)
    result = await outline.generate(ctx)

    assert second.calls("outline_plan") == []
    assert [p.context["volume_number"] for p in second.calls("outline_chapters")] == [4, 5]
    assert [c.number for v in result.volumes for c in v.chapters] == list(range(1, 51))
    assert_progress_ok(rec.percents)
    assert rec.updates[0][1] == "Resuming from the batches saved earlier"
    # Same novel, same demo: the resumed outline equals one made in a single run.
    clean_ctx, _ = context(make_novel("en"), params, ScriptedProvider())
    assert (await outline.generate(clean_ctx)) == result


async def test_a_checkpoint_for_other_sizes_is_ignored() -> None:
    small = outline.OutlineParams(novel_id=1, volumes=2, chapters_per_volume=3)
    ctx, _ = context(make_novel("zh"), small, ScriptedProvider())
    await outline.generate(ctx)
    assert ctx.checkpoint is not None

    provider = ScriptedProvider()
    other = outline.OutlineParams(novel_id=1, volumes=2, chapters_per_volume=4)
    ctx2, _ = context(make_novel("zh"), other, provider, checkpoint=ctx.checkpoint)
    result = await outline.generate(ctx2)
    assert len(provider.calls("outline_plan")) == 1
    assert len(provider.calls("outline_chapters")) == 2
    assert [c.number for c in result.volumes[1].chapters] == [5, 6, 7, 8]


@pytest.mark.parametrize(
    "text", ["", "  ", "...", "……", "略", "（略）", "Omitted", "[chapters omitted for brevity]", "同上", "TBD"]
)
def test_placeholders_are_recognised(text: str) -> None:
    assert is_placeholder(text)


@pytest.mark.parametrize("text", ["略施小计", "The Omission", "Night falls...", "风起青萍"])
def test_real_titles_are_not_placeholders(text: str) -> None:
    assert not is_placeholder(text)


# --- Invalid output -------------------------------------------------------------------


async def test_invalid_json_is_repaired_on_the_second_call() -> None:
    provider = ScriptedProvider(answers=["{not json"])
    ctx, _ = context(make_novel("en"), characters.CharactersParams(novel_id=1, count=2), provider)
    result = await characters.generate(ctx)
    assert len(result.characters) == 2
    calls = provider.calls("characters")
    assert len(calls) == 2
    assert calls[1].context.get("repair") is True
    assert "not valid JSON" in calls[1].user


async def test_output_invalid_twice_fails_with_invalid_model_output() -> None:
    provider = ScriptedProvider(answers=['{"characters": [{"name": 3}]}', "still not json"])
    ctx, _ = context(make_novel("en"), characters.CharactersParams(novel_id=1, count=2), provider)
    with pytest.raises(InvalidModelOutput):
        await characters.generate(ctx)
    assert len(provider.calls("characters")) == 2


# --- List kinds -----------------------------------------------------------------------

LIST_KINDS = [
    (characters, characters.CharactersParams, "characters", "name"),
    (world_settings, world_settings.WorldSettingsParams, "world_settings", "name"),
    (timeline_events, timeline_events.TimelineEventsParams, "timeline_events", "title"),
    (foreshadowings, foreshadowings.ForeshadowingsParams, "foreshadowings", "title"),
]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("module", "params_model", "field", "key"), LIST_KINDS)
async def test_list_kinds_never_repeat_an_existing_name(
    module: Any, params_model: type[BaseModel], field: str, key: str, language: str
) -> None:
    # What the demo makes for a fresh novel becomes the novel's own (in other
    # spelling), and the next run must find new names.
    novel = make_novel(language)
    first_ctx, _ = context(novel, params_model(novel_id=1, count=4), DemoProvider(delay_ms=0))
    first = getattr(await module.generate(first_ctx), field)
    existing = [f"  {getattr(item, key).upper()} " for item in first]
    novel = _with_existing(novel, field, existing)

    ctx, rec = context(novel, params_model(novel_id=1, count=6), DemoProvider(delay_ms=0))
    items = getattr(await module.generate(ctx), field)
    names = [name_key(getattr(item, key)) for item in items]
    assert len(items) == 6
    assert len(set(names)) == 6
    assert not set(names) & {name_key(n) for n in existing}
    assert_progress_ok(rec.percents)


def _with_existing(novel: Any, field: str, names: list[str]) -> Any:
    from novawrite.generators.base import ForeshadowingView

    if field == "characters":
        return replace(novel, characters=tuple(CharacterView(n, "role", "desc") for n in names))
    if field == "world_settings":
        return replace(novel, world_settings=tuple(WorldSettingView(n, "location", "desc") for n in names))
    if field == "timeline_events":
        return replace(novel, timeline_events=tuple(TimelineEventView(i + 1, "", n, "") for i, n in enumerate(names)))
    return replace(novel, foreshadowings=tuple(ForeshadowingView(n, "desc", "planted") for n in names))


async def test_duplicates_from_the_model_are_dropped_and_replaced() -> None:
    novel = replace(make_novel("en"), characters=(CharacterView("Mara Vale", "protagonist", "..."),))

    def repeat_names(prompt: Prompt, data: dict[str, Any]) -> dict[str, Any]:
        if len(provider.calls("characters")) == 1:
            first = data["characters"][0]
            data["characters"] = [
                {**first, "name": " mara  VALE "},  # the novel's own
                first,
                {**first, "name": first["name"].lower()},  # twice in one answer
            ]
        return data

    provider = ScriptedProvider(edit=repeat_names)
    ctx, _ = context(novel, characters.CharactersParams(novel_id=1, count=3), provider)
    result = await characters.generate(ctx)
    names = [name_key(c.name) for c in result.characters]
    assert len(names) == 3 and len(set(names)) == 3
    assert "mara vale" not in names
    calls = provider.calls("characters")
    assert len(calls) == 2 and calls[1].context["count"] == 2
    assert "Mara Vale" in calls[1].context["exclude"]


async def test_timeline_positions_continue_after_the_existing_ones() -> None:
    novel = replace(make_novel("zh"), timeline_events=(TimelineEventView(7, "", "旧事", ""),))
    ctx, _ = context(novel, timeline_events.TimelineEventsParams(novel_id=1), DemoProvider(delay_ms=0))
    result = await timeline_events.generate(ctx)
    assert [e.position for e in result.timeline_events] == list(range(8, 16))  # default count 8


async def test_list_kinds_ask_in_batches() -> None:
    provider = ScriptedProvider()
    ctx, rec = context(make_novel("en"), timeline_events.TimelineEventsParams(novel_id=1, count=25), provider)
    result = await timeline_events.generate(ctx)
    assert len(result.timeline_events) == 25
    assert [p.context["count"] for p in provider.calls("timeline_events")] == [10, 10, 5]
    assert_progress_ok(rec.percents)


# --- Chapter --------------------------------------------------------------------------


def chapter_novel(language: str) -> Any:
    return big_novel(chapters=20, per_volume=10, language=language, target=5)


@pytest.mark.parametrize("language", LANGUAGES)
async def test_chapter_chunks_add_up_to_the_content(language: str) -> None:
    params = chapter.ChapterParams(novel_id=1, chapter_id=5, target_words=600)
    ctx, rec = context(chapter_novel(language), params, DemoProvider(delay_ms=0))
    result = await chapter.generate(ctx)

    assert "".join(rec.chunks) == result.content
    assert len(rec.chunks) > 10  # streamed in small pieces
    assert result.word_count == count_words(result.content)
    assert result.word_count >= 600 * 0.8
    assert result.recap is not None and result.recap.strip() and len(result.recap) < 2000
    assert_progress_ok(rec.percents)
    assert max(rec.percents) == 99
    assert ("第 5 章" if language == "zh" else "chapter 5") in rec.updates[0][1]


async def test_chapter_progress_follows_words_against_the_target() -> None:
    provider = ScriptedProvider(pieces=["word " * 50] * 10)  # 500 words against 1000
    ctx, rec = context(
        chapter_novel("en"), chapter.ChapterParams(novel_id=1, chapter_id=5, target_words=1000), provider
    )
    result = await chapter.generate(ctx)
    assert result.word_count == 500
    assert_progress_ok(rec.percents)
    assert 50 in rec.percents  # halfway through the target
    assert rec.percents[-1] == 99  # finished, but only the engine says 100


async def test_an_empty_chapter_fails() -> None:
    provider = ScriptedProvider(pieces=["", "  "])
    ctx, _ = context(chapter_novel("en"), chapter.ChapterParams(novel_id=1, chapter_id=5), provider)
    with pytest.raises(InvalidModelOutput):
        await chapter.generate(ctx)


@pytest.mark.parametrize("language", LANGUAGES)
def test_chapter_150_of_200_stays_within_the_budget(language: str) -> None:
    novel = big_novel(language=language)
    prompt = chapter.build_chapter_prompt(novel, chapter.ChapterParams(novel_id=1, chapter_id=150))
    tokens = estimate_tokens(prompt.system + prompt.user)
    # The context has the budget; the task sentence and the system prompt are small.
    assert tokens <= CONTEXT_BUDGET + 400, tokens
    assert tokens >= CONTEXT_BUDGET * 0.8  # the budget is used, not wasted
    user = prompt.user
    assert "outline 150" in user and "outline 151" in user  # this and the next chapter
    assert "summary 149" in user  # the nearest earlier chapter
    assert "summary 1 " not in user  # the oldest dropped
    assert "Clue 150" in user  # foreshadowing planted here
    print(f"\nchapter 150 of 200 ({language}): {tokens} estimated tokens")


@pytest.mark.parametrize(
    ("text", "budget", "keep", "fitted"),
    [
        ("short text", 10, "start", "short text"),
        ("abcd " * 10, 5, "start", "abcd abcd abcd a…"),  # 4 characters a token, one for the mark
        ("abcd " * 10, 5, "end", "…d abcd abcd abcd"),
        ("林远" * 10, 5, "start", "林远林远…"),  # a Chinese character a token
        ("林远" * 10, 20, "start", "林远" * 10),
        ("x" * 100_000, 3, "start", "xxxxxxxx…"),
        ("anything", 0, "start", ""),
    ],
)
def test_fit_tokens_keeps_the_longest_part_within_the_budget(text: str, budget: int, keep: str, fitted: str) -> None:
    assert fit_tokens(text, budget, keep=keep) == fitted
    assert estimate_tokens(fitted) <= budget


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("林远，Hello 가나", 7),  # five CJK characters (the full-width comma and hangul too) and ceil(6 / 4)
        ("Hello world", 3),
        ("林" * 1000 + "abcd" * 10 + "山" * 5, 1015),
    ],
)
def test_estimate_tokens_counts_each_cjk_character_and_a_quarter_of_any_other(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_fit_tokens_finds_the_same_part_as_trying_every_length() -> None:
    rng = random.Random(7)
    for _ in range(300):
        text = "".join(rng.choice("林远 ab，cd。\n가xyz") for _ in range(rng.randint(1, 400)))
        budget, keep = rng.randint(1, 120), rng.choice(["start", "end"])
        stripped = text.strip()
        if estimate_tokens(stripped) <= budget:
            assert fit_tokens(text, budget, keep=keep) == stripped
            continue
        part = (lambda n: stripped[:n]) if keep == "start" else (lambda n: stripped[len(stripped) - n :])
        n = max(n for n in range(len(stripped) + 1) if estimate_tokens(part(n)) <= budget - 1)
        expected = "" if n == 0 else part(n).rstrip() + "…" if keep == "start" else "…" + part(n).lstrip()
        assert fit_tokens(text, budget, keep=keep) == expected


def test_continuation_prompt_repeats_the_end_of_the_text_so_far() -> None:
    novel = chapter_novel("en")
    params = chapter.ChapterParams(novel_id=1, chapter_id=5)
    prompt = chapter.build_chapter_prompt(novel, params, "It was dark. The END OF TEXT")
    assert prompt.user.endswith("The END OF TEXT")
    assert prompt.context["written_chars"] == len("It was dark. The END OF TEXT")


# --- Params and registry --------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (outline.OutlineParams, {"novel_id": 1, "volumes": 0}),
        (outline.OutlineParams, {"novel_id": 1, "volumes": 21}),
        (outline.OutlineParams, {"novel_id": 1, "chapters_per_volume": 101}),
        (outline.OutlineParams, {"novel_id": 1, "volumes": None}),
        (outline.OutlineParams, {"novel_id": 1, "volumes": "3"}),
        (outline.OutlineParams, {"novel_id": 1, "volumes": True}),
        (outline.OutlineParams, {"novel_id": "1"}),
        (outline.OutlineParams, {}),
        (characters.CharactersParams, {"novel_id": 1, "count": 51}),
        (timeline_events.TimelineEventsParams, {"novel_id": 1, "count": 101}),
        (foreshadowings.ForeshadowingsParams, {"novel_id": 1, "instructions": None}),
        (world_settings.WorldSettingsParams, {"novel_id": 1, "instructions": "x" * 4001}),
        (chapter.ChapterParams, {"novel_id": 1}),
        (chapter.ChapterParams, {"novel_id": 1, "chapter_id": 2, "target_words": 99}),
        (chapter.ChapterParams, {"novel_id": 1, "chapter_id": 2, "target_words": 20001}),
        (chapter.ChapterParams, {"novel_id": 1, "chapter_id": 2, "overwrite": "yes"}),
    ],
)
def test_bad_params_are_rejected(model: type[BaseModel], body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(body)


def test_params_defaults_and_unknown_fields() -> None:
    assert outline.OutlineParams.model_validate({"novel_id": 1, "extra": 1}).model_dump() == {
        "novel_id": 1,
        "volumes": 3,
        "chapters_per_volume": 10,
        "instructions": "",
    }
    assert characters.CharactersParams(novel_id=1).count == 5
    assert world_settings.WorldSettingsParams(novel_id=1).count == 5
    assert foreshadowings.ForeshadowingsParams(novel_id=1).count == 5
    assert timeline_events.TimelineEventsParams(novel_id=1).count == 8
    assert timeline_events.TimelineEventsParams(novel_id=1, count=100).count == 100
    params = chapter.ChapterParams.model_validate({"novel_id": 1, "chapter_id": 2})
    assert (params.target_words, params.overwrite, params.instructions) == (2000, False, "")


def test_every_kind_is_registered_with_its_route() -> None:
    kinds = default_kinds()
    assert {k: submit_route(v.task_type) for k, v in kinds.items()} == {
        "generate_outline": "/api/ai/generate-outline",
        "generate_characters": "/api/ai/generate-characters",
        "generate_world_settings": "/api/ai/generate-world-settings",
        "generate_timeline_events": "/api/ai/generate-timeline-events",
        "generate_foreshadowings": "/api/ai/generate-foreshadowings",
        "write_chapter_content": "/api/ai/write-chapter-content",
        "recap_chapters": "/api/ai/recap-chapters",
        "write_chapters": "/api/ai/write-chapters",
    }
    assert kinds["write_chapters"].batch and not kinds["write_chapter_content"].batch
    assert kinds["write_chapter_content"].streams_text and kinds["write_chapter_content"].per_chapter
    assert kinds["write_chapter_content"].scope(chapter.ChapterParams(novel_id=1, chapter_id=9)) == 9
    assert kinds["generate_outline"].scope(outline.OutlineParams(novel_id=1)) == 0


class CutAfterEachPiece:
    """Streams one piece per call and then cuts the connection, ``cuts`` times; then finishes."""

    name = "cutting"
    is_demo = False

    def __init__(self, cuts: int, cut_before_text: bool = False) -> None:
        self.cuts = cuts
        self.cut_before_text = cut_before_text
        self.calls = 0

    async def generate_json(self, prompt: Prompt, schema: type[BaseModel]) -> Any:
        raise NotImplementedError

    async def stream_text(self, prompt: Prompt) -> Any:
        self.calls += 1
        if self.calls <= self.cuts:
            if not self.cut_before_text:
                yield Completion(f"<{self.calls}>")
            raise ProviderError("stream cut", transient=True)
        yield Completion("<end>")

    async def aclose(self) -> None:
        return None


async def test_a_stream_cut_after_progress_starts_its_retry_budget_again() -> None:
    retry = RetryPolicy(max_retries=2, base=0.001)
    provider = CutAfterEachPiece(cuts=5)
    ctx, rec = context(make_novel(), chapter.ChapterParams(novel_id=1, chapter_id=1), provider, retry=retry)
    text = await stream_with_retries(ctx, lambda so_far: Prompt("chapter", "", so_far), on_text=rec.chunk)
    assert text == "<1><2><3><4><5><end>" == "".join(rec.chunks)

    # Cuts before any text are failures in a row: the budget runs out.
    stuck = CutAfterEachPiece(cuts=5, cut_before_text=True)
    ctx, rec = context(make_novel(), chapter.ChapterParams(novel_id=1, chapter_id=1), stuck, retry=retry)
    with pytest.raises(ProviderError):
        await stream_with_retries(ctx, lambda so_far: Prompt("chapter", "", so_far), on_text=rec.chunk)
    assert stuck.calls == 3
