"""The polling cache: each task's API body, encoded once, with its ETag.

``GET /api/tasks/{id}`` is the hottest route: clients poll it every second or
two. A task changes only at its events (and a cancel request), and every event
passes through this process's bus, including those other processes committed
(PostgreSQL NOTIFY). So the body is read from the database and encoded once per
change; every poll in between is a dictionary lookup and an owner check, and a
matching ``If-None-Match`` compares two strings. A finished task never changes
again, so its entry stays until it is evicted (least recently polled first).

The one race: a poll reads the row, an event commits and invalidates, then the
poll stores what it read before the event. Each read therefore takes a token
first, invalidation takes the token away, and a read whose token is gone does
not store its (possibly older) body.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

DEFAULT_CAPACITY = 20_000


@dataclass(frozen=True, slots=True)
class TaskBody:
    """A task's JSON body with its ETag, and the response headers of a 200 and a 304, made once."""

    user_id: int
    body: bytes
    etag: str
    headers_200: list[tuple[bytes, bytes]]
    headers_304: list[tuple[bytes, bytes]]

    @classmethod
    def of(cls, user_id: int, body: bytes) -> TaskBody:
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        common = [(b"etag", etag.encode()), (b"cache-control", b"private, no-cache")]
        ok = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json"), *common]
        return cls(user_id, body, etag, ok, common)


class TaskViews:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._bodies: OrderedDict[str, TaskBody] = OrderedDict()
        self._reads: dict[str, object] = {}

    def __len__(self) -> int:
        return len(self._bodies)

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
        if body is None:
            return
        self._bodies[task_id] = body
        while len(self._bodies) > self.capacity:
            self._bodies.popitem(last=False)

    def changed(self, task_id: str | None) -> None:
        """A bus watcher: forget one task, or every task for ``None``."""
        if task_id is None:
            self._bodies.clear()
            self._reads.clear()
        else:
            self._bodies.pop(task_id, None)
            self._reads.pop(task_id, None)
