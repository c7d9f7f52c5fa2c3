"""A Server-Sent Events response for streams of pre-encoded events.

The events are encoded once (``TaskEvent.wire``) and the same bytes go to every
reader, so a response's whole job is to hand bytes to ``send``, notice the
client leaving, and give up on a client that stops reading. With a thousand
readers of one task that job runs a thousand times per event, so it is done
with the least machinery that does it: the response's own task runs the body,
one more task waits for the disconnect, and one timer per stream (not per send)
watches for a send that does not return.

sse-starlette's ``EventSourceResponse`` (which this replaced) runs four tasks
per stream in an anyio task group and enters a cancel scope for every send: 52
against 29 µs of CPU per delivered event and 41 against 25 KB per idle stream,
measured with ``scripts/bench fanout`` (bench/results/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

log = logging.getLogger("novawrite.web")

PING = b": ping\n\n"
END: Message = {"type": "http.response.body", "body": b"", "more_body": False}


class EventStream(Response):
    """``text/event-stream`` from an async iterator of SSE frames (bytes).

    It ends when the body ends, when the client disconnects (the body is closed, so
    its ``finally`` and ``async with`` blocks run), or when one send has not
    returned within ``send_timeout`` seconds: the client stopped reading, and it
    catches up with ``Last-Event-ID`` when it reads again.
    """

    media_type = "text/event-stream"

    def __init__(self, body: AsyncIterator[bytes], *, send_timeout: float = 30.0) -> None:
        # No super().__init__: it would render an empty body and announce Content-Length: 0.
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.body_iterator = body
        self.send_timeout = send_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if scope.get("method") == "HEAD":
            await send(END)
            return
        run = _Run(asyncio.current_task(), self.send_timeout)  # type: ignore[arg-type]
        watcher = asyncio.ensure_future(_disconnected(receive))
        watcher.add_done_callback(run.client_left)
        try:
            async for frame in self.body_iterator:
                run.sending = True
                await send({"type": "http.response.body", "body": frame, "more_body": True})
                run.sending = False
                run.sent += 1
            await send(END)
        except asyncio.CancelledError:
            if run.reason is None:
                raise  # cancelled from outside (server shutdown): not ours to swallow
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            if run.reason == "stalled":
                log.info("%s: the client read nothing for %s s, stream ended", scope["path"], self.send_timeout)
        finally:
            run.done()
            watcher.remove_done_callback(run.client_left)
            watcher.cancel()
            await self.body_iterator.aclose()  # type: ignore[attr-defined]


class _Run:
    """One stream's state while it runs: whether it is inside a send, and why it was stopped."""

    __slots__ = ("task", "timeout", "sending", "sent", "reason", "_timer", "_sent_at_check")

    def __init__(self, task: asyncio.Task[Any], timeout: float) -> None:
        self.task = task
        self.timeout = timeout
        self.sending = False
        self.sent = 0
        self.reason: str | None = None
        self._sent_at_check = -1
        self._timer = asyncio.get_running_loop().call_later(timeout / 2, self._check)

    def _check(self) -> None:
        # Every timeout/2: the same send still in progress at two checks in a row has
        # waited at least timeout/2 and at most a full timeout.
        if self.sending and self.sent == self._sent_at_check:
            self._stop("stalled")
            return
        self._sent_at_check = self.sent
        self._timer = asyncio.get_running_loop().call_later(self.timeout / 2, self._check)

    def client_left(self, _: asyncio.Future[Any]) -> None:
        self._stop("disconnected")

    def _stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            self.task.cancel()

    def done(self) -> None:
        self.reason = self.reason or "done"
        self._timer.cancel()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class _CutStreams(logging.Filter):
    """uvicorn logs a response that returned unfinished as an error; a stream cut because
    its client stopped reading returns so by design (logged above, at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing response."


def quiet_cut_streams() -> None:
    """Filter uvicorn's error log once per process (``create_app`` calls this)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _CutStreams) for f in logger.filters):
        logger.addFilter(_CutStreams())


def end_streams_on_server_exit(end_streams: Callable[[], None]) -> Callable[[], None]:
    """Call ``end_streams`` (in the event loop) as soon as uvicorn is told to exit.

    uvicorn waits for open connections before it runs the app's shutdown, so streams
    must end when the signal comes or they hold the server up until its graceful
    timeout. uvicorn installs its SIGINT/SIGTERM handlers before the app starts;
    this wraps them (not uvicorn's code). Returns the undo, for the app's shutdown.
    Without uvicorn's handlers in place (tests, other servers) it does nothing, and
    streams end at the app's shutdown.
    """
    loop = asyncio.get_running_loop()
    wrapped: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not hasattr(getattr(previous, "__self__", None), "should_exit"):  # not uvicorn's Server.handle_exit
            continue

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(end_streams)
            previous(signum, frame)

        try:
            signal.signal(sig, handler)
        except ValueError:  # not the main thread
            return lambda: None
        wrapped[sig] = (handler, previous)

    def undo() -> None:
        for sig, (handler, previous) in wrapped.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, previous)

    return undo
