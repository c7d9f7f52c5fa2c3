"""A tiny, real HTTP/1.1 server that the fake model servers are built on.

It runs on 127.0.0.1 (a free port unless one is given) in its own thread and
event loop, so a fixture of any scope, sync or async, can start and stop it and
the client under test talks to it over a real socket. It is plain asyncio rather
than an ASGI app because the fakes need what frameworks hide: cutting a chunked
body mid-way without the final chunk, holding a connection open forever, and
seeing the moment the client hangs up.

Every response carries ``Connection: close``, so one connection is one request:
counting open connections counts calls in flight, and a client that abandons a
stream shows up as a connection closed before the response was done.

The protocol specifics (paths, bodies) live in the subclasses; a subclass turns
each recorded ``Request`` into a ``Reply``, a ``Chunked`` stream or ``Silent``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class Request:
    """One request as the fake received it (header names lower-cased)."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class Reply:
    """A whole response at once."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunked:
    """A streamed 200 response: each ``(delay_seconds, data)`` is sent as one chunk.

    ``then`` says how it ends: ``"end"`` sends the final empty chunk, ``"cut"``
    drops the connection without it (the client sees a broken body), ``"hang"``
    keeps the connection open and silent until the client leaves.
    """

    pieces: Sequence[tuple[float, bytes]]
    headers: Mapping[str, str] = field(default_factory=dict)
    then: str = "end"


@dataclass(frozen=True)
class Silent:
    """Read the request, never answer; wait for the client to give up."""


Response = Reply | Chunked | Silent


class FakeHTTPServer:
    """Base of the fakes: the thread, the socket, the request log and connection counts."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._open = 0
        self._opened = 0
        self._closed = 0
        self._abandoned = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None

    # --- what a subclass provides ------------------------------------------------------

    def respond(self, request: Request) -> Response:
        raise NotImplementedError

    # --- what a test reads -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    @property
    def open_connections(self) -> int:
        """Connections whose response is still being produced (streams, hangs)."""
        with self._lock:
            return self._open

    @property
    def connections_opened(self) -> int:
        with self._lock:
            return self._opened

    @property
    def connections_closed(self) -> int:
        with self._lock:
            return self._closed

    @property
    def abandoned(self) -> int:
        """Responses the client hung up on before they were complete."""
        with self._lock:
            return self._abandoned

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 1.0) -> None:
        """Poll ``condition`` (it reads the counters above) until true, or fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() >= deadline:
                raise AssertionError(f"condition not met within {timeout} s")
            await asyncio.sleep(0.005)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeHTTPServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(ready))
            except BaseException as exc:  # surfaced to start()'s caller
                failure.append(exc)
                ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=f"{type(self).__name__}", daemon=True)
        self._thread.start()
        ready.wait(timeout=10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> FakeHTTPServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Run in the foreground (for ``python -m``) until interrupted."""
        self.start()
        print(f"listening on {self.base_url}", flush=True)
        try:
            assert self._thread is not None
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    async def _serve(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        connections: set[asyncio.Task[None]] = set()

        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.get_running_loop().create_task(self._connection(reader, writer))
            connections.add(task)
            task.add_done_callback(connections.discard)

        self._server = await asyncio.start_server(on_connect, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        await self._stopping.wait()
        self._server.close()
        for task in list(connections):
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        await self._server.wait_closed()

    # --- one connection ----------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self._open += 1
            self._opened += 1
        completed = False
        try:
            request = await self._read_request(reader)
            if request is None:
                completed = True
                return
            with self._lock:
                self._requests.append(request)
            try:
                response = self.respond(request)
            except Exception as exc:  # a bug in a fake must show as a 500, not a hang
                response = Reply(500, json.dumps({"error": {"message": f"fake failed: {exc!r}"}}).encode())
            completed = await self._send(response, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with self._lock:
                self._open -= 1
                self._closed += 1
                if not completed:
                    self._abandoned += 1
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def _read_request(self, reader: asyncio.StreamReader) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = b""
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked(reader)
        parts = urlsplit(target)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        return Request(method=method, path=parts.path, query=query, headers=headers, body=body)

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return body
            body += await reader.readexactly(size)
            await reader.readexactly(2)

    @staticmethod
    def _head(status: int, headers: Mapping[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _send(self, response: Response, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Write ``response``; True when it was delivered whole."""
        if isinstance(response, Reply):
            headers = {"Content-Type": "application/json; charset=UTF-8", **response.headers}
            headers["Content-Length"] = str(len(response.body))
            writer.write(self._head(response.status, headers) + response.body)
            await writer.drain()
            return True
        # A client that hangs up makes the read side reach EOF: watch it while we wait,
        # so an abandoned stream is noticed at once rather than at the next write.
        hung_up = asyncio.get_running_loop().create_task(reader.read(1))
        try:
            if isinstance(response, Silent):
                await hung_up
                return False
            headers = {"Content-Type": "text/event-stream", **response.headers, "Transfer-Encoding": "chunked"}
            writer.write(self._head(200, headers))
            await writer.drain()
            for delay, data in response.pieces:
                if delay > 0:
                    done, _ = await asyncio.wait({hung_up}, timeout=delay)
                    if done:
                        return False
                if hung_up.done():
                    return False
                writer.write(b"%x\r\n%s\r\n" % (len(data), data))
                await writer.drain()
            if response.then == "cut":
                writer.transport.abort()
                return True  # the fake chose to cut: the client did not abandon it
            if response.then == "hang":
                await hung_up
                return False
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        finally:
            if hung_up.done() and not hung_up.cancelled():
                hung_up.exception()  # a reset connection; retrieved so asyncio stays quiet
            hung_up.cancel()
