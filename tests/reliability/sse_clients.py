"""Raw-socket SSE clients for the stream tests, and probes of what the server process holds.

httpx costs far too much per stream for a thousand concurrent clients on one core,
and it reads ahead into its own buffers, so a client built on it cannot "read
nothing". ``SseSocket`` speaks just enough HTTP/1.1 (one GET, a chunked body)
over a non-blocking socket driven by the event loop's ``sock_*`` calls: it reads
only when asked, so a client that stops asking leaves the bytes in the kernel,
its receive window closes, and the server's sends back up. It closes cleanly
(FIN) or abruptly (RST), as browsers and crashed clients do. Events are parsed
into ``tests.server.Sse``, the items the httpx reader yields.

The probes read the server from outside: its RSS from /proc, its live SSE
subscribers and published events from /metrics, the bytes that sit in the
kernel's queues of one connection from /proc/net/tcp, and the errors in its log.
"""

from __future__ import annotations

import asyncio
import fcntl
import re
import socket
import struct
import termios
from dataclasses import dataclass, field

from tests.server import Api, ServerProcess, Sse, SseParser, sample

READ_SIZE = 65536
_ERROR_LINE = re.compile(r"\bERROR\b|Traceback")
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on with 0 s: close() sends an RST


class StreamClosed(Exception):
    """The server closed the connection."""


@dataclass
class _ChunkedBody:
    """Decodes an HTTP/1.1 chunked body that arrives in arbitrary pieces."""

    raw: bytearray = field(default_factory=bytearray)
    finished: bool = False

    def feed(self, data: bytes) -> bytes:
        """The body bytes that ``data`` completes; a partial chunk waits for the next feed."""
        self.raw += data
        body = bytearray()
        while not self.finished:
            line_end = self.raw.find(b"\r\n")
            if line_end < 0:
                break
            size = int(bytes(self.raw[:line_end]).split(b";")[0], 16)
            start = line_end + 2
            if len(self.raw) < start + size + 2:
                break
            body += self.raw[start : start + size]
            del self.raw[: start + size + 2]
            self.finished = size == 0
        return bytes(body)


def take_frames(buffer: bytearray) -> list[Sse]:
    """Remove every complete SSE frame (up to a blank line) from ``buffer``; a partial one stays."""
    text = bytes(buffer).replace(b"\r\n", b"\n")  # tolerate CRLF line ends (the SSE format allows them)
    end = text.rfind(b"\n\n")
    if end < 0:
        return []
    buffer[:] = text[end + 2 :]
    parser = SseParser()
    items = (parser.feed(line) for line in [*text[:end].decode().split("\n"), ""])
    return [item for item in items if item is not None]


class SseSocket:
    """One SSE request on its own non-blocking socket, read only when asked."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.status = 0
        self.events: list[Sse] = []  # every event parsed so far, in order (comments left out)
        self.received = 0  # bytes read from the socket, head and chunk framing included
        self._head = bytearray()
        self._body = _ChunkedBody()
        self._frames = bytearray()
        self._handed_out = 0
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def connect(cls, port: int, *, receive_buffer: int | None = None, mss: int | None = None) -> SseSocket:
        """A connection to 127.0.0.1:``port``; the socket options are set before the handshake."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            if receive_buffer is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            if mss is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def get(self, path: str, token: str, last_event_id: int | None = None) -> None:
        """Send the request; a stream is the connection's one response, so it is never reused."""
        lines = [
            f"GET {path} HTTP/1.1",
            "Host: 127.0.0.1",
            f"Authorization: Bearer {token}",
            "Accept: text/event-stream",
        ]
        if last_event_id is not None:
            lines.append(f"Last-Event-ID: {last_event_id}")
        await self._loop.sock_sendall(self.sock, ("\r\n".join(lines) + "\r\n\r\n").encode())

    async def read_head(self) -> int:
        """Read the status line and headers; the status."""
        while b"\r\n\r\n" not in self._head:
            data = await self._recv()
            self.received += len(data)
            self._head += data
        head, _, rest = bytes(self._head).partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self._take(rest)
        return self.status

    async def next_event(self) -> Sse | None:
        """The next event; None once the server has ended the stream or closed the connection."""
        while self._handed_out == len(self.events):
            if self._body.finished:
                return None
            try:
                data = await self._recv()
            except (StreamClosed, ConnectionResetError):
                return None
            self.received += len(data)
            self._take(data)
        self._handed_out += 1
        return self.events[self._handed_out - 1]

    def unread_bytes(self) -> int:
        """What the kernel holds for this socket that nobody has read yet (FIONREAD)."""
        raw = fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        return int(struct.unpack("i", raw)[0])

    def take_unread(self) -> None:
        """Read and parse what the kernel holds right now, and nothing that arrives after."""
        wanted = self.unread_bytes()
        while wanted > 0:
            data = self.sock.recv(wanted)
            if not data:
                return
            wanted -= len(data)
            self.received += len(data)
            self._take(data)

    @property
    def last_id(self) -> int | None:
        """The id of the last whole event parsed: what a browser sends back as Last-Event-ID."""
        ids = [int(e.id) for e in self.events if e.id is not None]
        return ids[-1] if ids else None

    def close(self, *, abrupt: bool = False) -> None:
        """FIN, or with ``abrupt`` an RST, as from a client that crashed."""
        if abrupt:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        self.sock.close()

    async def _recv(self) -> bytes:
        data = await self._loop.sock_recv(self.sock, READ_SIZE)
        if not data:
            raise StreamClosed
        return data

    def _take(self, data: bytes) -> None:
        self._frames += self._body.feed(data)
        self.events.extend(item for item in take_frames(self._frames) if item.comment is None)


# --- Probes of the server process ---------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """The process's resident set size now (VmRSS)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


async def metric(api: Api, name: str, **labels: str) -> float:
    """One sample from the server's /metrics (0 when the series has no sample yet)."""
    r = await api.get("/metrics")
    assert r.status_code == 200, r.text
    return sample(r.text, name, **labels) or 0.0


async def subscribers(api: Api) -> int:
    return int(await metric(api, "novawrite_stream_subscribers"))


def kernel_queues(server_port: int, client_port: int) -> tuple[int, int]:
    """Bytes in the kernel for one loopback connection: (the server's send queue, the client's receive queue)."""
    server_end = (f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}")
    send_queue = receive_queue = -1
    with open("/proc/net/tcp") as table:
        next(table)
        for row in table:
            fields = row.split()
            tx, rx = (int(n, 16) for n in fields[4].split(":"))
            if (fields[1], fields[2]) == server_end:
                send_queue = tx
            elif (fields[2], fields[1]) == server_end:
                receive_queue = rx
    assert send_queue >= 0 and receive_queue >= 0, f"connection :{client_port} -> :{server_port} not in /proc/net/tcp"
    return send_queue, receive_queue


def logged_errors(server: ServerProcess) -> list[str]:
    """The server log's error lines (and traceback starts) so far."""
    return [line for line in server.log_text().splitlines() if _ERROR_LINE.search(line)]
