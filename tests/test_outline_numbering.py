"""Outlines from a model that numbers its own way (issue 11), on Gemini and on an OpenAI-compatible server.

The numbers are ours: a model asked for chapters 4-6 may number them 1-3, not at
all or out of order, and the outline is still complete; only an entry actually
missing or empty is asked for again. Every test runs on both providers, the real
google-genai SDK and the real OpenAI-compatible provider against the project's
fake servers, scripted call by call; the requests the fakes received show what
was asked. The generator tests check its result; the engine tests run a task
through the API to completion and read the stored outline, on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from novawrite.generators import outline
from novawrite.generators.base import InvalidModelOutput, RetryPolicy
from novawrite.generators.outline_numbering import place
from novawrite.providers.base import Provider
from novawrite.providers.gemini import GeminiProvider
from novawrite.providers.openai_compat import OpenAICompatProvider
from novawrite.settings import Settings
from tests.conftest import make_api
from tests.engine_kit import wait_for_status
from tests.fakes import FakeGemini, FakeOpenAI, Request, Text
from tests.gen_support import context, make_novel

KEY = "numbering-key"
GEMINI_MODEL = "gemini-numbering"
OPENAI_MODEL = "local-numbering"
FAST = RetryPolicy(base=0.01, cap=0.05)

Entry = tuple[int | None, str]  # (the number the model writes or None for none, the title)


# --- What the model answers --------------------------------------------------------------


def item(number: int | None, title: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"title": title, "summary": f"Summary of {title}." if title else ""}
    if number is not None:
        entry["number"] = number
    return entry


def plan(*volumes: Entry, outline_text: str = "A keeper follows a moving map north.") -> Text:
    return Text(json.dumps({"outline": outline_text, "volumes": [item(n, t) for n, t in volumes]}))


def batch(*chapters: Entry) -> Text:
    return Text(json.dumps({"chapters": [item(n, t) for n, t in chapters]}))


def as_asked(numbers: range | list[int], prefix: str = "C") -> Text:
    return batch(*((n, f"{prefix}{n}") for n in numbers))


# --- What the fakes were asked ------------------------------------------------------------


@dataclass(frozen=True)
class Asked:
    step: str  # "plan" or "chapters"
    numbers: list[int]
    retry: bool
    user: str


_PLAN = (r"the `volumes` list \(volumes ([\d, ]*);", r"volumes 列表（第 ([\d, ]*) 卷")
_CHAPTERS = (r": chapters ([\d, ]+)\. The `chapters` list", r"以下章节的大纲：第 ([\d, ]+) 章")
_RETRY = ("The previous answer left these", "上一次回答缺少")


def _read(user: str) -> Asked:
    for step, patterns in (("plan", _PLAN), ("chapters", _CHAPTERS)):
        match = re.search(patterns[0], user) or re.search(patterns[1], user)
        if match:
            numbers = [int(n) for n in re.findall(r"\d+", match.group(1))]
            return Asked(step, numbers, any(r in user for r in _RETRY), user)
    raise AssertionError(f"not an outline prompt: {user[-400:]!r}")


def gemini_user(request: Request) -> str:
    body = request.json() or {}
    return "".join(p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", []))


def openai_user(request: Request) -> str:
    messages = (request.json() or {}).get("messages") or [{}]
    return str(messages[-1].get("content", ""))


@dataclass
class Model:
    """One provider's fake server, how to reach it, and what it was asked."""

    name: str
    fake: FakeGemini | FakeOpenAI

    def provider(self) -> Provider:
        if isinstance(self.fake, FakeGemini):
            return GeminiProvider(api_key=KEY, model=GEMINI_MODEL, base_url=self.fake.base_url, timeout=10)
        return OpenAICompatProvider(base_url=self.fake.api_base, model=OPENAI_MODEL, api_key=KEY, timeout=10)

    def settings(self, settings: Settings) -> Settings:
        if isinstance(self.fake, FakeGemini):
            return settings.with_(
                provider="gemini",
                gemini_api_key=KEY,
                gemini_base_url=self.fake.base_url,
                gemini_model=GEMINI_MODEL,
                provider_timeout_seconds=10.0,
            )
        return settings.with_(
            provider="openai",
            openai_base_url=self.fake.api_base,
            openai_api_key=KEY,
            openai_model=OPENAI_MODEL,
            provider_timeout_seconds=10.0,
        )

    def asked(self) -> list[Asked]:
        read = gemini_user if isinstance(self.fake, FakeGemini) else openai_user
        return [_read(read(r)) for r in self.fake.model_calls]

    def summary(self) -> list[tuple[str, list[int]]]:
        return [(a.step, a.numbers) for a in self.asked()]


@pytest.fixture(params=["gemini", "openai"])
def model(request: pytest.FixtureRequest) -> Iterator[Model]:
    fake: FakeGemini | FakeOpenAI
    if request.param == "gemini":
        fake = FakeGemini(api_key=KEY, models=[GEMINI_MODEL])
    else:
        fake = FakeOpenAI(api_key=KEY, models=[OPENAI_MODEL])
    with fake:
        fake.default = Text("the script ran out")  # an unscripted call fails loudly as invalid JSON
        yield Model(str(request.param), fake)


@pytest.fixture
async def provider(model: Model) -> AsyncIterator[Provider]:
    provider = model.provider()
    yield provider
    await provider.aclose()


async def generate(provider: Provider, volumes: int, per_volume: int, language: str = "en") -> outline.OutlineResult:
    params = outline.OutlineParams(novel_id=1, volumes=volumes, chapters_per_volume=per_volume)
    ctx, _ = context(make_novel(language), params, provider, retry=FAST)
    return await outline.generate(ctx)


def shape(result: outline.OutlineResult) -> list[tuple[int, str, list[tuple[int, str]]]]:
    return [(v.number, v.title, [(c.number, c.title) for c in v.chapters]) for v in result.volumes]


TWO_BY_THREE = [(1, "V1", [(1, "C1"), (2, "C2"), (3, "C3")]), (2, "V2", [(4, "C4"), (5, "C5"), (6, "C6")])]


# --- Chapters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param([(1, "C4"), (2, "C5"), (3, "C6")], id="within-the-volume"),
        pytest.param([(None, "C4"), (None, "C5"), (None, "C6")], id="no-numbers"),
        pytest.param([(6, "C6"), (4, "C4"), (5, "C5")], id="out-of-order"),
        pytest.param([(3, "C6"), (1, "C4"), (2, "C5")], id="within-the-volume-out-of-order"),
        pytest.param([(4, "C4"), (4, "C5"), (4, "C6")], id="one-number-repeated"),
        pytest.param([(0, "C4"), (1, "C5"), (2, "C6")], id="from-zero"),
    ],
)
async def test_chapters_4_to_6_numbered_the_models_way_fill_volume_2(
    model: Model, provider: Provider, entries: list[Entry]
) -> None:
    # Numbers that read consistently say which chapter each entry is; otherwise the list's order does.
    model.fake.push(plan((1, "V1"), (2, "V2")), as_asked(range(1, 4)), batch(*entries))

    result = await generate(provider, volumes=2, per_volume=3)

    assert shape(result) == TWO_BY_THREE
    assert model.summary() == [("plan", [1, 2]), ("chapters", [1, 2, 3]), ("chapters", [4, 5, 6])]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param([21, 22, 23], ["C44", "C45", "C46"], id="within-the-volume"),
        pytest.param([1, 2, 3], ["C44", "C45", "C46"], id="within-the-batch"),
        pytest.param([46, 44, 45], ["C45", "C46", "C44"], id="out-of-order"),
    ],
)
async def test_the_second_batch_of_a_long_volume_numbered_the_models_way(
    model: Model, provider: Provider, written: list[int], expected: list[str]
) -> None:
    # Volume 2 of 23-chapter volumes holds chapters 24-46, asked in batches 24-43 and 44-46.
    model.fake.push(
        plan((1, "V1"), (2, "V2")),
        as_asked(range(1, 21)),
        as_asked(range(21, 24)),
        batch(*((n, f"C{n + 23}") for n in range(1, 21))),  # 24-43 numbered within the volume
        batch(*zip(written, ["C44", "C45", "C46"], strict=True)),
    )

    result = await generate(provider, volumes=2, per_volume=23)

    second = result.volumes[1].chapters
    assert [c.number for c in second] == list(range(24, 47))
    assert [c.title for c in second[:20]] == [f"C{n}" for n in range(24, 44)]
    assert [c.title for c in second[20:]] == expected
    assert [a.numbers for a in model.asked()][3:] == [list(range(24, 44)), [44, 45, 46]]
    assert not any(a.retry for a in model.asked())


@pytest.mark.parametrize(
    ("language", "again"),
    [
        pytest.param("en", [(1, "C5")], id="en-numbered-within-the-list"),
        pytest.param("zh", [(2, "C5")], id="zh-numbered-within-the-volume"),
        pytest.param("en", [(None, "C5")], id="en-unnumbered"),
        pytest.param("en", [(4, "Other"), (5, "C5"), (6, "Other")], id="en-the-whole-batch-again"),
    ],
)
async def test_one_empty_title_asks_again_for_that_chapter_only(
    model: Model, provider: Provider, language: str, again: list[Entry]
) -> None:
    model.fake.push(
        plan((1, "V1"), (2, "V2")),
        as_asked(range(1, 4)),
        batch((1, "C4"), (2, ""), (3, "C6")),  # numbered within the volume, the second title empty
        batch(*again),
    )

    result = await generate(provider, volumes=2, per_volume=3, language=language)

    assert shape(result) == TWO_BY_THREE
    asked = model.asked()
    assert [(a.step, a.numbers) for a in asked] == [
        ("plan", [1, 2]),
        ("chapters", [1, 2, 3]),
        ("chapters", [4, 5, 6]),
        ("chapters", [5]),
    ]
    assert [a.retry for a in asked] == [False, False, False, True]
    # The re-ask shows the chapters on both sides of the gap, to fit between them.
    assert "C4" in asked[3].user and "C6" in asked[3].user


async def test_a_short_answer_without_numbers_fills_the_first_and_asks_for_the_rest(
    model: Model, provider: Provider
) -> None:
    model.fake.push(
        plan((1, "V1"), (2, "V2")),
        as_asked(range(1, 4)),
        batch((None, "C4"), (None, "C5")),
        batch((None, "C6")),
    )

    result = await generate(provider, volumes=2, per_volume=3)

    assert shape(result) == TWO_BY_THREE
    assert model.summary()[2:] == [("chapters", [4, 5, 6]), ("chapters", [6])]


async def test_a_chapter_left_empty_by_every_re_ask_fails_as_invalid_model_output(
    model: Model, provider: Provider
) -> None:
    model.fake.push(
        plan((1, "V1"), (2, "V2")),
        as_asked(range(1, 4)),
        batch((4, "C4"), (5, "   "), (6, "C6")),
        *[batch((5, "略"))] * outline.MAX_FILL_ROUNDS,
    )

    with pytest.raises(InvalidModelOutput, match=r"\[5\]"):
        await generate(provider, volumes=2, per_volume=3)

    assert model.summary()[2:] == [("chapters", [4, 5, 6])] + [("chapters", [5])] * outline.MAX_FILL_ROUNDS


# --- Volumes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "volumes",
    [
        pytest.param([(3, "V3"), (1, "V1"), (2, "V2")], id="out-of-order"),
        pytest.param([(None, "V1"), (None, "V2"), (None, "V3")], id="no-numbers"),
        pytest.param([(0, "V1"), (1, "V2"), (2, "V3")], id="from-zero"),
        pytest.param([(1, "V1"), (1, "V2"), (1, "V3")], id="one-number-repeated"),
    ],
)
async def test_volumes_numbered_the_models_way_fill_the_plan(
    model: Model, provider: Provider, volumes: list[Entry]
) -> None:
    model.fake.push(plan(*volumes), as_asked([1]), as_asked([2]), as_asked([3]))

    result = await generate(provider, volumes=3, per_volume=1)

    assert shape(result) == [(n, f"V{n}", [(n, f"C{n}")]) for n in (1, 2, 3)]
    assert model.summary() == [("plan", [1, 2, 3]), ("chapters", [1]), ("chapters", [2]), ("chapters", [3])]


async def test_one_empty_volume_title_asks_again_for_that_volume_only(model: Model, provider: Provider) -> None:
    model.fake.push(
        plan((1, "V1"), (2, ""), (3, "V3"), outline_text="The settled overall outline."),
        plan((1, "V2"), outline_text="Another overall outline."),  # numbered within what was asked again
        as_asked([1]),
        as_asked([2]),
        as_asked([3]),
    )

    result = await generate(provider, volumes=3, per_volume=1)

    assert shape(result) == [(n, f"V{n}", [(n, f"C{n}")]) for n in (1, 2, 3)]
    assert result.outline == "The settled overall outline."
    asked = model.asked()
    assert [(a.step, a.numbers, a.retry) for a in asked[:2]] == [("plan", [1, 2, 3], False), ("plan", [2], True)]
    # The re-ask carries the overall outline and the volumes around the gap.
    assert "The settled overall outline." in asked[1].user
    assert "Volume 1, V1:" in asked[1].user and "Volume 3, V3:" in asked[1].user


# --- The reading rule itself ---------------------------------------------------------------


BATCH = [14, 15, 16]  # volume 2 of 10-chapter volumes: 11-20


@pytest.mark.parametrize(
    ("asked", "hints", "expected"),
    [
        pytest.param(BATCH, [14, 15, 16], [14, 15, 16], id="as-asked"),
        pytest.param(BATCH, [4, 5, 6], [14, 15, 16], id="within-the-volume"),
        pytest.param(BATCH, [1, 2, 3], [14, 15, 16], id="within-the-list"),
        pytest.param(BATCH, [16, 14, 15], [16, 14, 15], id="out-of-order"),
        pytest.param(BATCH, [14, None, 16], [14, 15, 16], id="one-without-a-number"),
        pytest.param(BATCH, [14, 14, 15], [14, 15, 16], id="repeated"),
        pytest.param(BATCH, [14, 15, 99], [14, 15, 16], id="the-asked-count-with-a-stray-number"),
        pytest.param(BATCH, [16, 14], [16, 14], id="short-keeps-its-numbers"),
        pytest.param(BATCH, [None, None], [14, 15], id="short-without-numbers-fills-the-first"),
        pytest.param(BATCH, [14, 15, 16, 17], [14, 15, 16, None], id="one-too-many"),
        pytest.param([15], [1], [15], id="re-ask-numbered-within-the-list"),
        pytest.param([15], [5], [15], id="re-ask-numbered-within-the-volume"),
        pytest.param([15], [14], [15], id="re-ask-the-asked-count-with-a-settled-number"),
        pytest.param([15], [14, 15, 16], [None, 15, None], id="re-ask-answered-with-the-whole-batch"),
        pytest.param([15], [4, 5, 6], [None, 15, None], id="re-ask-answered-with-the-whole-batch-its-way"),
        pytest.param([15], [None, None, None], [None, 15, None], id="re-ask-answered-with-the-whole-batch-unnumbered"),
        pytest.param([15, 16], [14, 16, 15], [None, 16, 15], id="re-ask-answered-with-the-whole-batch-reordered"),
        pytest.param([], [1, 2], [None, None], id="nothing-asked"),
    ],
)
def test_place(asked: list[int], hints: list[int | None], expected: list[int | None]) -> None:
    assert place(asked, hints, scope=BATCH, volume_start=11) == expected


# --- Through the engine, stored in the database --------------------------------------------


async def _run_outline(model: Model, settings: Settings, **body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    async for api in make_api(model.settings(settings), retry=FAST):
        assert api.services.provider.name == model.name
        headers = await api.register()
        novel = await api.novel(
            headers, title="The Lantern Keeper", genre="Fantasy", language="en", synopsis="A map whose ink moves."
        )
        r = await api.client.post("/api/ai/generate-outline", json={"novel_id": novel["id"], **body}, headers=headers)
        assert r.status_code == 202, r.text
        task = await wait_for_status(api, headers, r.json()["id"], {"completed", "failed", "cancelled"}, timeout=30)
        r = await api.client.get(f"/api/novels/{novel['id']}", headers=headers)
        assert r.status_code == 200, r.text
        return task, dict(r.json())
    raise AssertionError("the app did not start")


async def test_a_model_numbering_its_own_way_gives_a_complete_stored_outline(model: Model, settings: Settings) -> None:
    model.fake.push(
        plan((2, "The Ice"), (1, "")),  # out of order, volume 1's title empty
        plan((None, "The Harbour")),  # volume 1 again, without a number
        batch((None, "Lamp"), (None, "Map"), (None, "Sail")),  # chapters 1-3 without numbers
        batch((3, "Storm"), (1, "Thaw"), (2, "  ")),  # chapters 4-6 numbered 1-3, out of order, one title empty
        batch((2, "Fog")),  # chapter 5 again, numbered within its volume
    )

    task, novel = await _run_outline(model, settings, volumes=2, chapters_per_volume=3)

    assert task["status"] == "completed", task
    stored = [(v["number"], v["title"], [(c["number"], c["title"]) for c in v["chapters"]]) for v in novel["volumes"]]
    assert stored == [
        (1, "The Harbour", [(1, "Lamp"), (2, "Map"), (3, "Sail")]),
        (2, "The Ice", [(4, "Thaw"), (5, "Fog"), (6, "Storm")]),
    ]
    assert all(c["summary"] == f"Summary of {c['title']}." for v in novel["volumes"] for c in v["chapters"])
    result = [(v["number"], [c["number"] for c in v["chapters"]]) for v in task["result"]["volumes"]]
    assert result == [(1, [1, 2, 3]), (2, [4, 5, 6])]
    assert model.summary() == [
        ("plan", [1, 2]),
        ("plan", [1]),
        ("chapters", [1, 2, 3]),
        ("chapters", [4, 5, 6]),
        ("chapters", [5]),
    ]


async def test_an_empty_chapter_that_stays_empty_fails_the_task_and_stores_nothing(
    model: Model, settings: Settings
) -> None:
    model.fake.push(
        plan((1, "V1")),
        batch((1, "C1"), (2, "")),
        *[batch((None, ""))] * outline.MAX_FILL_ROUNDS,
    )

    task, novel = await _run_outline(model, settings, volumes=1, chapters_per_volume=2)

    assert task["status"] == "failed", task
    assert task["error"]["code"] == "invalid_model_output"
    assert "[2]" in task["error"]["message"]
    assert novel["volumes"] == [] and novel["outline"] in (None, "")
    assert model.summary() == [("plan", [1]), ("chapters", [1, 2])] + [("chapters", [2])] * outline.MAX_FILL_ROUNDS
