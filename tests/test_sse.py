"""The SSE response on a real uvicorn server: a client leaving, a client that stops reading, HEAD."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from novawrite.web.sse import EventStream, quiet_cut_streams
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
async def serving(body: Body, send_timeout: float = 30.0) -> AsyncIterator[int]:
    async def stream(request: Request) -> Response:
        return EventStream(body(), send_timeout=send_timeout)

    quiet_cut_streams()
    app = Starlette(routes=[Route("/s", stream, methods=["GET"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off"))
    serve = asyncio.create_task(server.serve())
    try:
        await until(lambda: _started(server), 10, "the server is listening")
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(serve, 10)


async def _started(server: uvicorn.Server) -> bool:
    return server.started


async def _connect(
    port: int, method: str = "GET", small_buffer: bool = False
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if small_buffer:  # a reader that stops fills its kernel buffer sooner
        writer.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer.write(f"{method} /s HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


async def test_a_client_leaving_ends_the_body_and_runs_its_cleanup() -> None:
    body = Body(frames=None, pause=0.05)
    async with serving(body) as port:
        reader, writer = await _connect(port)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")
        assert b"content-type: text/event-stream" in head.lower() and b"content-length" not in head.lower()
        await asyncio.wait_for(reader.readexactly(len(FRAME)), 10)
        writer.close()
        await asyncio.wait_for(body.cleaned_up.wait(), 10)


async def test_a_client_that_stops_reading_is_cut_after_the_send_timeout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "novawrite.web")
    body = Body(frames=None)
    async with serving(body, send_timeout=0.4) as port:
        _, writer = await _connect(port, small_buffer=True)  # and never read
        await asyncio.wait_for(body.cleaned_up.wait(), 10)
        # It stopped because a send blocked, not because it ran out: the kernel buffers filled first.
        assert body.yielded >= 2
        assert any("read nothing for 0.4 s" in r.getMessage() for r in caplog.records)
        writer.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a cut stream is not an error"


async def test_a_reader_that_keeps_up_is_not_cut() -> None:
    body = Body(frames=12, pause=0.1)  # 1.2 s of frames, three times the send timeout
    async with serving(body, send_timeout=0.4) as port:
        reader, writer = await _connect(port)
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        received = b""
        while not received.endswith(b"\r\n0\r\n\r\n"):  # the chunked body's end
            more = await asyncio.wait_for(reader.read(1 << 20), 10)
            assert more, "the server closed the stream early"
            received += more
        assert received.count(b"data: ") == 12 and body.yielded == 12
        writer.close()


async def test_head_sends_the_headers_without_running_the_body() -> None:
    body = Body(frames=3)
    async with serving(body) as port:
        reader, writer = await _connect(port, "HEAD")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head
        assert body.yielded == 0
        writer.close()
