"""Events across processes on PostgreSQL: LISTEN/NOTIFY carrying only (task, seq).

Every event insert on PostgreSQL also calls ``pg_notify`` in the same transaction
(``TaskStore``), so a notification is delivered exactly when the event is
committed. Each process listens on one dedicated connection; for a notification
from another process it has the store read the event row and publish it on this
process's bus, so any process can serve any client's stream. A new task's
notification also wakes the local dispatcher. SQLite has one process by design
and needs none of this.

The payload is ``"origin task_id seq"`` (``notification``/``parse_notification``,
the only two places that know it): seq 0 says a task changed without an event,
and task ``*`` that any task may have.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import asyncpg
import orjson

from novawrite.db.models import TaskStatus
from novawrite.db.raw import asyncpg_dsn
from novawrite.engine.events import EventKind

if TYPE_CHECKING:
    from novawrite.engine.store import TaskStore

log = logging.getLogger("novawrite.engine")

CHANNEL = "novawrite_events"
ANY_TASK = "*"


class Notification(NamedTuple):
    origin: str  # the store (process) that committed it
    task_id: str | None  # None: any task may have changed
    seq: int  # 0: changed without an event


def notification(origin: str, task_id: str | None, seq: int) -> str:
    """The NOTIFY payload for a committed event (``seq``) or a change without one (0)."""
    return f"{origin} {task_id or ANY_TASK} {seq}"


def parse_notification(payload: str) -> Notification:
    origin, _, rest = payload.partition(" ")
    task_id, _, seq = rest.partition(" ")
    return Notification(origin, None if task_id == ANY_TASK else task_id, int(seq))


class PgListener:
    def __init__(self, url: str, store: TaskStore, wake: Callable[[], None]) -> None:
        self._dsn = asyncpg_dsn(url)
        self._store = store
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
                self._store.forget(None)
                await lost.wait()
                log.warning("event listener lost its connection; reconnecting")
            finally:
                self.ready.clear()
                if not conn.is_closed():
                    await conn.close(timeout=2)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        heard = parse_notification(payload)
        if heard.origin == self._store.origin:
            return  # our own event, already published when it was committed
        if heard.seq == 0 or heard.task_id is None:
            self._store.forget(heard.task_id)
            return
        if heard.seq == 1:
            self._wake()  # a task submitted to another process
        task_id, seq = heard.task_id, heard.seq
        fetch = asyncio.create_task(self._relay(task_id, seq), name=f"fetch {task_id}:{seq}")
        self._fetches.add(fetch)
        fetch.add_done_callback(self._fetches.discard)

    async def _relay(self, task_id: str, seq: int) -> None:
        try:
            event = await self._store.relay(task_id, seq)
        except Exception:
            log.warning("could not read event %s:%s", task_id, seq, exc_info=True)
            return
        if (
            event is not None
            and event.kind == EventKind.STATUS
            and orjson.loads(event.data)["status"] == TaskStatus.PENDING
        ):
            self._wake()  # a task another process gave back (SIGTERM) or requeued (sweep): claim it now
