"""The polling cache: each task's API body, encoded once, with its ETag.

``GET /api/tasks/{id}`` is the hottest route: clients poll it every second or
two. A task changes only at its events (and a cancel request), and every event
passes through this process's bus, including those other processes committed
(PostgreSQL NOTIFY). So the body is read from the database and encoded once per
change; every poll in between is a dictionary lookup and an owner check, and a
matching ``If-None-Match`` compares two strings. A finished task never changes
again, so its entry stays until it is evicted (least recently polled first), when
the cache holds more than ``capacity`` bodies or more than ``budget`` bytes: a
finished chapter's body carries its text, tens of KB, so a count alone would let
the cache grow to hundreds of MB.

The one race: a poll reads the row, an event commits and invalidates, then the
poll stores what it read before the event. Each read therefore takes a token
first, invalidation takes the token away, and a read whose token is gone does
not store its (possibly older) body.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

DEFAULT_CAPACITY = 20_000
DEFAULT_BUDGET = 32 * 2**20
#: Bytes an entry costs beside its body: the TaskBody, its ETag, the prepared headers, the dict slot.
ENTRY_OVERHEAD = 400


@dataclass(slots=True)
class TaskBody:
    """A task's JSON body and its ETag, made once per change of the task.

    ``prepared`` is the caller's to fill with what it derives from this body once
    (the web layer keeps the encoded response headers there); this module never
    reads it, and it goes with the body at the task's next change.
    """

    user_id: int
    body: bytes
    etag: str
    prepared: Any = None

    @classmethod
    def of(cls, user_id: int, body: bytes) -> TaskBody:
        return cls(user_id, body, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"')

    @property
    def cost(self) -> int:
        return len(self.body) + ENTRY_OVERHEAD


class TaskViews:
    def __init__(self, capacity: int = DEFAULT_CAPACITY, budget: int = DEFAULT_BUDGET) -> None:
        self.capacity = capacity
        self.budget = budget
        self._bodies: OrderedDict[str, TaskBody] = OrderedDict()
        self._reads: dict[str, object] = {}
        self._cost = 0

    def __len__(self) -> int:
        return len(self._bodies)

    @property
    def cost(self) -> int:
        """What the cached bodies cost, in bytes (as :attr:`TaskBody.cost` counts them)."""
        return self._cost

    def get(self, task_id: str) -> TaskBody | None:
        body = self._bodies.get(task_id)
        if body is not None:
            self._bodies.move_to_end(task_id)
        return body

    def begin_read(self, task_id: str) -> object:
        token = object()
        self._reads[task_id] = token
        return token

    def end_read(self, task_id: str, token: object, body: TaskBody | None) -> None:
        """Store what the read found, unless the task changed while it was read."""
        if self._reads.get(task_id) is not token:
            return
        del self._reads[task_id]
        self._forget(task_id)
        if body is None or body.cost > self.budget:
            return
        self._bodies[task_id] = body
        self._cost += body.cost
        while len(self._bodies) > self.capacity or self._cost > self.budget:
            _, evicted = self._bodies.popitem(last=False)
            self._cost -= evicted.cost

    def changed(self, task_id: str | None) -> None:
        """A bus watcher: forget one task, or every task for ``None``."""
        if task_id is None:
            self._bodies.clear()
            self._reads.clear()
            self._cost = 0
        else:
            self._forget(task_id)
            self._reads.pop(task_id, None)

    def _forget(self, task_id: str) -> None:
        body = self._bodies.pop(task_id, None)
        if body is not None:
            self._cost -= body.cost
