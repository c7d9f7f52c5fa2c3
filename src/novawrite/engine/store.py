"""Every database statement of the task engine.

The statements every task goes through (submit, claim, record, complete,
finish, lease renewal, the dispatcher's reads) are plain SQL on the raw driver
(``novawrite.db.raw``); the rarer ones (recovery, cancel requests, the API's
reads) are SQLAlchemy Core. Each state change of a task and the event that
announces it are written in one short transaction (on PostgreSQL mostly one
statement, see ``_write_with_event``); the event is published only after that commit (write-ahead),
so anything a client has seen can be replayed. A process changes a running task
only while it holds the lease: every such write is guarded by
``owner = me AND status = 'running'``, and a write that matches no row means the
task was taken from us (``LeaseLost``).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import Row, Table, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from novawrite.db.engine import Database
from novawrite.db.models import Task, TaskStatus, utcnow
from novawrite.db.models import TaskEvent as TaskEventRow
from novawrite.db.raw import SqlaTx, Tx, json_text, json_value, time_value
from novawrite.engine.events import EventKind, TaskEvent, event_data

T = cast(Table, Task.__table__)
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

PENDING, RUNNING = TaskStatus.PENDING.value, TaskStatus.RUNNING.value

# --- the raw statements ($n parameters; see novawrite.db.raw) --------------------------------

ADD_EVENT = "INSERT INTO task_events (task_pk, seq, kind, data, created_at) VALUES ($1, $2, $3, $4, $5)"
NOTIFY = "SELECT pg_notify($1, $2)"
NOTIFY_MANY = "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload"

# "is one of a list" in one parameter: an array on PostgreSQL, a JSON array on SQLite
IN_LIST = {
    "postgresql": {"pk": "pk = ANY($1::bigint[])", "id": "id = ANY($1::text[])"},
    "sqlite": {"pk": "pk IN (SELECT value FROM json_each($1))", "id": "id IN (SELECT value FROM json_each($1))"},
}

INSERT_TASK = f"""
INSERT INTO tasks (id, user_id, novel_id, task_type, scope, status, progress, message, params, attempt, retry_of,
    cancel_requested, idempotency_key, request_hash, seq, output, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, '{PENDING}', 0, $6, $7, $8, $9, $10, $11, $12, 1, '', $13, $13)
RETURNING pk"""

# Each waiting user's oldest pending task and how many tasks that user has running.
# The users with pending work are walked one index seek at a time
# (ix_tasks_status_user_pk), so a dispatch costs the number of waiting users, not
# the length of the queue.
PENDING_HEADS = f"""
WITH RECURSIVE waiting(user_id) AS (
    SELECT (SELECT user_id FROM tasks WHERE status = '{PENDING}' ORDER BY user_id LIMIT 1)
    UNION ALL
    SELECT (
        SELECT t.user_id FROM tasks AS t
        WHERE t.status = '{PENDING}' AND t.user_id > waiting.user_id ORDER BY t.user_id LIMIT 1
    )
    FROM waiting WHERE waiting.user_id IS NOT NULL
)
SELECT user_id,
    (SELECT h.pk FROM tasks AS h WHERE h.status = '{PENDING}' AND h.user_id = waiting.user_id ORDER BY h.pk LIMIT 1),
    (SELECT count(*) FROM tasks AS r WHERE r.user_id = waiting.user_id AND r.status = '{RUNNING}')
FROM waiting WHERE user_id IS NOT NULL"""
CLAIM = f"""
UPDATE tasks SET status = '{RUNNING}', owner = $2, lease_expires_at = $3, started_at = COALESCE(started_at, $4),
    updated_at = $4, seq = seq + 1, message = $5
WHERE {{pks}} AND status = '{PENDING}'
RETURNING pk, id, user_id, novel_id, task_type, params, attempt, seq, output, checkpoint, retry_of, started_at,
    progress, message"""
CHECKPOINT_OF = "SELECT checkpoint FROM tasks WHERE id = $1"

# A running task's writes: only while this process holds it, at the seq it knows.
MINE = f"pk = $1 AND owner = $2 AND status = '{RUNNING}' AND seq = $3"
RECORD = f"""
UPDATE tasks SET seq = $4, progress = $5, message = $6, updated_at = $7, lease_expires_at = $8,
    output = output || $9, usage = COALESCE($10, usage)
WHERE {MINE}
RETURNING pk"""
SAVE_CHECKPOINT = f"UPDATE tasks SET checkpoint = $4 WHERE {MINE}"
COMPLETE = f"""
UPDATE tasks SET status = '{TaskStatus.COMPLETED.value}', progress = 100, message = $4, result = $5, usage = $6,
    seq = $7, finished_at = $8, updated_at = $8, owner = NULL, lease_expires_at = NULL
WHERE {MINE}
RETURNING pk"""
FINISH = f"""
UPDATE tasks SET status = $4, message = $5, error = $6, usage = $7, seq = $8, finished_at = $9, updated_at = $9,
    owner = NULL, lease_expires_at = NULL
WHERE {MINE}
RETURNING pk"""
RENEW = f"UPDATE tasks SET lease_expires_at = $2 WHERE {{ids}} AND owner = $3 AND status = '{RUNNING}'"
CANCEL_REQUESTED = "SELECT id FROM tasks WHERE {ids} AND cancel_requested = $2"


@functools.cache
def _with_event_pg(write: str, count: int) -> str:
    """PostgreSQL: a write (``... RETURNING pk``), its event and the event's NOTIFY as one statement."""
    n = count
    return f"""
WITH written AS ({write}),
stored AS (
    INSERT INTO task_events (task_pk, seq, kind, data, created_at)
    SELECT pk, ${n + 1}::integer, ${n + 2}::text, ${n + 3}::text, ${n + 4}::timestamptz FROM written
    RETURNING task_pk
)
SELECT task_pk, pg_notify(${n + 5}::text, ${n + 6}::text) FROM stored"""


def _in_list(tx: Tx, column: str) -> str:
    return IN_LIST[tx.dialect][column]


def _list_param(tx: Tx, values: Sequence[Any]) -> Any:
    return list(values) if tx.dialect == "postgresql" else orjson.dumps(list(values)).decode()


class TaskStore:
    def __init__(self, db: Database, origin: str = "", lease_seconds: float = 30.0) -> None:
        self.db = db
        #: Every owner-guarded write of a running task extends its lease by this much.
        self.lease_seconds = lease_seconds
        #: Who writes through this store (the supervisor's owner id); listeners skip their own.
        self.origin = origin

    async def add_event(self, tx: Tx, pk: int, event: TaskEvent, now: datetime) -> None:
        """Store an event inside the caller's transaction (on PostgreSQL, notified at its commit)."""
        await tx.execute(ADD_EVENT, pk, event.seq, event.kind, event.data, now)
        if tx.dialect == "postgresql":
            await tx.execute(NOTIFY, CHANNEL, f"{self.origin} {event.task_id} {event.seq}")

    async def _write_with_event(self, tx: Tx, write: str, args: Sequence[Any], event: TaskEvent, now: datetime) -> bool:
        """Run ``write`` (an INSERT or UPDATE of one task ``RETURNING pk``) and store ``event`` for that task.

        False when the write matched no row (nothing is stored then). On PostgreSQL it is
        one statement, so a caller holding just this can skip BEGIN and COMMIT.
        """
        if tx.dialect == "postgresql":
            payload = f"{self.origin} {event.task_id} {event.seq}"
            sql = _with_event_pg(write, len(args))
            return await tx.fetchrow(sql, *args, event.seq, event.kind, event.data, now, CHANNEL, payload) is not None
        row = await tx.fetchrow(write, *args)
        if row is None:
            return False
        await tx.execute(ADD_EVENT, row[0], event.seq, event.kind, event.data, now)
        return True

    async def notify_changed(self, task_id: str | None) -> None:
        """Tell other processes (PostgreSQL) that a task changed without an event."""
        if not self.db.is_sqlite:
            async with self.db.write() as conn:
                await self._notify_changed(conn, task_id)

    async def _notify_changed(self, conn: AsyncConnection, task_id: str | None) -> None:
        if not self.db.is_sqlite:
            await conn.execute(select(func.pg_notify(CHANNEL, f"{self.origin} {task_id or ANY_TASK} 0")))

    # --- submit ------------------------------------------------------------------------------

    async def insert_task(
        self,
        *,
        task_id: str,
        user_id: int,
        novel_id: int,
        task_type: str,
        scope: int,
        message: str,
        params: dict[str, Any],
        attempt: int,
        retry_of: str | None,
        idempotency_key: str | None,
        request_hash: str | None,
        now: datetime,
    ) -> TaskEvent:
        """A new pending task and its first event (seq 1), in one transaction.

        Raises the driver's ``IntegrityError`` when a unique index refuses it (one
        active task per kind and scope, one task per idempotency key).
        """
        data = event_data(task_id, 1, TaskStatus.PENDING, 0, message, attempt=attempt)
        event = TaskEvent.of(task_id, user_id, 1, EventKind.STATUS, data)
        args = (
            task_id,
            user_id,
            novel_id,
            task_type,
            scope,
            message,
            json_text(params),
            attempt,
            retry_of,
            False,
            idempotency_key,
            request_hash,
            now,
        )
        async with self.db.raw_write(single_statement=True) as tx:
            await self._write_with_event(tx, INSERT_TASK, args, event, now)
        return event

    # --- reads -------------------------------------------------------------------------

    async def row(self, task_id: str) -> Row[*tuple[Any, ...]] | None:
        async with self.db.read() as conn:
            return (await conn.execute(select(*TASK_COLUMNS, T.c.output, T.c.seq).where(T.c.id == task_id))).first()

    async def view_row(self, task_id: str) -> Row[*tuple[Any, ...]] | None:
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

    async def pending_heads(self) -> tuple[list[tuple[int, int]], dict[int, int]]:
        """(user_id, pk) of each waiting user's oldest pending task, and how many tasks each of
        those users has running."""
        async with self.db.raw_read() as tx:
            rows = await tx.fetch(PENDING_HEADS)
        return [(r[0], r[1]) for r in rows], {r[0]: r[2] for r in rows}

    async def counts(self) -> list[tuple[str, str, int]]:
        """(status, task_type, number of tasks) over the whole table, for the metrics."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(T.c.status, T.c.task_type, func.count()).group_by(T.c.status, T.c.task_type)
            )
            return [(r[0], r[1], r[2]) for r in rows]

    async def claim_many(self, pks: list[int], owner: str, lease_seconds: float) -> list[tuple[Claimed, TaskEvent]]:
        """Atomically take several pending tasks in one transaction; those someone else took are left out."""
        now = utcnow()
        lease = now + timedelta(seconds=lease_seconds)
        async with self.db.raw_write() as tx:
            claim = CLAIM.format(pks=_in_list(tx, "pk"))
            rows = await tx.fetch(claim, _list_param(tx, pks), owner, lease, now, STARTED_MESSAGE)
            out = []
            for row in sorted(rows, key=lambda r: r["pk"]):
                checkpoint = json_value(row["checkpoint"])
                if checkpoint is None and row["retry_of"] is not None:
                    earlier = await tx.fetchrow(CHECKPOINT_OF, row["retry_of"])
                    checkpoint = json_value(earlier[0]) if earlier is not None else None
                task_id, user_id, seq = row["id"], row["user_id"], row["seq"]
                data = event_data(
                    task_id, seq, TaskStatus.RUNNING, row["progress"], row["message"], attempt=row["attempt"]
                )
                claimed = Claimed(
                    pk=row["pk"],
                    id=task_id,
                    user_id=user_id,
                    novel_id=row["novel_id"],
                    task_type=row["task_type"],
                    params=dict(json_value(row["params"]) or {}),
                    attempt=row["attempt"],
                    seq=seq,
                    output=row["output"] or "",
                    checkpoint=checkpoint,
                    retry_of=row["retry_of"],
                    started_at=time_value(row["started_at"]),  # type: ignore[arg-type]
                )
                out.append((claimed, TaskEvent.of(task_id, user_id, seq, EventKind.STATUS, data)))
            await self.add_events(tx, [(c.pk, e) for c, e in out], now)
        return out

    async def add_events(self, tx: Tx, events: list[tuple[int, TaskEvent]], now: datetime) -> None:
        """Store several events inside the caller's transaction (and notify them in one statement)."""
        if len(events) <= 1:
            for pk, event in events:
                await self.add_event(tx, pk, event, now)
            return
        await tx.executemany(ADD_EVENT, [(pk, e.seq, e.kind, e.data, now) for pk, e in events])
        if tx.dialect == "postgresql":
            await tx.execute(NOTIFY_MANY, CHANNEL, [f"{self.origin} {e.task_id} {e.seq}" for _, e in events])

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
        lease = now + timedelta(seconds=self.lease_seconds)
        args = (task.pk, owner, task.seq, seq, progress, message, now, lease, text or "", json_text(usage))
        async with self.db.raw_write(single_statement=True) as tx:
            if not await self._write_with_event(tx, RECORD, args, event, now):
                raise LeaseLost(task.id)
        task.seq = seq
        return event

    async def save_checkpoint(self, task: Claimed, owner: str, checkpoint: dict[str, Any]) -> None:
        async with self.db.raw_write(single_statement=True) as tx:
            if await tx.execute(SAVE_CHECKPOINT, task.pk, owner, task.seq, json_text(checkpoint)) != 1:
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
        """Apply the result to the novel and mark the task completed, in one transaction.

        ``apply`` gets an ORM session that opens its transaction on first use; when
        it touched nothing, the task row and its event are written on the raw driver.
        """
        seq = task.seq + 1
        data = event_data(task.id, seq, TaskStatus.COMPLETED, 100, message, result=result)
        event = TaskEvent.of(task.id, task.user_id, seq, EventKind.COMPLETED, data)
        now = utcnow()

        async def mark_completed(tx: Tx) -> None:
            args = (task.pk, owner, task.seq, message, json_text(result), json_text(usage), seq, now)
            if not await self._write_with_event(tx, COMPLETE, args, event, now):
                raise LeaseLost(task.id)

        async with self.db.exclusive():
            session = AsyncSession(bind=self.db.writer, expire_on_commit=False, autoflush=True)
            try:
                await apply(session)
                await session.flush()
                if session.in_transaction():
                    await mark_completed(SqlaTx(await session.connection()))
                    await session.commit()
                else:
                    async with self.db.raw.transaction(single_statement=True) as tx:
                        await mark_completed(tx)
            finally:
                await session.close()
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
        args = (task.pk, owner, task.seq, status.value, message, json_text(error), json_text(usage), seq, now)
        async with self.db.raw_write(single_statement=True) as tx:
            if not await self._write_with_event(tx, FINISH, args, event, now):
                return None
        task.seq = seq
        return event

    async def requeue_own(self, task: Claimed, owner: str, max_attempts: int, message: str) -> TaskEvent | None:
        """Give back a task this process is running (shutdown): pending again, or failed after the last attempt."""
        async with self.db.write() as conn:
            return await self._requeue(
                conn, T.c.pk == task.pk, T.c.owner == owner, max_attempts=max_attempts, message=message
            )

    async def _requeue(self, conn: AsyncConnection, *where: Any, max_attempts: int, message: str) -> TaskEvent | None:
        now = utcnow()
        row = (
            await conn.execute(
                select(T.c.pk, T.c.id, T.c.user_id, T.c.seq, T.c.attempt, T.c.progress).where(
                    T.c.status == TaskStatus.RUNNING, *where
                )
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
        await self.add_event(SqlaTx(conn), row.pk, event, now)
        return event

    async def requeue_expired(self, max_attempts: int, message: str) -> list[TaskEvent]:
        """Recover running tasks whose lease ran out (their process died)."""
        now = utcnow()
        async with self.db.read() as conn:
            pks = (
                (await conn.execute(select(T.c.pk).where(T.c.status == TaskStatus.RUNNING, T.c.lease_expires_at < now)))
                .scalars()
                .all()
            )
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
        async with self.db.raw_write(single_statement=True) as tx:
            renew = RENEW.format(ids=_in_list(tx, "id"))
            await tx.execute(renew, _list_param(tx, task_ids), utcnow() + timedelta(seconds=lease_seconds), owner)

    async def cancel_requested(self, task_ids: Sequence[str]) -> list[str]:
        if not task_ids:
            return []
        async with self.db.raw_read() as tx:
            query = CANCEL_REQUESTED.format(ids=_in_list(tx, "id"))
            return [r[0] for r in await tx.fetch(query, _list_param(tx, task_ids), True)]

    # --- requests from the API ---------------------------------------------------------

    async def request_cancel(self, user_id: int, task_id: str) -> tuple[Row[*tuple[Any, ...]] | None, TaskEvent | None]:
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
                    await self.add_event(SqlaTx(conn), row.pk, event, now)
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


def active_filter(user_id: int) -> Any:
    return and_(T.c.user_id == user_id, or_(T.c.status == TaskStatus.PENDING, T.c.status == TaskStatus.RUNNING))
