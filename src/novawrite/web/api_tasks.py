"""Generation submits (/api/ai/...), tasks (/api/tasks...), and their event streams."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from novawrite.engine.bus import Subscription
from novawrite.engine.events import TaskEvent, sse_bytes
from novawrite.errors import ValidationFailed
from novawrite.generators.registry import TaskKind
from novawrite.web.http import JSON, dumps
from novawrite.web.routing import ApiRouter, Call
from novawrite.web.schemas import (
    ActiveTasksOut,
    NovelTasksQuery,
    TaskHistoryQuery,
    TaskListOut,
    TaskOut,
    TaskOutputOut,
)
from novawrite.web.sse import PING, EventStream

router = ApiRouter("tasks")
log = logging.getLogger("novawrite.web")

IDEMPOTENCY_HEADER = "idempotency-key"
MAX_SEQ = 2**31 - 1


def task_response(task: dict, status: int = 200) -> Response:  # type: ignore[type-arg]
    return JSON(task, status_code=status, headers={"Location": f"/api/tasks/{task['id']}"})


def generation_router(kinds: Mapping[str, TaskKind]) -> ApiRouter:
    """One submit route per generation kind."""
    ai = ApiRouter("generation")
    for kind in kinds.values():
        ai.route(
            "POST",
            kind.route,
            summary=f"Start a {kind.task_type} task (202; an Idempotency-Key repeat is 200)",
            body=kind.params,
            response=TaskOut,
            status=202,
            errors=(409, 429),
        )(_submit_handler(kind))
    return ai


def _submit_handler(kind: TaskKind):  # type: ignore[no-untyped-def]
    async def submit(call: Call) -> Response:
        key = call.request.headers.get(IDEMPOTENCY_HEADER)
        if key is not None and not 1 <= len(key) <= 200:
            raise ValidationFailed([{"field": "header.Idempotency-Key", "message": "Must be 1-200 characters"}])
        submitted = await call.services.tasks.submit(call.user.id, kind, call.body, key)
        return task_response(submitted.task, 202 if submitted.created else 200)

    submit.__name__ = f"submit_{kind.task_type}"
    return submit


class Prepared(Response):
    """A response whose body and headers were encoded beforehand (the polling cache's)."""

    def __init__(self, status_code: int, body: bytes, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = status_code
        self.body = body
        self.raw_headers = list(raw_headers)
        self.background = None


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    return any(tag.strip().removeprefix("W/") in (etag, "*") for tag in if_none_match.split(","))


# Registered before /api/tasks/{task_id} so that "active" is not taken for an id; the
# polling route right after it, since Starlette tries routes in order.
@router.route("GET", "/api/tasks/active", summary="The user's pending and running tasks", response=ActiveTasksOut)
async def active_tasks(call: Call) -> Response:
    return JSON({"items": await call.services.tasks.active(call.user.id)})


@router.route(
    "GET",
    "/api/tasks/{task_id}",
    summary="A task (the polling endpoint; ETag and 304)",
    response=TaskOut,
    errors=(304,),
)
async def get_task(call: Call) -> Response:
    task = await call.services.tasks.poll(call.user.id, call.path_param("task_id"))
    if _matches(call.request.headers.get("if-none-match"), task.etag):
        return Prepared(304, b"", task.headers_304)
    return Prepared(200, task.body, task.headers_200)


@router.route(
    "GET", "/api/tasks", summary="The user's task history, newest first", query=TaskHistoryQuery, response=TaskListOut
)
async def task_history(call: Call) -> Response:
    q = call.query
    items, cursor = await call.services.tasks.history(
        call.user.id, novel_id=q.novel_id, status=q.status, task_type=q.task_type, limit=q.limit, cursor=q.cursor
    )
    return JSON({"items": items, "next_cursor": cursor})


@router.route(
    "GET",
    "/api/novels/{novel_id}/tasks",
    summary="A novel's tasks, newest first",
    query=NovelTasksQuery,
    response=TaskListOut,
)
async def novel_tasks(call: Call) -> Response:
    services = call.services
    novel_id = await services.novels.owned(call.user.id, call.path_param("novel_id"))
    q = call.query
    items, cursor = await services.tasks.history(
        call.user.id,
        novel_id=novel_id,
        status=q.status,
        task_type=q.task_type,
        chapter_id=q.chapter_id,
        limit=q.limit,
        cursor=q.cursor,
    )
    return JSON({"items": items, "next_cursor": cursor})


@router.route("GET", "/api/tasks/{task_id}/output", summary="Text generated so far", response=TaskOutputOut)
async def task_output(call: Call) -> Response:
    return JSON(await call.services.tasks.output(call.user.id, call.path_param("task_id")))


@router.route("POST", "/api/tasks/{task_id}/cancel", summary="Cancel a task", response=TaskOut, errors=(409,))
async def cancel_task(call: Call) -> Response:
    return JSON(await call.services.tasks.cancel(call.user.id, call.path_param("task_id")))


@router.route(
    "POST",
    "/api/tasks/{task_id}/retry",
    summary="Run a failed or cancelled task again as a new task",
    response=TaskOut,
    status=202,
    errors=(409, 429),
)
async def retry_task(call: Call) -> Response:
    return task_response(await call.services.tasks.retry(call.user.id, call.path_param("task_id")), 202)


# --- Server-Sent Events ---------------------------------------------------------------


def _last_event_id(request: Request) -> int:
    raw = request.headers.get("last-event-id")
    if raw is None:
        raw = request.query_params.get("last_event_id")
    raw = (raw or "").strip()
    if not (raw.isascii() and raw.isdigit()):
        return 0
    # Any value past the largest seq a task can have replays nothing (seq is a 32-bit INTEGER).
    return MAX_SEQ if len(raw) > 10 else min(int(raw), MAX_SEQ)


T = TypeVar("T")
_reads: set[asyncio.Task[Any]] = set()


async def _read_to_the_end(read: Awaitable[T]) -> T:
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


async def _live(subscription: Subscription, deadline: float, ping_seconds: float) -> AsyncIterator[TaskEvent | None]:
    """Events from a subscription, and None (a ping) whenever nothing has gone out for
    ``ping_seconds`` (API.md: a ping at least every 15 s while idle), until the subscription
    is dropped or closed or the stream's lifetime ends.

    One timer per stream, re-armed for when the next ping would be due, instead of a
    timeout on every wait (a timer per wait costs as much as the rest of a delivery).
    """
    loop = asyncio.get_running_loop()
    last_out = loop.time()
    timer: asyncio.TimerHandle

    def check() -> None:
        nonlocal timer
        now = loop.time()
        due = last_out + ping_seconds
        if now >= due or now >= deadline:
            subscription.poke()
            due = now + ping_seconds
        timer = loop.call_later(max(0.0, min(due, deadline) - now), check)

    timer = loop.call_later(max(0.0, min(last_out + ping_seconds, deadline) - last_out), check)
    try:
        while loop.time() < deadline:
            event = await subscription.get()
            if event is None and (subscription.dropped or subscription.closed):
                return
            last_out = loop.time()
            yield event
    finally:
        timer.cancel()


@router.route(
    "GET",
    "/api/tasks/{task_id}/events",
    summary="A task's progress stream (SSE, resumable)",
    media_type="text/event-stream",
)
async def task_events(call: Call) -> Response:
    services = call.services
    task_id = call.path_param("task_id")
    user_id = call.user.id
    after = _last_event_id(call.request)
    await services.tasks.poll(user_id, task_id)  # 404 before the stream starts
    deadline = asyncio.get_running_loop().time() + services.settings.stream_max_seconds
    ping_seconds = services.settings.stream_ping_seconds

    async def body() -> AsyncIterator[bytes]:
        async with services.bus.task(task_id) as subscription:  # subscribe first, then replay
            row, stored = await _read_to_the_end(services.tasks.replay(user_id, task_id, after))
            finished = row.status in ("completed", "failed", "cancelled")
            last = after
            for event in stored:
                yield event.wire
                last = event.seq
                if event.terminal:
                    return
            del row, stored  # an open stream keeps only what it needs
            if finished:
                return
            async for event in _live(subscription, deadline, ping_seconds):
                if event is None:
                    yield PING
                    continue
                if event.seq <= last:
                    continue
                if event.seq > last + 1:  # published out of order: fill the gap from the database
                    _, missing = await _read_to_the_end(services.tasks.replay(user_id, task_id, last))
                    for earlier in missing:
                        if earlier.seq < event.seq:
                            yield earlier.wire
                            last = earlier.seq
                yield event.wire
                last = event.seq
                if event.terminal:
                    return

    return EventStream(body())


@router.route(
    "GET",
    "/api/events",
    summary="All of the user's task events (SSE): a snapshot, then live events",
    media_type="text/event-stream",
)
async def user_events(call: Call) -> Response:
    services = call.services
    user_id = call.user.id
    deadline = asyncio.get_running_loop().time() + services.settings.stream_max_seconds
    ping_seconds = services.settings.stream_ping_seconds

    async def body() -> AsyncIterator[bytes]:
        async with services.bus.user(user_id) as subscription:
            yield sse_bytes(
                None, "snapshot", dumps({"items": await _read_to_the_end(services.tasks.active(user_id))}).decode()
            )
            async for event in _live(subscription, deadline, ping_seconds):
                yield PING if event is None else event.wire

    return EventStream(body())
