"""Chapter tasks on real server processes whose model is the fake Gemini: what the
provider-fault and crash tests share.

A chapter is the kind whose application shows best: its text streams out as
chunk events, is written into the chapter when the task completes, and a second
application would push the first text into a revision. So "applied exactly once"
reads: the chapter's text is the task's result, is its chunk events joined, and
the chapter has no revision.

The fake runs in the test process, so it outlives every server process a test
kills. Random choices come from one seed per test, printed, and taken from
``NOVAWRITE_RELIABILITY_SEED`` when set, so a failing run can be replayed.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from novawrite.db.models import Task, TaskEvent
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.http_server import Request
from tests.fakes.script import Text
from tests.server import TERMINAL, Api, Servers, Sse, assert_complete_log
from tests.waiting import until

GEMINI_KEY = "reliability-test-key"
GEMINI_MODEL = "gemini-reliability-flash"
PER_VOLUME = 10
#: Far more than the fake's text: progress stays low, so a chapter costs few progress events.
TARGET_WORDS = 2000
#: One chapter as the fake streams it. The first piece occurs nowhere else in it, so a
#: saved text splits back into the attempts that wrote it.
PIECES = (
    "Dawn broke over the salt flats. ",
    "Mira checked the seal on the courier case ",
    "and counted the beacons along the ridge. ",
    "Three were dark. ",
    "Behind her the caravan stirred, ",
    "engines coughing awake in the cold. ",
    "She had four days to reach the capital, ",
    "and the empire had perhaps five left. ",
    "Somewhere past the ridge a signal flare rose, ",
    "red, then white, then red again. ",
    "Not a greeting. ",
    "A warning.",
)
TEXT = "".join(PIECES)
_CHAPTER = re.compile(r"Write the text of chapter (\d+)")
#: The recap step after a chapter (generators/recap.py) quotes the chapter it sums up.
_RECAP = re.compile(r"\[The text of chapter (\d+),")


def reliability_seed() -> int:
    seed = int(os.environ.get("NOVAWRITE_RELIABILITY_SEED") or random.randrange(2**32))
    print(f"seed {seed} (NOVAWRITE_RELIABILITY_SEED={seed} replays it)")
    return seed


def chapter_key(request: Request) -> str:
    """The chapter a model call writes (its number), or sums up ("recap N"): the calls of
    one chapter task's text share a key, and so do those of its recap; else ""."""
    body = request.json() or {}
    texts = "\n".join(part.get("text", "") for content in body.get("contents", []) for part in content.get("parts", []))
    if recap := _RECAP.search(texts):
        return f"recap {recap[1]}"
    match = _CHAPTER.search(texts)
    return match[1] if match else ""


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=GEMINI_KEY, models=[GEMINI_MODEL]) as server:
        yield server


def use_gemini(servers: Servers, fake: FakeGemini) -> None:
    """Every server the fixture starts from now on asks the fake through the real google-genai SDK."""
    servers.base_env.update(
        {
            "GEMINI_API_KEY": GEMINI_KEY,
            "NOVAWRITE_PROVIDER": "gemini",
            "NOVAWRITE_GEMINI_BASE_URL": fake.base_url,
            "NOVAWRITE_GEMINI_MODEL": GEMINI_MODEL,
            "NOVAWRITE_PROVIDER_TIMEOUT_SECONDS": "10",
        }
    )


def _outline_steps(volumes: int) -> list[Text]:
    """The fake's answers to an outline task: the plan, then each volume's one batch of chapters."""
    plan = {
        "outline": "A courier crosses a dying empire.",
        "volumes": [
            {"number": v, "title": f"Volume {v}", "summary": f"The road, part {v}."} for v in range(1, volumes + 1)
        ],
    }
    steps = [Text(json.dumps(plan))]
    for volume in range(1, volumes + 1):
        numbers = range((volume - 1) * PER_VOLUME + 1, volume * PER_VOLUME + 1)
        chapters = [{"number": n, "title": f"Mile {n}", "summary": f"The courier reaches beacon {n}."} for n in numbers]
        steps.append(Text(json.dumps({"chapters": chapters})))
    return steps


async def novel_with_chapters(api: Api, fake: FakeGemini, count: int) -> tuple[int, list[int]]:
    """A novel with an outline of at least ``count`` chapters; the ids of the first ``count``."""
    volumes = -(-count // PER_VOLUME)
    novel = await api.novel()
    fake.push(*_outline_steps(volumes))
    task = await api.outline(novel["id"], volumes, PER_VOLUME)
    done = await api.wait_task(task["id"], timeout=120)  # long enough for the most retries a fake allows
    assert done["status"] == "completed", done
    full = (await api.get(f"/api/novels/{novel['id']}")).json()
    ids = [c["id"] for v in full["volumes"] for c in v["chapters"]]
    return int(novel["id"]), ids[:count]


async def write_chapters(api: Api, novel_id: int, chapter_ids: list[int]) -> list[str]:
    """Submit a chapter task for each chapter; their task ids."""
    task_ids = []
    for chapter_id in chapter_ids:
        body = {"novel_id": novel_id, "chapter_id": chapter_id, "target_words": TARGET_WORDS}
        r = await api.post("/api/ai/write-chapter-content", json=body)
        assert r.status_code == 202, r.text
        task_ids.append(r.json()["id"])
    return task_ids


async def wait_all_finished(api: Api, timeout: float) -> None:
    async def none_active() -> bool:
        r = await api.get("/api/tasks/active")
        assert r.status_code == 200, r.text
        return r.json()["items"] == []

    await until(none_active, timeout, "every task finished")


async def check_written_once(api: Api, task_ids: list[str]) -> dict[str, list[Sse]]:
    """Every task completed, applied exactly once, with a whole event log; the logs by task id.

    Whole: seqs 1..N with no gap, one terminal event and it is the last
    (``assert_complete_log``), replayed from 0 over SSE.
    """
    logs = {}
    for task_id in task_ids:
        task = await api.task(task_id)
        assert task["status"] == "completed", task
        log = await api.task_events(task_id)
        assert log.closed
        assert_complete_log(log.events, task_id)
        text = task["result"]["content"]
        assert "".join(e.json["text"] for e in log.events if e.kind == "chunk") == text, task_id
        chapter_path = f"/api/novels/{task['novel_id']}/chapters/{task['params']['chapter_id']}"
        assert (await api.get(chapter_path)).json()["content"] == text, task_id
        assert (await api.get(f"{chapter_path}/revisions")).json()["items"] == [], f"{task_id} applied twice"
        logs[task_id] = log.events
    return logs


async def check_nothing_stuck(database_url: str, task_ids: list[str]) -> None:
    """Straight from the database: every task finished and holds no lease, and its seq is its last event's."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            events = (
                select(TaskEvent.task_pk, func.count().label("count"), func.max(TaskEvent.seq).label("last"))
                .group_by(TaskEvent.task_pk)
                .subquery()
            )
            query = select(
                Task.id, Task.status, Task.owner, Task.lease_expires_at, Task.seq, events.c.count, events.c.last
            ).join(events, events.c.task_pk == Task.pk)
            rows: dict[str, Any] = {r.id: r for r in await conn.execute(query)}
    finally:
        await engine.dispose()
    assert set(task_ids) <= rows.keys()
    for row in rows.values():
        assert row.status in TERMINAL, row
        assert row.owner is None and row.lease_expires_at is None, row
        assert row.seq == row.count == row.last, row
