"""The task engine's storage: runs the statements of ``novawrite.engine.queries``, and publishes.

Writes of a task run on the raw driver (``novawrite.db.raw``); the API's reads on
SQLAlchemy Core. Each state change of a task and the event that announces it are
written in one short transaction (on PostgreSQL mostly one statement, see
``_write_with_event``), and the event is published on this process's bus only
after that commit (write-ahead), so anything a client has seen can be replayed.
Every write that stores an event publishes it itself (``_publish``, the one door
to the bus), so no caller keeps that rule.

Group commit: a running task's owner-guarded writes with their events (``_append``:
a progress or chunk event, a completion that applied nothing, a failure) queue up,
and one drain commits what has queued since its last commit together: on SQLite in
one transaction, on PostgreSQL each run of the same statement as one pipelined,
atomic ``fetchmany``. A task has one write in flight at a time, so its events keep
their order; a group that the database refuses is written again one by one, so each
write gets its own answer. A submit is written at once (``_write_now``): its caller
waits for it, and the drain's extra turn of the loop slowed a stream of submits.

A process changes a running task only while it holds the lease: every such write
is guarded by ``owner = me AND status = 'running' AND seq = known``, and a write
that matches no row means the task was taken from us (``LeaseLost``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from novawrite.db.engine import Database
from novawrite.db.models import TaskStatus, utcnow
from novawrite.db.raw import SqlaTx, Tx, json_text, json_value, time_value
from novawrite.engine import queries as q
from novawrite.engine.bus import EventBus
from novawrite.engine.events import EventKind, TaskEvent, event_data
from novawrite.engine.notify import CHANNEL, event_notification, notification

log = logging.getLogger(__name__)

STARTED_MESSAGE = "Started"
CANCELLED_BEFORE_START = "Cancelled before it started"
CANCELLED = "Cancelled"
#: Reads of a task to cancel, when another process changes its status between a read and the write.
CANCEL_TRIES = 3


class LeaseLost(Exception):
    """This process no longer owns the running task (its lease expired and another took it)."""


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


@dataclass(frozen=True, slots=True)
class SubmitChecks:
    """What a submit checks before its insert, read in one snapshot."""

    owns_novel: bool
    unfinished: int  # the user's pending and running tasks
    chapter_found: bool  # False too when no chapter was asked about
    chapter_has_text: bool


@dataclass(slots=True)
class _Write:
    """A write of one task with its event, waiting for the next group commit (``TaskStore._append``)."""

    sql: str  # an owner-guarded UPDATE ... RETURNING pk whose first argument is the task's pk
    args: tuple[Any, ...]
    event: TaskEvent
    now: datetime
    done: asyncio.Future[bool]  # whether it matched a row

    @property
    def pk(self) -> int:
        return int(self.args[0])


def _by_statement(group: Sequence[_Write]) -> list[list[_Write]] | None:
    """The group's writes by statement, each statement's in order; None when a task comes twice
    (its writes must then be committed in the order they came: ``_runs``)."""
    if len({write.pk for write in group}) < len(group):
        return None
    runs: dict[str, list[_Write]] = {}
    for write in group:
        runs.setdefault(write.sql, []).append(write)
    return list(runs.values())


def _runs(group: Sequence[_Write]) -> list[list[_Write]]:
    """The group in order, cut where the statement changes or a task comes a second time."""
    runs: list[list[_Write]] = []
    seen: set[int] = set()
    for write in group:
        if not runs or runs[-1][0].sql != write.sql or write.pk in seen:
            runs.append([])
            seen = set()
        runs[-1].append(write)
        seen.add(write.pk)
    return runs


class DispatchView(NamedTuple):
    """A dispatch's read (``TaskStore.dispatch_view``)."""

    heads: list[tuple[int, int]]  # (user_id, pk) of each waiting user's oldest due pending task
    running: dict[int, int]  # how many tasks each of those users has running
    not_before: datetime | None  # the provider's quota ends then (None: never out of quota)
    resume_at: datetime | None  # the earliest resume_at of a pending task

    def shows(self, user_id: int) -> bool:
        """Whether the user is one of those waiting."""
        return any(user == user_id for user, _ in self.heads)


class _Held(NamedTuple):
    """A running task as its owner-guarded writes name it (``queries.MINE``)."""

    pk: int
    id: str
    user_id: int
    owner: str
    seq: int  # the seq its holder knows


def _finish(
    held: _Held, status: TaskStatus, progress: int, message: str, error: dict[str, str] | None, usage: str | None
) -> tuple[tuple[Any, ...], TaskEvent, datetime]:
    """``FINISH``'s arguments, its event and its time: running to failed or cancelled (``usage``: JSON text)."""
    seq = held.seq + 1
    extra: dict[str, Any] = {"error": error} if error is not None else {}
    data = event_data(held.id, seq, status, progress, message, **extra)
    kind = EventKind.FAILED if status == TaskStatus.FAILED else EventKind.CANCELLED
    event = TaskEvent.of(held.id, held.user_id, seq, kind, data)
    now = utcnow()
    return (held.pk, held.owner, held.seq, status.value, message, json_text(error), usage, seq, now), event, now


def _utc_z(moment: datetime) -> str:
    """A time as the API writes it (``novawrite.jsonenc``: UTC with a ``Z``)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class TaskStore:
    def __init__(self, db: Database, bus: EventBus, origin: str = "", lease_seconds: float = 30.0) -> None:
        self.db = db
        self.bus = bus
        #: Every owner-guarded write of a running task extends its lease by this much.
        self.lease_seconds = lease_seconds
        #: Who writes through this store (the supervisor's owner id); listeners skip their own.
        self.origin = origin
        self._queued: list[_Write] = []  # waiting for the next group commit
        self._drainer: asyncio.Task[None] | None = None

    # --- publishing --------------------------------------------------------------------

    def _publish(self, *events: TaskEvent) -> None:
        """Hand committed events to this process's bus (call only after their commit)."""
        for event in events:
            self.bus.publish(event)

    def on_change(self, watcher: Callable[[str | None], None]) -> None:
        """``watcher(task_id)`` at every change of a task (``None``: any task may have changed)."""
        self.bus.on_change(watcher)

    def forget(self, task_id: str | None) -> None:
        """A task changed without an event (``None``: any task may have): tell this process's watchers."""
        self.bus.changed(task_id)

    async def changed(self, task_id: str | None) -> None:
        """``forget`` here and in every other process (PostgreSQL)."""
        self.forget(task_id)
        if not self.db.is_sqlite:
            async with self.db.raw_write(single_statement=True) as tx:
                await tx.execute(q.NOTIFY, CHANNEL, notification(self.origin, task_id, 0))

    def relay_now(self, event: TaskEvent) -> bool:
        """Publish an event another process committed and sent whole in its notification, when it
        comes right after the last one published here (or none was); False: ``relay`` must read."""
        last = self.bus.last_seq(event.task_id)
        if last is not None and last >= event.seq:
            return True
        if last is not None and last != event.seq - 1:
            return False
        self._publish(event)
        return True

    async def relay(self, task_id: str, seq: int) -> TaskEvent | None:
        """Publish an event another process committed (its notification named it); return it.

        Nothing twice, and in order: an event published already (by ``catch_up``) is skipped,
        and one ahead of the last published of its task comes after the ones in between."""
        last = self.bus.last_seq(task_id)
        if last is not None and last >= seq:
            return None
        if last is None or last == seq - 1:
            event = await self.event(task_id, seq)
            events = [] if event is None else [event]
        else:
            events = await self._events_after(task_id, last)
        self._publish_unseen(events)
        return next((e for e in events if e.seq == seq), None)

    async def catch_up(self, task_ids: Sequence[str], user_ids: Sequence[int], since: datetime) -> int:
        """Publish what this process missed while it did not listen (PostgreSQL): the events of these
        tasks and of these users' tasks after the last seq published here, or for a task it has not
        published, those stored at ``since`` or later. Returns how many it published."""
        if not task_ids and not user_ids:
            return 0
        published = 0
        for task_id, seq in await self._all(q.changed_since(task_ids, user_ids, since)):
            last = self.bus.last_seq(task_id)
            if last is not None and last >= seq:
                continue
            events = await self._events_after(task_id, last or 0, None if last is not None else since)
            published += self._publish_unseen(events)
        return published

    async def _events_after(self, task_id: str, after: int, since: datetime | None = None) -> list[TaskEvent]:
        rows = await self._all(q.events_of_task_after(task_id, after, since))
        return [TaskEvent.of(task_id, r.user_id, r.seq, r.kind, r.data) for r in rows]

    def _publish_unseen(self, events: Sequence[TaskEvent]) -> int:
        """Publish those of one task's events (in seq order) this process has not published yet."""
        fresh = [e for e in events if e.seq > (self.bus.last_seq(e.task_id) or 0)]
        self._publish(*fresh)
        return len(fresh)

    # --- storing events ------------------------------------------------------------------

    async def _write_with_event(self, tx: Tx, write: str, args: Sequence[Any], event: TaskEvent, now: datetime) -> bool:
        """Run ``write`` (an INSERT or UPDATE of one task ``RETURNING pk``) and store ``event`` for that task.

        False when the write matched no row (nothing is stored then). On PostgreSQL it is
        one statement, so a caller holding just this can skip BEGIN and COMMIT.
        """
        if tx.dialect == "postgresql":
            payload = event_notification(self.origin, event)
            sql = q.with_event_pg(write, len(args))
            return await tx.fetchrow(sql, *args, event.seq, event.kind, event.data, now, CHANNEL, payload) is not None
        row = await tx.fetchrow(write, *args)
        if row is None:
            return False
        await tx.execute(q.ADD_EVENT, row[0], event.seq, event.kind, event.data, now)
        return True

    async def _write_now(self, write: str, args: Sequence[Any], event: TaskEvent, now: datetime) -> bool:
        """One write of a task with its event in a transaction of its own, committed, then published;
        False when the write matched no row."""
        async with self.db.raw_write(single_statement=True) as tx:
            if not await self._write_with_event(tx, write, args, event, now):
                return False
        self._publish(event)
        return True

    def _append(self, write: str, args: Sequence[Any], event: TaskEvent, now: datetime) -> asyncio.Future[bool]:
        """One write of a task with its event, committed with whatever else has queued, then published.

        The future says whether the write matched a row; it is the drain's, so a caller
        cancelled while it waits does not stop the write (``record`` learns its outcome).
        """
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queued.append(_Write(write, tuple(args), event, now, done))
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain(), name="group commit")
        return done

    async def drained(self) -> None:
        """Wait until every queued write is committed (shutdown)."""
        while (drainer := self._drainer) is not None:
            await asyncio.wait({drainer})

    async def _drain(self) -> None:
        group: list[_Write] = []
        try:
            while self._queued:
                group, self._queued = self._queued, []
                await self._commit_group(group)
        except BaseException:  # cancelled (the loop is closing): no writer waits for ever
            for write in [*group, *self._queued]:
                write.done.cancel()
            self._queued = []
            raise
        finally:
            self._drainer = None

    async def _commit_group(self, group: list[_Write]) -> None:
        try:
            if len(group) > 1:
                if self.db.is_sqlite:
                    async with self.db.raw_write() as tx:
                        matched = [await self._write_with_event(tx, w.sql, w.args, w.event, w.now) for w in group]
                    self._settle(group, matched)
                elif (runs := _by_statement(group)) is not None:
                    # Writes of different tasks: each statement's on a connection of its own, at once.
                    outcomes = await asyncio.gather(*(self._commit_run_pg(run) for run in runs), return_exceptions=True)
                    if failed := next((o for o in outcomes if isinstance(o, BaseException)), None):
                        raise failed
                else:
                    for run in _runs(group):
                        await self._commit_run_pg(run)
        except Exception:  # the database refused one of them: each on its own, so only that one fails
            log.debug("a group commit of %d writes failed; writing them one by one", len(group), exc_info=True)
        for write in group:
            if not write.done.done():
                await self._commit_one(write)

    async def _commit_run_pg(self, run: list[_Write]) -> None:
        """PostgreSQL: one statement's writes of several tasks, pipelined in one implicit transaction."""
        first = run[0]
        sql = q.with_event_pg(first.sql, len(first.args))
        rows = [
            (
                *w.args,
                w.event.seq,
                w.event.kind,
                w.event.data,
                w.now,
                CHANNEL,
                event_notification(self.origin, w.event),
            )
            for w in run
        ]
        async with self.db.raw_write(single_statement=True) as tx:
            written = {r[0] for r in await tx.fetchmany(sql, rows)}
        self._settle(run, [w.pk in written for w in run])

    async def _commit_one(self, write: _Write) -> None:
        try:
            matched = await self._write_now(write.sql, write.args, write.event, write.now)
        except Exception as exc:
            if not write.done.done():  # a writer cancelled while it waited has let its future go
                write.done.set_exception(exc)
            return
        if not write.done.done():
            write.done.set_result(matched)

    def _settle(self, writes: Sequence[_Write], matched: Sequence[bool]) -> None:
        """After their commit: publish the events of the writes that matched, in order, and answer each writer."""
        self._publish(*(w.event for w, hit in zip(writes, matched, strict=True) if hit))
        for write, hit in zip(writes, matched, strict=True):
            if not write.done.done():
                write.done.set_result(hit)

    # --- submit ------------------------------------------------------------------------------

    async def submit_checks(self, user_id: int, novel_id: int, chapter_id: int | None = None) -> SubmitChecks:
        """Whether the user owns the novel, the user's unfinished tasks, and (if the novel is
        the user's) whether ``chapter_id`` is a chapter of it with text."""
        async with self.db.raw_read() as tx:
            owned, unfinished = await tx.fetchrow(q.SUBMIT_CHECKS, novel_id, user_id)
            chapter = None
            if owned is not None and chapter_id is not None:
                chapter = await tx.fetchrow(q.CHAPTER_CONTENT, chapter_id, novel_id)
        return SubmitChecks(owned is not None, unfinished, chapter is not None, bool(chapter and chapter[0]))

    async def novel_exists(self, novel_id: int) -> bool:
        async with self.db.raw_read() as tx:
            return await tx.fetchrow(q.NOVEL_EXISTS, novel_id) is not None

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
        parent_id: str | None = None,
        parent_owner: str | None = None,
        max_unfinished: int | None = None,
    ) -> TaskEvent | None:
        """A new pending task and its first event (seq 1), in one transaction.

        With ``max_unfinished``, only if the user owns the novel and has fewer unfinished
        tasks than that (None when not: ``submit_checks`` says why). With ``parent_owner``
        (a batch's child), only while the batch runs under that owner (None when not). Raises the driver's
        ``IntegrityError`` when a unique index refuses it (one active task per kind and
        scope, one task per idempotency key).
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
            parent_id,
        )
        # Not a group commit: a submit's caller waits for it, and a group's extra turn of the
        # event loop slowed a stream of submits by a third (no-op tasks/s on PostgreSQL).
        if parent_owner is not None:
            child = (*args, parent_owner, parent_id)
            return event if await self._write_now(q.INSERT_CHILD, child, event, now) else None
        if max_unfinished is None:
            await self._write_now(q.INSERT_TASK, args, event, now)
            return event
        return event if await self._write_now(q.INSERT_TASK_CHECKED, (*args, max_unfinished), event, now) else None

    # --- batches and their children -----------------------------------------------------

    async def active_children(self, batch_id: str) -> list[str]:
        """The ids of the batch's children that are pending or running."""
        async with self.db.raw_read() as tx:
            return [row[0] for row in await tx.fetch(q.ACTIVE_CHILDREN, batch_id)]

    async def child_in_scope(self, batch_id: str, scope: int) -> str | None:
        """The id of the batch's newest child for ``scope`` (a chapter), if it made one."""
        async with self.db.raw_read() as tx:
            row = await tx.fetchrow(q.CHILD_IN_SCOPE, batch_id, scope)
        return None if row is None else str(row[0])

    async def child_state(self, task_id: str) -> dict[str, Any] | None:
        """A child's status, result, error, usage and message (JSON members decoded)."""
        async with self.db.raw_read() as tx:
            row = await tx.fetchrow(q.CHILD_STATE, task_id)
        if row is None:
            return None
        return {
            "status": row[0],
            "result": json_value(row[1]),
            "error": json_value(row[2]),
            "usage": json_value(row[3]),
            "message": row[4],
        }

    async def active_batch(self, novel_id: int, task_type: str) -> tuple[str, dict[str, Any], Any] | None:
        """The novel's pending or running batch of ``task_type``: (id, params, checkpoint)."""
        async with self.db.raw_read() as tx:
            row = await tx.fetchrow(q.ACTIVE_BATCH, novel_id, task_type)
        if row is None:
            return None
        return str(row[0]), dict(json_value(row[1]) or {}), json_value(row[2])

    # --- the API's reads ---------------------------------------------------------------

    async def _first(self, query: Any) -> Row[*tuple[Any, ...]] | None:
        async with self.db.read() as conn:
            return (await conn.execute(query)).first()

    async def _all(self, query: Any) -> Sequence[Row[*tuple[Any, ...]]]:
        async with self.db.read() as conn:
            return (await conn.execute(query)).all()

    async def row(self, task_id: str) -> Row[*tuple[Any, ...]] | None:
        """A task with its output text and seq."""
        return await self._first(q.task_by_id(task_id))

    async def view_row(self, task_id: str) -> Row[*tuple[Any, ...]] | None:
        """Just the columns of the API's Task object (no output text)."""
        return await self._first(q.task_view_by_id(task_id))

    async def by_idempotency_key(self, user_id: int, key: str) -> Row[*tuple[Any, ...]] | None:
        """The user's task made under ``key``, with its ``request_hash``."""
        return await self._first(q.by_idempotency_key(user_id, key))

    async def active_in_scope(self, novel_id: int, task_type: str, scope: int) -> str | None:
        row = await self._first(q.active_in_scope(novel_id, task_type, scope))
        return None if row is None else str(row[0])

    async def active(self, user_id: int) -> list[Row[*tuple[Any, ...]]]:
        """The user's pending and running tasks, newest first."""
        return sorted(await self._all(q.active_of_user(user_id)), key=lambda r: r.pk, reverse=True)

    async def active_ids(self, user_id: int, novel_id: int) -> list[str]:
        return [r[0] for r in await self._all(q.active_ids_of_novel(user_id, novel_id))]

    async def history(
        self, user_id: int, only: q.HistoryFilter, *, before: int | None, limit: int
    ) -> Sequence[Row[*tuple[Any, ...]]]:
        """A page of the user's tasks, newest first (``before``: the pk the page starts below)."""
        return await self._all(q.history(user_id, only, before=before, limit=limit))

    async def events_after(self, task_pk: int, user_id: int, task_id: str, after: int) -> list[TaskEvent]:
        rows = await self._all(q.events_after(task_pk, after))
        return [TaskEvent.of(task_id, user_id, r.seq, r.kind, r.data) for r in rows]

    async def event(self, task_id: str, seq: int) -> TaskEvent | None:
        row = await self._first(q.event_of(task_id, seq))
        return None if row is None else TaskEvent.of(task_id, row.user_id, seq, row.kind, row.data)

    async def counts(self) -> list[tuple[str, str, int]]:
        """(status, task_type, number of tasks) over the whole table, for the metrics."""
        return [(r[0], r[1], r[2]) for r in await self._all(q.counts())]

    # --- the dispatcher ----------------------------------------------------------------

    async def dispatch_view(self, due: datetime, provider: str) -> DispatchView:
        """What a dispatch reads, in one statement (``queries.DISPATCH_VIEW``): each waiting user's oldest
        pending task due at ``due`` (a task waiting for a quota is due at its ``resume_at``) and how many
        tasks that user has running; ``provider``'s not-before and the earliest ``resume_at``."""
        async with self.db.raw_read() as tx:
            rows = await tx.fetch(q.DISPATCH_VIEW, due, provider)
        quota = next((r for r in rows if r[0] is None), None)
        heads = [r for r in rows if r[0] is not None and r[1] is not None]
        return DispatchView(
            [(r[0], r[1]) for r in heads],
            {r[0]: r[2] for r in heads},
            time_value(quota[3]) if quota is not None else None,
            time_value(quota[4]) if quota is not None else None,
        )

    async def provider_not_before(self, provider: str) -> datetime | None:
        """When ``provider``'s used-up quota ends, as any process recorded it (None: it never ran out)."""
        async with self.db.raw_read() as tx:
            row = await tx.fetchrow(q.PROVIDER_NOT_BEFORE, provider)
        return time_value(row[0]) if row is not None else None

    async def claim_oldest(
        self,
        users: Sequence[int],
        owner: str,
        lease_seconds: float,
        due: datetime | None = None,
        *,
        cap: int | None = None,
    ) -> list[Claimed]:
        """The dispatcher's claim, in one transaction: for each of ``users``, in order, that user's oldest
        task that is pending and due at ``due`` (default now), and (PostgreSQL) that no other process is
        taking right now: while another process takes a user's oldest task, this one takes the user's
        next. A user with none is left out. The ``running`` events are published in that order.

        With ``cap``, only as many as keep the generations running on the whole database at ``cap``
        or fewer: on PostgreSQL such claims take turns across processes (an advisory lock held to
        their commit), so two processes never both count the same free room.
        """
        now = utcnow()
        lease = now + timedelta(seconds=lease_seconds)
        position = {user: i for i, user in enumerate(users)}
        out: list[tuple[Claimed, TaskEvent]] = []
        postgres = not self.db.is_sqlite
        async with self.db.raw_write(single_statement=postgres and cap is None) as tx:
            if cap is not None:
                if postgres:
                    await tx.execute(q.CLAIM_TURN, q.CLAIM_TURN_KEY)
                running = (await tx.fetchrow(q.RUNNING_GENERATIONS))[0]
                users = users[: max(0, cap - running)]
                if not users:
                    return []
            args: tuple[Any, ...] = (q.list_param(tx.dialect, users), owner, lease, now, STARTED_MESSAGE, due or now)
            if postgres:  # the events stored and notified by the same statement
                rows = await tx.fetch(q.CLAIM_PG, *args, CHANNEL, self.origin)
            else:
                rows = await tx.fetch(q.CLAIM_SQLITE, *args)
            for row in sorted(rows, key=lambda r: position[r["user_id"]]):
                checkpoint = json_value(row["checkpoint"])
                if checkpoint is None and row["retry_of"] is not None:
                    earlier = await tx.fetchrow(q.CHECKPOINT_OF, row["retry_of"])
                    checkpoint = json_value(earlier[0]) if earlier is not None else None
                task_id, user_id, seq = row["id"], row["user_id"], row["seq"]
                data = (
                    row["data"]
                    if postgres
                    else event_data(
                        task_id, seq, TaskStatus.RUNNING, row["progress"], row["message"], attempt=row["attempt"]
                    )
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
            if not postgres:  # SQLite: the events in the claim's transaction
                await tx.executemany(q.ADD_EVENT, [(c.pk, e.seq, e.kind, e.data, now) for c, e in out])
        self._publish(*(e for _, e in out))
        return [c for c, _ in out]

    async def renew(self, owner: str, lease_seconds: float, task_ids: Sequence[str]) -> set[str]:
        """Renew the leases of those of ``task_ids`` that ``owner`` still runs; their ids."""
        async with self.db.raw_write(single_statement=True) as tx:
            renew = q.RENEW.format(ids=q.in_list(tx.dialect, "id"))
            lease = utcnow() + timedelta(seconds=lease_seconds)
            rows = await tx.fetch(renew, q.list_param(tx.dialect, task_ids), lease, owner)
        return {row[0] for row in rows}

    async def cancel_requested(self, task_ids: Sequence[str]) -> list[str]:
        if not task_ids:
            return []
        async with self.db.raw_read() as tx:
            query = q.CANCEL_REQUESTED.format(ids=q.in_list(tx.dialect, "id"))
            return [r[0] for r in await tx.fetch(query, q.list_param(tx.dialect, task_ids), True)]

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
        """Store and publish a progress or chunk event of a running task."""
        seq = task.seq + 1
        extra: dict[str, Any] = {"text": text} if text is not None else {}
        data = event_data(task.id, seq, TaskStatus.RUNNING, progress, message, **extra)
        event = TaskEvent.of(task.id, task.user_id, seq, kind, data)
        now = utcnow()
        lease = now + timedelta(seconds=self.lease_seconds)
        args = (task.pk, owner, task.seq, seq, progress, message, now, lease, text or "", json_text(usage))
        # A cancel (a user's, a batch's, a shutdown) landing while the write waits for its group
        # does not stop it: let it end and learn its seq, or the runner's last write (guarded
        # by the seq) would find no task and leave it running. Not for longer than a third of a
        # lease, though: a runner stopped because the database does not answer must unwind.
        write = self._append(q.RECORD, args, event, now)
        try:
            stored = await asyncio.shield(write)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.wait({write}, timeout=self.lease_seconds / 3)
                if write.done() and write.result():
                    task.seq = seq
            raise
        if not stored:
            raise LeaseLost(task.id)
        task.seq = seq
        return event

    async def save_checkpoint(self, task: Claimed, owner: str, checkpoint: dict[str, Any]) -> None:
        async with self.db.raw_write(single_statement=True) as tx:
            if await tx.execute(q.SAVE_CHECKPOINT, task.pk, owner, task.seq, json_text(checkpoint)) != 1:
                raise LeaseLost(task.id)

    async def complete(
        self,
        task: Claimed,
        owner: str,
        message: str,
        result: Any,
        usage: dict[str, int] | None,
        apply: Callable[[AsyncSession], Awaitable[None]] | None,
    ) -> TaskEvent:
        """Apply the result to the novel and mark the task completed, in one transaction; then publish.

        ``apply`` gets an ORM session that opens its transaction on first use; when
        it touched nothing (or there is no ``apply``), the task row and its event join
        a group commit on the raw driver.
        """
        seq = task.seq + 1
        data = event_data(task.id, seq, TaskStatus.COMPLETED, 100, message, result=result)
        event = TaskEvent.of(task.id, task.user_id, seq, EventKind.COMPLETED, data)
        now = utcnow()
        args = (task.pk, owner, task.seq, message, json_text(result), json_text(usage), seq, now)

        async def mark_completed(tx: Tx) -> None:
            if not await self._write_with_event(tx, q.COMPLETE, args, event, now):
                raise LeaseLost(task.id)

        if apply is not None and await self.db.session_then_raw(apply, mark_completed):
            self._publish(event)
        elif not await self._append(q.COMPLETE, args, event, now):  # nothing applied: it joins a group commit
            raise LeaseLost(task.id)
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
        held = _Held(task.pk, task.id, task.user_id, owner, task.seq)
        args, event, now = _finish(held, status, progress, message, error, json_text(usage))
        if not await self._append(q.FINISH, args, event, now):
            return None
        task.seq = event.seq
        return event

    # --- waiting for a provider's quota -----------------------------------------------------

    async def quota_requeue(
        self,
        task: Claimed,
        owner: str,
        *,
        provider: str | None,
        resume_at: datetime,
        wait: float,
        max_wait: float,
        message: str,
        give_up: dict[str, str],
        progress: int,
        usage: dict[str, int] | None = None,
    ) -> TaskEvent | None:
        """A running task hit its provider's quota: pending again until ``resume_at`` with ``attempt`` + 1
        (``QUOTA_REQUEUE``), and the provider's not-before set to ``resume_at`` (``provider`` None: no
        quota to record), in one transaction; or, when ``wait`` would take the task's waiting past
        ``max_wait`` in total, failed with ``give_up``. None when the task was not ours any more."""
        held = _Held(task.pk, task.id, task.user_id, owner, task.seq)
        async with self.db.raw_write() as tx:
            row = await tx.fetchrow(q.QUOTA_WAITED, task.pk, owner, task.seq)
            if row is None:
                return None
            if row[1]:  # a cancel asked before the runner heard it: ended, not left waiting for the quota
                args, event, now = _finish(held, TaskStatus.CANCELLED, progress, CANCELLED, None, json_text(usage))
                write = q.FINISH
            elif float(row[0] or 0) + wait > max_wait:
                args, event, now = _finish(
                    held, TaskStatus.FAILED, progress, give_up["message"], give_up, json_text(usage)
                )
                write = q.FINISH
            else:
                seq = held.seq + 1
                attempt = task.attempt + 1
                data = event_data(
                    held.id, seq, TaskStatus.PENDING, 0, message, attempt=attempt, resume_at=_utc_z(resume_at)
                )
                event = TaskEvent.of(held.id, held.user_id, seq, EventKind.STATUS, data)
                now = utcnow()
                args = (held.pk, owner, held.seq, attempt, message, seq, now, resume_at, wait)
                write = q.QUOTA_REQUEUE
                if provider is not None:
                    await tx.execute(q.SET_NOT_BEFORE, provider, resume_at)
            if not await self._write_with_event(tx, write, args, event, now):
                return None
        task.seq = event.seq
        self._publish(event)
        return event

    # --- giving running tasks back ---------------------------------------------------------

    async def requeue_own(self, task: Claimed, owner: str, max_attempts: int, message: str) -> TaskEvent | None:
        """Give back a task this process is running (shutdown): pending again, or failed after the last attempt."""
        return await self._requeue(q.RUNNING_OWNED, (task.pk, owner), max_attempts=max_attempts, message=message)

    async def requeue_expired(self, max_attempts: int, message: str) -> list[TaskEvent]:
        """Recover running tasks whose lease ran out (their process died)."""
        now = utcnow()
        async with self.db.raw_read() as tx:
            pks = [r[0] for r in await tx.fetch(q.EXPIRED, now)]
        # PostgreSQL: the row stays locked from the read that finds its lease expired to the requeue,
        # so an owner's renewal cannot commit in between (both would hold: two processes running it).
        running = q.RUNNING_EXPIRED if self.db.is_sqlite else f"{q.RUNNING_EXPIRED} FOR UPDATE"
        events = []
        for pk in pks:
            event = await self._requeue(running, (pk, now), max_attempts=max_attempts, message=message)
            if event is not None:
                events.append(event)
        return events

    async def _requeue(
        self, running: str, which: Sequence[Any], *, max_attempts: int, message: str
    ) -> TaskEvent | None:
        """The running task ``running`` finds (``which``: its arguments): pending again (``REQUEUE``), or
        failed ``interrupted`` after its last attempt (``FINISH``); committed, then published."""
        async with self.db.raw_write() as tx:
            row = await tx.fetchrow(running, *which)
            if row is None:
                return None
            held = _Held(row["pk"], row["id"], row["user_id"], row["owner"], row["seq"])
            attempt = row["attempt"]
            if row["cancel_requested"]:  # asked before its runner heard it: not back to the queue
                args, event, now = _finish(held, TaskStatus.CANCELLED, row["progress"], CANCELLED, None, row["usage"])
                write = q.FINISH
            elif attempt >= max_attempts:
                error = {"code": "interrupted", "message": f"{message}; gave up after {attempt} attempts"}
                # the usage as stored: giving a task up does not change what it used
                args, event, now = _finish(
                    held, TaskStatus.FAILED, row["progress"], error["message"], error, row["usage"]
                )
                write = q.FINISH
            else:
                text = f"{message}; queued again (attempt {attempt + 1})"
                seq = held.seq + 1
                data = event_data(held.id, seq, TaskStatus.PENDING, 0, text, attempt=attempt + 1)
                event = TaskEvent.of(held.id, held.user_id, seq, EventKind.STATUS, data)
                now = utcnow()
                args, write = (held.pk, held.owner, held.seq, attempt + 1, text, seq, now), q.REQUEUE
            if not await self._write_with_event(tx, write, args, event, now):
                return None
        self._publish(event)
        return event

    # --- requests from the API ---------------------------------------------------------

    async def request_cancel(self, user_id: int, task_id: str) -> tuple[Row[*tuple[Any, ...]] | None, TaskEvent | None]:
        """Cancel: a pending task at once (its event is returned), a running one by flag (its runner sees it).

        Returns the task as it is then (None: not the user's task), and the cancelled event if there was one.
        """
        now = utcnow()
        flagged = False
        async with self.db.write() as conn:
            tx = SqlaTx(conn)
            for _ in range(CANCEL_TRIES):
                row = await tx.fetchrow(q.CANCEL_TARGET, task_id, user_id)
                if row is None:
                    return None, None
                pk, status, seq = row["pk"], row["status"], row["seq"]
                event = None
                if status == TaskStatus.PENDING:
                    data = event_data(task_id, seq + 1, TaskStatus.CANCELLED, row["progress"], CANCELLED_BEFORE_START)
                    event = TaskEvent.of(task_id, user_id, seq + 1, EventKind.CANCELLED, data)
                    args = (pk, True, CANCELLED_BEFORE_START, seq + 1, now, seq)
                    if not await self._write_with_event(tx, q.CANCEL_PENDING, args, event, now):
                        event = None  # claimed in the meantime (another process): cancel it as running
                if event is not None or status not in (TaskStatus.PENDING, TaskStatus.RUNNING):
                    break
                if await tx.execute(q.FLAG_CANCEL, pk, True, now):
                    if tx.dialect == "postgresql":
                        await tx.execute(q.NOTIFY, CHANNEL, notification(self.origin, task_id, 0))
                    flagged = True
                    break
                # (PostgreSQL) no longer running since the read: given back to the queue, or ended. Again.
            task = (await conn.execute(q.task_by_pk(pk))).first()
        if event is not None:
            self._publish(event)
        elif flagged:
            self.forget(task_id)  # cancel_requested is set; the cancelled event comes later
        return task, event
