"""Generation submits (/api/ai/...), tasks (/api/tasks...), and their event streams."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from novawrite.engine.events import TaskEvent, sse_bytes
from novawrite.engine.streams import EventStreams, Place, Snapshot
from novawrite.errors import ValidationFailed
from novawrite.generators.kind import TaskKind
from novawrite.jsonenc import dumps
from novawrite.services.task_views import TaskBody
from novawrite.web.http import JSON
from novawrite.web.routing import ApiRouter, Call
from novawrite.web.schemas import (
    ActiveTasksOut,
    NovelTasksQuery,
    TaskHistoryQuery,
    TaskListOut,
    TaskOut,
    TaskOutputOut,
)
from novawrite.web.security_headers import SERVER_SEND

router = ApiRouter("tasks")
log = logging.getLogger("novawrite.web")

IDEMPOTENCY_HEADER = "idempotency-key"
MAX_SEQ = 2**31 - 1
PING = b": ping\n\n"


def task_response(task: dict, status: int = 200) -> Response:  # type: ignore[type-arg]
    return JSON(task, status_code=status, headers={"Location": f"/api/tasks/{task['id']}"})


def submit_route(task_type: str) -> str:
    """A kind's submit route: ``generate_outline`` is ``/api/ai/generate-outline``."""
    return "/api/ai/" + task_type.replace("_", "-")


def generation_router(kinds: Mapping[str, TaskKind]) -> ApiRouter:
    """One submit route per generation kind."""
    ai = ApiRouter("generation")
    for kind in kinds.values():
        route = submit_route(kind.task_type)
        ai.route(
            "POST",
            route,
            summary=f"Start a {kind.task_type} task (202; an Idempotency-Key repeat is 200)",
            body=kind.params,
            response=TaskOut,
            status=202,
            errors=(409, 429),
        )(_submit_handler(kind, route))
    return ai


def _submit_handler(kind: TaskKind, route: str):  # type: ignore[no-untyped-def]
    async def submit(call: Call) -> Response:
        key = call.request.headers.get(IDEMPOTENCY_HEADER)
        if key is not None and not 1 <= len(key) <= 200:
            raise ValidationFailed([{"field": "header.Idempotency-Key", "message": "Must be 1-200 characters"}])
        named = kind.chapters_named(call.body)
        if named:  # chapters of another novel or user: 404
            await call.services.novels.check_chapters(call.user.id, call.body.novel_id, named)
        submitted = await call.services.tasks.submit(call.user.id, kind, call.body, key, route=route)
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


Headers = list[tuple[bytes, bytes]]


def _poll_headers(task: TaskBody) -> tuple[Headers, Headers]:
    """A polled task's 200 and 304 headers, encoded once per change of the task: kept with its cached body."""
    headers: tuple[Headers, Headers] | None = task.prepared
    if headers is None:
        common = [(b"etag", task.etag.encode()), (b"cache-control", b"private, no-cache")]
        ok = [(b"content-length", str(len(task.body)).encode()), (b"content-type", b"application/json"), *common]
        headers = task.prepared = (ok, common)
    return headers


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
    ok, not_modified = _poll_headers(task)
    if _matches(call.request.headers.get("if-none-match"), task.etag):
        return Prepared(304, b"", not_modified)
    return Prepared(200, task.body, ok)


@router.route(
    "GET", "/api/tasks", summary="The user's task history, newest first", query=TaskHistoryQuery, response=TaskListOut
)
async def task_history(call: Call) -> Response:
    q = call.query
    items, cursor = await call.services.tasks.history(
        call.user.id,
        novel_id=q.novel_id,
        status=q.status,
        task_type=q.task_type,
        parent_id=q.parent_id,
        limit=q.limit,
        cursor=q.cursor,
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
        parent_id=q.parent_id,
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


@router.route(
    "GET",
    "/api/tasks/{task_id}/events",
    summary="A task's progress stream (SSE, resumable)",
    media_type="text/event-stream",
    errors=(429,),
)
async def task_events(call: Call) -> Response:
    streams: EventStreams = call.services.streams
    task_id, user_id = call.path_param("task_id"), call.user.id
    await call.services.tasks.poll(user_id, task_id)  # 404 before the stream starts
    place = streams.open(user_id)
    return EventStream(streams.task(user_id, task_id, last_event_id(call.request), _frame, b"".join), place)


@router.route(
    "GET",
    "/api/events",
    summary="All of the user's task events (SSE): a snapshot, then live events",
    media_type="text/event-stream",
    errors=(429,),
)
async def user_events(call: Call) -> Response:
    streams: EventStreams = call.services.streams
    place = streams.open(call.user.id)
    return EventStream(streams.user(call.user.id, _frame, b"".join), place)


def last_event_id(request: Request) -> int:
    """The Last-Event-ID header, else the ``last_event_id`` query parameter; 0 unless a non-negative integer."""
    raw = request.headers.get("last-event-id")
    if raw is None:
        given = request.query_params.getlist("last_event_id")
        raw = given[0] if len(given) == 1 else None  # repeated: not one value, so 0 like any bad one
    raw = (raw or "").strip()
    if not (raw.isascii() and raw.isdigit()):
        return 0
    digits = raw.lstrip("0")
    # Past the largest seq a task can have (seq is a 32-bit INTEGER) replays nothing; the length
    # is checked first because int() refuses strings of more than 4,300 digits.
    return MAX_SEQ if len(digits) > 10 else min(int(digits or "0"), MAX_SEQ)


def _frame(item: TaskEvent | Snapshot | None) -> bytes:
    """A stream item's SSE frame: an event's own bytes (encoded once, the same for every reader;
    sse-starlette sends bytes as they are), a ping comment, the snapshot."""
    if item is None:
        return PING
    if isinstance(item, TaskEvent):
        return item.wire
    return sse_bytes(None, "snapshot", dumps({"items": item.items}).decode())


class EventStream(EventSourceResponse):
    """sse-starlette's response for frames that are already SSE bytes, holding one of the user's
    stream places until it ends.

    sse-starlette ends it when the body ends, when the client disconnects and when uvicorn
    is told to exit. Its own ping is off: the body pings once nothing has gone out for the
    ping interval.

    A send that has not returned within ``send_timeout`` (the client stopped reading; it
    catches up with Last-Event-ID when it reads again) ends the stream too, but not through
    sse-starlette's ``send_timeout``: that puts an anyio cancel scope around every send,
    16 of a delivery's 40 µs with 2,000 clients on one task (bench/results, 2026-12-05).
    Here each send notes when it started and which task sends, and one timer per stream
    looks every ``send_timeout`` and at the deadline of the send in flight; a stalled send
    is cancelled and raises sse-starlette's ``SendTimeoutError``, as its own timeout would.
    """

    #: The response headers, the same for every stream: encoded once and shared (each stream
    #: would otherwise keep its own dozen header objects for as long as it is open).
    _raw_headers: ClassVar[list[tuple[bytes, bytes]] | None] = None

    def __init__(self, frames: AsyncIterator[bytes], place: Place | None = None, send_timeout: float = 30.0) -> None:
        super().__init__(frames, headers={"Cache-Control": "no-cache"}, ping=0, send_timeout=None)
        if EventStream._raw_headers is None:
            EventStream._raw_headers = self.raw_headers
        self.raw_headers = list(EventStream._raw_headers)
        self.place = place
        self.stall_seconds = send_timeout
        self._sending_since: float | None = None
        self._sender: asyncio.Task[Any] | None = None
        self._stalled = False

    async def _send_with_timeout(self, send: Send, message: Message) -> None:
        """Every send of sse-starlette's (it calls this one): timed by the stream's stall timer. The body
        goes straight to the server's ``send`` when ``SecurityHeaders`` left it in the scope (3 of a
        delivery's 21 µs with 5,000 clients over two processes, measured)."""
        self._sending_since = self._loop.time()
        self._sender = sender = asyncio.current_task()
        try:
            if self._server_send is not None and message["type"] == "http.response.body":
                await self._server_send(message)
            else:
                await send(message)
        except BaseException as exc:
            self._send_interrupted = True  # as sse-starlette's own: no closing send after a failed one
            stalled = self._stalled and isinstance(exc, asyncio.CancelledError)
            if stalled and sender is not None and sender.uncancel() == 0:  # the stall timer's cancel alone
                raise SendTimeoutError() from None
            raise
        finally:
            self._sending_since = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._loop = asyncio.get_running_loop()
        self._server_send = scope.get(SERVER_SEND)
        self._timer = self._loop.call_later(self.stall_seconds, self._check_stall)
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            _quiet_cut_streams()
            log.info("%s: the client read nothing for %s s, stream ended", scope["path"], self.stall_seconds)
        finally:
            self._timer.cancel()
            if self.place is not None:
                self.place.release()

    def _check_stall(self) -> None:
        since, now = self._sending_since, self._loop.time()
        if since is not None and now >= since + self.stall_seconds and self._sender is not None:
            self._stalled = True
            self._sender.cancel()
            return
        due = (now if since is None else since) + self.stall_seconds
        # a timer may fire up to the loop's clock resolution early: never re-armed for less than 10 ms
        self._timer = self._loop.call_at(max(due, now + 0.01), self._check_stall)


class _CutStreams(logging.Filter):
    """uvicorn logs a response that returned unfinished as an error; a stream cut because
    its client stopped reading returns so by design (logged above, at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing response."


def _quiet_cut_streams() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _CutStreams) for f in logger.filters):
        logger.addFilter(_CutStreams())
