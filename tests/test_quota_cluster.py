"""A quota met in one process holds back the provider in every process (API.md "Quotas"), on PostgreSQL.

Two NovaWrite instances on one database, both on the fake Gemini. Their dispatchers are
driven by the test (``_fill_slots``, what a woken dispatcher does) and their clock is one
the test moves, so nothing here waits for a timer. B keeps its read of the queue
between wake-ups (``VIEW_SECONDS`` an hour here): B read the queue while Alice had tasks
waiting and no quota was set, so only the notification of A's task going back to pending
can tell B that the provider is out of quota before B claims Alice's next task.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from novawrite.engine import supervisor as supervisor_module
from novawrite.engine.supervisor import Supervisor
from novawrite.settings import Settings
from tests.conftest import make_api
from tests.test_kinds_e2e import (  # noqa: F401  (gemini_server, openai_server: fixtures env uses)
    FAST,
    GEMINI,
    Env,
    env,
    gemini_server,
    openai_server,
    provider_settings,
)
from tests.test_quotas import QUOTA, Clock, advance, clock, supervisor, task, waiting  # noqa: F401  (clock: fixture)
from tests.waiting import until

HOUR = 3600.0


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """Two processes on one database need PostgreSQL: this module runs on it alone."""
    return postgres_url


def held(sup: Supervisor) -> Supervisor:
    """The supervisor with its own dispatcher stopped: it claims only when the test calls ``_fill_slots``."""
    for background in list(sup._background):
        if background.get_name() == "dispatcher":
            background.cancel()
    return sup


async def second_instance(settings: Settings, env: Env) -> AsyncIterator[Supervisor]:
    async for api in make_api(provider_settings(settings, "gemini", env.fake), retry=FAST):
        yield held(api.services.supervisor)


@GEMINI
async def test_a_quota_met_in_one_process_holds_back_the_provider_in_another(
    env: Env, clock: Clock, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert env.fake is not None
    monkeypatch.setattr(supervisor_module, "VIEW_SECONDS", HOUR)
    a = held(supervisor(env))
    a.settings = a.settings.with_(max_concurrency=1)  # one task at a time: Alice's oldest
    async for b in second_instance(settings, env):
        b.clock = clock
        first = await env.submit("/api/ai/generate-characters", count=2)
        second = await env.submit("/api/ai/generate-world-settings", count=2)

        # B reads the queue: Alice waits, the provider is free. The read is kept.
        b._view = view = await b.store.dispatch_view(clock(), b.provider.name)
        b._view_read = time.monotonic()
        alice = (await a.store.row(first["id"])).user_id
        assert [user for user, _ in view.heads] == [alice] and view.not_before is None

        # A runs Alice's oldest task and meets the day's quota: back to pending until resume_at.
        env.fake.push(QUOTA)
        await a._fill_slots()
        await waiting(env, first["id"])
        calls = len(env.calls())
        assert calls == 1

        # B hears of it (the task's pending event, through PostgreSQL) and drops its read ...
        async def b_heard() -> bool:
            return b._view is None

        await until(b_heard, 10, "B drops its read of the queue when A's task goes back to pending")
        # ... so its next claim reads the provider's not-before and calls nobody.
        await b._fill_slots()
        assert not b.runners
        assert (await task(env, second["id"]))["status"] == "pending"
        assert len(env.calls()) == calls

        # At the quota's end both go on: each task once, the first as itself.
        await advance(env, clock, 91)
        await b._fill_slots()
        await a._fill_slots()
        done = [await env.finish(t) for t in (first, second)]
        assert [d["status"] for d in done] == ["completed", "completed"], done
        assert done[0]["id"] == first["id"] and done[0]["attempt"] == 2 and done[1]["attempt"] == 1
