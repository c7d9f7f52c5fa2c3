"""Where a stream delivery's server time goes: pyinstrument over N per-user stream clients, one process.

Not a benchmark (the profiler slows everything down, and the clients share the
process): it apportions the server's sampled time between the packages on the
delivery path, sse-starlette and anyio, uvicorn, Starlette and NovaWrite's own
modules, which ``scripts/bench fanout`` cannot tell apart. The server is
NovaWrite's app with the ticker kind (``bench.fanout``) under an in-process
uvicorn on uvloop and httptools; the clients are ``bench.fanout``'s raw-socket
clients, whose time is left out. Self time is counted for the innermost Python
frame's package (a C function's time goes to the Python code that called it).

    .venv/bin/python -m bench.fanout_profile [--clients 1000] [--ticks 60]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import tempfile
from typing import Any

import httpx
import uvicorn
import uvloop
from pyinstrument import Profiler

from bench.fanout import TICKER, StreamClient, Tally, TickerParams, stream_request
from novawrite.app import create_app
from novawrite.services.kinds import default_kinds
from novawrite.settings import Settings

PACKAGES = ("sse_starlette", "anyio", "uvicorn", "starlette", "bench", "uvloop", "httptools", "asyncio")


def owner_of(path: str) -> str:
    if "src/novawrite/" in path:
        return "novawrite/" + path.split("src/novawrite/")[-1]
    return next((name for name in PACKAGES if f"/{name}/" in path), "other")


def self_times(profiler: Profiler) -> collections.Counter[str]:
    """Seconds of self time per owner, leaving out the benchmark clients' callbacks."""
    totals: collections.Counter[str] = collections.Counter()
    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    stack: list[tuple[Any, str]] = [(root, "other")] if root is not None else []
    while stack:
        frame, owner = stack.pop()
        path = frame.file_path or ""
        if "bench/fanout.py" in path and frame.function == "_readable":
            continue  # a client
        if path and not path.startswith("<"):
            owner = owner_of(path)
        own = frame.time - sum(child.time for child in frame.children)
        if own > 0:
            idle = frame.function == "[self]" and owner == "asyncio" and "runners" in (frame.parent.file_path or "")
            totals["the event loop itself (uvloop, C)" if idle else owner] += own
        stack.extend((child, owner) for child in frame.children)
    return totals


async def profile(clients: int, ticks: int) -> None:
    workdir = tempfile.mkdtemp()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{workdir}/bench.sqlite3",
        secret_key="bench-profile-secret-key-0123456789abcdef",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        max_streams_per_user=clients + 10,
        stream_max_seconds=3600,
    )
    app = create_app(settings, kinds={**default_kinds(), TICKER.task_type: TICKER})
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", loop="none", http="httptools")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(), name="uvicorn")
    while not server.started:
        await asyncio.sleep(0.05)  # nothing to await but the server's start-up
    port = server.servers[0].sockets[0].getsockname()[1]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as api:
        account = {"username": "bench", "password": "correct horse"}
        await api.post("/api/auth/register", json=account)
        token = (await api.post("/api/auth/login", json=account)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        novel = (
            await api.post("/api/novels", json={"title": "t", "genre": "g", "synopsis": "s"}, headers=headers)
        ).json()
        user_id = (await api.get("/api/auth/me", headers=headers)).json()["id"]
    tally = Tally()
    request = stream_request("/api/events", token)
    readers = [StreamClient(tally, request) for _ in range(clients)]
    gate = asyncio.Semaphore(100)

    async def connect(reader: StreamClient) -> None:
        async with gate:
            await reader.open(("127.0.0.1", port))

    await asyncio.gather(*(connect(reader) for reader in readers))
    profiler = Profiler(interval=0.0002, async_mode="disabled")
    profiler.start()
    params = TickerParams(novel_id=novel["id"], ticks=ticks, rate=20.0)
    await app.state.novawrite.tasks.submit(user_id, TICKER, params, None)
    async with asyncio.timeout(120):
        await asyncio.gather(*(reader.done for reader in readers))
    profiler.stop()
    deliveries = len(tally.latencies_ms)
    totals = self_times(profiler)
    total = sum(totals.values())
    print(f"{deliveries:,} deliveries of {clients * ticks:,}; server time sampled: {total:.2f} s (under the profiler)")
    print("| owner | share | µs per delivery (profiled) |\n|---|---|---|")
    for owner, seconds in totals.most_common(15):
        print(f"| {owner} | {100 * seconds / total:.1f}% | {1e6 * seconds / max(1, deliveries):.1f} |")
    for reader in readers:
        reader.close()
    server.should_exit = True
    await serving


def main() -> None:
    args = argparse.ArgumentParser(prog="python -m bench.fanout_profile", description=__doc__.split("\n", 1)[0])
    args.add_argument("--clients", type=int, default=1000)
    args.add_argument("--ticks", type=int, default=60, help="events the ticker publishes, 20 a second")
    options = args.parse_args()
    uvloop.run(profile(options.clients, options.ticks))


if __name__ == "__main__":
    main()
