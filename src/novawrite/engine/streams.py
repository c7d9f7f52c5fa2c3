"""What an event stream sends, without HTTP: a task's events after a seq, the user's live events.

``EventStreams.task`` subscribes to the bus first, then replays the stored events
with a seq greater than the one the client has, then goes live: never a duplicate
(a live event the replay already sent is skipped) and never a gap (a live event
that arrives ahead of the one expected is preceded by the missing ones, read from
the database). It ends after the terminal event; a finished task's stream replays
and ends. ``EventStreams.user`` yields a ``Snapshot`` of the user's active tasks,
then every live event of every task of the user.

Both yield ``PING`` (None) once nothing has gone out for ``ping_seconds`` (API.md:
a comment at least every 15 s while idle), and end at their lifetime
(``max_seconds``; the client reconnects with Last-Event-ID), when the bus drops
them (their reader fell behind: it catches up from the database) and when the bus
closes (server shutdown). What the items look like on the wire is the caller's
business: it passes a ``frame`` function that each item goes through (a
``TaskEvent`` carries its SSE bytes, encoded once for every reader).

``EventStreams.open`` counts the open streams of each user, in this process (each
process of a multi-process deployment counts its own): ``TooManyStreams`` past
``per_user``, and the ``Place`` it returns frees one when released.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar, overload

from novawrite.db.models import FINISHED_STATUSES
from novawrite.engine.bus import EventBus, Subscription
from novawrite.engine.events import TaskEvent
from novawrite.errors import TooManyStreams

#: What a stream yields when it should ping.
PING: Final = None
#: A user's streams are long-lived: a place frees when one of them closes, which nobody can predict.
RETRY_AFTER_SECONDS = 5


class StreamReads(Protocol):
    """The reads a stream needs (``novawrite.services.tasks.Tasks`` has them)."""

    async def replay(self, user_id: int, task_id: str, after: int) -> tuple[Any, list[TaskEvent]]:
        """The task's row (with its ``status``) and its stored events with seq > ``after``, in order;
        ``NotFound`` if it is not the user's."""
        ...

    async def active(self, user_id: int) -> list[dict[str, Any]]:
        """The user's pending and running tasks, newest first."""
        ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The per-user stream's first item: the user's active tasks."""

    items: list[dict[str, Any]]


Item = TaskEvent | Snapshot | None
F = TypeVar("F")


def _same(item: Item) -> Item:
    return item


class Place:
    """One of a user's open streams; ``release`` (idempotent) frees it."""

    __slots__ = ("_counts", "_user_id")

    def __init__(self, counts: dict[int, int], user_id: int) -> None:
        self._counts: dict[int, int] | None = counts
        self._user_id = user_id

    def release(self) -> None:
        counts, self._counts = self._counts, None
        if counts is None:
            return
        left = counts[self._user_id] - 1
        if left:
            counts[self._user_id] = left
        else:
            del counts[self._user_id]


class EventStreams:
    """The app's stream source: one per process, holding the per-user counts of open streams."""

    def __init__(
        self, bus: EventBus, reads: StreamReads, *, ping_seconds: float, max_seconds: float, per_user: int
    ) -> None:
        self.bus = bus
        self.reads = reads
        self.ping_seconds = ping_seconds
        self.max_seconds = max_seconds
        self.per_user = per_user
        self._open: dict[int, int] = {}

    def open(self, user_id: int) -> Place:
        """Take one of the user's stream places (``TooManyStreams`` when they are all taken)."""
        count = self._open.get(user_id, 0)
        if count >= self.per_user:
            raise TooManyStreams(
                f"At most {self.per_user} event streams may be open at once; close one first",
                retry_after=RETRY_AFTER_SECONDS,
            )
        self._open[user_id] = count + 1
        return Place(self._open, user_id)

    def open_count(self, user_id: int) -> int:
        return self._open.get(user_id, 0)

    @overload
    def task(self, user_id: int, task_id: str, after: int) -> AsyncIterator[TaskEvent | None]: ...
    @overload
    def task(
        self,
        user_id: int,
        task_id: str,
        after: int,
        frame: Callable[[TaskEvent | None], F],
        join: Callable[[list[F]], F] | None = None,
    ) -> AsyncIterator[F]: ...
    def task(
        self,
        user_id: int,
        task_id: str,
        after: int,
        frame: Callable[[Any], Any] = _same,
        join: Callable[[list[Any]], Any] | None = None,
    ) -> AsyncIterator[Any]:
        """The task's events with seq > ``after``: stored, then live, until its terminal event.

        ``frame`` turns each item into what the caller sends (the web layer: SSE bytes). Applied
        here rather than by an async generator around this one: every open stream holds each
        generator of its chain, and one more is 0.4 KB per stream. With ``join``, live events
        that are already queued when the stream wakes (its reader is behind) go out as one
        item, ``join`` of their frames: one send instead of one each."""
        return self._task(user_id, task_id, after, frame, join)

    async def _task(
        self,
        user_id: int,
        task_id: str,
        after: int,
        frame: Callable[[TaskEvent | None], F],
        join: Callable[[list[F]], F] | None,
    ) -> AsyncIterator[F]:
        deadline = asyncio.get_running_loop().time() + self.max_seconds
        async with self.bus.task(task_id) as subscription:  # subscribe first, then replay
            row, stored = await read_to_the_end(self.reads.replay(user_id, task_id, after))
            finished = row.status in FINISHED_STATUSES
            last, ended = after, False
            replayed: list[F] = []
            for event in stored:
                replayed.append(frame(event))
                last, ended = event.seq, event.terminal
                if ended:
                    break
            del row, stored  # an open stream keeps only what it needs
            for item in _joined(replayed, join):
                yield item
            if finished or ended:
                return
            clock = _Clock(subscription, deadline, self.ping_seconds)
            try:
                while not clock.expired():
                    live = await subscription.get()
                    if live is None:  # poked (a ping is due, or the lifetime is up), dropped or closed
                        if subscription.dropped or subscription.closed:
                            return
                        clock.sent()
                        yield frame(PING)
                        continue
                    out: list[F] = []
                    while live is not None and not ended:  # this event, then any already queued
                        if live.seq > last:
                            if live.seq > last + 1:  # published out of order: fill the gap from the database
                                _, missing = await read_to_the_end(self.reads.replay(user_id, task_id, last))
                                out.extend(frame(earlier) for earlier in missing if earlier.seq < live.seq)
                            out.append(frame(live))
                            last, ended = live.seq, live.terminal
                        live = subscription.ready() if join is not None else None
                    if out:
                        clock.sent()
                    for item in _joined(out, join):
                        yield item
                    if ended:
                        return
            finally:
                clock.stop()

    @overload
    def user(self, user_id: int) -> AsyncIterator[Item]: ...
    @overload
    def user(
        self, user_id: int, frame: Callable[[Item], F], join: Callable[[list[F]], F] | None = None
    ) -> AsyncIterator[F]: ...
    def user(
        self, user_id: int, frame: Callable[[Any], Any] = _same, join: Callable[[list[Any]], Any] | None = None
    ) -> AsyncIterator[Any]:
        """A snapshot of the user's active tasks, then the live events of all of the user's tasks
        (``frame`` and ``join`` as for ``task``)."""
        return self._user(user_id, frame, join)

    async def _user(
        self, user_id: int, frame: Callable[[Item], F], join: Callable[[list[F]], F] | None
    ) -> AsyncIterator[F]:
        deadline = asyncio.get_running_loop().time() + self.max_seconds
        async with self.bus.user(user_id) as subscription:  # subscribe first: nothing falls between
            yield frame(Snapshot(await read_to_the_end(self.reads.active(user_id))))
            clock = _Clock(subscription, deadline, self.ping_seconds)
            try:
                while not clock.expired():
                    live = await subscription.get()
                    if live is None and (subscription.dropped or subscription.closed):
                        return
                    clock.sent()
                    if live is None or join is None:
                        yield frame(live)  # None: a ping
                        continue
                    out = [frame(live)]
                    while (queued := subscription.ready()) is not None:
                        out.append(frame(queued))
                    yield _joined(out, join)[0]
            finally:
                clock.stop()


def _joined(items: list[F], join: Callable[[list[F]], F] | None) -> list[F]:
    """What goes out for ``items``: each on its own, or with ``join`` one item of them all."""
    return [join(items)] if join is not None and len(items) > 1 else items


class _Clock:
    """A stream's one timer: it pokes the subscription (whose ``get`` then returns None) when nothing
    has gone out for ``ping_seconds`` and when the stream's lifetime is up.

    One timer per stream, re-armed for when the next ping would be due, instead of a timeout on
    every wait: a timer per wait costs as much as the rest of a delivery. A class with slots, not a
    generator between the stream and its subscription: every open stream holds one.
    """

    __slots__ = ("_loop", "_subscription", "_deadline", "_ping_seconds", "_last_out", "_timer")

    def __init__(self, subscription: Subscription, deadline: float, ping_seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._subscription = subscription
        self._deadline = deadline
        self._ping_seconds = ping_seconds
        self._last_out = now = self._loop.time()
        self._timer = self._loop.call_later(max(0.0, min(now + ping_seconds, deadline) - now), self._check)

    def _check(self) -> None:
        now = self._loop.time()
        due = self._last_out + self._ping_seconds
        if now >= due or now >= self._deadline:
            self._subscription.poke()
            due = now + self._ping_seconds
        self._timer = self._loop.call_later(max(0.0, min(due, self._deadline) - now), self._check)

    def sent(self) -> None:
        """Something goes out now: the next ping is due ``ping_seconds`` from here."""
        self._last_out = self._loop.time()

    def expired(self) -> bool:
        return self._loop.time() >= self._deadline

    def stop(self) -> None:
        self._timer.cancel()


T = TypeVar("T")
_reads: set[asyncio.Task[Any]] = set()


async def read_to_the_end(read: Awaitable[T]) -> T:
    """A stream's database read, finished even if the client leaves meanwhile.

    A client leaving cancels its stream. Cancelled mid-query, SQLAlchemy throws the
    pooled connection away: a new PostgreSQL backend for every client that leaves at
    that moment, and on SQLite an error logged for the close task it abandons.
    """
    task = asyncio.ensure_future(read)
    _reads.add(task)
    task.add_done_callback(_forget)
    return await asyncio.shield(task)


def _forget(task: asyncio.Task[Any]) -> None:
    _reads.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: whoever awaited it may have left
