"""The in-process event bus: per-task and per-user subscribers with bounded queues.

Publishing never waits: each subscriber has a bounded queue of references to
already-encoded events. A subscriber whose queue is full is dropped (its stream
ends and the client catches up from the database with Last-Event-ID), so a slow
reader can neither slow a generator nor grow memory without bound.

Across processes (PostgreSQL) ``novawrite.engine.notify`` feeds events that other
processes stored into ``publish`` here.

Whoever keeps a copy of task state (the polling cache) registers ``on_change``:
it is told the task of every published event, of every change that has no event
(a cancel request on a running task), and ``None`` when any task may have changed
(a novel deleted, or events possibly missed while the PostgreSQL listener reconnected).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from novawrite.engine.events import TaskEvent


class Subscription:
    """One reader's view of the bus.

    Waiting is one future per wait and one timer: with a thousand readers of one
    task, the cost of a wake-up is paid a thousand times per event.
    """

    __slots__ = ("_queue", "_limit", "_waiter", "dropped", "closed")

    def __init__(self, limit: int) -> None:
        self._queue: deque[TaskEvent] = deque()
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None
        self.dropped = False
        self.closed = False

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _offer(self, event: TaskEvent) -> bool:
        if self.closed:
            return False
        if len(self._queue) >= self._limit:
            self.dropped = True
            self._queue.clear()
            self._wake()
            return False
        self._queue.append(event)
        self._wake()
        return True

    def close(self) -> None:
        self.closed = True
        self._wake()

    async def get(self, timeout: float) -> TaskEvent | None:
        """The next event, or None on timeout, drop or close (check ``dropped``/``closed``)."""
        if not self._queue and not self.dropped and not self.closed:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(timeout, self._wake)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        if self.dropped or not self._queue:
            return None
        return self._queue.popleft()


class EventBus:
    def __init__(self, queue_size: int = 256) -> None:
        self.queue_size = queue_size
        self._by_task: dict[str, set[Subscription]] = {}
        self._by_user: dict[int, set[Subscription]] = {}
        self.published = 0
        self.published_by_kind: dict[str, int] = {}
        self.dropped = 0
        self._watchers: list[Callable[[str | None], None]] = []

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._by_task.values()) + sum(len(s) for s in self._by_user.values())

    def on_change(self, watcher: Callable[[str | None], None]) -> None:
        self._watchers.append(watcher)

    def changed(self, task_id: str | None) -> None:
        """A task changed without an event (``None``: any task may have)."""
        for watcher in self._watchers:
            watcher(task_id)

    def publish(self, event: TaskEvent) -> None:
        self.published += 1
        self.published_by_kind[event.kind] = self.published_by_kind.get(event.kind, 0) + 1
        for watcher in self._watchers:
            watcher(event.task_id)
        for group in (self._by_task.get(event.task_id), self._by_user.get(event.user_id)):
            if group:
                for subscription in tuple(group):
                    if not subscription._offer(event) and subscription.dropped:
                        self.dropped += 1
                        group.discard(subscription)

    @asynccontextmanager
    async def task(self, task_id: str) -> AsyncIterator[Subscription]:
        async with self._subscribe(self._by_task, task_id) as subscription:
            yield subscription

    @asynccontextmanager
    async def user(self, user_id: int) -> AsyncIterator[Subscription]:
        async with self._subscribe(self._by_user, user_id) as subscription:
            yield subscription

    @asynccontextmanager
    async def _subscribe(self, index: dict, key: object) -> AsyncIterator[Subscription]:  # type: ignore[type-arg]
        subscription = Subscription(self.queue_size)
        index.setdefault(key, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscription.close()
            group = index.get(key)
            if group is not None:
                group.discard(subscription)
                if not group:
                    del index[key]

    def close_all(self) -> None:
        """Server shutdown: end every stream."""
        for index in (self._by_task, self._by_user):
            for group in index.values():
                for subscription in group:
                    subscription.close()
