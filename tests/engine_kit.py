"""A scripted generation kind for engine tests: each run waits on a gate the test opens.

It is a real TaskKind (params, generator, apply) plugged into the real supervisor,
so the tests exercise the engine, not a mock of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from novawrite.db.models import Character
from novawrite.generators.base import GenerationContext, RetryPolicy, retry_transient
from novawrite.generators.kind import TaskKind
from novawrite.providers.base import Completion, Prompt, ProviderError
from novawrite.settings import Settings
from tests.waiting import until


class GateParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    novel_id: int
    label: str = "x"


class GateResult(BaseModel):
    label: str
    text: str = ""


@dataclass
class Gate:
    """Holds every run until released; records what ran and how many at once."""

    started: list[int] = field(default_factory=list)
    running: int = 0
    max_running: int = 0
    cancelled: list[int] = field(default_factory=list)
    releases: dict[int, asyncio.Event] = field(default_factory=dict)
    release_all: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    chunks: list[str] = field(default_factory=list)
    fail_with: Exception | None = None
    provider_calls: int = 0
    #: Save a checkpoint while the streamed text is being stored (as the chapter kind does).
    checkpoint_while_flushing: bool = False

    def release(self, novel_id: int) -> None:
        self.releases.setdefault(novel_id, asyncio.Event()).set()

    async def wait_started(self, count: int, timeout: float = 10) -> None:
        async def enough() -> None:
            async with self.changed:
                await self.changed.wait_for(lambda: len(self.started) >= count)

        await asyncio.wait_for(enough(), timeout)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def generate(self, ctx: GenerationContext) -> GateResult:
        novel_id = ctx.novel.id
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await ctx.progress.update(10, "started")
            self.started.append(novel_id)  # counted as started once its first progress is stored
            await self._notify()
            for text in self.chunks:
                await ctx.progress.chunk(text)
            if self.checkpoint_while_flushing:
                await asyncio.gather(ctx.progress.flush(), ctx.checkpoint_save({"written": len(self.chunks)}))
            if self.fail_with is not None:
                await retry_transient(ctx, self._call_provider(ctx))
            event = self.releases.setdefault(novel_id, asyncio.Event())
            waits = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(self.release_all.wait())}
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
            await ctx.progress.update(90, "finishing")
            label = ctx.params.label
            return GateResult(label=label, text="".join(self.chunks))
        except asyncio.CancelledError:
            self.cancelled.append(novel_id)
            raise
        finally:
            self.running -= 1
            await self._notify()

    def _call_provider(self, ctx: GenerationContext) -> Any:
        async def call() -> GateResult:
            self.provider_calls += 1
            error = self.fail_with
            if error is not None and self.provider_calls == 1:
                raise error
            return GateResult(label="ok")

        return call

    def kind(self, task_type: str = "generate_outline") -> TaskKind:
        async def apply(session: Any, novel_id: int, params: Any, result: Any) -> None:
            # One character per applied result: counting them proves exactly-once.
            session.add(Character(novel_id=novel_id, name=f"applied-{result.label}", role="", description=""))

        return TaskKind(
            task_type=task_type,
            params=GateParams,
            result=GateResult,
            generate=self.generate,
            apply=apply,
            streams_text=True,
        )


async def applied_count(db: Any, novel_id: int) -> int:
    async with db.read_session() as session:
        rows = (await session.execute(select(Character).where(Character.novel_id == novel_id))).scalars().all()
        return sum(1 for c in rows if c.name.startswith("applied-"))


class NullProvider:
    """A provider for kinds that never ask a model (engine tests, engine benchmarks): asking one is a bug."""

    name = "null"
    is_demo = True

    async def generate_json(self, prompt: Prompt, schema: type[BaseModel]) -> Completion:
        raise ProviderError("no model here", transient=False)

    async def stream_text(self, prompt: Prompt) -> AsyncIterator[Completion]:
        raise ProviderError("no model here", transient=False)
        yield Completion("")  # pragma: no cover

    async def aclose(self) -> None:
        return None


async def wait_for_status(
    api: Any, headers: dict[str, str], task_id: str, statuses: set[str], timeout: float = 10
) -> dict[str, Any]:
    """Poll the task with a deadline until it reaches one of ``statuses``."""
    task: dict[str, Any] = {}

    async def reached() -> bool:
        task.update((await api.client.get(f"/api/tasks/{task_id}", headers=headers)).json())
        return task["status"] in statuses

    await until(reached, timeout, f"task {task_id} reaches {statuses}")
    return task


async def two_instances(postgres_url: str) -> AsyncIterator[tuple[Any, Any, Gate, Gate]]:
    """Two app instances on one PostgreSQL database, one slot each, each running its own Gate kind,
    both listening for the other's notifications."""
    from tests.conftest import make_api

    settings = Settings(
        database_url=postgres_url,
        secret_key="shared-secret-key-for-two-instances-0123456789",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        max_concurrency=1,
    )
    gate_a, gate_b = Gate(), Gate()
    common = {"provider": NullProvider(), "retry": RetryPolicy(base=0.01)}
    async for a in make_api(settings, kinds={"generate_outline": gate_a.kind()}, **common):
        async for b in make_api(settings, kinds={"generate_outline": gate_b.kind()}, **common):
            await asyncio.wait_for(a.services.supervisor.listener.ready.wait(), 10)
            await asyncio.wait_for(b.services.supervisor.listener.ready.wait(), 10)
            yield a, b, gate_a, gate_b


async def first_to_start(a: Any, b: Any, gate_a: Gate, gate_b: Gate, timeout: float = 10) -> tuple[Any, Any]:
    """(runner, other) of two instances, once one of them has started the first task.

    A submit wakes its own instance at once and the other through the notification:
    either may claim it, so a test must not assume which.
    """
    waits = [
        asyncio.ensure_future(gate_a.wait_started(1, timeout)),
        asyncio.ensure_future(gate_b.wait_started(1, timeout)),
    ]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    assert len(gate_a.started) + len(gate_b.started) == 1, (gate_a.started, gate_b.started)
    return (a, b) if gate_a.started else (b, a)
