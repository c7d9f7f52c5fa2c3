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

Live events reach a group of readers (one task's, one user's) as they come, the readers
woken at each publish, until the group is ``pace_from`` readers strong. From there the
group is paced: a publish wakes its readers at once only if the group's last wake-up
was ``pace_per_reader`` x its size ago or more (5,000 readers: 500 ms); otherwise the
event waits in their queues and one timer wakes them all then, each reader sending
every event waiting for it in one write. A wake-up and its write cost about 25 µs a
reader, so a paced group's wake-ups take at most about a quarter of the process.
With 5,000 readers of one task publishing 20 events a second, waking each reader
per event needed 2.5 cores: the wake-ups crowded out the task itself, and every
event came later than the one before (p99 21 s; paced: 0.6 s, ``scripts/bench
fanout``). A reader that is behind is not held: it takes what is queued without
waiting.

The bus remembers the last seq it published of each task (``last_seq``), so the
PostgreSQL listener can publish what it missed while it was reconnecting, and
nothing twice. A finished task is forgotten a minute after its terminal event
(``ENDED_KEPT_SECONDS``), so the memory follows the tasks in progress.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from novawrite.engine.events import TaskEvent

#: How long the bus keeps the last seq of a task after its terminal event.
ENDED_KEPT_SECONDS = 60.0
#: Readers of one task (or user) in this process from which their wake-ups are paced.
PACE_FROM = 2_000
#: Seconds between a paced group's wake-ups, per reader in the group.
PACE_PER_READER = 100e-6


class Subscription:
    """One reader's view of the bus.

    Waiting is one future per wait and one timer: with a thousand readers of one
    task, the cost of a wake-up is paid a thousand times per event.
    """

    __slots__ = ("_queue", "_limit", "_waiter", "_poked", "dropped", "closed")

    def __init__(self, limit: int) -> None:
        self._queue: deque[TaskEvent] = deque()
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None
        self._poked = False
        self.dropped = False
        self.closed = False

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _offer(self, event: TaskEvent, wake: bool = True) -> bool:
        if self.closed:
            return False
        if len(self._queue) >= self._limit:
            self.dropped = True
            self._queue.clear()
            self._wake()
            return False
        self._queue.append(event)
        if wake:
            self._wake()
        return True

    def close(self) -> None:
        self.closed = True
        self._wake()

    def poke(self) -> None:
        """Make the current (or next) ``get`` return None now, even with nothing queued."""
        self._poked = True
        self._wake()

    def ready(self) -> TaskEvent | None:
        """The next event if one is queued, without waiting (None: none, or dropped)."""
        if self.dropped or not self._queue:
            return None
        return self._queue.popleft()

    async def get(self, timeout: float | None = None) -> TaskEvent | None:
        """The next event, or None on timeout, poke, drop or close (check ``dropped``/``closed``).

        A stream waits without a timeout (a timer per wait costs as much as the rest of
        a delivery) and is poked by one timer of its own when it must ping.
        """
        if not self._queue and not self.dropped and not self.closed and not self._poked:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(timeout, self._wake) if timeout is not None else None
            try:
                await waiter
            finally:
                if timer is not None:
                    timer.cancel()
                self._waiter = None
        self._poked = False
        return self.ready()


class _Subscribed:
    """A subscription for the span of an ``async with`` (a class, not a generator-based context
    manager: one is held by every open stream)."""

    __slots__ = ("_bus", "_index", "_key", "_subscription")

    def __init__(self, bus: EventBus, index: dict[Any, set[Subscription]], key: object) -> None:
        self._bus = bus
        self._index = index
        self._key = key
        self._subscription = Subscription(bus.queue_size)
        if bus.closed:  # the server is shutting down
            self._subscription.close()

    async def __aenter__(self) -> Subscription:
        self._index.setdefault(self._key, set()).add(self._subscription)
        return self._subscription

    async def __aexit__(self, *_: object) -> None:
        self._subscription.close()
        group = self._index.get(self._key)
        if group is not None:
            group.discard(self._subscription)
            if not group:
                del self._index[self._key]
                self._bus._group_ended(self._index, self._key)


class _Pace:
    """A paced group's wake-ups: when the last was, and the timer of the next one."""

    __slots__ = ("last_wake", "timer")

    def __init__(self) -> None:
        self.last_wake = float("-inf")
        self.timer: Any = None


class EventBus:
    def __init__(
        self,
        queue_size: int = 256,
        *,
        pace_from: int = PACE_FROM,
        pace_per_reader: float = PACE_PER_READER,
        clock: Callable[[], float] | None = None,
        call_at: Callable[[float, Callable[[], None]], Any] | None = None,
    ) -> None:
        """``clock`` and ``call_at`` (the running loop's by default) time the pacing."""
        self.queue_size = queue_size
        self.pace_from = pace_from
        self.pace_per_reader = pace_per_reader
        self._clock = clock
        self._call_at = call_at
        self._paces: dict[tuple[bool, object], _Pace] = {}
        self._by_task: dict[str, set[Subscription]] = {}
        self._by_user: dict[int, set[Subscription]] = {}
        self.published = 0
        self.published_by_kind: dict[str, int] = {}
        self.dropped = 0
        self.closed = False
        self._watchers: list[Callable[[str | None], None]] = []
        self._last_seq: dict[str, int] = {}
        self._ended: deque[tuple[float, str]] = deque()  # (when, task id) of terminal events, oldest first

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._by_task.values()) + sum(len(s) for s in self._by_user.values())

    @property
    def subscribed_tasks(self) -> list[str]:
        """The tasks with a live per-task subscriber in this process."""
        return list(self._by_task)

    @property
    def subscribed_users(self) -> list[int]:
        """The users with a live per-user subscriber in this process."""
        return list(self._by_user)

    def watches(self, task_id: str, user_id: int | None) -> bool:
        """Whether a live subscriber here would receive an event of this task (of this user's)."""
        return task_id in self._by_task or (user_id is not None and user_id in self._by_user)

    def last_seq(self, task_id: str) -> int | None:
        """The highest seq of the task published here (None: none, or it ended over a minute ago)."""
        return self._last_seq.get(task_id)

    def passed_by(self, task_id: str) -> None:
        """An event of the task went by unpublished (nobody here watched it): forget its last seq, so
        that one published later is read alone, not with every one this process let pass."""
        self._last_seq.pop(task_id, None)

    def on_change(self, watcher: Callable[[str | None], None]) -> None:
        self._watchers.append(watcher)

    def changed(self, task_id: str | None) -> None:
        """A task changed without an event (``None``: any task may have)."""
        for watcher in self._watchers:
            watcher(task_id)

    def publish(self, event: TaskEvent) -> None:
        self.published += 1
        self.published_by_kind[event.kind] = self.published_by_kind.get(event.kind, 0) + 1
        if event.seq > self._last_seq.get(event.task_id, 0):
            self._last_seq[event.task_id] = event.seq
        if event.terminal:
            self._ended_now(event.task_id)
        for watcher in self._watchers:
            watcher(event.task_id)
        indexes: tuple[tuple[dict[Any, set[Subscription]], object], ...] = (
            (self._by_task, event.task_id),
            (self._by_user, event.user_id),
        )
        for index, key in indexes:
            group = index.get(key)
            if group:
                wake = len(group) < self.pace_from or self._wake_now(index, key, len(group))
                for subscription in tuple(group):
                    if not subscription._offer(event, wake) and subscription.dropped:
                        self.dropped += 1
                        group.discard(subscription)

    def _wake_now(self, index: dict[Any, set[Subscription]], key: object, readers: int) -> bool:
        """A paced group: whether this publish wakes its readers; if not, the timer that will."""
        pace_key = (index is self._by_task, key)
        pace = self._paces.get(pace_key)
        if pace is None:
            pace = self._paces[pace_key] = _Pace()
        if pace.timer is not None:
            return False
        now = self._now()
        due = pace.last_wake + readers * self.pace_per_reader
        if now >= due:
            pace.last_wake = now
            return True
        pace.timer = self._at(due, lambda: self._paced_wake(index, key, pace))
        return False

    def _paced_wake(self, index: dict[Any, set[Subscription]], key: object, pace: _Pace) -> None:
        pace.timer = None
        pace.last_wake = self._now()
        group = index.get(key, ())
        for subscription in group:
            if subscription._queue:  # not one that joined since, or took its events while behind
                subscription._wake()
        if len(group) < self.pace_from:  # no longer a crowd: its next event goes out at once
            self._paces.pop((index is self._by_task, key), None)

    def _group_ended(self, index: dict[Any, set[Subscription]], key: object) -> None:
        """The last reader of a group left: its pacing, if it had any, goes with it."""
        pace = self._paces.pop((index is self._by_task, key), None)
        if pace is not None and pace.timer is not None:
            pace.timer.cancel()

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def _at(self, when: float, callback: Callable[[], None]) -> Any:
        if self._call_at is not None:
            return self._call_at(when, callback)
        return asyncio.get_running_loop().call_at(when, callback)

    def _ended_now(self, task_id: str) -> None:
        now = time.monotonic()
        ended = self._ended
        while ended and ended[0][0] < now - ENDED_KEPT_SECONDS:
            self._last_seq.pop(ended.popleft()[1], None)
        ended.append((now, task_id))

    def task(self, task_id: str) -> _Subscribed:
        """``async with bus.task(id) as subscription``: that task's events while inside."""
        return _Subscribed(self, self._by_task, task_id)

    def user(self, user_id: int) -> _Subscribed:
        """``async with bus.user(id) as subscription``: all of that user's task events while inside."""
        return _Subscribed(self, self._by_user, user_id)

    def close_all(self) -> None:
        """Server shutdown: end every stream, and every one opened from now on."""
        self.closed = True
        for pace in self._paces.values():
            if pace.timer is not None:
                pace.timer.cancel()
        self._paces.clear()
        for index in (self._by_task, self._by_user):
            for group in index.values():
                for subscription in group:
                    subscription.close()
