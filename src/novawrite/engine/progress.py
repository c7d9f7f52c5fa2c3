"""The progress reporter a running generator writes through.

Each event is stored (task row + task_events row, one transaction) and then
published, by the store. While text streams, a task writes at most once per
``flush_seconds``: pieces, and progress changes made while text waits, go out
together in the next chunk event, ``flush_seconds`` after the previous write
(only ``flush_bytes`` of waiting text forces an earlier one); a progress change
with no text waiting then also waits for the end of the interval. Before any
text (the outline and list kinds), a progress change is stored at once, so each
step of the work is an event of its own. Progress never goes down within an
attempt and stays below 100 until the task completes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from novawrite.engine.events import EventKind
from novawrite.engine.store import Claimed, TaskStore

log = logging.getLogger("novawrite.engine")


class TaskProgress:
    def __init__(
        self,
        store: TaskStore,
        task: Claimed,
        owner: str,
        *,
        usage: Callable[[], dict[str, int] | None],
        flush_seconds: float = 0.25,
        flush_bytes: int = 2048,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._clock = clock
        self._task = task
        self._owner = owner
        self._usage = usage
        self._flush_seconds = flush_seconds
        self._flush_bytes = flush_bytes
        self.progress = 0
        self.message = ""
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._progress_waiting = False  # a progress change not stored yet
        self._streaming = False  # text has come: writes keep to the flush schedule
        self._timer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        # ``clock`` (time.monotonic) of the last write: set as it starts and again once stored. Not
        # the loop's clock: uvloop's is cached per loop iteration at millisecond resolution, and
        # a write on SQLite takes less than that.
        self.last_write = -float("inf")
        #: When the last write that was stored started: the task's lease runs from then (each
        #: event write renews it), as the supervisor's lease keeper counts it.
        self.confirmed = -float("inf")
        self.writes = 0

    async def update(self, percent: int, message: str) -> None:
        percent = max(self.progress, min(99, int(percent)))
        if percent == self.progress and message == self.message:
            return
        self.progress, self.message = percent, message
        self._progress_waiting = True
        if self._pending or (self._streaming and self._clock() - self.last_write < self._flush_seconds):
            self._schedule()  # the next write carries it, on the text's schedule
        else:
            await self.flush()

    async def chunk(self, text: str) -> None:
        if not text:
            return
        self._streaming = True
        self._pending.append(text)
        self._pending_bytes += len(text.encode())
        if self._pending_bytes >= self._flush_bytes:
            await self.flush()
        else:
            self._schedule()

    def _schedule(self) -> None:
        if self._timer is None:
            self._timer = asyncio.create_task(self._flush_later(), name=f"flush {self._task.id}")

    async def _flush_later(self) -> None:
        # A write in flight moves last_write on: wait again until flush_seconds after it.
        # The deadline moves with every write: there is no event to wait on.
        while (wait := self.last_write + self._flush_seconds - self._clock()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)
        self._timer = None
        try:
            await self.flush()
        except Exception:
            # The generator's own next write (or the runner's final one) sees the same failure.
            log.warning("deferred flush of task %s failed", self._task.id, exc_info=True)

    async def flush(self) -> None:
        """Store and publish buffered text now."""
        if self._timer is not None and self._timer is not asyncio.current_task():
            self._timer.cancel()
            self._timer = None
        async with self._lock:
            if not self._pending:
                if self._progress_waiting:
                    await self._write(EventKind.PROGRESS, None)
                return
            count = len(self._pending)
            text = "".join(self._pending)
            seq = self._task.seq
            try:
                await self._write(EventKind.CHUNK, text)
            finally:
                # Dropped once stored, and only then: a failed write keeps the text for the next
                # try. A write cancelled while it waited (a cancel, a shutdown) may have been stored
                # all the same (the store then moves the task's seq on): its text must not go twice.
                if self._task.seq != seq:
                    del self._pending[:count]
                    self._pending_bytes = sum(len(p.encode()) for p in self._pending)

    async def save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the generator's checkpoint. Under the write lock: the checkpoint is guarded
        by the task's seq, and a text write in flight (a deferred flush) moves the seq on."""
        async with self._lock:
            await self._store.save_checkpoint(self._task, self._owner, checkpoint)

    async def _write(self, kind: EventKind, text: str | None) -> None:
        # with self._lock held
        self.last_write = started = self._clock()  # a write in flight counts as recent
        self._progress_waiting = False  # every event carries the current progress
        try:
            await self._store.record(
                self._task, self._owner, kind, self.progress, self.message, text=text, usage=self._usage()
            )
        except BaseException:
            self._progress_waiting = True
            raise
        self.writes += 1
        self.confirmed = started
        self.last_write = self._clock()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
