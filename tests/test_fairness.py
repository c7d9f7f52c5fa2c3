"""Fair and work-conserving dispatch, through the real engine on both databases.

A lone author gets every slot; when authors compete, the one served longest ago
(or never) goes next; a per-user cap applies only when the operator sets one.
Every generation here is the engine kit's Gate kind, which holds each run until
the test releases it, so what runs at once is exactly what the dispatcher chose.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from novawrite.generators.base import GenerationContext, RetryPolicy
from novawrite.settings import Settings, SettingsError
from tests.conftest import Api, make_api
from tests.engine_kit import Gate, GateResult, NullProvider, wait_for_status

# The kinds a lone author starts at once on one novel (issue 11), each a Gate.
KINDS = {
    "generate_outline": "/api/ai/generate-outline",
    "generate_characters": "/api/ai/generate-characters",
    "generate_world_settings": "/api/ai/generate-world-settings",
    "generate_timeline_events": "/api/ai/generate-timeline-events",
    "generate_foreshadowings": "/api/ai/generate-foreshadowings",
}


@dataclass
class CountingGate(Gate):
    """A Gate that also counts, per user, the runs in progress and the most there ever were at once."""

    owner: dict[int, str] = field(default_factory=dict)  # novel id -> user name
    now: Counter[str] = field(default_factory=Counter)
    peak: Counter[str] = field(default_factory=Counter)

    async def generate(self, ctx: GenerationContext) -> GateResult:
        user = self.owner[ctx.novel.id]
        self.now[user] += 1
        self.peak[user] = max(self.peak[user], self.now[user])
        try:
            return await super().generate(ctx)
        finally:
            self.now[user] -= 1


async def _engine(settings: Settings, gate: Gate, **changes: object) -> AsyncIterator[Api]:
    kinds = {task_type: gate.kind(task_type) for task_type in KINDS}
    async for api in make_api(
        settings.with_(**changes), provider=NullProvider(), kinds=kinds, retry=RetryPolicy(base=0.01, cap=0.05)
    ):
        yield api


async def _submit(api: Api, headers: dict[str, str], novel_id: int, route: str = KINDS["generate_outline"]) -> str:
    r = await api.client.post(route, json={"novel_id": novel_id}, headers=headers)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def _statuses(api: Api, headers: dict[str, str]) -> list[str]:
    r = await api.client.get("/api/tasks/active", headers=headers)
    assert r.status_code == 200, r.text
    return sorted(task["status"] for task in r.json()["items"])


def test_the_per_user_cap_is_off_unless_set() -> None:
    assert Settings().max_running_per_user is None
    assert Settings.from_env({}).max_running_per_user is None
    assert Settings.from_env({"NOVAWRITE_MAX_RUNNING_PER_USER": " "}).max_running_per_user is None
    assert Settings.from_env({"NOVAWRITE_MAX_RUNNING_PER_USER": "2"}).max_running_per_user == 2
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(SettingsError, match="NOVAWRITE_MAX_RUNNING_PER_USER"):
            Settings.from_env({"NOVAWRITE_MAX_RUNNING_PER_USER": bad})


async def test_a_lone_author_gets_every_slot(settings: Settings) -> None:
    """Outline, characters, world, timeline and foreshadowing of one novel, at concurrency 5, all run at once."""
    gate = Gate()
    assert settings.max_running_per_user is None  # the default, not set for this test
    async for api in _engine(settings, gate, max_concurrency=5):
        h = await api.register()
        novel = (await api.novel(h))["id"]
        ids = [await _submit(api, h, novel, route) for route in KINDS.values()]
        await gate.wait_started(5)
        assert gate.running == 5
        assert await _statuses(api, h) == ["running"] * 5
        gate.release_all.set()
        for task_id in ids:
            await wait_for_status(api, h, task_id, {"completed"})
        assert gate.max_running == 5


async def test_a_lone_author_never_exceeds_the_machine(settings: Settings) -> None:
    gate = Gate()
    async for api in _engine(settings, gate, max_concurrency=3):
        h = await api.register()
        ids = [await _submit(api, h, (await api.novel(h))["id"]) for _ in range(6)]
        await gate.wait_started(3)
        assert await _statuses(api, h) == ["pending"] * 3 + ["running"] * 3
        gate.release_all.set()
        for task_id in ids:
            await wait_for_status(api, h, task_id, {"completed"})
        assert gate.max_running == 3 and len(gate.started) == 6


async def test_the_author_served_longest_ago_goes_next(settings: Settings) -> None:
    """A has 20 queued and all 5 slots; B submits: each freed slot goes to B, then A, then B, in turn."""
    gate = Gate()
    async for api in _engine(settings, gate, max_concurrency=5):
        a = await api.register("usera")
        b = await api.register("userb")
        a_novels = [(await api.novel(a))["id"] for _ in range(20)]
        tasks = [(a, await _submit(api, a, nid)) for nid in a_novels]
        await gate.wait_started(5)
        assert sorted(gate.started) == sorted(a_novels[:5])
        b_novels = [(await api.novel(b))["id"] for _ in range(2)]
        tasks += [(b, await _submit(api, b, nid)) for nid in b_novels]
        assert gate.running == 5 and len(gate.started) == 5  # nothing free: B waits

        # Free A's slots one at a time; B's tasks stay running.
        for freed, expected in enumerate([b_novels[0], a_novels[5], b_novels[1], a_novels[6]]):
            gate.release(a_novels[freed])
            await gate.wait_started(6 + freed)
            assert gate.started[5 + freed] == expected, f"start {6 + freed}: {gate.started}"
            assert gate.running == 5
        gate.release_all.set()
        for headers, task_id in tasks:
            await wait_for_status(api, headers, task_id, {"completed"})
        assert len(gate.started) == 22


async def test_an_author_served_before_still_comes_before_the_one_served_since(settings: Settings) -> None:
    """B ran a task earlier; A has filled the machine since: B's new task is the next to start."""
    gate = Gate()
    async for api in _engine(settings, gate, max_concurrency=2):
        a = await api.register("usera")
        b = await api.register("userb")
        earlier = (await api.novel(b))["id"]
        first = await _submit(api, b, earlier)
        await gate.wait_started(1)
        gate.release(earlier)
        await wait_for_status(api, b, first, {"completed"})

        a_novels = [(await api.novel(a))["id"] for _ in range(6)]
        tasks = [(a, await _submit(api, a, nid)) for nid in a_novels]
        await gate.wait_started(3)
        later = (await api.novel(b))["id"]
        tasks.append((b, await _submit(api, b, later)))
        gate.release(gate.started[1])
        await gate.wait_started(4)
        assert gate.started[3] == later, gate.started
        gate.release_all.set()
        for headers, task_id in tasks:
            await wait_for_status(api, headers, task_id, {"completed"})


async def test_a_cap_set_by_the_operator_is_never_exceeded(settings: Settings) -> None:
    gate = CountingGate()
    async for api in _engine(settings, gate, max_concurrency=5, max_running_per_user=2):
        users = {name: await api.register(name) for name in ("usera", "userb", "userc")}
        counts = {"usera": 6, "userb": 6, "userc": 1}
        tasks: list[tuple[dict[str, str], str]] = []
        for name, headers in users.items():
            for _ in range(counts[name]):
                novel = (await api.novel(headers))["id"]
                gate.owner[novel] = name
                tasks.append((headers, await _submit(api, headers, novel)))
        await gate.wait_started(5)  # 2 + 2 + 1: the cap leaves no slot idle while someone may use it
        assert dict(gate.now) == {"usera": 2, "userb": 2, "userc": 1}
        assert await _statuses(api, users["usera"]) == ["pending"] * 4 + ["running"] * 2

        # Release the runs one by one, oldest first. Each freed slot goes to someone under the cap,
        # so the machine runs min(5, the sum of min(2, what each user has left)) at every step.
        total, finished = Counter(counts), Counter[str]()
        for released in range(len(tasks)):
            novel = gate.started[released]
            gate.release(novel)
            finished[gate.owner[novel]] += 1
            running = min(5, sum(min(2, total[user] - finished[user]) for user in total))
            await gate.wait_started(released + 1 + running)
            assert all(n <= 2 for n in gate.now.values()), gate.now
        for headers, task_id in tasks:
            await wait_for_status(api, headers, task_id, {"completed"})
        assert dict(gate.peak) == {"usera": 2, "userb": 2, "userc": 1}
        assert len(gate.started) == 13
