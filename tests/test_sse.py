"""The SSE response (sse-starlette's, ``api_tasks.EventStream``) on a real uvicorn server: a client leaving,
a client that stops reading, a server told to exit, HEAD, and the user's stream place it holds."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from novawrite.engine.bus import EventBus
from novawrite.engine.events import TaskEvent
from novawrite.engine.streams import EventStreams, Place
from novawrite.errors import TooManyStreams
from novawrite.web.api_tasks import EventStream
from tests.waiting import until

FRAME = b"data: " + b"x" * 65_536 + b"\n\n"


class Body:
    """A stream body that records how far it got and whether its cleanup ran."""

    def __init__(self, frames: int | None, pause: float = 0.0) -> None:
        self.frames = frames
        self.pause = pause
        self.yielded = 0
        self.cleaned_up = asyncio.Event()

    async def __call__(self) -> AsyncIterator[bytes]:
        try:
            while self.frames is None or self.yielded < self.frames:
                yield FRAME
                self.yielded += 1
                await asyncio.sleep(self.pause)
        finally:
            self.cleaned_up.set()


@asynccontextmanager
async def serving(body: Body, send_timeout: float = 30.0, place: Place | None = None) -> AsyncIterator[uvicorn.Server]:
    """A real uvicorn server (``server.servers[0]`` is listening) whose one route streams ``body``."""

    async def stream(request: Request) -> Response:
        return EventStream(body(), place, send_timeout=send_timeout)

    app = Starlette(routes=[Route("/s", stream, methods=["GET"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off"))
    serve = asyncio.create_task(server.serve())
    try:
        await until(lambda: _started(server), 10, "the server is listening")
        yield server
    finally:
        server.should_exit = True
        await asyncio.wait_for(serve, 10)


async def _started(server: uvicorn.Server) -> bool:
    return server.started


def _port(server: uvicorn.Server) -> int:
    return int(server.servers[0].sockets[0].getsockname()[1])


class NoReads:
    """A stream place needs no database."""

    async def replay(self, user_id: int, task_id: str, after: int) -> tuple[Any, list[TaskEvent]]:
        raise AssertionError("not read")

    async def active(self, user_id: int) -> list[dict[str, Any]]:
        raise AssertionError("not read")


def one_place() -> tuple[EventStreams, Place]:
    """A user's only stream place, taken."""
    streams = EventStreams(EventBus(), NoReads(), ping_seconds=15, max_seconds=300, per_user=1)
    place = streams.open(7)
    with pytest.raises(TooManyStreams):
        streams.open(7)
    return streams, place


async def _released(streams: EventStreams) -> None:
    async def check() -> bool:
        return streams.open_count(7) == 0

    await until(check, 10, "the stream's place is free again")
    streams.open(7).release()  # and it can be taken again


async def _connect(
    port: int, method: str = "GET", small_buffer: bool = False
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if small_buffer:  # a reader that stops fills its kernel buffer sooner
        writer.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer.write(f"{method} /s HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


async def test_a_client_leaving_ends_the_body_runs_its_cleanup_and_frees_its_place() -> None:
    body = Body(frames=None, pause=0.05)
    streams, place = one_place()
    async with serving(body, place=place) as server:
        reader, writer = await _connect(_port(server))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")
        assert b"content-type: text/event-stream" in head.lower() and b"content-length" not in head.lower()
        await asyncio.wait_for(reader.readexactly(len(FRAME)), 10)
        assert streams.open_count(7) == 1
        writer.close()
        await asyncio.wait_for(body.cleaned_up.wait(), 10)
        await _released(streams)


async def test_a_client_that_stops_reading_is_cut_after_the_send_timeout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "novawrite.web")
    body = Body(frames=None)
    streams, place = one_place()
    async with serving(body, send_timeout=0.4, place=place) as server:
        _, writer = await _connect(_port(server), small_buffer=True)  # and never read
        await asyncio.wait_for(body.cleaned_up.wait(), 10)
        # It stopped because a send blocked, not because it ran out: the kernel buffers filled first.
        assert body.yielded >= 2
        await _released(streams)
        assert any("read nothing for 0.4 s" in r.getMessage() for r in caplog.records)
        writer.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a cut stream is not an error"


async def test_a_reader_that_keeps_up_is_not_cut() -> None:
    body = Body(frames=12, pause=0.1)  # 1.2 s of frames, three times the send timeout
    async with serving(body, send_timeout=0.4) as server:
        reader, writer = await _connect(_port(server))
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        received = await _to_the_end(reader)
        assert received.count(b"data: ") == 12 and body.yielded == 12
        writer.close()


async def test_a_server_told_to_exit_ends_its_open_streams_cleanly_and_exits() -> None:
    """uvicorn waits for open connections before it exits (here with no graceful timeout at all): an
    open stream must end by itself when the server is told to exit, or the server never does."""
    body = Body(frames=None, pause=0.05)
    streams, place = one_place()
    async with serving(body, place=place) as server:
        reader, writer = await _connect(_port(server))
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        await asyncio.wait_for(reader.readexactly(len(FRAME)), 10)
        server.should_exit = True  # what uvicorn's SIGTERM/SIGINT handler does
        received = await _to_the_end(reader)  # the chunked body's clean end, not a cut connection
        assert received.endswith(b"\r\n0\r\n\r\n")
        await asyncio.wait_for(body.cleaned_up.wait(), 10)
        await _released(streams)
        writer.close()


async def _to_the_end(reader: asyncio.StreamReader) -> bytes:
    received = b""
    async with asyncio.timeout(10):
        while not received.endswith(b"\r\n0\r\n\r\n"):  # the chunked body's end
            more = await reader.read(1 << 20)
            assert more, f"the server closed the stream early: {received[-100:]!r}"
            received += more
    return received


async def test_head_sends_the_headers_without_running_the_body_and_frees_its_place() -> None:
    body = Body(frames=3)
    streams, place = one_place()
    async with serving(body, place=place) as server:
        reader, writer = await _connect(_port(server), "HEAD")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head
        assert body.yielded == 0
        await _released(streams)
        writer.close()
