"""Recovery against a real server process: SIGKILL and SIGTERM mid-task, then a restart on the same database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from novawrite.db.models import Task
from tests.server import UVICORN, Api, Servers, Sse, api_on, assert_complete_log, servers  # noqa: F401 (fixture)

pytestmark = pytest.mark.server

VOLUMES, PER_VOLUME = 5, 10
SIGTERM_EXIT_LIMIT = 15.0


async def task_row(database_url: str, task_id: str) -> Any:
    """The task as stored, read straight from the database (the server is down)."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            query = select(Task.status, Task.attempt, Task.owner, Task.progress, Task.seq).where(Task.id == task_id)
            return (await conn.execute(query)).one()
    finally:
        await engine.dispose()


async def start_and_watch(api: Api, novel_id: int, progress_events: int = 2) -> tuple[dict[str, Any], list[Sse]]:
    """Submit an outline and read its stream until it runs and has reported some progress."""
    task = await api.outline(novel_id, VOLUMES, PER_VOLUME)
    seen: list[Sse] = []
    async with api.open_stream(f"/api/tasks/{task['id']}/events") as (_, items):
        async for item in items:
            if item.comment is not None:
                continue
            seen.append(item)
            if sum(e.kind == "progress" for e in seen) >= progress_events:
                break
    assert seen[-1].json["status"] == "running", [e.kind for e in seen]
    return task, seen


async def drain(items: AsyncIterator[Sse]) -> list[Sse]:
    """What is left of a stream whose server went away: its events until it ends, cleanly or cut."""
    events: list[Sse] = []
    try:
        async with asyncio.timeout(10):
            async for item in items:
                if item.comment is None:
                    events.append(item)
    except httpx.TransportError:
        pass
    return events


async def check_recovered(api: Api, task: dict[str, Any], seen: list[Sse], reason: str) -> list[Sse]:
    """After the restart: resume the stream where it stopped, and check the whole story."""
    rest = await api.task_events(task["id"], last_event_id=seen[-1].seq, timeout=60)
    assert rest.closed
    union = seen + rest.events
    full = (await api.task_events(task["id"])).events
    assert [e.key() for e in union] == [e.key() for e in full], "the resumed stream differs from the stored log"
    assert_complete_log(full, task["id"])  # seq 1..N, no gap, one terminal event, last

    requeues = [e for e in full if e.kind == "status" and e.json["status"] == "pending" and e.json["seq"] > 1]
    assert len(requeues) == 1, [(e.kind, e.json["status"]) for e in full]
    requeue = requeues[0]
    assert requeue.json["attempt"] == 2 and reason in requeue.json["message"].lower(), requeue.json
    after = full[requeue.seq :]
    assert after[0].kind == "status" and after[0].json["status"] == "running" and after[0].json["attempt"] == 2
    # before the requeue only the first attempt; progress never goes down within an attempt
    for attempt in (full[: requeue.seq - 1], after):
        values = [e.json["progress"] for e in attempt]
        assert values == sorted(values), values

    final = await api.task(task["id"])
    assert final["status"] == "completed" and final["attempt"] == 2 and final["progress"] == 100
    assert final["error"] is None and final["result"] is not None
    assert full[-1].json["result"] == final["result"]

    # Applied exactly once: one task, and exactly volumes x chapters_per_volume chapters.
    novel = (await api.get(f"/api/novels/{task['novel_id']}")).json()
    assert [v["number"] for v in novel["volumes"]] == list(range(1, VOLUMES + 1))
    chapters = [c["number"] for v in novel["volumes"] for c in v["chapters"]]
    assert chapters == list(range(1, VOLUMES * PER_VOLUME + 1)), chapters
    assert all(len(v["chapters"]) == PER_VOLUME for v in novel["volumes"])
    assert novel["outline"] == final["result"]["outline"]
    tasks = (await api.get(f"/api/novels/{task['novel_id']}/tasks")).json()["items"]
    assert [t["id"] for t in tasks] == [task["id"]]
    return full


async def test_sigkill_mid_task_is_requeued_and_completes_once(servers: Servers, database_url: str) -> None:
    first = await servers.start(demo_delay_ms=20, lease_seconds=2, sweep_seconds=1)
    async with api_on(first, "alice") as api:
        novel = await api.novel()
        task, seen = await start_and_watch(api, novel["id"])
        await first.kill()
        stale = await task_row(database_url, task["id"])
        assert (stale.status, stale.attempt) == ("running", 1), stale  # the crash left it claimed

        # restarted the other documented way, `uvicorn novawrite.app:app`
        second = await servers.start(UVICORN, demo_delay_ms=5, lease_seconds=2, sweep_seconds=1)
        api.base_url = second.url  # same secret: the token from the first server still works
        await check_recovered(api, task, seen, reason="interrupted")


async def test_sigterm_requeues_at_once_exits_in_bounded_time_and_restart_finishes(
    servers: Servers, database_url: str
) -> None:
    # A long lease: recovery after SIGTERM must not wait for the lease to expire.
    first = await servers.start(demo_delay_ms=20, lease_seconds=60, sweep_seconds=1)
    async with api_on(first, "alice") as api:
        novel = await api.novel()
        task, seen = await start_and_watch(api, novel["id"])

        # SIGTERM while a client holds the task's stream and the user stream open: neither may keep the server up.
        task_path = f"/api/tasks/{task['id']}/events"
        async with (
            api.open_stream(task_path, headers={"Last-Event-ID": str(seen[-1].seq)}) as (_, items),
            api.open_stream("/api/events") as (_, user_items),
        ):
            assert (await anext(user_items)).kind == "snapshot"
            code, took = await first.terminate(timeout=SIGTERM_EXIT_LIMIT)
            assert code is not None, f"server still running {SIGTERM_EXIT_LIMIT}s after SIGTERM"
            assert took < SIGTERM_EXIT_LIMIT, took
            seen += await drain(items)
            await drain(user_items)
        assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
        assert not any(e.terminal for e in seen), "the task finished before the shutdown; make it longer"

        row = await task_row(database_url, task["id"])
        assert (row.status, row.attempt, row.owner) == ("pending", 2, None), row

        second = await servers.start(demo_delay_ms=5, lease_seconds=60, sweep_seconds=1)
        api.base_url = second.url
        started = time.monotonic()
        full = await check_recovered(api, task, seen, reason="shutdown")
        assert time.monotonic() - started < 30  # well within the 60 s lease: no expiry was waited for
        assert full[-1].kind == "completed"
