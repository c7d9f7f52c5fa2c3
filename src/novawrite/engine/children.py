"""A batch's children, as its generator reaches them (``generators.base.ChildTasks``).

A child is queued by the store's own insert (the API's submit path, with
``parent_id``), and only while the batch is still this process's (a batch runner
paused past its lease, whose batch another process took over, queues nothing: it
gets ``LeaseLost``), so it is an ordinary task: it queues, is claimed fairly, streams
and is applied like any other. Waiting for its end listens on this process's bus
(on PostgreSQL other processes' events are relayed onto it) and reads the child
again at each terminal event, and at least every ``recheck`` seconds, so a missed
event only delays the batch.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from novawrite.db import raw
from novawrite.db.models import TaskStatus, utcnow
from novawrite.engine.bus import EventBus
from novawrite.engine.events import TERMINAL_KINDS
from novawrite.engine.store import Claimed, LeaseLost, TaskStore
from novawrite.generators.base import ChildEnd, NovelGone, TaskStopped
from novawrite.providers.base import Usage

QUEUED = "Queued"  # a child's first message, as any submit's


class StoreChildren:
    def __init__(
        self,
        store: TaskStore,
        bus: EventBus,
        batch: Claimed,
        *,
        owner: str,
        wake: Callable[[], None],
        cancel_local: Callable[[str], bool],
        recheck: float = 2.0,
    ) -> None:
        self.store = store
        self.bus = bus
        self.batch = batch
        self.batch_id = batch.id
        self.owner = owner
        self._wake = wake
        self._cancel_local = cancel_local
        self._recheck = recheck
        #: The child being waited for (cancelled with the batch).
        self.current: str | None = None

    async def find(self, scope: int) -> str | None:
        return await self.store.child_in_scope(self.batch_id, scope)

    async def submit(self, task_type: str, scope: int, params: dict[str, object]) -> str:
        task_id = str(uuid.uuid4())
        try:
            inserted = await self.store.insert_task(
                task_id=task_id,
                user_id=self.batch.user_id,
                novel_id=self.batch.novel_id,
                task_type=task_type,
                scope=scope,
                message=QUEUED,
                params=dict(params),
                attempt=1,
                retry_of=None,
                idempotency_key=None,
                request_hash=None,
                now=utcnow(),
                parent_id=self.batch_id,
                parent_owner=self.owner,
            )
        except raw.IntegrityError:
            active = await self.store.active_in_scope(self.batch.novel_id, task_type, scope)
            if active is None:
                raise NovelGone("the novel was deleted") from None
            raise TaskStopped("chapter_failed", f"Chapter {scope} is already being written by task {active}") from None
        if inserted is None:
            raise LeaseLost(self.batch_id)  # the batch is another process's now: it queues the chapter
        self.current = task_id
        self._wake()
        return task_id

    async def read(self, child_id: str) -> ChildEnd:
        state = await self.store.child_state(child_id)
        if state is None:
            raise NovelGone(f"child task {child_id} is gone (its novel was deleted)")
        usage = state["usage"] or {}
        return ChildEnd(
            status=state["status"],
            result=state["result"],
            error=state["error"],
            usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("output_tokens", 0))),
        )

    async def wait(self, child_id: str) -> ChildEnd:
        self.current = child_id
        while True:
            async with self.bus.task(child_id) as events:  # subscribed before the read: no end is missed
                while True:
                    end = await self.read(child_id)
                    if TaskStatus(end.status).finished:
                        self.current = None
                        return end
                    while True:
                        event = await events.get(self._recheck)
                        if event is None or event.kind in TERMINAL_KINDS:
                            break
                    if events.dropped or events.closed:
                        break
            await asyncio.sleep(0.2)  # the bus dropped this reader (or is closing): subscribe again

    async def cancel_current(self) -> None:
        """The batch was cancelled: cancel the child it waits for (here, or by flag in its process)."""
        child_id = self.current
        if child_id is None:
            return
        await self.store.request_cancel(self.batch.user_id, child_id)
        self._cancel_local(child_id)
