"""Task events: their kinds, their data, and their wire form, encoded once.

An event's ``data`` JSON is built once when the event is made and stored as
text; the same bytes are replayed from the database and handed to every live
subscriber, so no stream re-encodes anything per reader.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import orjson


class EventKind(enum.StrEnum):
    STATUS = "status"
    PROGRESS = "progress"
    CHUNK = "chunk"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_KINDS


TERMINAL_KINDS = frozenset({EventKind.COMPLETED, EventKind.FAILED, EventKind.CANCELLED})


@dataclass(frozen=True, slots=True)
class TaskEvent:
    task_id: str
    user_id: int
    seq: int
    kind: str
    data: str  # JSON text
    wire: bytes  # the SSE frame, the same bytes for every reader

    @classmethod
    def of(cls, task_id: str, user_id: int, seq: int, kind: str, data: str) -> TaskEvent:
        return cls(task_id, user_id, seq, kind, data, sse_bytes(seq, kind, data))

    @property
    def terminal(self) -> bool:
        return self.kind in TERMINAL_KINDS


def event_data(task_id: str, seq: int, status: str, progress: int, message: str, **extra: Any) -> str:
    payload = {"task_id": task_id, "seq": seq, "status": status, "progress": progress, "message": message, **extra}
    return orjson.dumps(payload).decode()


def running_data_sql(task_id: str, seq: str, progress: str, message: str, attempt: str) -> str:
    """PostgreSQL: the SQL expression whose text is ``event_data(..., RUNNING, ..., attempt=...)``
    byte for byte, of the columns named (a claim builds its events in the statement itself)."""
    return (
        f"""'{{"task_id":' || to_json({task_id})::text || ',"seq":' || {seq} || ',"status":"running","progress":' """
        f"""|| {progress} || ',"message":' || to_json({message})::text || ',"attempt":' || {attempt} || '}}'"""
    )


def sse_bytes(seq: int | None, kind: str, data: str) -> bytes:
    head = f"id: {seq}\n" if seq is not None else ""
    # Event data is single-line JSON (orjson escapes newlines), so one data: line.
    return f"{head}event: {kind}\ndata: {data}\n\n".encode()
