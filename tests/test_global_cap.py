"""NOVAWRITE_MAX_CONCURRENCY_GLOBAL: the generations running at once over every process on
the database never exceed it, whatever each process's own NOVAWRITE_MAX_CONCURRENCY allows.

On PostgreSQL two NovaWrite instances share the database (each allowed 2, the cluster 3); on
SQLite one instance (allowed 5, capped at 3). Every run is the engine kit's Gate, held until
the test releases it, so what runs at once is exactly what the dispatchers claimed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest

from novawrite.settings import Settings, SettingsError
from tests.conftest import Api
from tests.engine_kit import Gate, wait_for_status
from tests.test_fairness import _engine, _submit

CAP = 3


@asynccontextmanager
async def _instance(settings: Settings, gate: Gate, **changes: object) -> AsyncIterator[Api]:
    running = _engine(settings, gate, **changes)
    try:
        yield await anext(running)
    finally:
        await running.aclose()


def test_the_global_cap_is_off_unless_set() -> None:
    assert Settings.from_env({}).max_concurrency_global is None
    assert Settings.from_env({"NOVAWRITE_MAX_CONCURRENCY_GLOBAL": "8"}).max_concurrency_global == 8
    for bad in ("0", "-2", "many"):
        with pytest.raises(SettingsError, match="NOVAWRITE_MAX_CONCURRENCY_GLOBAL"):
            Settings.from_env({"NOVAWRITE_MAX_CONCURRENCY_GLOBAL": bad})


async def test_the_global_cap_holds_over_every_process(settings: Settings, backend: str) -> None:
    gate = Gate()
    async with AsyncExitStack() as stack:
        if backend == "postgres":
            apis = [
                await stack.enter_async_context(
                    _instance(settings, gate, max_concurrency=2, max_concurrency_global=CAP)
                )
                for _ in range(2)
            ]
        else:
            apis = [
                await stack.enter_async_context(
                    _instance(settings, gate, max_concurrency=5, max_concurrency_global=CAP)
                )
            ]
        h = await apis[0].register()
        novels = [(await apis[0].novel(h))["id"] for _ in range(7)]
        ids = [await _submit(apis[n % len(apis)], h, novel) for n, novel in enumerate(novels)]
        await gate.wait_started(CAP)
        # Free one run at a time: each frees exactly one place in the cluster.
        for freed in range(len(novels) - CAP):
            gate.release(gate.started[freed])
            await gate.wait_started(CAP + freed + 1)
            assert gate.running <= CAP, gate.started
        gate.release_all.set()
        for task_id in ids:
            await wait_for_status(apis[0], h, task_id, {"completed"})
    assert len(gate.started) == len(novels)
    assert gate.max_running == CAP
