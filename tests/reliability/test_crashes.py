"""Crashes (issue 6): a batch of tasks survives its server being SIGKILLed at random moments and restarted.

Chapter tasks stream from the fake Gemini (it lives in the test process, so it
outlives every server). While they run, the server is killed with SIGKILL after
a random number of the user's stream events, and a new one is started on the same
database; after the last restart the batch runs to its end. The kill moments come
from the printed seed; where they land in the server's work is up to timing.

A short lease and sweep make the new server pick up the dead one's tasks within
seconds, and ``max_attempts`` is far above the number of kills, so no task can run
out of attempts. Then: every task completed, and its result was applied exactly
once (its chapter holds its text and no revision); its stored log has seqs 1..N,
no gap, one terminal event; every requeue is an interruption and counts an
attempt; nothing is left running or pending, nor holding a lease. A chapter's text
is each interrupted attempt's saved part, a prefix of the chapter, then the whole
chapter from the attempt that finished.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.script import Stream
from tests.reliability.chapter_kit import (
    PIECES,
    TEXT,
    check_nothing_stuck,
    check_written_once,
    fake,  # noqa: F401 (fixture)
    novel_with_chapters,
    reliability_seed,
    use_gemini,
    wait_all_finished,
    write_chapters,
)
from tests.reliability.conftest import scale
from tests.server import Api, ServerProcess, Servers, Sse, api_on, servers  # noqa: F401 (fixture)

pytestmark = pytest.mark.server

TASKS = int(scale(12, 50))
KILLS = int(scale(2, 5))
SERVER = {
    "lease_seconds": 2,
    "sweep_seconds": 0.5,
    "max_attempts": 20,  # far above KILLS: an interrupted task is always queued again
    "max_unfinished_per_user": TASKS + 10,
}
STREAM_DEADLINE = 60.0
#: The fewest events one attempt of a chapter sends: running, a progress, a chunk, and its end.
EVENTS_PER_ATTEMPT = 4


async def unfinished(api: Api) -> int:
    r = await api.get("/api/tasks/active")
    assert r.status_code == 200, r.text
    return len(r.json()["items"])


async def kill_after_events(server: ServerProcess, api: Api, events: int) -> None:
    """SIGKILL the server once its user stream has delivered ``events`` task events."""
    seen = 0
    try:
        async with asyncio.timeout(STREAM_DEADLINE), api.open_stream("/api/events") as (_, items):
            async for item in items:
                if item.kind is not None and item.kind != "snapshot":
                    seen += 1
                    if seen == events:
                        break
    except TimeoutError:
        raise AssertionError(f"{seen} of {events} events within {STREAM_DEADLINE} s: nothing to kill") from None
    await server.kill()


def check_attempts(text: str) -> None:
    """The text is one saved prefix per interrupted attempt, then the whole chapter."""
    assert text.startswith(PIECES[0]), text[:80]
    parts = [PIECES[0] + part for part in text.split(PIECES[0])[1:]]
    assert parts[-1] == TEXT, parts[-1]
    assert all(TEXT.startswith(part) for part in parts), parts


def requeues_of(events: list[Sse]) -> list[Sse]:
    return [e for e in events if e.kind == "status" and e.json["status"] == "pending" and e.seq > 1]


async def test_every_task_completes_once_through_sigkills_and_restarts(
    servers: Servers, fake: FakeGemini, database_url: str
) -> None:
    rng = random.Random(reliability_seed())
    use_gemini(servers, fake)
    server = await servers.start(**SERVER)
    async with api_on(server, "alice") as api:
        novel_id, chapter_ids = await novel_with_chapters(api, fake, TASKS)
        fake.default = Stream(PIECES, delay=0.05)
        started = time.monotonic()
        task_ids = await write_chapters(api, novel_id, chapter_ids)
        for kill in range(KILLS):
            # At most half of what the unfinished tasks must still send, so the kill always comes.
            budget = EVENTS_PER_ATTEMPT * await unfinished(api) // (KILLS - kill + 1)
            events = rng.randint(1, max(1, budget))
            await kill_after_events(server, api, events)
            print(f"kill {kill + 1} after {events} events, {time.monotonic() - started:.1f} s in")
            server = await servers.start(**SERVER)
            api.base_url = server.url  # same secret: the token still works
        await wait_all_finished(api, timeout=120)
        print(f"{TASKS} tasks through {KILLS} kills in {time.monotonic() - started:.1f} s")

        logs = await check_written_once(api, task_ids)
        requeued = 0
        for task_id, events in logs.items():
            task = await api.task(task_id)
            requeues = requeues_of(events)
            assert len(requeues) == task["attempt"] - 1, (task_id, [e.json["message"] for e in requeues])
            assert all("interrupted" in e.json["message"].lower() for e in requeues), task_id
            check_attempts(task["result"]["content"])
            requeued += len(requeues)
        print(f"{requeued} requeues")
        assert requeued >= 1, "no kill interrupted a running task"
    await check_nothing_stuck(database_url, task_ids)
