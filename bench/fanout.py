"""Benchmark 2, stream fan-out: N clients on one task's stream, or on the per-user stream, at 20 events/s.

The source. The demo provider cannot publish 20 small events a second for long:
a chapter's text is coalesced into one chunk event per 250 ms (or 2 KB), and the
list and outline kinds publish one event per batch. So the server runs NovaWrite's
own app with one extra generation kind, ``bench_ticker`` (``ticker_app`` below,
started as ``uvicorn --factory bench.fanout:ticker_app`` with the same uvicorn
settings as every benchmark). It is a real TaskKind run by the real supervisor:
every tick is ``ctx.progress.update``, so it is stored (task row and event row, one
transaction), then published on the bus and written to each stream, exactly as a
generator's progress is. Its message carries the tick's time: ``tick <i> <due>
<emitted>``, where ``due`` is when the tick was scheduled (start + i / rate) and
``emitted`` when the ticker actually got to it.

Latency is measured from ``due``, so a server too busy to run the ticker on time
shows up as latency too (the events a real model sends would have waited as
well), to the moment the client's kernel received the bytes: each client socket
has SO_TIMESTAMPNS, and ``recvmsg`` returns the receive time of the data with it.
The client's own speed therefore does not count, which matters with 5,000
clients on one core. Both ends read the same clock (CLOCK_REALTIME, one machine).
Timestamps were chosen over comparing each client with a first, reference
client: the bus keeps subscribers in a set, so no client is reliably first, and a
reference would hide the time from tick to first delivery.

Memory per idle stream: the streams are opened on a task that is still pending,
so nothing is published to them: with ``NOVAWRITE_MAX_CONCURRENCY=1``, a second
user's ``bench_ticker`` that only holds the slot (``ticks: 0``) runs first. The
first ``--warm`` clients are opened, the server's VmRSS read, the rest opened, and
VmRSS read again: (after - before) / (N - warm). A client counts as connected
when it has its first event (the task stream's replay, the user stream's
snapshot), which the server sends after subscribing. Then the benchmark cancels
the holder through the API, the supervisor starts the ticker, and every client
reads until the task's ``completed`` event, or until a deadline (60 s + 10x the
ticking time) after which what arrived is reported: a saturated server falls
minutes behind, and "delivered" below 100% says so.

Clients are raw non-blocking sockets on this process's event loop (uvloop),
pinned to the load core; each is one HTTP/1.1 request, then reads. Every case
(stream kind x client count) gets a fresh database and server process.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import socket
import struct
import sys
import time
from array import array
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette

from bench.common import (
    SERVER_CORE,
    CoreMeter,
    CoreShare,
    Databases,
    Server,
    header,
    login,
    metric,
    novawrite_env,
    parser,
    percentile,
    pin_to_load_core,
    seed,
    table,
    verdict,
    workspace,
)
from novawrite.generators.base import GenerationContext
from novawrite.generators.kind import TaskKind

GOAL_P99_MS = 100.0
GOAL_KB_PER_STREAM = 40.0
FULL_CLIENTS = "100,1000,5000"
STREAMS = {"task": "/api/tasks/{task_id}/events", "user": "/api/events"}

# --- The ticker: a generation kind that publishes on a schedule ------------------------------


class TickerParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    novel_id: int
    #: 0: publish nothing and hold the concurrency slot until cancelled.
    ticks: int = Field(default=0, ge=0, le=1_000_000)
    rate: float = Field(default=20.0, gt=0, le=1000)


class TickerResult(BaseModel):
    ticks: int


async def tick(ctx: GenerationContext) -> TickerResult:
    params = ctx.params
    assert isinstance(params, TickerParams)
    if params.ticks == 0:
        await asyncio.Event().wait()  # until the benchmark cancels this task
    start = time.time()
    for i in range(params.ticks):
        due = start + i / params.rate
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await ctx.progress.update(1 + 98 * i // params.ticks, f"tick {i} {due:.6f} {time.time():.6f}")
    return TickerResult(ticks=params.ticks)


TICKER = TaskKind(
    task_type="bench_ticker",
    params=TickerParams,
    result=TickerResult,
    generate=tick,
    apply=None,
)


def ticker_app() -> Starlette:
    """NovaWrite's app from the environment, with the ticker kind added (``uvicorn --factory``)."""
    from novawrite.app import create_app
    from novawrite.services.kinds import default_kinds
    from novawrite.settings import Settings

    return create_app(Settings.from_env(), kinds={**default_kinds(), TICKER.task_type: TICKER})


# --- Clients ------------------------------------------------------------------------------


SO_TIMESTAMPNS = 35  # Linux (asm-generic): receive timestamps as struct timespec; not in the socket module
TIMESPEC = struct.Struct("qq")
CMSG_SPACE = socket.CMSG_SPACE(TIMESPEC.size)
TICK = re.compile(rb'"message":"tick (\d+) ([0-9.]+) ([0-9.]+)"')
COMPLETED = b"event: completed\n"


@dataclass
class Tally:
    """What all the clients of one case received."""

    latencies_ms: array[float] = field(default_factory=lambda: array("d"))
    #: Tick number -> how late the ticker emitted it (emitted - due), in ms.
    lags_ms: dict[int, float] = field(default_factory=dict)
    kernel_timestamps: int = 0
    finished: int = 0


class StreamClient:
    """One SSE connection on a raw socket: a GET, then every tick's latency into the tally."""

    def __init__(self, tally: Tally, request: bytes) -> None:
        self.tally = tally
        self.request = request
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.subscribed: asyncio.Future[None] = loop.create_future()
        #: Set when the stream ends, for whatever reason (``completed`` counts in the tally).
        self.done: asyncio.Future[None] = loop.create_future()
        self.buffer = b""
        self.in_body = False

    async def open(self, address: tuple[str, int]) -> None:
        """Connect and send the request; return once the server has sent the first event."""
        await self.loop.sock_connect(self.sock, address)
        await self.loop.sock_sendall(self.sock, self.request)
        self.loop.add_reader(self.sock.fileno(), self._readable)
        await self.subscribed

    def close(self) -> None:
        self._end(None)

    def _readable(self) -> None:
        try:
            data, ancillary, _, _ = self.sock.recvmsg(65536, CMSG_SPACE)
        except BlockingIOError:
            return
        except OSError as exc:
            self._end(exc)
            return
        if not data:
            self._end(ConnectionError("the server closed the connection"))
            return
        received = self._kernel_time(ancillary)
        self.buffer += data
        if not self.in_body and not self._read_head():
            return
        end = self.buffer.rfind(b"\n\n")
        if end < 0:
            return
        events, self.buffer = self.buffer[: end + 2], self.buffer[end + 2 :]
        if not self.subscribed.done():
            self.subscribed.set_result(None)
        for match in TICK.finditer(events):
            number, due, emitted = int(match.group(1)), float(match.group(2)), float(match.group(3))
            self.tally.latencies_ms.append((received - due) * 1000)
            self.tally.lags_ms.setdefault(number, (emitted - due) * 1000)
        if COMPLETED in events:
            self.tally.finished += 1
            self._end(None)

    def _kernel_time(self, ancillary: list[tuple[int, int, bytes]]) -> float:
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= TIMESPEC.size:
                self.tally.kernel_timestamps += 1
                seconds, nanoseconds = TIMESPEC.unpack_from(payload)
                return seconds + nanoseconds / 1e9
        return time.time()

    def _read_head(self) -> bool:
        head, separator, rest = self.buffer.partition(b"\r\n\r\n")
        if not separator:
            return False
        status = head.split(b"\r\n", 1)[0]
        if b" 200 " not in status + b" ":
            self._end(ConnectionError(f"stream answered {status.decode(errors='replace')!r}"))
            return False
        self.in_body, self.buffer = True, rest
        return True

    def _end(self, error: Exception | None) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
        if not self.subscribed.done():
            if error is None:
                self.subscribed.cancel()  # closed by us before the stream started
            else:
                self.subscribed.set_exception(error)
        if not self.done.done():
            self.done.set_result(None)


async def open_clients(
    clients: list[StreamClient], count: int, request: bytes, address: tuple[str, int], tally: Tally, concurrency: int
) -> None:
    """Add ``count`` connected clients to ``clients``, at most ``concurrency`` connecting at once."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            client = StreamClient(tally, request)
            clients.append(client)
            async with asyncio.timeout(60):
                await client.open(address)

    await asyncio.gather(*(one() for _ in range(count)))


# --- One case -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    stream: str
    clients: int
    kb_per_idle_stream: float
    subscribers: float | None
    tally: Tally
    expected: int
    share: CoreShare
    client_cpu: float

    def row(self) -> list[object]:
        latencies = sorted(self.tally.latencies_ms)
        p99 = percentile(latencies, 0.99)
        delivered = len(latencies) / self.expected if self.expected else 0.0
        met = p99 < GOAL_P99_MS and self.kb_per_idle_stream < GOAL_KB_PER_STREAM and delivered >= 0.999
        return [
            self.stream,
            self.clients,
            f"{self.kb_per_idle_stream:.1f}",
            "-" if self.subscribers is None else int(self.subscribers),
            f"{percentile(latencies, 0.5):.1f}",
            f"{p99:.1f}",
            f"{latencies[-1] if latencies else float('nan'):.1f}",
            f"{100 * delivered:.2f}%",
            f"{self.tally.finished:,}",
            f"{percentile(list(self.tally.lags_ms.values()), 0.99):.1f}",
            f"{1e6 * self.share.server_seconds / max(1, len(latencies)):.0f}",
            f"{100 * self.share.server:.0f}%",
            "-" if self.share.others != self.share.others else f"{100 * self.share.others:.0f}%",  # nan: not told
            f"{100 * self.client_cpu:.0f}%",
            verdict(met),
        ]


def stream_request(path: str, token: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()


async def submit_ticker(api: httpx.AsyncClient, token: str, novel_id: int, ticks: int, rate: float) -> str:
    r = await api.post(
        "/api/ai/bench-ticker",
        json={"novel_id": novel_id, "ticks": ticks, "rate": rate},
        headers={"Authorization": f"Bearer {token}"},
    )
    r.raise_for_status()
    return str(r.json()["id"])


async def wait_status(api: httpx.AsyncClient, token: str, task_id: str, status: str, timeout: float = 30) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    async with asyncio.timeout(timeout):
        while (await api.get(f"/api/tasks/{task_id}", headers=auth)).json()["status"] != status:
            await asyncio.sleep(0.05)  # polling the API: nothing to await but time


class Cluster:
    """The server processes of one case: one, pinned to the server core, or several on one PostgreSQL
    database, placed by the kernel (clients go to them in turn; events cross by NOTIFY)."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers

    def rss_kb(self) -> int:
        return sum(s.rss_kb() for s in self.servers)

    def subscribers(self) -> float | None:
        counts = [metric(s.url, "novawrite_stream_subscribers") for s in self.servers]
        return None if None in counts else sum(c for c in counts if c is not None)

    def meter(self) -> Any:
        if len(self.servers) == 1:
            return CoreMeter(self.servers[0])
        return _CpuMeter(self.servers)

    def shares(self, clients: int) -> list[int]:
        """How many of ``clients`` each server gets (in turn)."""
        n = len(self.servers)
        return [clients // n + (1 if i < clients % n else 0) for i in range(n)]


class _CpuMeter:
    """Several servers' CPU, as shares of one core (summed); what others took is not told apart."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers
        self._start = (time.monotonic(), sum(s.cpu_seconds() for s in servers))

    def read(self) -> CoreShare:
        wall0, cpu0 = self._start
        used = sum(s.cpu_seconds() for s in self.servers) - cpu0
        return CoreShare(used / (time.monotonic() - wall0), float("nan"), used)


async def run_case(
    stream: str, clients: int, cluster: Cluster, users: dict[str, tuple[str, list[int]]], options: argparse.Namespace
) -> CaseResult:
    (token_a, novels_a), (token_b, novels_b) = users["a"], users["b"]
    ticks = round(options.rate * options.seconds)
    tally = Tally()
    servers = cluster.servers
    async with httpx.AsyncClient(base_url=servers[0].url, timeout=30) as api:
        # One holder per process keeps every slot busy (max_concurrency=1 each) while the clients connect.
        holders = [await submit_ticker(api, token_b, novels_b[n], 0, options.rate) for n in range(len(servers))]
        for holder in holders:
            await wait_status(api, token_b, holder, "running")
        ticker = await submit_ticker(api, token_a, novels_a[0], ticks, options.rate)
        request = stream_request(STREAMS[stream].format(task_id=ticker), token_a)
        warm = min(options.warm, clients - 1)
        opened: list[StreamClient] = []
        try:
            for server, count in zip(servers, cluster.shares(warm), strict=True):
                await open_clients(
                    opened, count, request, ("127.0.0.1", server.port), tally, options.connect_concurrency
                )
            before = cluster.rss_kb()
            print(f"  {stream} stream: opening {clients:,} clients...", file=sys.stderr)
            for server, count in zip(servers, cluster.shares(clients - warm), strict=True):
                await open_clients(
                    opened, count, request, ("127.0.0.1", server.port), tally, options.connect_concurrency
                )
            after = cluster.rss_kb()
            subscribers = cluster.subscribers()
            meter, client_cpu, started = cluster.meter(), time.process_time(), time.monotonic()
            for holder in holders:
                r = await api.post(f"/api/tasks/{holder}/cancel", headers={"Authorization": f"Bearer {token_b}"})
                r.raise_for_status()
            try:
                # A saturated server takes far longer than the ticks do; past this, report what arrived.
                async with asyncio.timeout(60 + 10 * options.seconds):
                    await asyncio.gather(*(c.done for c in opened))
            except TimeoutError:
                print(f"  {sum(not c.done.done() for c in opened):,} clients had not finished", file=sys.stderr)
            share = meter.read()
            client_cpu = (time.process_time() - client_cpu) / (time.monotonic() - started)
        finally:
            for client in opened:
                client.close()
    return CaseResult(
        stream=stream,
        clients=clients,
        kb_per_idle_stream=(after - before) / (clients - warm),
        subscribers=subscribers,
        tally=tally,
        expected=ticks * clients,
        share=share,
        client_cpu=client_cpu,
    )


def case(stream: str, clients: int, options: argparse.Namespace, databases: Databases, workdir: Path) -> CaseResult:
    url = databases.create(f"fanout-{stream}-{clients}")
    processes = options.processes
    users = {name: seed(url, f"bench-{name}", novels=processes) for name in ("a", "b")}
    # Every client is the same user: the per-user stream limit (20 by default) is lifted for the benchmark.
    env = novawrite_env(
        url,
        max_concurrency=1,
        max_running_per_user=processes + 1,
        stream_max_seconds=3600,
        max_streams_per_user=clients + 10,
    )
    core = SERVER_CORE if processes == 1 else None
    servers = [
        Server(f"novawrite-{stream}-{clients}-{n}", "bench.fanout:ticker_app", env, workdir, factory=True, core=core)
        for n in range(processes)
    ]
    with ExitStack() as running:
        for server in servers:
            running.enter_context(server.start())
        logged_in = {name: (login(servers[0].url, s.username), s.novel_ids) for name, s in users.items()}
        return run_in_loop(run_case(stream, clients, Cluster(servers), logged_in, options))


def run_in_loop(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


# --- Main -----------------------------------------------------------------------------------


def counts(text: str) -> list[int]:
    return [int(n) for n in text.split(",")]


def main() -> None:
    args = parser(__doc__.split("\n", 1)[0])
    args.add_argument("--clients", type=counts, default=FULL_CLIENTS, help="client counts, comma-separated")
    args.add_argument("--streams", default="task,user", help="which streams: task, user or both")
    args.add_argument("--rate", type=float, default=20.0, help="events per second the task publishes")
    args.add_argument("--seconds", type=float, default=10.0, help="how long the task publishes")
    args.add_argument("--warm", type=int, default=10, help="clients open before the memory baseline is read")
    args.add_argument("--connect-concurrency", type=int, default=100, help="clients connecting at once")
    args.add_argument(
        "--processes",
        type=int,
        default=1,
        help="server processes on one PostgreSQL database, the clients spread over them (more than 1 needs "
        "--database postgresql+asyncpg://...; they run on any core)",
    )
    options = args.parse_args()
    if options.processes > 1 and options.database == "sqlite":
        sys.exit("--processes above 1 needs --database postgresql+asyncpg://... (SQLite has one writer process)")
    if options.quick:
        options.seconds = min(options.seconds, 3.0)
        if options.clients == counts(FULL_CLIENTS):
            options.clients = [100, 500]
    streams: Sequence[str] = [s.strip() for s in options.streams.split(",")]
    unknown = set(streams) - STREAMS.keys()
    if unknown:
        sys.exit(f"unknown stream kind(s): {', '.join(sorted(unknown))}")
    pin_to_load_core()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it too
    results = []
    with workspace(options.keep) as workdir:
        databases = Databases(options.database, workdir)
        try:
            for stream in streams:
                for clients in options.clients:
                    print(f"{stream} stream, {clients:,} clients...", file=sys.stderr)
                    results.append(case(stream, clients, options, databases, workdir))
            description = databases.describe()
        finally:
            databases.close()
    kernel = sum(r.tally.kernel_timestamps for r in results)
    extra = {
        "Source": f"one bench_ticker task publishing {options.rate:g} progress events/s for {options.seconds:g} s "
        "(stored, then published: the generators' path)",
        "Latency": "from the tick's scheduled time to the client kernel's receive time (SO_TIMESTAMPNS"
        + ("" if kernel else "; NOT available here: client wall clock used")
        + ")",
        "Memory": f"server VmRSS after opening the idle streams minus before, per stream ({options.warm} warm-up "
        "streams open before the baseline)",
        "Clients": "raw sockets on one uvloop event loop, pinned to the load core; CPU columns are shares of one core",
    }
    if options.processes > 1:
        extra["Processes"] = (
            f"{options.processes} server processes on one PostgreSQL database, on any core (not pinned), the clients "
            "spread over them in turn; the ticker runs in one of them and its events reach the others by NOTIFY; "
            "memory, subscribers and server CPU are the processes' sums"
        )
    headers = [
        "stream",
        "clients",
        "KB/idle stream",
        "subscribers",
        "p50 ms",
        "p99 ms",
        "max ms",
        "delivered",
        "saw completed",
        "ticker lag p99 ms",
        "server CPU µs per delivery",
        "server CPU",
        "others on its core",
        "client CPU",
        f"met (p99 < {GOAL_P99_MS:g} ms, < {GOAL_KB_PER_STREAM:g} KB, all delivered)",
    ]
    print(
        header("Stream fan-out: one task's events to many SSE clients", description, extra)
        + "\n\n"
        + table(headers, [r.row() for r in results])
    )


if __name__ == "__main__":
    main()
