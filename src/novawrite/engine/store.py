"""Every database statement of the task engine, in SQLAlchemy Core.

Each state change of a task and the event that announces it are written in one
short transaction; the event is published only after that commit (write-ahead),
so anything a client has seen can be replayed. A process changes a running task
only while it holds the lease: every such write is guarded by
``owner = me AND status = 'running'``, and a write that matches no row means the
task was taken from us (``LeaseLost``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ARRAY, Row, Text, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from novawrite.db.engine import Database
from novawrite.db.models import Task, TaskStatus, utcnow
from novawrite.db.models import TaskEvent as TaskEventRow
from novawrite.engine.events import EventKind, TaskEvent, event_data

T = Task.__table__
E = TaskEventRow.__table__

TASK_COLUMNS = (
    T.c.pk,
    T.c.id,
    T.c.novel_id,
    T.c.user_id,
    T.c.task_type,
    T.c.status,
    T.c.progress,
    T.c.message,
    T.c.params,
    T.c.result,
    T.c.error,
    T.c.usage,
    T.c.attempt,
    T.c.retry_of,
    T.c.cancel_requested,
    T.c.created_at,
    T.c.started_at,
    T.c.finished_at,
    T.c.updated_at,
)


STARTED_MESSAGE = "Started"


class LeaseLost(Exception):
    """This process no longer owns the running task (its lease expired and another took it)."""


def task_view(row: Any) -> dict[str, Any]:
    """A task row as API.md's Task object."""
    return {
        "id": row.id,
        "novel_id": row.novel_id,
        "user_id": row.user_id,
        "task_type": row.task_type,
        "status": row.status,
        "progress": row.progress,
        "message": row.message,
        "params": row.params,
        "result": row.result,
        "error": row.error,
        "usage": row.usage,
        "attempt": row.attempt,
        "retry_of": row.retry_of,
        "cancel_requested": row.cancel_requested,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "updated_at": row.updated_at,
    }


@dataclass
class Claimed:
    """A task this process just claimed: what the runner needs to start it."""

    pk: int
    id: str
    user_id: int
    novel_id: int
    task_type: str
    params: dict[str, Any]
    attempt: int
    seq: int
    output: str
    checkpoint: dict[str, Any] | None
    retry_of: str | None
    started_at: datetime


# PostgreSQL NOTIFY channel for committed events; payload "origin task_id seq".
# Seq 0 says a task changed without an event; task "*" says any task may have.
CHANNEL = "novawrite_events"
ANY_TASK = "*"


class TaskStore:
    def __init__(self, db: Database, origin: str = "", lease_seconds: float = 30.0) -> None:
        self.db = db
        #: Every owner-guarded write of a running task extends its lease by this much.
        self.lease_seconds = lease_seconds
        #: Who writes through this store (the supervisor's owner id); listeners skip their own.
        self.origin = origin

    async def add_event(self, conn: AsyncConnection, pk: int, event: TaskEvent, now: datetime) -> None:
        """Store an event inside the caller's transaction (on PostgreSQL, notified at its commit)."""
        await conn.execute(insert(E).values(task_pk=pk, seq=event.seq, kind=event.kind, data=event.data, created_at=now))
        if not self.db.is_sqlite:
            payload = f"{self.origin} {event.task_id} {event.seq}"
            await conn.execute(select(func.pg_notify(CHANNEL, payload)))

    async def notify_changed(self, task_id: str | None) -> None:
        """Tell other processes (PostgreSQL) that a task changed without an event."""
        if not self.db.is_sqlite:
            async with self.db.write() as conn:
                await self._notify_changed(conn, task_id)

    async def _notify_changed(self, conn: AsyncConnection, task_id: str | None) -> None:
        if not self.db.is_sqlite:
            await conn.execute(select(func.pg_notify(CHANNEL, f"{self.origin} {task_id or ANY_TASK} 0")))

    # --- reads -------------------------------------------------------------------------

    async def row(self, task_id: str) -> Row[Any] | None:
        async with self.db.read() as conn:
            return (await conn.execute(select(*TASK_COLUMNS, T.c.output, T.c.seq).where(T.c.id == task_id))).first()

    async def view_row(self, task_id: str) -> Row[Any] | None:
        """Just the columns of the API's Task object (no output text)."""
        async with self.db.read() as conn:
            return (await conn.execute(select(*TASK_COLUMNS).where(T.c.id == task_id))).first()

    async def events_after(self, task_pk: int, user_id: int, task_id: str, after: int) -> list[TaskEvent]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(E.c.seq, E.c.kind, E.c.data).where(E.c.task_pk == task_pk, E.c.seq > after).order_by(E.c.seq)
            )
            return [TaskEvent.of(task_id, user_id, r.seq, r.kind, r.data) for r in rows]

    async def event(self, task_id: str, seq: int) -> TaskEvent | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(T.c.user_id, E.c.kind, E.c.data)
                    .select_from(E.join(T, T.c.pk == E.c.task_pk))
                    .where(T.c.id == task_id, E.c.seq == seq)
                )
            ).first()
        return None if row is None else TaskEvent.of(task_id, row.user_id, seq, row.kind, row.data)

    # --- the dispatcher ----------------------------------------------------------------

    async def pending_heads(self, per_user: int = 1) -> list[tuple[int, int]]:
        """(user_id, pk) of each user's ``per_user`` oldest pending tasks, oldest first within a user."""
        ranked = (
            select(T.c.user_id, T.c.pk, func.row_number().over(partition_by=T.c.user_id, order_by=T.c.pk).label("rn"))
            .where(T.c.status == TaskStatus.PENDING)
            .subquery()
        )
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(ranked.c.user_id, ranked.c.pk).where(ranked.c.rn <= per_user).order_by(ranked.c.user_id, ranked.c.pk)
            )
            return [(r[0], r[1]) for r in rows]

    async def counts(self) -> list[tuple[str, str, int]]:
        """(status, task_type, number of tasks) over the whole table, for the metrics."""
        async with self.db.read() as conn:
            rows = await conn.execute(select(T.c.status, T.c.task_type, func.count()).group_by(T.c.status, T.c.task_type))
            return [(r[0], r[1], r[2]) for r in rows]

    async def running_per_user(self) -> dict[int, int]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(T.c.user_id, func.count()).where(T.c.status == TaskStatus.RUNNING).group_by(T.c.user_id)
            )
            return {r[0]: r[1] for r in rows}

    async def claim_many(self, pks: list[int], owner: str, lease_seconds: float) -> list[tuple[Claimed, TaskEvent]]:
        """Atomically take several pending tasks in one transaction; those someone else took are left out."""
        now = utcnow()
        async with self.db.write() as conn:
            rows = (
                await conn.execute(
                    update(T)
                    .where(T.c.pk.in_(pks), T.c.status == TaskStatus.PENDING)
                    .values(
                        status=TaskStatus.RUNNING,
                        owner=owner,
                        lease_expires_at=now + timedelta(seconds=lease_seconds),
                        started_at=func.coalesce(T.c.started_at, now),
                        updated_at=now,
                        seq=T.c.seq + 1,
                        message=STARTED_MESSAGE,
                    )
                    .returning(
                        T.c.pk, T.c.id, T.c.user_id, T.c.novel_id, T.c.task_type, T.c.params, T.c.attempt, T.c.seq,
                        T.c.output, T.c.checkpoint, T.c.retry_of, T.c.started_at, T.c.progress, T.c.message,
                    )
                )
            ).all()
            out = []
            for row in sorted(rows, key=lambda r: r.pk):
                checkpoint = row.checkpoint
                if checkpoint is None and row.retry_of is not None:
                    checkpoint = (
                        await conn.execute(select(T.c.checkpoint).where(T.c.id == row.retry_of))
                    ).scalar_one_or_none()
                data = event_data(row.id, row.seq, TaskStatus.RUNNING, row.progress, row.message, attempt=row.attempt)
                event = TaskEvent.of(row.id, row.user_id, row.seq, EventKind.STATUS, data)
                claimed = Claimed(
                    pk=row.pk, id=row.id, user_id=row.user_id, novel_id=row.novel_id, task_type=row.task_type,
                    params=dict(row.params or {}), attempt=row.attempt, seq=row.seq, output=row.output or "",
                    checkpoint=checkpoint, retry_of=row.retry_of, started_at=row.started_at,
                )
                out.append((claimed, event))
            await self.add_events(conn, [(c.pk, e) for c, e in out], now)
        return out

    async def add_events(self, conn: AsyncConnection, events: list[tuple[int, TaskEvent]], now: datetime) -> None:
        """Store several events inside the caller's transaction: one INSERT (and one NOTIFY statement)."""
        if not events:
            return
        await conn.execute(
            insert(E), [{"task_pk": pk, "seq": e.seq, "kind": e.kind, "data": e.data, "created_at": now} for pk, e in events]
        )
        if not self.db.is_sqlite:
            payloads = [f"{self.origin} {e.task_id} {e.seq}" for _, e in events]
            notify = select(func.pg_notify(CHANNEL, func.unnest(bindparam("payloads", type_=ARRAY(Text)))))
            await conn.execute(notify, {"payloads": payloads})

    # --- a running task's writes (owner-guarded) ---------------------------------------

    async def record(
        self,
        task: Claimed,
        owner: str,
        kind: EventKind,
        progress: int,
        message: str,
        *,
        text: str | None = None,
        usage: dict[str, int] | None = None,
    ) -> TaskEvent:
        """Store a progress or chunk event of a running task."""
        seq = task.seq + 1
        extra: dict[str, Any] = {"text": text} if text is not None else {}
        data = event_data(task.id, seq, TaskStatus.RUNNING, progress, message, **extra)
        event = TaskEvent.of(task.id, task.user_id, seq, kind, data)
        now = utcnow()
        values: dict[str, Any] = {
            "seq": seq,
            "progress": progress,
            "message": message,
            "updated_at": now,
            "lease_expires_at": now + timedelta(seconds=self.lease_seconds),
        }
        if text:
            values["output"] = T.c.output + text
        if usage is not None:
            values["usage"] = usage
        async with self.db.write() as conn:
            changed = await conn.execute(update(T).where(*self._mine(task, owner)).values(**values))
            if changed.rowcount != 1:
                raise LeaseLost(task.id)
            await self.add_event(conn, task.pk, event, now)
        task.seq = seq
        return event

    async def save_checkpoint(self, task: Claimed, owner: str, checkpoint: dict[str, Any]) -> None:
        async with self.db.write() as conn:
            changed = await conn.execute(update(T).where(*self._mine(task, owner)).values(checkpoint=checkpoint))
            if changed.rowcount != 1:
                raise LeaseLost(task.id)

    async def complete(
        self,
        task: Claimed,
        owner: str,
        message: str,
        result: Any,
        usage: dict[str, int] | None,
        apply: Callable[[AsyncSession], Awaitable[None]],
    ) -> TaskEvent:
        """Apply the result to the novel and mark the task completed, in one transaction."""
        seq = task.seq + 1
        data = event_data(task.id, seq, TaskStatus.COMPLETED, 100, message, result=result)
        event = TaskEvent.of(task.id, task.user_id, seq, EventKind.COMPLETED, data)
        now = utcnow()
        async with self.db.write() as conn:
            changed = await conn.execute(
                update(T)
                .where(*self._mine(task, owner))
                .values(
                    status=TaskStatus.COMPLETED,
                    progress=100,
                    message=message,
                    result=result,
                    usage=usage,
                    seq=seq,
                    finished_at=now,
                    updated_at=now,
                    owner=None,
                    lease_expires_at=None,
                )
            )
            if changed.rowcount != 1:
                raise LeaseLost(task.id)
            session = AsyncSession(bind=conn, expire_on_commit=False, autoflush=True)
            try:
                await apply(session)
                await session.flush()
            finally:
                await session.close()
            await self.add_event(conn, task.pk, event, now)
        task.seq = seq
        return event

    async def finish(
        self,
        task: Claimed,
        owner: str,
        status: TaskStatus,
        progress: int,
        message: str,
        *,
        error: dict[str, str] | None = None,
        usage: dict[str, int] | None = None,
    ) -> TaskEvent | None:
        """End a running task as failed or cancelled; None when it was not ours any more."""
        seq = task.seq + 1
        extra: dict[str, Any] = {"error": error} if error is not None else {}
        data = event_data(task.id, seq, status, progress, message, **extra)
        kind = EventKind.FAILED if status == TaskStatus.FAILED else EventKind.CANCELLED
        event = TaskEvent.of(task.id, task.user_id, seq, kind, data)
        now = utcnow()
        async with self.db.write() as conn:
            changed = await conn.execute(
                update(T)
                .where(*self._mine(task, owner))
                .values(
                    status=status,
                    message=message,
                    error=error,
                    usage=usage,
                    seq=seq,
                    finished_at=now,
                    updated_at=now,
                    owner=None,
                    lease_expires_at=None,
                )
            )
            if changed.rowcount != 1:
                return None
            await self.add_event(conn, task.pk, event, now)
        task.seq = seq
        return event

    async def requeue_own(self, task: Claimed, owner: str, max_attempts: int, message: str) -> TaskEvent | None:
        """Give back a task this process is running (shutdown): pending again, or failed after the last attempt."""
        async with self.db.write() as conn:
            return await self._requeue(
                conn, T.c.pk == task.pk, T.c.owner == owner, max_attempts=max_attempts, message=message
            )

    async def _requeue(
        self, conn: AsyncConnection, *where: Any, max_attempts: int, message: str
    ) -> TaskEvent | None:
        now = utcnow()
        row = (
            await conn.execute(
                select(T.c.pk, T.c.id, T.c.user_id, T.c.seq, T.c.attempt, T.c.progress)
                .where(T.c.status == TaskStatus.RUNNING, *where)
            )
        ).first()
        if row is None:
            return None
        seq = row.seq + 1
        if row.attempt >= max_attempts:
            error = {"code": "interrupted", "message": f"{message}; gave up after {row.attempt} attempts"}
            data = event_data(row.id, seq, TaskStatus.FAILED, row.progress, error["message"], error=error)
            event = TaskEvent.of(row.id, row.user_id, seq, EventKind.FAILED, data)
            values: dict[str, Any] = {
                "status": TaskStatus.FAILED,
                "error": error,
                "message": error["message"],
                "finished_at": now,
            }
        else:
            attempt = row.attempt + 1
            text = f"{message}; queued again (attempt {attempt})"
            data = event_data(row.id, seq, TaskStatus.PENDING, 0, text, attempt=attempt)
            event = TaskEvent.of(row.id, row.user_id, seq, EventKind.STATUS, data)
            values = {"status": TaskStatus.PENDING, "attempt": attempt, "progress": 0, "message": text}
        changed = await conn.execute(
            update(T)
            .where(T.c.pk == row.pk, T.c.seq == row.seq, T.c.status == TaskStatus.RUNNING)
            .values(seq=seq, updated_at=now, owner=None, lease_expires_at=None, **values)
        )
        if changed.rowcount != 1:
            return None
        await self.add_event(conn, row.pk, event, now)
        return event

    async def requeue_expired(self, max_attempts: int, message: str) -> list[TaskEvent]:
        """Recover running tasks whose lease ran out (their process died)."""
        now = utcnow()
        async with self.db.read() as conn:
            pks = (
                await conn.execute(
                    select(T.c.pk).where(T.c.status == TaskStatus.RUNNING, T.c.lease_expires_at < now)
                )
            ).scalars().all()
        events = []
        for pk in pks:
            async with self.db.write() as conn:
                event = await self._requeue(
                    conn, T.c.pk == pk, T.c.lease_expires_at < now, max_attempts=max_attempts, message=message
                )
            if event is not None:
                events.append(event)
        return events

    async def renew(self, owner: str, lease_seconds: float, task_ids: Sequence[str]) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(T)
                .where(T.c.owner == owner, T.c.status == TaskStatus.RUNNING, T.c.id.in_(list(task_ids)))
                .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
            )

    async def cancel_requested(self, task_ids: Sequence[str]) -> list[str]:
        if not task_ids:
            return []
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(T.c.id).where(T.c.id.in_(list(task_ids)), T.c.cancel_requested.is_(True))
            )
            return [r[0] for r in rows]

    # --- requests from the API ---------------------------------------------------------

    async def request_cancel(self, user_id: int, task_id: str) -> tuple[Row[Any] | None, TaskEvent | None]:
        """Cancel: a pending task at once (returns its event), a running one by flag."""
        now = utcnow()
        async with self.db.write() as conn:
            row = (
                await conn.execute(
                    select(T.c.pk, T.c.status, T.c.seq, T.c.progress).where(T.c.id == task_id, T.c.user_id == user_id)
                )
            ).first()
            if row is None:
                return None, None
            event = None
            if row.status == TaskStatus.PENDING:
                seq = row.seq + 1
                message = "Cancelled before it started"
                data = event_data(task_id, seq, TaskStatus.CANCELLED, row.progress, message)
                event = TaskEvent.of(task_id, user_id, seq, EventKind.CANCELLED, data)
                changed = await conn.execute(
                    update(T)
                    .where(T.c.pk == row.pk, T.c.status == TaskStatus.PENDING, T.c.seq == row.seq)
                    .values(
                        status=TaskStatus.CANCELLED,
                        cancel_requested=True,
                        message=message,
                        seq=seq,
                        finished_at=now,
                        updated_at=now,
                    )
                )
                if changed.rowcount == 1:
                    await self.add_event(conn, row.pk, event, now)
                else:  # claimed in the meantime (another process): cancel it as running
                    event = None
            if event is None and row.status in (TaskStatus.PENDING, TaskStatus.RUNNING):
                await conn.execute(
                    update(T)
                    .where(T.c.pk == row.pk, T.c.status == TaskStatus.RUNNING)
                    .values(cancel_requested=True, updated_at=now)
                )
                await self._notify_changed(conn, task_id)
            result = (await conn.execute(select(*TASK_COLUMNS).where(T.c.pk == row.pk))).first()
        return result, event

    @staticmethod
    def _mine(task: Claimed, owner: str) -> tuple[Any, ...]:
        return (T.c.pk == task.pk, T.c.owner == owner, T.c.status == TaskStatus.RUNNING, T.c.seq == task.seq)


def active_filter(user_id: int) -> Any:
    return and_(T.c.user_id == user_id, or_(T.c.status == TaskStatus.PENDING, T.c.status == TaskStatus.RUNNING))
