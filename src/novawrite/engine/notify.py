"""Events across processes on PostgreSQL: LISTEN/NOTIFY carrying only (task, seq).

Every event insert on PostgreSQL also calls ``pg_notify`` in the same transaction
(``TaskStore``), so a notification is delivered exactly when the event is
committed. Each process listens on one dedicated connection; for a notification
from another process it reads the event row and publishes it on its own bus, so
any process can serve any client's stream. A new task's notification also wakes
the local dispatcher. SQLite has one process by design and needs none of this.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from novawrite.engine.bus import EventBus
from novawrite.engine.store import ANY_TASK, CHANNEL, TaskStore

log = logging.getLogger("novawrite.engine")


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class PgListener:
    def __init__(self, url: str, store: TaskStore, bus: EventBus, wake: Callable[[], None]) -> None:
        self._dsn = asyncpg_dsn(url)
        self._store = store
        self._bus = bus
        self._wake = wake
        self._task: asyncio.Task[None] | None = None
        self._fetches: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="pg listener")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._fetches) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                conn = await asyncpg.connect(self._dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("event listener cannot connect (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
                continue
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _, lost=lost: lost.set())
            try:
                await conn.add_listener(CHANNEL, self._on_notify)
                delay = 0.5
                self.ready.set()
                # Whatever happened while we were not listening: wake the dispatcher,
                # and let go of any cached task state.
                self._wake()
                self._bus.changed(None)
                await lost.wait()
                log.warning("event listener lost its connection; reconnecting")
            finally:
                self.ready.clear()
                if not conn.is_closed():
                    await conn.close(timeout=2)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        origin, _, rest = payload.partition(" ")
        if origin == self._store.origin:
            return  # our own event, already published when it was committed
        task_id, _, seq = rest.partition(" ")
        if seq == "0":
            self._bus.changed(None if task_id == ANY_TASK else task_id)
            return
        if seq == "1":
            self._wake()  # a task submitted to another process
        fetch = asyncio.create_task(self._publish(task_id, int(seq)), name=f"fetch {task_id}:{seq}")
        self._fetches.add(fetch)
        fetch.add_done_callback(self._fetches.discard)

    async def _publish(self, task_id: str, seq: int) -> None:
        try:
            event = await self._store.event(task_id, seq)
        except Exception:
            log.warning("could not read event %s:%s", task_id, seq, exc_info=True)
            return
        if event is not None:
            self._bus.publish(event)
