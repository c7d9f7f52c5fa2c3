"""Quotas (API.md "Quotas"): a long or per-day 429 puts the task back to pending until
``resume_at``, frees its slot, stops every call on the provider until then, and the task
resumes as itself with ``attempt`` + 1, continuing where it stopped.

The model is the fake Gemini behind the real google-genai SDK; each test runs on SQLite
and on PostgreSQL. Time is the supervisor's ``clock``, which the tests set and move
forward (then wake the dispatcher), so a 90 s quota costs no waiting.

"The slot serves another task meanwhile" is shown with a second NovaWrite on the same
database whose provider is the demo (which has no quota): it takes the other queued task
while the Gemini one waits. In one process the provider is one, so there the proof is
that the waiting task holds no runner.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, update

from novawrite.db.models import ProviderQuota, Task, utcnow
from novawrite.engine.supervisor import Supervisor
from novawrite.settings import Settings
from tests.conftest import make_api
from tests.engine_kit import wait_for_status
from tests.fakes import Fail, Stream
from tests.fakes.fake_gemini import quota_error_body
from tests.test_kinds_e2e import (  # noqa: F401  (gemini_server, openai_server: fixtures env uses)
    FINISHED,
    GEMINI,
    Env,
    env,
    gemini_server,
    openai_server,
)
from tests.waiting import until

QUOTA = Fail(429, body=quota_error_body("90s"))


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(env: Env) -> Clock:
    c = Clock()
    supervisor(env).clock = c
    return c


def supervisor(env: Env) -> Supervisor:
    sup = env.api.services.supervisor
    assert isinstance(sup, Supervisor)
    return sup


async def task(env: Env, task_id: str) -> dict[str, Any]:
    r = await env.api.client.get(f"/api/tasks/{task_id}", headers=env.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def advance(env: Env, clock: Clock, seconds: float) -> None:
    clock.now += timedelta(seconds=seconds)
    supervisor(env).wake()


async def waiting(env: Env, task_id: str) -> dict[str, Any]:
    """The task once it waits for the quota (pending with resume_at), with no runner for it."""
    body: dict[str, Any] = {}

    async def waits_or_ended() -> bool:
        body.update(await task(env, task_id))
        return body["status"] in FINISHED or body["resume_at"] is not None

    await until(waits_or_ended, 20, f"task {task_id} waits for the quota")
    assert body["status"] == "pending", body
    assert body["resume_at"] is not None and body["attempt"] == 2, body
    assert task_id not in supervisor(env).runners
    return body


async def retrying_a_503(env: Env, route: str, *then: Any, **body: Any) -> dict[str, Any]:
    """A task submitted to ``route`` once it waits to retry a passing 503 (Retry-After 3 s: the
    test's time to act before the retry); the fake answers ``then`` next."""
    assert env.fake is not None
    env.fake.push(Fail(503, headers={"Retry-After": "3"}), *then)
    submitted = await env.submit(route, **body)

    async def retrying() -> bool:
        return "retrying in" in (await task(env, submitted["id"]))["message"]

    await until(retrying, 10, "the task waits to retry the 503")
    return submitted


async def demo_app(settings: Settings) -> AsyncIterator[Any]:
    async for api in make_api(settings.with_(provider="demo", demo_delay_ms=0)):
        yield api


@GEMINI
async def test_quota_waits_frees_the_slot_and_resumes_the_same_chapter(
    env: Env, clock: Clock, settings: Settings
) -> None:
    assert env.fake is not None
    await env.run("/api/ai/generate-outline", volumes=1, chapters_per_volume=1)
    chapter_id = (await env.chapter_ids())[0]
    # The stream is cut after two pieces; the call that would continue it hits the day's quota.
    first = ["Alpha begins the chapter. ", "Beta carries it on. ", "Gamma never arrives."]
    env.fake.push(Stream(first, cut_after=2), QUOTA)
    started = clock.now
    submitted = await env.submit("/api/ai/write-chapter-content", chapter_id=chapter_id, target_words=100)
    body = await waiting(env, submitted["id"])
    resume_at = datetime.fromisoformat(body["resume_at"])
    assert timedelta(seconds=89) <= resume_at - started <= timedelta(seconds=91)
    assert "resumes at" in body["message"]
    kinds = [(k, d) for k, d in await env.events(submitted["id"]) if k == "status"]
    assert kinds[-1][1]["status"] == "pending" and kinds[-1][1]["attempt"] == 2 and kinds[-1][1]["resume_at"]

    # Another task on the same provider is not started meanwhile: the fake sees no call.
    calls = len(env.calls())
    other = await env.submit("/api/ai/generate-characters", count=2)
    await supervisor(env)._fill_slots()  # what the dispatcher does when woken
    assert not supervisor(env).runners
    assert (await task(env, other["id"]))["status"] == "pending"
    assert len(env.calls()) == calls

    # A process whose provider has no quota (the demo) takes the queued task meanwhile,
    # but not the one waiting for its resume_at.
    async for demo in demo_app(settings):
        await demo.services.supervisor._fill_slots()
        # asked of the demo process: on SQLite the Gemini one hears nothing of its events (it polls its cache)
        done = await wait_for_status(demo, env.headers, other["id"], FINISHED, timeout=20)
        assert done["status"] == "completed", done
        assert (await task(env, submitted["id"]))["status"] == "pending"
    assert len(env.calls()) == calls

    # At resume_at it runs again as the same task, attempt 2, continuing after the stored text.
    await advance(env, clock, 91)
    done = await env.finish(submitted)
    assert done["status"] == "completed" and done["attempt"] == 2 and done["id"] == submitted["id"], done
    assert done["resume_at"] is None
    content = (await env.chapter(chapter_id))["content"]
    head = "".join(first[:2])
    assert content.startswith(head) and content.count(first[0]) == 1 and content.count(first[1]) == 1
    assert await env.chunk_text(submitted["id"]) == content


@GEMINI
@pytest.mark.parametrize("route", ["generate-characters", "write-chapter-content"])
async def test_a_running_task_makes_no_call_while_the_quota_is_used_up(env: Env, clock: Clock, route: str) -> None:
    # API.md: no other task starts a call on the provider before the quota's end, including one
    # already running (here: waiting to retry a passing 503) when another process met the quota.
    assert env.fake is not None
    body: dict[str, Any] = {"count": 2}
    if route == "write-chapter-content":
        await env.run("/api/ai/generate-outline", volumes=1, chapters_per_volume=1)
        body = {"chapter_id": (await env.chapter_ids())[0], "target_words": 100}
    calls = len(env.calls())
    submitted = await retrying_a_503(env, f"/api/ai/{route}", **body)
    not_before = clock.now + timedelta(seconds=90)
    async with env.api.services.db.write() as conn:  # what another process meeting the quota records
        await conn.execute(insert(ProviderQuota).values(provider="gemini", not_before=not_before))

    waited = await waiting(env, submitted["id"])
    assert abs(datetime.fromisoformat(waited["resume_at"]) - not_before) < timedelta(seconds=1), waited
    assert len(env.calls()) == calls + 1  # the 503; its retry was not sent
    await advance(env, clock, 91)
    done = await env.finish(submitted)
    assert done["status"] == "completed" and done["attempt"] == 2, done
    assert len(env.calls()) > calls + 1


@GEMINI
async def test_a_cancel_asked_before_the_quota_is_met_ends_the_task_instead_of_waiting(env: Env, clock: Clock) -> None:
    # The cancel is recorded (by another process) while the task waits to retry a 503, and its
    # runner has not heard of it yet when the retry meets the quota: the task ends cancelled
    # instead of waiting for the quota's end with the cancel pending.
    assert env.fake is not None
    sup = supervisor(env)

    async def not_heard_yet(task_ids: Any) -> list[str]:
        return []

    sup.store.cancel_requested = not_heard_yet  # type: ignore[method-assign]
    submitted = await retrying_a_503(env, "/api/ai/generate-characters", QUOTA, count=2)
    async with env.api.services.db.write() as conn:
        await conn.execute(update(Task).where(Task.id == submitted["id"]).values(cancel_requested=True))
    done = await env.finish(submitted)
    assert done["status"] == "cancelled" and done["resume_at"] is None and done["attempt"] == 1, done


@GEMINI
async def test_a_cancel_landing_while_the_quota_wait_is_written_ends_the_task(env: Env, clock: Clock) -> None:
    # The user cancels in the instant the runner writes the task back to pending for the quota:
    # that write is not rolled back by the cancel (the task would stay running with no runner
    # until its lease ran out); it sees the cancel asked and ends the task cancelled.
    assert env.fake is not None
    store = supervisor(env).store
    quota_requeue = store.quota_requeue
    writing, go_on = asyncio.Event(), asyncio.Event()

    async def held(*args: Any, **kwargs: Any) -> Any:
        writing.set()
        await go_on.wait()
        return await quota_requeue(*args, **kwargs)

    store.quota_requeue = held  # type: ignore[method-assign]
    env.fake.push(QUOTA)
    submitted = await env.submit("/api/ai/generate-characters", count=2)
    await asyncio.wait_for(writing.wait(), 10)  # the runner writes the quota wait
    r = await env.api.client.post(f"/api/tasks/{submitted['id']}/cancel", headers=env.headers)
    assert r.status_code == 200, r.text
    go_on.set()
    done = await env.finish(submitted, timeout=5)
    assert done["status"] == "cancelled" and done["resume_at"] is None, done


@GEMINI
async def test_a_quota_that_cannot_be_read_does_not_stop_the_call(env: Env, clock: Clock) -> None:
    # The read of the provider's not-before before a call fails (the database hiccups): the call
    # goes ahead, as it did before there was such a read; the provider answers for its quota.
    async def unreadable(provider: str) -> Any:
        raise ConnectionError("the database does not answer")

    supervisor(env).store.provider_not_before = unreadable  # type: ignore[method-assign]
    done = await env.run("/api/ai/generate-characters", count=2)
    assert done["status"] == "completed", done


@GEMINI
async def test_cancel_while_waiting_is_at_once(env: Env, clock: Clock) -> None:
    assert env.fake is not None
    env.fake.push(Fail(429, body=quota_error_body(None)))  # per-day, no delay given: the default wait
    submitted = await env.submit("/api/ai/generate-characters", count=2)
    await waiting(env, submitted["id"])
    r = await env.api.client.post(f"/api/tasks/{submitted['id']}/cancel", headers=env.headers)
    assert r.status_code == 200, r.text
    body = await task(env, submitted["id"])
    assert body["status"] == "cancelled" and body["resume_at"] is None, body


@GEMINI
async def test_waiting_past_the_maximum_fails_rate_limited(env: Env, clock: Clock) -> None:
    assert env.fake is not None
    sup = supervisor(env)
    sup.settings = sup.settings.with_(quota_max_wait_seconds=100)
    env.fake.push(QUOTA, QUOTA)
    submitted = await env.submit("/api/ai/generate-characters", count=2)
    await waiting(env, submitted["id"])  # 90 s of 100
    await advance(env, clock, 91)
    body = await env.finish(submitted)  # 90 more would be 180
    assert body["status"] == "failed" and body["error"]["code"] == "provider_rate_limited", body
    assert body["attempt"] == 2


@GEMINI
async def test_long_retry_delay_without_per_day_quota_also_waits(env: Env, clock: Clock) -> None:
    assert env.fake is not None
    env.fake.push(Fail(429, body=quota_error_body("61s", per_day=False)))
    submitted = await env.submit("/api/ai/generate-characters", count=2)
    await waiting(env, submitted["id"])
    await advance(env, clock, 62)
    body = await env.finish(submitted)
    assert body["status"] == "completed" and body["attempt"] == 2, body


@GEMINI
async def test_short_429_is_still_retried_inside_the_task(env: Env, clock: Clock) -> None:
    assert env.fake is not None
    env.fake.push(Fail(429, headers={"Retry-After": "1"}))
    submitted = await env.submit("/api/ai/generate-characters", count=2)
    body = await env.finish(submitted)
    assert body["status"] == "completed" and body["attempt"] == 1 and body["resume_at"] is None, body
