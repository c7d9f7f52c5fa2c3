"""The novel's memory: chapter recaps and the chapter context built from them (API.md, "Writing the book").

Recaps are tested end to end through the HTTP API on the fake Gemini server
(through the real google-genai SDK) and the fake OpenAI server, on SQLite and on
PostgreSQL; the context budget on a 200-chapter novel without a database.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from novawrite.db.models import Chapter, Novel, Volume
from novawrite.generators import chapter
from novawrite.generators.chapter_context import CONTEXT_BUDGET, estimate_tokens
from novawrite.generators.recap import RECAP_CHARS, RECAP_WORDS, limit_recap
from novawrite.settings import Settings
from novawrite.text import count_words
from tests.conftest import make_api
from tests.fakes import Text
from tests.gen_support import long_recap, novel_at_150
from tests.test_kinds_e2e import FAST, JSON_USAGE, Answer, AnsweringGemini, AnsweringOpenAI, Env, provider_settings

MODELS = pytest.mark.parametrize("env", ["gemini", "openai"], indirect=True)
RECAP_OF = "Recap of chapter {n}: Mara reads the map by lamplight."


@pytest.fixture(scope="module")
def gemini_server() -> Iterator[AnsweringGemini]:
    with AnsweringGemini() as server:
        yield server


@pytest.fixture(scope="module")
def openai_server() -> Iterator[AnsweringOpenAI]:
    with AnsweringOpenAI() as server:
        yield server


@pytest.fixture
async def env(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Env]:
    """The app on the fake named by ``request.param``, a user and an English novel outlined as 1 x 3 chapters."""
    fake = request.getfixturevalue(f"{request.param}_server")
    fake.reset()
    async for api in make_api(provider_settings(settings, request.param, fake), retry=FAST):
        headers = await api.register()
        novel = await api.novel(headers, title="The Lantern Keeper", genre="Fantasy", language="en")
        env = Env(api, headers, fake, int(novel["id"]), "en")
        await env.run("/api/ai/generate-outline", volumes=1, chapters_per_volume=3)
        yield env


async def patch_content(env: Env, chapter_id: int, content: str) -> dict[str, Any]:
    r = await env.api.client.patch(
        f"/api/novels/{env.novel_id}/chapters/{chapter_id}", json={"content": content}, headers=env.headers
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


# --- Recaps of written chapters ------------------------------------------------------------


@MODELS
async def test_a_written_chapter_gets_its_recap_and_the_next_chapter_reads_it(env: Env) -> None:
    one, two, _ = await env.chapter_ids()
    before = len(env.calls())
    task = await env.run("/api/ai/write-chapter-content", chapter_id=one, target_words=100)
    saved = await env.chapter(one)
    assert saved["recap"] == task["result"]["recap"] == RECAP_OF.format(n=1)
    assert saved["recap_stale"] is False and task["result"]["recap_error"] is None
    listed = (await env.novel())["volumes"][0]["chapters"]
    assert [(c["recap"], c["recap_stale"]) for c in listed] == [(RECAP_OF.format(n=1), False), (None, False)] + [
        (None, False)
    ]
    recap_call = env.calls()[before:][1]
    assert not recap_call.streaming and recap_call.schema is not None
    assert saved["content"] in recap_call.user  # the recap reads the text it recaps

    before = len(env.calls())
    await env.run("/api/ai/write-chapter-content", chapter_id=two, target_words=100)
    prompt = env.calls()[before]
    assert prompt.streaming
    # The chapter after holds the recap of the one before and the end of its text.
    assert RECAP_OF.format(n=1) in prompt.user
    assert "[How the previous chapter ends]" in prompt.user
    assert saved["content"][-60:] in prompt.user
    assert (await env.chapter(two))["recap"] == RECAP_OF.format(n=2)


@MODELS
async def test_a_broken_recap_answer_is_repaired_once(env: Env) -> None:
    one = (await env.chapter_ids())[0]
    before = len(env.calls())
    assert env.fake is not None
    env.fake.push(Answer(), Text('{"recap": "cut', prompt_tokens=5, output_tokens=3))
    task = await env.run("/api/ai/write-chapter-content", chapter_id=one, target_words=100)
    calls = env.calls()[before:]
    assert len(calls) == 3
    assert "could not be used" in calls[2].user and '{"recap": "cut' in calls[2].user
    assert (await env.chapter(one))["recap"] == RECAP_OF.format(n=1)
    assert task["usage"]["prompt_tokens"] == 19 + 5 + JSON_USAGE[0]


@MODELS
async def test_a_recap_broken_twice_leaves_the_chapter_written_without_one(env: Env) -> None:
    one = (await env.chapter_ids())[0]
    assert env.fake is not None
    env.fake.push(Answer(), Text("not json"), Text('{"recap": "   "}'))
    task = await env.run("/api/ai/write-chapter-content", chapter_id=one, target_words=100)
    saved = await env.chapter(one)
    assert saved["content"] == task["result"]["content"] and saved["content"]
    assert saved["recap"] is None and task["result"]["recap"] is None
    assert "recap is empty" in task["result"]["recap_error"]


# --- recap-chapters --------------------------------------------------------------------------


@MODELS
async def test_recap_chapters_over_a_hand_written_chapter(env: Env) -> None:
    one, two, three = await env.chapter_ids()
    text = "Mara found a second map under the floorboards. She burned the first one before dawn."
    await patch_content(env, one, text)
    await patch_content(env, three, "Ivo rowed out alone.")
    before = len(env.calls())
    task = await env.run("/api/ai/recap-chapters", chapter_ids=[three, two, one])
    assert task["task_type"] == "recap_chapters"
    result = task["result"]
    # In reading order whatever the order asked; the chapter without text is skipped.
    assert [r["chapter_id"] for r in result["recaps"]] == [one, three]
    assert result["skipped"] == [two] and result["failed"] == []
    calls = env.calls()[before:]
    assert len(calls) == 2 and text in calls[0].user and "Ivo rowed out alone." in calls[1].user
    saved = await env.chapter(one)
    assert (saved["recap"], saved["recap_stale"]) == (RECAP_OF.format(n=1), False)
    assert (await env.chapter(two))["recap"] is None

    # The author's edit keeps the recap but marks it stale, until recap-chapters reads the text again.
    edited = await patch_content(env, one, text + " Then she slept.")
    assert (edited["recap"], edited["recap_stale"]) == (RECAP_OF.format(n=1), True)
    assert (await env.novel())["volumes"][0]["chapters"][0]["recap_stale"] is True
    await env.run("/api/ai/recap-chapters", chapter_ids=[one])
    assert (await env.chapter(one))["recap_stale"] is False


@MODELS
async def test_recap_chapters_refuses_foreign_duplicate_and_missing_chapters(env: Env) -> None:
    one = (await env.chapter_ids())[0]
    async with env.api.services.db.session() as session:
        other = Novel(user_id=(await env.api.client.get("/api/auth/me", headers=env.headers)).json()["id"], title="B")
        session.add(other)
        await session.flush()
        volume = Volume(novel_id=other.id, number=1, title="v", summary="")
        session.add(volume)
        await session.flush()
        foreign = Chapter(novel_id=other.id, volume_id=volume.id, number=1, title="c", content="words here")
        session.add(foreign)
        await session.flush()
        foreign_id = foreign.id

    async def post(body: dict[str, Any]) -> Any:
        return await env.api.client.post("/api/ai/recap-chapters", json=body, headers=env.headers)

    for ids in ([one, foreign_id], [one, 2**63 - 1], [one, 0], [one, -5]):
        r = await post({"novel_id": env.novel_id, "chapter_ids": ids})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    for ids in ([], [one, one], list(range(1, 202)), ["1"], [one, 2**70], None):
        r = await post({"novel_id": env.novel_id, "chapter_ids": ids})
        assert r.status_code == 422, r.text
    r = await post({"novel_id": 10**6, "chapter_ids": [one]})
    assert r.status_code == 404
    # Another user sees neither the novel nor its chapters.
    stranger = await env.api.register("bob")
    r = await env.api.client.post(
        "/api/ai/recap-chapters", json={"novel_id": env.novel_id, "chapter_ids": [one]}, headers=stranger
    )
    assert r.status_code == 404


# --- The recap's length --------------------------------------------------------------------


def test_a_recap_is_trimmed_to_whole_sentences_within_its_limit() -> None:
    sentence = "Mara walks north along the cold shore and counts the bells. "
    long_en = sentence * 40
    trimmed = limit_recap(long_en, "en")
    assert count_words(trimmed) <= RECAP_WORDS and trimmed.endswith("bells.")
    assert limit_recap("Short and sweet.", "en") == "Short and sweet."
    long_zh = "阿岚沿着海岸一路向北，数着钟声。" * 60
    trimmed = limit_recap(long_zh, "zh")
    assert len(trimmed) <= RECAP_CHARS and trimmed.endswith("。")
    # One endless sentence is cut with a mark.
    assert len(limit_recap("风" * 2000, "zh")) == RECAP_CHARS
    assert count_words(limit_recap("word " * 1000, "en")) <= RECAP_WORDS


# --- The chapter context --------------------------------------------------------------------


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("budget", [3000, CONTEXT_BUDGET, 20_000])
def test_chapter_150_of_200_stays_within_budget_with_the_previous_ending_and_the_threads_due(
    language: str, budget: int
) -> None:
    novel = novel_at_150(language)  # every earlier recap at its limit
    prompt = chapter.build_chapter_prompt(novel, chapter.ChapterParams(novel_id=1, chapter_id=150), budget=budget)
    tokens = estimate_tokens(prompt.system + prompt.user)
    assert tokens <= budget, tokens
    user = prompt.user
    assert "THE END OF 149" in user  # the previous chapter's ending
    # The threads whose payoff chapter this is, with the instruction to pay them off.
    assert "Clue 147" in user
    instruction = "必须在本章中揭晓并回收" if language == "zh" else "resolve each of them in this chapter"
    assert instruction in user
    assert prompt.context["foreshadow_payoff"] == ["Clue 147"]
    assert "outline 150" in user
    if budget == CONTEXT_BUDGET:
        assert tokens >= budget * 0.8  # the budget is used, not wasted
    if budget >= CONTEXT_BUDGET:
        assert f"R149 {long_recap(language)[:200]}" in user  # the nearest recap in full
    lines = user.splitlines()
    if budget == CONTEXT_BUDGET and language == "zh":
        # Long Chinese recaps: the nearest in full, the oldest chapters as a line per volume.
        assert "- 第1卷《Volume 1》（第1-20章）：" in user
        assert "R1 " not in user
    if budget == 20_000:
        # Everything fits: older recaps condensed to their first sentence, down to chapter 1.
        row = next(line for line in lines if "R1 " in line)
        assert estimate_tokens(row) <= 90, row
        assert row.endswith("R1 阿岚沿着海岸一路向北，数着钟声。" if language == "zh" else "R1 Mara walks north.")
    print(f"\nchapter 150 of 200 ({language}, budget {budget}): {tokens} estimated tokens")


def test_the_chapter_context_budget_is_a_setting() -> None:
    assert Settings.from_env({}).chapter_context_tokens == CONTEXT_BUDGET
    assert Settings.from_env({"NOVAWRITE_CHAPTER_CONTEXT_TOKENS": "12000"}).chapter_context_tokens == 12000


def test_recap_answers_are_json_with_ids() -> None:
    # The fakes read the recap prompt's chapter number; what they answer is this shape.
    data = json.loads(json.dumps({"recap": RECAP_OF.format(n=1), "foreshadowing": [{"id": 1, "change": "Hinted"}]}))
    from novawrite.generators.recap import RecapAnswer

    assert RecapAnswer.model_validate(data).foreshadowing[0].change == "hinted"
