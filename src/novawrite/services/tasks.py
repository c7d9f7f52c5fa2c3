"""Task use cases from the API: submit, read, list, cancel, retry.

Submitting inserts the task and its first event (``status: pending``, seq 1) in
one transaction; the database enforces the one-active-task rule and the
idempotency key (unique indexes), so concurrent identical requests cannot both
create a task. Every statement is the store's (``novawrite.engine.store``), which
also publishes every event it stores; this module knows no SQL and no HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any, cast

import orjson
from pydantic import BaseModel

from novawrite.db import raw
from novawrite.db.engine import MAX_ID, valid_id
from novawrite.db.models import TaskStatus, utcnow
from novawrite.engine.events import TaskEvent
from novawrite.engine.queries import HistoryFilter
from novawrite.engine.store import SubmitChecks, TaskStore
from novawrite.engine.supervisor import Supervisor
from novawrite.errors import Conflict, NotFound, TooManyTasks, ValidationFailed
from novawrite.generators.kind import TaskKind
from novawrite.jsonenc import dumps_kept
from novawrite.services.task_views import TaskBody, TaskViews

INSERT_TRIES = 3  # a submit that collided with an active task which then finished tries again
PENDING_MESSAGE = "Queued"  # the novel's language is not read at submit

log = logging.getLogger("novawrite.engine")


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
        "parent_id": row.parent_id,
        "cancel_requested": row.cancel_requested,
        # kept by a task cancelled while it waited: shown only while it is pending
        "resume_at": row.resume_at if row.status == TaskStatus.PENDING else None,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "updated_at": row.updated_at,
    }


@dataclass(frozen=True)
class Submitted:
    task: dict[str, Any]
    created: bool  # False: an idempotent repeat of an earlier request


def request_hash(route: str, params: BaseModel) -> str:
    body = orjson.dumps(params.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(route.encode() + b"\n" + body).hexdigest()


def encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(f"t{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    pk = valid_id(raw[1:]) if raw.startswith("t") else None
    if pk is None:
        raise ValidationFailed([{"field": "query.cursor", "message": "Not a cursor this API gave out"}])
    return pk


class Tasks:
    def __init__(
        self, store: TaskStore, supervisor: Supervisor, kinds: dict[str, TaskKind], max_unfinished: int
    ) -> None:
        self.store = store
        self.supervisor = supervisor
        self.kinds = kinds
        self.max_unfinished = max_unfinished
        self.views = TaskViews()
        store.on_change(self.views.changed)

    # --- submit ------------------------------------------------------------------------

    async def submit(
        self, user_id: int, kind: TaskKind, params: BaseModel, idempotency_key: str | None, *, route: str = ""
    ) -> Submitted:
        """``route`` is the HTTP route the request came by: an Idempotency-Key repeat must match it and the body."""
        digest = request_hash(route or kind.task_type, params)
        if idempotency_key is not None:
            repeat = await self._idempotent_repeat(user_id, idempotency_key, digest)
            if repeat is not None:
                return Submitted(repeat, created=False)
        novel_id = cast(Any, params).novel_id
        nid = valid_id(novel_id)
        if nid is None:
            raise NotFound("Novel not found")
        if kind.per_chapter:
            chapter_id = valid_id(cast(Any, params).chapter_id)
            checks = await self.store.submit_checks(user_id, nid, chapter_id)
            self._check_novel_and_unfinished(checks)
            self._check_chapter(checks, params)
            await self._check_batches(nid, kind, chapter_id)
        stored = params.model_dump(mode="json", exclude={"novel_id"}, exclude_unset=True)
        # Other kinds need only "the user's novel" and "not too many unfinished": the insert checks
        # both itself (one statement, not a read and a write); only a refused one reads why.
        limit = None if kind.per_chapter else self.max_unfinished
        for _ in range(INSERT_TRIES):
            try:
                task = await self._insert(
                    user_id,
                    nid,
                    kind,
                    stored,
                    scope=kind.scope(params),
                    idempotency_key=idempotency_key,
                    digest=digest,
                    max_unfinished=limit,
                )
            except _Repeat as repeat:
                return Submitted(repeat.task, created=False)
            except _Refused:
                self._check_novel_and_unfinished(await self.store.submit_checks(user_id, nid))
                continue  # both hold now (a task of the user's ended in between): try again
            return Submitted(task, created=True)
        raise self._too_many(self.max_unfinished)  # refused every time: the user stays at the limit

    def _check_novel_and_unfinished(self, checks: SubmitChecks) -> None:
        if not checks.owns_novel:
            raise NotFound("Novel not found")
        self._check_unfinished(checks.unfinished)

    def _check_chapter(self, checks: SubmitChecks, params: BaseModel) -> None:
        if not checks.chapter_found:
            raise NotFound("Chapter not found")
        if checks.chapter_has_text and not getattr(params, "overwrite", False):
            raise Conflict(
                "chapter_has_content",
                'The chapter already has text; send "overwrite": true to replace it (the old text is kept as a revision)',
            )

    async def _check_batches(self, novel_id: int, kind: TaskKind, chapter_id: int | None) -> None:
        """A chapter an active batch of the novel will write is that batch's (409 with its id)."""
        for batch in self.kinds.values():
            if not batch.batch or batch.names_chapters is None:
                continue
            active = await self.store.active_batch(novel_id, batch.task_type)
            if active is None:
                continue
            batch_id, stored, checkpoint = active
            named = batch.names_chapters(batch.params.model_validate({**stored, "novel_id": novel_id}))
            done = (checkpoint or {}).get("written", []) if (checkpoint or {}).get("batch") == batch_id else []
            if chapter_id in named and chapter_id not in done:
                raise Conflict(
                    "task_conflict",
                    f"A {batch.task_type} task of this novel will write this chapter",
                    task_id=batch_id,
                )

    async def _idempotent_repeat(self, user_id: int, key: str, digest: str) -> dict[str, Any] | None:
        row = await self.store.by_idempotency_key(user_id, key)
        if row is None:
            return None
        if row.request_hash != digest:
            raise Conflict(
                "idempotency_key_reused", "This Idempotency-Key was used with another route or body", task_id=row.id
            )
        return task_view(row)

    def _check_unfinished(self, unfinished: int) -> None:
        if unfinished >= self.max_unfinished:
            raise self._too_many(unfinished)

    def _too_many(self, unfinished: int) -> TooManyTasks:
        return TooManyTasks(
            f"You have {unfinished} unfinished tasks; wait for some to finish (limit {self.max_unfinished})",
            retry_after=5,
        )

    async def _insert(
        self,
        user_id: int,
        novel_id: int,
        kind: TaskKind,
        params: dict[str, Any],
        *,
        scope: int,
        idempotency_key: str | None = None,
        digest: str | None = None,
        attempt: int = 1,
        retry_of: str | None = None,
        max_unfinished: int | None = None,
    ) -> dict[str, Any]:
        """The new task's view (``max_unfinished``: made only within that and on the user's own novel, else ``_Refused``)."""
        now = utcnow()
        task_id = str(uuid.uuid4())
        message = PENDING_MESSAGE
        for tries_left in reversed(range(INSERT_TRIES)):
            try:
                inserted = await self.store.insert_task(
                    task_id=task_id,
                    user_id=user_id,
                    novel_id=novel_id,
                    task_type=kind.task_type,
                    scope=scope,
                    message=message,
                    params=params,
                    attempt=attempt,
                    retry_of=retry_of,
                    idempotency_key=idempotency_key,
                    request_hash=digest,
                    now=now,
                    max_unfinished=max_unfinished,
                )
                if inserted is None:
                    raise _Refused()
                break
            except raw.IntegrityError:
                if idempotency_key is not None and digest is not None:
                    repeat = await self._idempotent_repeat(user_id, idempotency_key, digest)
                    if repeat is not None:
                        raise _Repeat(repeat) from None
                active = await self.store.active_in_scope(novel_id, kind.task_type, scope)
                if active is not None:
                    raise Conflict(
                        "task_conflict",
                        f"A {kind.task_type} task is already pending or running for this novel",
                        task_id=active,
                    ) from None
                if not await self.store.novel_exists(novel_id):
                    raise NotFound("Novel not found") from None
                if not tries_left:
                    raise
                # The active task it collided with finished in the meantime: try again.
        self.supervisor.wake(user_id)  # the store published the task's first event
        log.info("task=%s type=%s user=%s status=pending attempt=%s", task_id, kind.task_type, user_id, attempt)
        return {
            "id": task_id,
            "novel_id": novel_id,
            "user_id": user_id,
            "task_type": kind.task_type,
            "status": TaskStatus.PENDING.value,
            "progress": 0,
            "message": message,
            "params": params,
            "result": None,
            "error": None,
            "usage": None,
            "attempt": attempt,
            "retry_of": retry_of,
            "parent_id": None,
            "cancel_requested": False,
            "resume_at": None,
            "created_at": now,
            "started_at": None,
            "finished_at": None,
            "updated_at": now,
        }

    # --- read --------------------------------------------------------------------------

    async def poll(self, user_id: int, task_id: str) -> TaskBody:
        """A task's encoded body for the polling endpoint, from the cache when it has not changed."""
        cached = self.views.get(task_id)
        if cached is None:
            if not _is_uuid(task_id):
                raise NotFound("Task not found")
            token = self.views.begin_read(task_id)
            row = None
            try:
                row = await self.store.view_row(task_id)
            finally:
                cached = TaskBody.of(row.user_id, dumps_kept(task_view(row))) if row is not None else None
                self.views.end_read(task_id, token, cached)
        if cached is None or cached.user_id != user_id:
            raise NotFound("Task not found")
        return cached

    async def _row(self, user_id: int, task_id: str) -> Any:
        if not _is_uuid(task_id):
            raise NotFound("Task not found")
        row = await self.store.row(task_id)
        if row is None or row.user_id != user_id:
            raise NotFound("Task not found")
        return row

    async def output(self, user_id: int, task_id: str) -> dict[str, Any]:
        row = await self._row(user_id, task_id)
        return {"text": row.output or "", "complete": row.status == TaskStatus.COMPLETED}

    async def active(self, user_id: int) -> list[dict[str, Any]]:
        return [task_view(r) for r in await self.store.active(user_id)]

    async def history(
        self,
        user_id: int,
        *,
        novel_id: int | None,
        status: str | None,
        task_type: str | None,
        limit: int,
        cursor: str | None,
        chapter_id: int | None = None,
        parent_id: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        if task_type is not None and task_type not in self.kinds:
            raise ValidationFailed([{"field": "query.task_type", "message": f"Unknown task_type {task_type!r}"}])
        before = decode_cursor(cursor) if cursor is not None else None
        if any(i is not None and not 0 < i <= MAX_ID for i in (novel_id, chapter_id)):
            return [], None  # no such novel or chapter can exist
        if parent_id is not None and not _is_uuid(parent_id):
            return [], None  # no such batch can exist
        only = HistoryFilter(
            novel_id=novel_id, status=status, task_type=task_type, chapter_id=chapter_id, parent_id=parent_id
        )
        rows = await self.store.history(user_id, only, before=before, limit=limit + 1)
        items = [task_view(r) for r in rows[:limit]]
        next_cursor = encode_cursor(rows[limit - 1].pk) if len(rows) > limit else None
        return items, next_cursor

    async def replay(self, user_id: int, task_id: str, after: int) -> tuple[Any, list[TaskEvent]]:
        row = await self._row(user_id, task_id)
        return row, await self.store.events_after(row.pk, user_id, task_id, after)

    # --- cancel and retry ----------------------------------------------------------------

    async def cancel(self, user_id: int, task_id: str) -> dict[str, Any]:
        if not _is_uuid(task_id):
            raise NotFound("Task not found")
        row, event = await self.store.request_cancel(user_id, task_id)
        if row is None:
            raise NotFound("Task not found")
        if event is None:  # not a pending task cancelled at once (the store published that one's event)
            if TaskStatus(row.status).finished:
                raise Conflict("task_finished", f"The task is already {row.status}")
            self.supervisor.cancel_local(task_id)  # cancel_requested is set; the cancelled event comes later
        kind = self.kinds.get(row.task_type)
        if kind is not None and kind.batch:
            # Its chapter may run on without it (the batch waits in the queue, given back by a
            # process that stopped, or its runner has not taken the child up yet): cancel it too.
            for child_id in await self.store.active_children(task_id):
                with contextlib.suppress(Conflict):
                    await self.cancel(user_id, child_id)
        return task_view(row)

    async def novel_deleted(self) -> None:
        """A novel and its tasks are gone: forget every cached task body, here and in other processes."""
        await self.store.changed(None)

    async def cancel_all_for_novel(self, user_id: int, novel_id: int, timeout: float = 3.0) -> None:
        ids = await self.store.active_ids(user_id, novel_id)
        for task_id in ids:
            try:
                await self.cancel(user_id, task_id)
            except Conflict:
                pass
        waits = [self.supervisor.wait_finished(task_id, timeout) for task_id in ids]
        if waits:
            await asyncio.gather(*waits)

    async def retry(self, user_id: int, task_id: str) -> dict[str, Any]:
        row = await self._row(user_id, task_id)
        if row.status not in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            raise Conflict(
                "task_not_retryable", f"Only a failed or cancelled task can be retried; this one is {row.status}"
            )
        kind = self.kinds.get(row.task_type)
        if kind is None:
            raise Conflict("task_not_retryable", f"Tasks of type {row.task_type!r} can no longer run")
        params = kind.params.model_validate({**row.params, "novel_id": row.novel_id})
        self._check_unfinished((await self.store.submit_checks(user_id, row.novel_id)).unfinished)
        return await self._insert(
            user_id,
            row.novel_id,
            kind,
            dict(row.params),
            scope=kind.scope(params),
            attempt=row.attempt + 1,
            retry_of=row.id,
        )


class _Refused(Exception):
    """A checked insert was not made: the novel is not the user's, or the user is at the unfinished limit."""


class _Repeat(Exception):
    """An idempotent repeat discovered only when the insert collided (a concurrent twin)."""

    def __init__(self, task: dict[str, Any]) -> None:
        self.task = task


def _is_uuid(value: str) -> bool:
    if len(value) != 36:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
