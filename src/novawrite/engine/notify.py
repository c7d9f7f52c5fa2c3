"""Events across processes on PostgreSQL: LISTEN/NOTIFY carrying only (task, seq).

Every event insert on PostgreSQL also calls ``pg_notify`` in the same transaction
(``TaskStore``), so a notification is delivered exactly when the event is
committed. Each process listens on one dedicated connection; for a notification
from another process it has the store read the event row and publish it on this
process's bus, so any process can serve any client's stream. A new task's
notification also wakes the local dispatcher. SQLite has one process by design
and needs none of this.

A lost connection (``pg_terminate_backend``, a PostgreSQL restart) loses the
notifications of whatever was committed until the listener is back. So after it
listens again, the listener has the store publish what this process missed for
every stream it serves (``TaskStore.catch_up``): the tasks and users with live
subscribers on the bus, from the last seq the bus published of each task, or
for a task it never heard of, the events stored since the listener last heard
anything (minus ``CATCH_UP_MARGIN`` for the writers' clocks). The listener's
connection is named ``novawrite listener <pid>`` (``application_name``).

The payload is ``"origin task_id seq"`` (``notification``/``parse_notification``,
the only two places that know it): seq 0 says a task changed without an event,
and task ``*`` that any task may have.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

import orjson

from novawrite.db.listen import listen_forever
from novawrite.db.models import TaskStatus, utcnow
from novawrite.db.raw import asyncpg_dsn
from novawrite.engine.events import EventKind

if TYPE_CHECKING:
    from novawrite.engine.store import TaskStore

log = logging.getLogger("novawrite.engine")

CHANNEL = "novawrite_events"
ANY_TASK = "*"
#: Events stored this long before the listener last heard anything count as possibly missed
#: (another process's clock, a commit that took a while).
CATCH_UP_MARGIN = timedelta(seconds=5)


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
        #: When the listener last knew it was listening (None: it never has).
        self._heard_at: datetime | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="pg listener")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._fetches) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def _listen(self) -> None:
        await listen_forever(
            self._dsn, CHANNEL, self._on_notify, what="listener", connected=self._connected, ready=self.ready
        )

    def _connected(self) -> None:
        # Whatever happened while we were not listening: wake the dispatcher, let go of
        # any cached task state, and (after a reconnect) catch every stream up.
        self._wake()
        self._store.forget(None)
        if self._heard_at is not None:
            self._track(self._catch_up(self._heard_at - CATCH_UP_MARGIN), "listener catch-up")
        self._heard_at = utcnow()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._heard_at = utcnow()
        heard = parse_notification(payload)
        if heard.origin == self._store.origin:
            return  # our own event, already published when it was committed
        if heard.seq == 0 or heard.task_id is None:
            self._store.forget(heard.task_id)
            return
        if heard.seq == 1:
            self._wake()  # a task submitted to another process
        task_id, seq = heard.task_id, heard.seq
        self._track(self._relay(task_id, seq), f"fetch {task_id}:{seq}")

    def _track(self, work: Coroutine[None, None, None], name: str) -> None:
        fetch = asyncio.create_task(work, name=name)
        self._fetches.add(fetch)
        fetch.add_done_callback(self._fetches.discard)

    async def _catch_up(self, since: datetime) -> None:
        """Publish what other processes committed while this one did not listen."""
        bus = self._store.bus
        try:
            published = await self._store.catch_up(bus.subscribed_tasks, bus.subscribed_users, since)
        except Exception:
            log.warning("could not catch up on the events missed while reconnecting", exc_info=True)
            return
        if published:
            log.info("event listener caught up on %d missed events", published)
        self._wake()  # one of them may have been a task given back

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
