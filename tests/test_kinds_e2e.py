"""Every generation route of API.md, end to end through the HTTP API, on every provider.

The app runs in-process (httpx's ASGITransport) and builds its provider from the
settings, exactly as in production: the demo provider, Gemini through the real
google-genai SDK pointed at the project's fake Gemini server, and the
OpenAI-compatible provider pointed at the fake OpenAI server. The fakes answer
each request with JSON that fits the schema the request carries (or with a
streamed chapter), so a test only scripts the faults it is about.

Each test runs on SQLite and on PostgreSQL (the ``settings`` fixture).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from novawrite.db.models import Task, TaskEvent
from novawrite.generators import characters, foreshadowings, outline, timeline_events, world_settings
from novawrite.generators.base import RetryPolicy
from novawrite.settings import Settings
from tests.conftest import Api, make_api
from tests.engine_kit import wait_for_status
from tests.fakes import Fail, FakeGemini, FakeOpenAI, Hang, Request, Stream, Text
from tests.fakes.http_server import Response
from tests.fakes.script import ScriptedServer
from tests.waiting import until

GEMINI_KEY = "e2e-gemini-key"
GEMINI_MODEL = "gemini-e2e-flash"
OPENAI_MODEL = "local-e2e-model"
FAST = RetryPolicy(base=0.01, cap=0.05)

# Usage every default answer reports, so a task's usage is calls x this.
JSON_USAGE = (13, 17)
STREAM_USAGE = (19, 40)

FINISHED = {"completed", "failed", "cancelled"}


# --- A fake model that answers every kind ------------------------------------------------


def _numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


# What the fake reads in a prompt, in English and in Chinese (generators/*.py word them so).
PLAN_VOLUMES = (r"the `volumes` list \(volumes ([\d, ]+);", r"volumes 列表（第 ([\d, ]+) 卷")
BATCH_CHAPTERS = (r": chapters ([\d, ]+)\. The `chapters` list", r"以下章节的大纲：第 ([\d, ]+) 章")
COUNTS = {
    "characters": (r"Create (\d+) new characters", r"新设计 (\d+) 个人物"),
    "world_settings": (r"Add (\d+) new world settings", r"新增 (\d+) 条世界设定"),
    "timeline_events": (r"timeline with (\d+) events", r"续写 (\d+) 个时间线事件"),
    "foreshadowings": (r"Design (\d+) new pieces of foreshadowing", r"设计 (\d+) 条新伏笔"),
}
RECAP_CHAPTER = (r"\[The text of chapter (\d+),", r"【第(\d+)章《")


class Answers:
    """Builds a valid answer for each request from its schema and its prompt (English or Chinese).

    Like a careless model, it proposes one name the prompt said not to reuse (in
    another case, padded with spaces) before its fresh ones, so that the app's
    de-duplication is exercised on every list call.
    """

    PIECES = ("Mara lit the lamp. ", "The sea was black and loud. ", "Someone knocked below. ", "She went down.")
    MORE = ("The door stood open. ", "Nobody was there.")

    def __init__(self) -> None:
        self.serial = 0  # fresh names across the whole session: never the same twice
        self.takes = 0  # chapter streams, so two writings of a chapter differ
        self.rounds = 0  # outline plans, so a regenerated outline has new titles

    def reset(self) -> None:
        # Names stay unique for the whole session; only the per-test counters restart.
        self.takes = 0
        self.rounds = 0

    def _fresh(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix} {self.serial}"

    @staticmethod
    def _avoid(user: str) -> list[str]:
        if match := re.search(r"Do not reuse any of these existing names: (.+)", user):
            return [n.strip() for n in match.group(1).split(", ")]
        if match := re.search(r"不得重复以下已有名称：(.+)", user):
            return [n.strip() for n in match.group(1).split("、")]
        return []

    @staticmethod
    def _find(patterns: tuple[str, str], user: str) -> str:
        """The first group of the English or the Chinese pattern, whichever the prompt holds."""
        match = re.search(patterns[0], user) or re.search(patterns[1], user)
        assert match, f"the fake cannot read {patterns} in the prompt: {user[-600:]!r}"
        return match.group(1)

    def chapter_text(self, take: int, continuation: bool) -> list[str]:
        if continuation:
            return list(self.MORE)
        return [f"[take {take}] {self.PIECES[0]}", *self.PIECES[1:]]

    def step(self, user: str, schema: dict[str, Any] | None, streaming: bool) -> Text | Stream:
        if schema is None or streaming:
            continuation = "was cut off here" in user or "本章已写出的部分到此中断" in user
            if not continuation:
                self.takes += 1
            return Stream(
                self.chapter_text(self.takes, continuation),
                prompt_tokens=STREAM_USAGE[0],
                output_tokens=STREAM_USAGE[1],
            )
        data = self._json(user, set(schema.get("properties", {})))
        return Text(json.dumps(data), prompt_tokens=JSON_USAGE[0], output_tokens=JSON_USAGE[1])

    def _json(self, user: str, fields: set[str]) -> dict[str, Any]:
        avoid = self._avoid(user)
        dup = [f"  {avoid[0].upper()} "] if avoid else []
        if fields == {"outline", "volumes"}:
            self.rounds += 1
            numbers = _numbers(self._find(PLAN_VOLUMES, user))
            return {
                "outline": f"Round {self.rounds}: a keeper follows a moving map north.",
                "volumes": [
                    {"number": n, "title": f"Book {n} r{self.rounds}", "summary": f"Volume {n} raises the stakes."}
                    for n in numbers
                ],
            }
        if fields == {"chapters"}:
            numbers = _numbers(self._find(BATCH_CHAPTERS, user))
            return {
                "chapters": [
                    {
                        "number": n,
                        "title": f"Harbour {n} r{self.rounds}",
                        "summary": f"In chapter {n} Mara follows the map further.",
                    }
                    for n in numbers
                ]
            }
        if "characters" in fields:
            count = int(self._find(COUNTS["characters"], user))
            names = dup + [self._fresh("Person") for _ in range(count)]
            return {
                "characters": [
                    {
                        "name": n,
                        "role": "ally",
                        "description": f"{n.strip()} keeps the light.",
                        "traits": ["brave", "dry"],
                        "arc": "learns to trust",
                        "relationships": "none yet",
                    }
                    for n in names
                ]
            }
        if "world_settings" in fields:
            count = int(self._find(COUNTS["world_settings"], user))
            names = dup + [self._fresh("Place") for _ in range(count)]
            return {
                "world_settings": [
                    {"name": n, "category": "Location", "description": f"{n.strip()} is cold."} for n in names
                ]
            }
        if "timeline_events" in fields:
            count = int(self._find(COUNTS["timeline_events"], user))
            titles = dup + [self._fresh("Event") for _ in range(count)]
            return {
                "timeline_events": [
                    {
                        "position": 50 + i,
                        "time_label": f"Day {i}",
                        "title": t,
                        "description": f"{t.strip()} happens.",
                        "chapter_number": 1,
                    }
                    for i, t in enumerate(titles)
                ]
            }
        if "foreshadowings" in fields:
            count = int(self._find(COUNTS["foreshadowings"], user))
            titles = dup + [self._fresh("Clue") for _ in range(count)]
            return {
                "foreshadowings": [
                    {
                        "title": t,
                        "description": f"{t.strip()} is planted.",
                        "planted_chapter": 1,
                        "payoff_chapter": 2,
                        "status": "Planted",
                    }
                    for t in titles
                ]
            }
        if fields == {"recap", "foreshadowing"}:
            number = self._find(RECAP_CHAPTER, user)
            return {"recap": f"Recap of chapter {number}: Mara reads the map by lamplight.", "foreshadowing": []}
        raise AssertionError(f"the fake does not know a schema with fields {sorted(fields)}")


@dataclass(frozen=True)
class Answer:
    """A script step meaning "answer this call correctly", to script a fault after some good calls."""


@dataclass(frozen=True)
class Call:
    """One model call as a fake saw it."""

    at: float
    user: str
    schema: dict[str, Any] | None
    streaming: bool


class Answering:
    """Mixed into a fake: records each call's time and answers by default from ``Answers``."""

    answers: Answers
    calls: list[Call]
    default: Any

    def _setup(self) -> None:
        self.answers = Answers()
        self.calls = []
        self._calls_lock = threading.Lock()

    def reset(self) -> None:
        """Forget the script and the calls of earlier tests (the server is shared)."""
        while self._pop_scripted():
            pass
        with self._calls_lock:
            self.calls = []
        self.answers.reset()

    def _pop_scripted(self) -> bool:
        before = self.default
        sentinel = Text("__sentinel__")
        self.default = sentinel
        step = ScriptedServer.next_step(self)  # type: ignore[arg-type]
        self.default = before
        return step is not sentinel

    def next_step(self) -> Any:
        step = ScriptedServer.next_step(self)  # type: ignore[arg-type]
        return self.default if isinstance(step, Answer) else step

    def answer(self, request: Request, user: str, schema: dict[str, Any] | None, streaming: bool) -> Response:
        with self._calls_lock:
            self.calls.append(Call(time.monotonic(), user, schema, streaming))
        # Scripted steps come first; when there are none the fake answers the request itself.
        self.default = self.answers.step(user, schema, streaming)
        return super().respond_model(request)  # type: ignore[misc]

    def calls_snapshot(self) -> list[Call]:
        with self._calls_lock:
            return list(self.calls)


class AnsweringGemini(Answering, FakeGemini):
    def __init__(self) -> None:
        FakeGemini.__init__(self, api_key=GEMINI_KEY, models=[GEMINI_MODEL])
        self._setup()

    def respond_model(self, request: Request) -> Response:
        body = request.json() or {}
        user = "".join(p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", []))
        schema = (body.get("generationConfig") or {}).get("responseJsonSchema")
        return self.answer(request, user, schema, request.path.endswith(":streamGenerateContent"))


class AnsweringOpenAI(Answering, FakeOpenAI):
    def __init__(self) -> None:
        FakeOpenAI.__init__(self, models=[OPENAI_MODEL])
        self._setup()

    def respond_model(self, request: Request) -> Response:
        body = request.json() or {}
        messages = body.get("messages") or [{}]
        user = str(messages[-1].get("content", ""))
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
        return self.answer(request, user, schema, bool(body.get("stream")))


# --- Fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gemini_server() -> Iterator[AnsweringGemini]:
    server = AnsweringGemini()
    with server:
        yield server


@pytest.fixture(scope="module")
def openai_server() -> Iterator[AnsweringOpenAI]:
    server = AnsweringOpenAI()
    with server:
        yield server


Fake = AnsweringGemini | AnsweringOpenAI


@dataclass
class Env:
    api: Api
    headers: dict[str, str]
    fake: Fake | None
    novel_id: int
    language: str

    # --- requests ----------------------------------------------------------------------

    async def submit(self, route: str, **body: Any) -> dict[str, Any]:
        r = await self.api.client.post(route, json={"novel_id": self.novel_id, **body}, headers=self.headers)
        assert r.status_code == 202, r.text
        task = dict(r.json())
        assert r.headers["location"] == f"/api/tasks/{task['id']}"
        return task

    async def finish(self, task: dict[str, Any], timeout: float = 20) -> dict[str, Any]:
        return await wait_for_status(self.api, self.headers, task["id"], FINISHED, timeout=timeout)

    async def run(self, route: str, timeout: float = 20, **body: Any) -> dict[str, Any]:
        task = await self.finish(await self.submit(route, **body), timeout=timeout)
        assert task["status"] == "completed", task
        assert task["progress"] == 100 and task["result"] is not None and task["error"] is None
        events = await self.events(task["id"])
        progress = [data["progress"] for _, data in events]
        assert progress == sorted(progress), f"progress went down: {progress}"
        assert events[-1][0] == "completed" and [k for k, _ in events].count("completed") == 1
        return task

    async def task(self, task_id: str) -> dict[str, Any]:
        r = await self.api.client.get(f"/api/tasks/{task_id}", headers=self.headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def novel(self) -> dict[str, Any]:
        r = await self.api.client.get(f"/api/novels/{self.novel_id}", headers=self.headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def chapter(self, chapter_id: int) -> dict[str, Any]:
        r = await self.api.client.get(f"/api/novels/{self.novel_id}/chapters/{chapter_id}", headers=self.headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def output(self, task_id: str) -> dict[str, Any]:
        r = await self.api.client.get(f"/api/tasks/{task_id}/output", headers=self.headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def chapter_ids(self) -> list[int]:
        return [c["id"] for v in (await self.novel())["volumes"] for c in v["chapters"]]

    async def events(self, task_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The task's stored events (kind, data), in seq order, straight from task_events."""
        async with self.api.services.db.read_session() as session:
            rows = await session.execute(
                select(TaskEvent.seq, TaskEvent.kind, TaskEvent.data)
                .join(Task, Task.pk == TaskEvent.task_pk)
                .where(Task.id == task_id)
                .order_by(TaskEvent.seq)
            )
            events = [(r.seq, r.kind, json.loads(r.data)) for r in rows]
        assert [seq for seq, _, _ in events] == list(range(1, len(events) + 1)), "event seqs have gaps"
        return [(kind, data) for _, kind, data in events]

    async def chunk_text(self, task_id: str) -> str:
        return "".join(data["text"] for kind, data in await self.events(task_id) if kind == "chunk")

    def calls(self) -> list[Call]:
        assert self.fake is not None
        return self.fake.calls_snapshot()


def provider_settings(settings: Settings, name: str, fake: Fake | None) -> Settings:
    if name == "gemini":
        assert fake is not None
        return settings.with_(
            provider="gemini",
            gemini_api_key=GEMINI_KEY,
            gemini_base_url=fake.base_url,
            gemini_model=GEMINI_MODEL,
            provider_timeout_seconds=10.0,
        )
    if name == "openai":
        assert isinstance(fake, FakeOpenAI)
        return settings.with_(
            provider="openai", openai_base_url=fake.api_base, openai_model=OPENAI_MODEL, provider_timeout_seconds=10.0
        )
    return settings.with_(provider="demo", demo_delay_ms=0)


@pytest.fixture
async def env(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Env]:
    """The app on ``request.param`` (demo, gemini or openai), a user and a novel (English unless "-zh")."""
    name, _, language = str(request.param).partition("-")
    language = language or "en"
    fake: Fake | None = None
    if name in ("gemini", "openai"):
        fake = request.getfixturevalue(f"{name}_server")
        fake.reset()
    async for api in make_api(provider_settings(settings, name, fake), retry=FAST):
        assert api.services.provider.name == name  # built by the app from the settings
        headers = await api.register()
        if language == "zh":
            novel = await api.novel(
                headers,
                title="灯塔守望者",
                genre="奇幻",
                language="zh",
                synopsis="守塔人阿岚发现一张墨迹会移动的地图，循着它一路向北。",
            )
        else:
            novel = await api.novel(
                headers,
                title="The Lantern Keeper",
                genre="Fantasy",
                language="en",
                synopsis="A lighthouse keeper finds a map whose ink moves, and follows it north.",
            )
        yield Env(api, headers, fake, int(novel["id"]), language)


ALL = pytest.mark.parametrize("env", ["demo", "gemini", "openai", "gemini-zh"], indirect=True)
MODELS = pytest.mark.parametrize("env", ["gemini", "openai"], indirect=True)
GEMINI = pytest.mark.parametrize("env", ["gemini"], indirect=True)
DEMO = pytest.mark.parametrize("env", ["demo"], indirect=True)


def key(name: str) -> str:
    return " ".join(name.split()).casefold()


def usage_of(calls: int, per_call: tuple[int, int]) -> dict[str, int]:
    return {"prompt_tokens": calls * per_call[0], "output_tokens": calls * per_call[1]}


# --- Every kind, on every provider -------------------------------------------------------


@ALL
async def test_every_kind_end_to_end(env: Env) -> None:
    fake = env.fake
    base = 0

    def new_calls() -> list[Call]:
        nonlocal base
        calls = env.calls()
        fresh, base = calls[base:], len(calls)
        return fresh

    def check_usage(task: dict[str, Any], calls: list[Call], per_call: tuple[int, int]) -> None:
        if fake is None:  # the demo's estimate: present, never negative
            assert task["usage"] is not None and min(task["usage"].values()) >= 0
        else:
            assert task["usage"] == usage_of(len(calls), per_call)

    # Outline: a plan, then one batch per volume; every chapter present.
    task = await env.run("/api/ai/generate-outline", volumes=2, chapters_per_volume=2)
    assert task["task_type"] == "generate_outline"
    novel = await env.novel()
    assert novel["outline"]
    assert [v["number"] for v in novel["volumes"]] == [1, 2]
    assert [[c["number"] for c in v["chapters"]] for v in novel["volumes"]] == [[1, 2], [3, 4]]
    assert all(c["title"] and c["summary"] for v in novel["volumes"] for c in v["chapters"])
    assert [len(v["chapters"]) for v in task["result"]["volumes"]] == [2, 2]
    if fake is not None:
        calls = new_calls()
        assert [c.schema for c in calls] == [outline.OutlinePlan.model_json_schema()] + [
            outline.ChapterBatch.model_json_schema()
        ] * 2
        assert novel["volumes"][1]["chapters"][0]["title"] == "Harbour 3 r1"
        check_usage(task, calls, JSON_USAGE)

    # Characters, twice: the second run never repeats a name of the first.
    first = await env.run("/api/ai/generate-characters", count=3)
    second = await env.run("/api/ai/generate-characters", count=2)
    names = [c["name"] for c in (await env.novel())["characters"]]
    assert len(names) == 5
    assert len({key(n) for n in names}) == 5, names
    assert {key(c["name"]) for c in second["result"]["characters"]}.isdisjoint(
        key(c["name"]) for c in first["result"]["characters"]
    )
    if fake is not None:
        calls = new_calls()
        assert [c.schema for c in calls] == [characters.CharactersResult.model_json_schema()] * 2
        # The second prompt told the model the names to avoid; the fake repeated one anyway.
        assert all(n in calls[1].user for n in names[:3])
        check_usage(second, calls[1:], JSON_USAGE)

    # World settings: categories are stored in lower case.
    task = await env.run("/api/ai/generate-world-settings", count=2)
    settings_ = (await env.novel())["world_settings"]
    assert len(settings_) == 2 and all(w["name"] and w["description"] for w in settings_)
    assert all(w["category"] == w["category"].lower() for w in settings_)
    if fake is not None:
        calls = new_calls()
        assert [c.schema for c in calls] == [world_settings.WorldSettingsResult.model_json_schema()]
        assert {w["category"] for w in settings_} == {"location"}
        check_usage(task, calls, JSON_USAGE)

    # Timeline events: positions continue 1, 2, 3 whatever the model numbered.
    task = await env.run("/api/ai/generate-timeline-events", count=3)
    events = (await env.novel())["timeline_events"]
    assert [e["position"] for e in events] == [1, 2, 3]
    assert all(e["title"] and e["time_label"] for e in events)
    if fake is not None:
        calls = new_calls()
        assert [c.schema for c in calls] == [timeline_events.TimelineEventsResult.model_json_schema()]
        check_usage(task, calls, JSON_USAGE)

    # Foreshadowing: planted, with its chapters.
    task = await env.run("/api/ai/generate-foreshadowings", count=2)
    clues = (await env.novel())["foreshadowings"]
    assert len(clues) == 2 and {c["status"] for c in clues} == {"planted"}
    if fake is not None:
        calls = new_calls()
        assert [c.schema for c in calls] == [foreshadowings.ForeshadowingsResult.model_json_schema()]
        check_usage(task, calls, JSON_USAGE)

    # Chapter content: streamed chunks == /output == the chapter's saved text.
    chapter_id = (await env.chapter_ids())[0]
    task = await env.run("/api/ai/write-chapter-content", chapter_id=chapter_id, target_words=100)
    assert task["task_type"] == "write_chapter_content"
    saved = await env.chapter(chapter_id)
    out = await env.output(task["id"])
    assert out["complete"] is True
    assert saved["content"] and saved["word_count"] > 0
    assert await env.chunk_text(task["id"]) == out["text"] == saved["content"] == task["result"]["content"]
    assert (await env.novel())["volumes"][0]["chapters"][0]["has_content"] is True
    first_text = saved["content"]
    if fake is not None:
        calls = new_calls()
        # The text, streamed; then its recap, a JSON call (generators/recap.py).
        assert [(c.streaming, c.schema is None) for c in calls] == [(True, True), (False, False)]
        assert first_text == "".join(fake.answers.chapter_text(1, continuation=False))
        assert task["usage"] == {
            "prompt_tokens": STREAM_USAGE[0] + JSON_USAGE[0],
            "output_tokens": STREAM_USAGE[1] + JSON_USAGE[1],
        }
        assert saved["recap"] == "Recap of chapter 1: Mara reads the map by lamplight."

    # A chapter with text is not overwritten unless asked; the replaced text is a revision.
    r = await env.api.client.post(
        "/api/ai/write-chapter-content", headers=env.headers, json={"novel_id": env.novel_id, "chapter_id": chapter_id}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "chapter_has_content", r.text
    task = await env.run("/api/ai/write-chapter-content", chapter_id=chapter_id, target_words=100, overwrite=True)
    saved = await env.chapter(chapter_id)
    assert saved["content"] == (await env.output(task["id"]))["text"] == await env.chunk_text(task["id"])
    r = await env.api.client.get(f"/api/novels/{env.novel_id}/chapters/{chapter_id}/revisions", headers=env.headers)
    assert r.status_code == 200, r.text
    revisions = r.json()["items"]
    assert [rev["content"] for rev in revisions] == [first_text]
    r = await env.api.client.get(
        f"/api/novels/{env.novel_id}/tasks?chapter_id={chapter_id}&limit=1", headers=env.headers
    )
    assert [t["id"] for t in r.json()["items"]] == [task["id"]]  # the chapter's newest task, of two
    r = await env.api.client.get(f"/api/novels/{env.novel_id}/tasks?chapter_id=0", headers=env.headers)
    assert all(t["task_type"] != "write_chapter_content" for t in r.json()["items"])
    if fake is not None:
        new_calls()
        assert saved["content"] != first_text  # a second take

    # Regenerating the outline keeps every chapter's text.
    await env.run("/api/ai/generate-outline", volumes=2, chapters_per_volume=2)
    again = await env.chapter(chapter_id)
    assert again["content"] == saved["content"] and again["word_count"] == saved["word_count"]
    novel = await env.novel()
    assert [[c["number"] for c in v["chapters"]] for v in novel["volumes"]] == [[1, 2], [3, 4]]
    assert novel["volumes"][0]["chapters"][0]["id"] == chapter_id
    if fake is not None:
        assert novel["volumes"][0]["chapters"][0]["title"] == "Harbour 1 r2"  # the new plan's title
        # The new outline's prompts knew about the written chapter.
        written = "已写成的章节" if env.language == "zh" else "Chapters already written"
        assert all(written in c.user for c in new_calls())


@pytest.mark.parametrize("env", ["demo", "gemini"], indirect=True)
async def test_a_200_chapter_outline_arrives_complete(env: Env) -> None:
    task = await env.run("/api/ai/generate-outline", timeout=60, volumes=10, chapters_per_volume=20)
    if env.fake is not None:
        calls = env.calls()
        assert len(calls) == 11  # the plan, then one batch of 20 per volume
        assert task["usage"] == usage_of(11, JSON_USAGE)
    novel = await env.novel()
    assert [v["number"] for v in novel["volumes"]] == list(range(1, 11))
    numbers = [c["number"] for v in novel["volumes"] for c in v["chapters"]]
    assert numbers == list(range(1, 201))
    for v in novel["volumes"]:
        assert [c["number"] for c in v["chapters"]] == list(range((v["number"] - 1) * 20 + 1, v["number"] * 20 + 1))
        assert v["title"].strip() and v["summary"].strip()
        for c in v["chapters"]:
            assert c["title"].strip() and c["summary"].strip() and not outline.is_placeholder(c["summary"])
    result_numbers = [c["number"] for v in task["result"]["volumes"] for c in v["chapters"]]
    assert result_numbers == list(range(1, 201))
    # Progress came per batch: a plan step and ten volume batches, never going down.
    progress = [data["progress"] for kind, data in await env.events(task["id"]) if kind == "progress"]
    assert len(progress) >= 11 and progress == sorted(progress)


# --- Faults through the API ---------------------------------------------------------------


@MODELS
async def test_503_then_success_completes_after_two_calls(env: Env) -> None:
    assert env.fake is not None
    env.fake.push(Fail(503, "overloaded"))
    task = await env.run("/api/ai/generate-characters", count=2)
    assert len(env.calls()) == 2
    assert len((await env.novel())["characters"]) == 2
    assert task["usage"] == usage_of(1, JSON_USAGE)  # the failed call cost nothing


@pytest.mark.parametrize(
    ("env", "fail"),
    [
        ("gemini", Fail(429, "quota", headers={"Retry-After": "1"})),
        ("gemini-zh", Fail(429, "quota", retry_delay="1s")),
        ("openai", Fail(429, "quota", headers={"Retry-After": "1"})),
    ],
    indirect=["env"],
    ids=["gemini-retry-after", "gemini-zh-retry-info", "openai-retry-after"],
)
async def test_429_waits_as_long_as_the_server_says(env: Env, fail: Fail) -> None:
    assert env.fake is not None
    env.fake.push(fail)
    task = await env.submit("/api/ai/generate-world-settings", count=1)
    expected = "模型限流，1 秒后重试" if env.language == "zh" else "Rate limited; retrying in 1 s"
    messages: list[str] = []

    async def waiting() -> bool:
        current = await env.task(task["id"])
        messages.append(current["message"])
        return expected in current["message"] or current["status"] in FINISHED

    await until(waiting, 5, "a progress message about the rate limit")
    assert expected in messages[-1], messages
    done = await env.finish(task)
    assert done["status"] == "completed", done
    first, second = env.calls()
    assert second.at - first.at >= 0.9, f"retried after {second.at - first.at:.3f} s"
    progress_messages = [d["message"] for k, d in await env.events(task["id"]) if k == "progress"]
    assert expected in progress_messages


@MODELS
async def test_400_fails_the_task_after_one_call(env: Env) -> None:
    assert env.fake is not None
    env.fake.push(Fail(400, "Invalid JSON payload received."))
    task = await env.finish(await env.submit("/api/ai/generate-timeline-events", count=2))
    assert task["status"] == "failed", task
    assert task["error"]["code"] == "provider_error"
    assert "400" in task["error"]["message"] and "Invalid JSON payload" in task["error"]["message"]
    assert task["result"] is None and task["progress"] < 100
    assert len(env.calls()) == 1
    assert (await env.novel())["timeline_events"] == []


@MODELS
async def test_malformed_json_is_repaired_on_the_second_call_and_usage_is_summed(env: Env) -> None:
    assert env.fake is not None
    env.fake.push(Text('{"foreshadowings": [{"title": "cut', prompt_tokens=5, output_tokens=3))
    task = await env.run("/api/ai/generate-foreshadowings", count=2)
    first, second = env.calls()
    assert "could not be used" in second.user and '{"foreshadowings": [{"title": "cut' in second.user
    assert "could not be used" not in first.user
    assert len((await env.novel())["foreshadowings"]) == 2
    assert task["usage"] == {"prompt_tokens": 5 + JSON_USAGE[0], "output_tokens": 3 + JSON_USAGE[1]}


@MODELS
async def test_malformed_json_twice_fails_with_invalid_model_output(env: Env) -> None:
    assert env.fake is not None
    env.fake.push(Text("not json at all"), Text('{"characters": [{"nom": "x"}]}'))
    task = await env.finish(await env.submit("/api/ai/generate-characters", count=2))
    assert task["status"] == "failed", task
    assert task["error"]["code"] == "invalid_model_output"
    assert len(env.calls()) == 2
    assert (await env.novel())["characters"] == []


async def _outline_small(env: Env) -> int:
    await env.run("/api/ai/generate-outline", volumes=1, chapters_per_volume=2)
    return (await env.chapter_ids())[0]


@MODELS
async def test_a_stream_cut_mid_way_is_retried_and_the_text_adds_up(env: Env) -> None:
    assert env.fake is not None
    chapter_id = await _outline_small(env)
    before = len(env.calls())
    pieces = ["The tide came in early. ", "Mara counted the bells. ", "never sent. "]
    env.fake.push(Stream(pieces, cut_after=2))
    task = await env.run("/api/ai/write-chapter-content", chapter_id=chapter_id, target_words=100)
    calls = env.calls()[before:]
    assert len(calls) == 3 and calls[0].streaming and calls[1].streaming and not calls[2].streaming  # and the recap
    # The second call continues from the text the first one delivered.
    assert "was cut off here" in calls[1].user and "Mara counted the bells." in calls[1].user
    expected = "".join(pieces[:2]) + "".join(Answers.MORE)
    saved = await env.chapter(chapter_id)
    assert saved["content"] == expected
    assert await env.chunk_text(task["id"]) == expected
    assert await env.output(task["id"]) == {"text": expected, "complete": True}
    # What the cut call reported before it broke counts too: Gemini repeats running totals
    # on every chunk (7 prompt, 2 of 3 output tokens here); OpenAI reports only at the end.
    cut = (7, 2) if isinstance(env.fake, AnsweringGemini) else (0, 0)
    assert task["usage"] == {
        "prompt_tokens": cut[0] + STREAM_USAGE[0] + JSON_USAGE[0],
        "output_tokens": cut[1] + STREAM_USAGE[1] + JSON_USAGE[1],
    }


@MODELS
async def test_cancel_mid_stream_closes_the_upstream_connection(env: Env) -> None:
    fake = env.fake
    assert fake is not None
    chapter_id = await _outline_small(env)
    partial = "She heard the bell. The map moved. "
    fake.push(Stream(["She heard the bell. ", "The map moved. ", "unsent"], hang_after=2))
    abandoned = fake.abandoned
    task = await env.submit("/api/ai/write-chapter-content", chapter_id=chapter_id, target_words=1000)

    async def partial_out() -> bool:
        return (await env.output(task["id"]))["text"] == partial

    await until(partial_out, 10, "the streamed pieces reach /output")
    assert fake.open_connections == 1  # the model call is still going

    cancelled_at = time.monotonic()
    r = await env.api.client.post(f"/api/tasks/{task['id']}/cancel", headers=env.headers)
    assert r.status_code == 200, r.text
    assert r.json()["cancel_requested"] is True or r.json()["status"] == "cancelled", r.text
    # The fake sees the client hang up within 1 s of the cancel request.
    budget = 1.0 - (time.monotonic() - cancelled_at)
    await fake.wait_until(lambda: fake.abandoned > abandoned and fake.open_connections == 0, timeout=max(budget, 0.0))
    budget = 2.0 - (time.monotonic() - cancelled_at)
    done = await wait_for_status(env.api, env.headers, task["id"], FINISHED, timeout=max(budget, 0.0))
    assert done["status"] == "cancelled", done
    assert time.monotonic() - cancelled_at <= 2.0
    assert done["error"] is None and done["result"] is None
    assert await env.output(task["id"]) == {"text": partial, "complete": False}
    saved = await env.chapter(chapter_id)
    assert saved["content"] == "" and saved["word_count"] == 0


def _plan_answer(volumes: int) -> Text:
    return Text(
        json.dumps(
            {
                "outline": "A keeper follows a moving map north.",
                "volumes": [
                    {"number": n, "title": f"Book {n}", "summary": f"Volume {n} raises the stakes."}
                    for n in range(1, volumes + 1)
                ],
            }
        )
    )


@GEMINI
async def test_outline_chapters_left_out_or_placeholders_are_asked_for_again(env: Env) -> None:
    assert env.fake is not None
    env.fake.push(
        _plan_answer(1),
        Text(
            json.dumps(
                {
                    "chapters": [
                        {"number": 1, "title": "The Lamp", "summary": "Mara finds the map."},
                        {"number": 2, "title": "The Bell", "summary": "The map moves at night."},
                        {"number": 3, "title": "Omitted", "summary": "(remaining chapters omitted for brevity)"},
                    ]
                }
            )
        ),
    )
    task = await env.run("/api/ai/generate-outline", volumes=1, chapters_per_volume=4)
    calls = env.calls()
    assert len(calls) == 3
    assert ": chapters 3, 4." in calls[2].user and "left these chapters out" in calls[2].user
    chapters = (await env.novel())["volumes"][0]["chapters"]
    assert [c["number"] for c in chapters] == [1, 2, 3, 4]
    assert [c["title"] for c in chapters] == ["The Lamp", "The Bell", "Harbour 3 r1", "Harbour 4 r1"]
    # Two scripted answers (Text's default usage, 7 and 11) and one from the fake.
    assert task["usage"] == {"prompt_tokens": 7 + 7 + JSON_USAGE[0], "output_tokens": 11 + 11 + JSON_USAGE[1]}


@GEMINI
async def test_a_retry_after_a_failure_in_batch_4_of_5_reuses_batches_1_to_3(env: Env) -> None:
    assert env.fake is not None
    env.fake.push(Answer(), Answer(), Answer(), Answer(), Fail(400, "Request contains an invalid argument."))
    failed = await env.finish(await env.submit("/api/ai/generate-outline", volumes=5, chapters_per_volume=2))
    assert failed["status"] == "failed" and failed["error"]["code"] == "provider_error", failed
    assert len(env.calls()) == 5  # the plan, batches 1-3, and the failed batch 4
    assert (await env.novel())["volumes"] == []  # nothing applied from a failed task

    r = await env.api.client.post(f"/api/tasks/{failed['id']}/retry", headers=env.headers)
    assert r.status_code == 202, r.text
    retried = await env.finish(dict(r.json()))
    assert retried["status"] == "completed", retried
    assert retried["retry_of"] == failed["id"] and retried["attempt"] == failed["attempt"] + 1
    again = env.calls()[5:]
    assert [_numbers(Answers._find(BATCH_CHAPTERS, c.user)) for c in again] == [[7, 8], [9, 10]]
    novel = await env.novel()
    assert [c["number"] for v in novel["volumes"] for c in v["chapters"]] == list(range(1, 11))


@GEMINI
async def test_rate_limited_beyond_the_retries_fails_with_provider_rate_limited(env: Env) -> None:
    assert env.fake is not None
    env.fake.push(*[Fail(429, "quota exhausted")] * 5)
    task = await env.finish(await env.submit("/api/ai/generate-characters", count=1))
    assert task["status"] == "failed", task
    assert task["error"]["code"] == "provider_rate_limited"
    assert len(env.calls()) == 1 + FAST.max_retries


@MODELS
async def test_cancel_while_waiting_for_a_json_answer_closes_the_upstream_connection(env: Env) -> None:
    fake = env.fake
    assert fake is not None
    fake.push(Hang())
    abandoned = fake.abandoned
    task = await env.submit("/api/ai/generate-world-settings", count=2)
    await fake.wait_until(lambda: len(env.calls()) == 1 and fake.open_connections == 1, timeout=10)

    cancelled_at = time.monotonic()
    r = await env.api.client.post(f"/api/tasks/{task['id']}/cancel", headers=env.headers)
    assert r.status_code == 200, r.text
    budget = 1.0 - (time.monotonic() - cancelled_at)
    await fake.wait_until(lambda: fake.abandoned > abandoned and fake.open_connections == 0, timeout=max(budget, 0.0))
    done = await wait_for_status(env.api, env.headers, task["id"], FINISHED, timeout=2.0)
    assert done["status"] == "cancelled", done
    assert time.monotonic() - cancelled_at <= 2.0
    assert len(env.calls()) == 1
    assert (await env.novel())["world_settings"] == []
