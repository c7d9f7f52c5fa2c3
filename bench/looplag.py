"""Benchmark: the event loop's lag while a 100,000-task SQLite database takes 50 tasks/s with 200 open streams.

One NovaWrite server (uvicorn, pinned to core 0) on a database seeded with a
history of 100,000 finished tasks, and 200 other users, each with a novel and
one open per-user event stream (``GET /api/events``, this process, core 1). The
server runs with ``NOVAWRITE_LOOPLAG_FILE`` (``novawrite.looplag``): a timer due
every millisecond inside the server records how late the loop runs it, and a
watchdog thread samples the loop thread's stack whenever the loop has been held
for 5 ms, so each stall names the code that held it.

Two phases side by side: the 200 streams open and idle, then the same streams
while outline tasks (demo provider, one volume of two chapters) are submitted at
50/s, round robin over the 200 users, each task's events going to its user's
stream. Reported per phase: the lag's percentiles and maximum over every tick,
the stalls of 5 ms or more grouped by where the loop was held, the WAL
checkpoints that ran (the WAL header's checkpoint counter), the tasks completed
and the events delivered. Goal: p99.9 and maximum under 20 ms.

One command: ``scripts/bench looplag`` (``--quick``: 10,000 tasks, short phases).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from bench.common import (
    PASSWORD,
    CoreMeter,
    Databases,
    Server,
    header,
    novawrite_env,
    parser,
    pin_to_load_core,
    seed,
    table,
    verdict,
    workspace,
)
from novawrite.db.engine import Database
from novawrite.db.models import Novel, User
from novawrite.security import Passwords

GOAL_MS = 20.0
STALL_MS = 5.0


def main() -> None:
    args = parser(__doc__.split("\n", 1)[0])
    args.add_argument("--tasks", type=int, default=100_000, help="finished tasks in the history")
    args.add_argument("--streams", type=int, default=200, help="open per-user streams (one user each)")
    args.add_argument("--rate", type=float, default=50.0, help="tasks submitted per second")
    args.add_argument("--idle-seconds", type=float, default=15.0, help="the phase with the streams open, no tasks")
    args.add_argument("--load-seconds", type=float, default=60.0, help="the phase with tasks coming in")
    args.add_argument("--demo-delay-ms", type=int, default=5, help="the demo provider's pause per item")
    options = args.parse_args()
    if options.quick:
        options.tasks, options.idle_seconds, options.load_seconds = 10_000, 3.0, 10.0
    pin_to_load_core()
    with workspace(options.keep) as workdir:
        databases = Databases(options.database, workdir)
        try:
            print(measure(options, databases, workdir))
        finally:
            databases.close()


# --- seeding ---------------------------------------------------------------------------------


def seed_stream_users(url: str, count: int) -> list[tuple[str, int]]:
    """``count`` users with one novel each: (username, novel id)."""
    return asyncio.run(_seed_stream_users(url, count))


async def _seed_stream_users(url: str, count: int) -> list[tuple[str, int]]:
    db = Database(url)
    now = datetime.now(UTC)
    password_hash = Passwords(time_cost=1, memory_kib=1024).hash(PASSWORD)
    names = [f"reader{i}" for i in range(count)]
    try:
        async with db.write() as conn:
            users = await conn.execute(
                insert(User).returning(User.id, User.username),
                [{"username": n, "password_hash": password_hash, "created_at": now} for n in names],
            )
            ids = {username: user_id for user_id, username in users}
            novel = {
                "genre": "science fiction",
                "synopsis": "A courier crosses a dying empire.",
                "language": "en",
                "created_at": now,
                "updated_at": now,
            }
            novels = await conn.execute(
                insert(Novel).returning(Novel.id, Novel.user_id),
                [{**novel, "user_id": ids[n], "title": f"Novel of {n}"} for n in names],
            )
            by_user = {user_id: novel_id for novel_id, user_id in novels}
    finally:
        await db.dispose()
    return [(n, by_user[ids[n]]) for n in names]


# --- the lag file ------------------------------------------------------------------------------


def read_meter(path: Path, after: float, timeout: float = 10.0) -> dict[str, Any]:
    """The meter's next snapshot written at or after ``after`` (monotonic; the server writes one a second)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            if data["at"] >= after:
                return data
        except (OSError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no lag snapshot in {path} after {after}")
        time.sleep(0.05)  # the server writes the file once a second: nothing to wait on but time


@dataclass
class Window:
    """The lag between two snapshots of the meter."""

    seconds: float
    ticks: int
    histogram: Counter[float]  # lag (bucket's lower edge, ms) -> ticks
    stalls: list[tuple[float, float, list[str]]]

    @classmethod
    def between(cls, first: dict[str, Any], last: dict[str, Any]) -> Window:
        width = float(last["bucket_ms"])
        histogram: Counter[float] = Counter()
        for bucket, count in last["histogram"].items():
            diff = count - first["histogram"].get(bucket, 0)
            if diff:
                histogram[int(bucket) * width] = diff
        stalls = [tuple(s) for s in last["stalls"] if first["at"] <= s[0] < last["at"]]
        return cls(last["at"] - first["at"], last["ticks"] - first["ticks"], histogram, stalls)  # type: ignore[arg-type]

    def percentile(self, fraction: float) -> float:
        """The lag (ms, a bucket's upper edge) that ``fraction`` of the ticks stayed under."""
        target = fraction * self.ticks
        seen = 0
        for lag in sorted(self.histogram):
            seen += self.histogram[lag]
            if seen >= target:
                return lag + 0.1
        return float("nan")

    @property
    def max_ms(self) -> float:
        exact = [s[1] for s in self.stalls]
        return max(exact) if exact else max(self.histogram, default=0.0) + 0.1


def wal_checkpoints(database: Path) -> int | None:
    """The WAL header's checkpoint sequence number: it goes up by one each time a checkpoint lets the WAL restart."""
    try:
        with open(database.with_name(database.name + "-wal"), "rb") as wal:
            head = wal.read(32)
    except OSError:
        return None
    return struct.unpack(">I", head[12:16])[0] if len(head) == 32 else 0  # empty: nothing written since it opened


def place(stack: list[str]) -> str:
    """Where a stall held the loop: the innermost frames, NovaWrite's first."""
    if not stack:
        return "(no sample: the watchdog thread did not get the GIL during the stall)"
    if "asyncio/runners.py" in stack[-1] or "asyncio_run" in stack[-1]:
        # No Python frame of ours: the thread was inside uvloop's C loop, descheduled by the OS or in epoll.
        return "uvloop's loop itself (no Python running: the process was off the CPU, or in C)"
    inner = [f for f in stack if f.startswith("novawrite/")] or stack
    return " <- ".join(reversed(inner[-3:]))


def checkpoint_cost(database: Path, rounds: int) -> list[float]:
    """Milliseconds one checkpoint of a 1,000-page WAL takes on this database (the server stopped).

    What SQLite's automatic checkpoint would do inside the COMMIT that takes the WAL
    past 1,000 pages, holding the event loop on the inline ``sqlite3`` connection for as
    long; NovaWrite turns it off and checkpoints from a thread (``WalCheckpointer``). The pages are scattered rows of the seeded tables, as the
    engine's writes are, and the connection is set up as the server's are.
    """
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tasks = conn.execute("SELECT max(pk) FROM tasks").fetchone()[0]
        events = conn.execute("SELECT max(rowid) FROM task_events").fetchone()[0]
        rng = random.Random(1)
        took = []
        for _ in range(rounds):
            conn.execute("BEGIN")
            for _ in range(500):
                conn.execute("UPDATE tasks SET progress = progress WHERE pk = ?", (rng.randint(1, tasks),))
                conn.execute("UPDATE task_events SET seq = seq WHERE rowid = ?", (rng.randint(1, events),))
            conn.execute("COMMIT")
            frames = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()  # (busy, frames in WAL, checkpointed)
            conn.execute("BEGIN")
            for _ in range(500):
                conn.execute("UPDATE tasks SET progress = progress WHERE pk = ?", (rng.randint(1, tasks),))
                conn.execute("UPDATE task_events SET seq = seq WHERE rowid = ?", (rng.randint(1, events),))
            conn.execute("COMMIT")
            started = time.perf_counter()
            frames = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            took.append((time.perf_counter() - started) * 1000)
            assert frames[0] == 0, frames
        return took
    finally:
        conn.close()


# --- the load --------------------------------------------------------------------------------


@dataclass
class Load:
    events: int = 0
    completed: int = 0
    submitted: int = 0
    refused: Counter[int] = field(default_factory=Counter)
    stream_errors: int = 0


async def read_stream(client: httpx.AsyncClient, url: str, token: str, load: Load, opened: asyncio.Event) -> None:
    try:
        async with client.stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    opened.set()
                    load.events += 1
                    if line == "event: completed":
                        load.completed += 1
    except (httpx.HTTPError, asyncio.CancelledError):
        load.stream_errors += 1
        raise


async def submit_at_rate(
    client: httpx.AsyncClient, base: str, users: list[tuple[str, int, str]], rate: float, seconds: float, load: Load
) -> None:
    body = {"volumes": 1, "chapters_per_volume": 2}
    pending: set[asyncio.Task[None]] = set()

    async def one(token: str, novel_id: int) -> None:
        r = await client.post(
            f"{base}/api/ai/generate-outline",
            json={"novel_id": novel_id, **body},
            headers={"Authorization": f"Bearer {token}"},
        )
        if r.status_code == 202:
            load.submitted += 1
        else:
            load.refused[r.status_code] += 1

    started = time.monotonic()
    count = int(rate * seconds)
    for i in range(count):
        due = started + i / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))  # the submit schedule is the load: time is the input
        _, novel_id, token = users[i % len(users)]
        task = asyncio.create_task(one(token, novel_id))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=30)


@dataclass
class Phase:
    name: str
    window: Window
    load: Load
    checkpoints: int | None
    core: float
    others: float  # what other processes took of the server's core meanwhile

    def row(self) -> list[object]:
        w = self.window
        return [
            self.name,
            f"{w.seconds:.0f}",
            f"{self.load.submitted / w.seconds:.1f}" if self.load.submitted else "0",
            f"{self.load.completed / w.seconds:.1f}",
            f"{self.load.events / w.seconds:.0f}",
            w.ticks,
            f"{w.percentile(0.5):.1f}",
            f"{w.percentile(0.99):.1f}",
            f"{w.percentile(0.999):.1f}",
            f"{w.max_ms:.1f}",
            len(w.stalls),
            "-" if self.checkpoints is None else self.checkpoints,
            f"{self.core:.0%}",
            f"{self.others:.0%}",
        ]


async def run(
    server: Server, lagfile: Path, database: Path | None, users: list[tuple[str, int]], options: Any
) -> list[Phase]:
    limits = httpx.Limits(max_connections=len(users) + 100, max_keepalive_connections=100)
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None), limits=limits) as client:
        tokens = []
        for username, novel_id in users:
            r = await client.post(f"{server.url}/api/auth/login", json={"username": username, "password": PASSWORD})
            r.raise_for_status()
            tokens.append((username, novel_id, str(r.json()["access_token"])))
        load = Load()
        streams = []
        for _, _, token in tokens:
            opened = asyncio.Event()
            streams.append(asyncio.create_task(read_stream(client, f"{server.url}/api/events", token, load, opened)))
            await asyncio.wait_for(opened.wait(), 30)  # its snapshot event came: subscribed
        phases = []
        for name, seconds, rate in (("idle", options.idle_seconds, 0.0), ("load", options.load_seconds, options.rate)):
            load.events = load.completed = 0
            phase_load = Load()
            first = await asyncio.to_thread(read_meter, lagfile, time.monotonic())
            checkpoints = wal_checkpoints(database) if database else None
            meter = CoreMeter(server)
            started = time.monotonic()
            if rate:
                await submit_at_rate(client, server.url, tokens, rate, seconds, phase_load)
            await asyncio.sleep(max(0.0, started + seconds - time.monotonic()))  # a phase lasts this long
            share = meter.read()
            last = await asyncio.to_thread(read_meter, lagfile, time.monotonic())
            after = wal_checkpoints(database) if database else None
            phase_load.events, phase_load.completed = load.events, load.completed
            done = None if checkpoints is None or after is None else after - checkpoints
            phases.append(Phase(name, Window.between(first, last), phase_load, done, share.server, share.others))
        for stream in streams:
            stream.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
    return phases


def measure(options: argparse.Namespace, databases: Databases, workdir: Path) -> str:
    url = databases.create("looplag")
    print(f"seeding {options.tasks:,} finished tasks and {options.streams} readers...", file=sys.stderr)
    seed(url, "history", tasks=options.tasks)
    users = seed_stream_users(url, options.streams)
    database = Path(url.partition(":///")[2]) if databases.is_sqlite else None
    lagfile = workdir / "looplag.json"
    env = novawrite_env(
        url,
        looplag_file=lagfile,
        demo_delay_ms=options.demo_delay_ms,
        max_streams_per_user=5,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
    )
    with Server("novawrite", "novawrite.app:app", env, workdir) as server:
        server.start()
        phases = asyncio.run(run(server, lagfile, database, users, options))
    checkpoints = checkpoint_cost(database, 3 if options.quick else 8) if database else []
    load = phases[-1]
    ok = load.window.percentile(0.999) < GOAL_MS and load.window.max_ms < GOAL_MS
    size = f"{database.stat().st_size / 1e6:.0f} MB" if database else "-"
    lines = [
        header(
            "Event-loop lag under load",
            databases.describe(),
            {
                "Database": f"{options.tasks:,} finished tasks in the history, {size}",
                "Load": f"{options.streams} per-user streams (one user each), outline tasks (1 volume x 2 chapters, "
                f"demo provider {options.demo_delay_ms} ms per item) at {options.rate:g}/s round robin over them",
                "Meter": "a 1 ms timer in the server (novawrite.looplag); lag = how late it ran; uvloop's clock has "
                "1 ms resolution",
            },
        ),
        "",
        table(
            [
                "phase",
                "s",
                "submitted/s",
                "completed/s",
                "events delivered/s",
                "ticks",
                "lag p50 ms",
                "p99 ms",
                "p99.9 ms",
                "max ms",
                f"stalls >= {STALL_MS:g} ms",
                "WAL checkpoints",
                "server core",
                "others on its core",
            ],
            [p.row() for p in phases],
        ),
        "",
        f"Goal: under load, p99.9 and max < {GOAL_MS:g} ms: {verdict(ok)}",
    ]
    if checkpoints:
        ordered = sorted(checkpoints)
        lines += [
            "",
            f"One checkpoint of a 1,000-page WAL into this database (scattered pages, synchronous=NORMAL, "
            f"measured after the run, {len(ordered)} times): median {ordered[len(ordered) // 2]:.1f} ms, "
            f"max {ordered[-1]:.1f} ms. SQLite would run it inside the COMMIT that takes the WAL past 1,000 "
            "pages; NovaWrite turns that off and runs it in a thread of its own (WalCheckpointer, novawrite/db/raw.py).",
        ]
    refused = sum(load.load.refused.values())
    if refused or load.load.stream_errors:
        lines.append(f"Refused submits: {dict(load.load.refused)}; streams that failed: {load.load.stream_errors}")
    for phase in phases:
        if not phase.window.stalls:
            continue
        groups: dict[str, list[float]] = {}
        for _, lag, stack in phase.window.stalls:
            groups.setdefault(place(stack), []).append(lag)
        rows = sorted(
            ([where, len(lags), f"{max(lags):.1f}", f"{sum(lags):.0f}"] for where, lags in groups.items()),
            key=lambda r: -int(r[1]),  # type: ignore[call-overload]
        )
        lines += [
            "",
            f"Stalls in the {phase.name} phase, by where the loop was held (sampled 5-7 ms into a stall):",
            "",
        ]
        lines.append(table(["where (innermost first)", "stalls", "max ms", "total ms"], rows[:10]))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
