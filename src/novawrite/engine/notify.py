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

A process relays only what one of its subscribers would receive (the task's or
its user's stream, ``EventBus.watches``): for any other event it only lets go of the
task's cached state. Without that, every process read every event of the cluster
back from the database, and two processes ran fewer tasks per second than one. A
stream opened later replays from the database, so skipping leaves no gap.

The payload is ``"origin task_id seq user_id pending kind data"`` (``notification``/
``parse_notification``, the only two places that know it): seq 0 says a task changed
without an event, and task ``*`` that any task may have; ``pending`` (1 or 0) says the
event made the task pending (a submit, a task given back), which wakes the dispatcher.
``kind`` and ``data`` carry the event itself when it fits in PostgreSQL's payload
limit (8,000 bytes; ``WHOLE_EVENT_BYTES``), so relaying it reads nothing; a larger one
(a long chunk) is read back from the database.
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
from novawrite.engine.events import EventKind, TaskEvent

if TYPE_CHECKING:
    from novawrite.engine.store import TaskStore

log = logging.getLogger("novawrite.engine")

CHANNEL = "novawrite_events"
ANY_TASK = "*"
#: Events stored this long before the listener last heard anything count as possibly missed
#: (another process's clock, a commit that took a while).
CATCH_UP_MARGIN = timedelta(seconds=5)


#: An event whose SSE frame is shorter than this travels whole in its notification (the
#: frame holds the data; the rest of the payload is well under 500 bytes).
WHOLE_EVENT_BYTES = 7_000


class Notification(NamedTuple):
    origin: str  # the store (process) that committed it
    task_id: str | None  # None: any task may have changed
    seq: int  # 0: changed without an event
    user_id: int | None = None  # whose task (None: not said)
    pending: bool = False  # the event made the task pending
    kind: str | None = None  # the event itself, when it fits
    data: str | None = None

    def event(self) -> TaskEvent | None:
        """The event, when the notification carried it whole."""
        if self.task_id is None or self.user_id is None or self.kind is None or self.data is None:
            return None
        return TaskEvent.of(self.task_id, self.user_id, self.seq, self.kind, self.data)


def notification(
    origin: str,
    task_id: str | None,
    seq: int,
    user_id: int | None = None,
    pending: bool = False,
    whole: tuple[str, str] | None = None,
) -> str:
    """The NOTIFY payload for a committed event (``seq``; ``whole``: its kind and data) or a change without one (0)."""
    head = f"{origin} {task_id or ANY_TASK} {seq} {user_id or 0} {int(pending)}"
    return head if whole is None else f"{head} {whole[0]} {whole[1]}"


def event_notification(origin: str, event: TaskEvent) -> str:
    """The NOTIFY payload for a committed event, carrying it whole when it fits."""
    pending = event.kind == EventKind.STATUS and orjson.loads(event.data)["status"] == TaskStatus.PENDING
    whole = (event.kind, event.data) if len(event.wire) < WHOLE_EVENT_BYTES else None
    return notification(origin, event.task_id, event.seq, event.user_id, pending, whole)


def claim_payload_sql(origin: str, task_id: str, seq: str, user_id: str, data: str) -> str:
    """PostgreSQL: the SQL expression whose text is ``event_notification`` of a claim's ``running`` event
    (not pending; carried whole: it is short), of the parameter and columns named."""
    return f"{origin} || ' ' || {task_id} || ' ' || {seq} || ' ' || {user_id} || ' 0 {EventKind.STATUS} ' || {data}"


def parse_notification(payload: str) -> Notification:
    parts = payload.split(" ", 6)
    origin, task_id, seq, user_id, pending = (parts + ["0", "0"])[:5]
    kind, data = (parts[5], parts[6]) if len(parts) == 7 else (None, None)
    return Notification(
        origin, None if task_id == ANY_TASK else task_id, int(seq), int(user_id) or None, pending == "1", kind, data
    )


class PgListener:
    def __init__(self, url: str, store: TaskStore, wake: Callable[[int | None], None]) -> None:
        """``wake(user_id)``: a task of that user became pending elsewhere (None: anything may have changed)."""
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
        self._wake(None)
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
        if heard.pending:
            # A new task (its first event) is its user's news; one given back (SIGTERM, sweep, a quota's
            # wait, which also set the provider's not-before) may change anything the dispatcher read.
            self._wake(heard.user_id if heard.seq == 1 else None)
        task_id, seq = heard.task_id, heard.seq
        if self._store.bus.watches(task_id, heard.user_id):
            event = heard.event()
            if event is None or not self._store.relay_now(event):
                self._track(self._relay(task_id, seq), f"fetch {task_id}:{seq}")
        else:
            self._store.bus.passed_by(task_id)
            self._store.forget(task_id)  # nobody here streams it; its cached views are stale now

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
        self._wake(None)  # one of them may have been a task given back

    async def _relay(self, task_id: str, seq: int) -> None:
        try:
            await self._store.relay(task_id, seq)
        except Exception:
            log.warning("could not read event %s:%s", task_id, seq, exc_info=True)
