"""What every benchmark shares: servers on core 0, load on core 1, seeded databases, wrk, tables.

Figures on these machines are noisy, so every benchmark measures its goal as a
ratio of two things run side by side in one run, with the same uvicorn settings
(one worker, uvloop, httptools, no access log), the server process pinned to one
core and the load (wrk, or this process's own clients) to the other (with
``sched_setaffinity``, what ``taskset -c`` does). Other processes on the same
core still slow a server down; ``CoreMeter`` measures how much, and the tables
show it, with each server's CPU time per request, a figure such noise barely moves.

Databases are made for the run and removed after it: a SQLite file in a
temporary directory by default, or, with ``--database`` naming a PostgreSQL
server, a database of the benchmark's own (``nw_bench_<random>``) created there
and dropped at the end. The schema comes from the project's migrations and the
rows from the project's models, inserted in bulk (Core ``insert`` with many
rows per statement), so 100,000 tasks take seconds, not an hour of API calls.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from sqlalchemy import insert, select

from novawrite.db import migrate
from novawrite.db.engine import Database
from novawrite.db.models import Novel, Task, TaskEvent, User
from novawrite.engine.events import event_data
from novawrite.security import Passwords

ROOT = Path(__file__).resolve().parents[1]
SERVER_CORE = 0
LOAD_CORE = 1
SECRET = "bench-secret-key-0123456789abcdef0123456789abcdef"
PASSWORD = "bench password 1"
#: A demo provider this slow keeps a started task running, and unchanged, for an hour.
HOUR_MS = 3_600_000
UVICORN_FLAGS = (
    "--workers",
    "1",
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--log-level",
    "warning",
)
PACKAGES = (
    "uvicorn",
    "uvloop",
    "httptools",
    "starlette",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "orjson",
)
HISTORY_KINDS = (
    "generate_outline",
    "generate_characters",
    "generate_world_settings",
    "generate_timeline_events",
    "generate_foreshadowings",
)


# --- Cores --------------------------------------------------------------------------------


# Read before anything is pinned: children inherit this process's affinity.
AVAILABLE_CORES = frozenset(os.sched_getaffinity(0))


def two_cores() -> bool:
    return {SERVER_CORE, LOAD_CORE} <= AVAILABLE_CORES


def pin_to_load_core() -> None:
    """Pin this process (and so the children it starts without a core of their own) to the load core."""
    if two_cores():
        os.sched_setaffinity(0, {LOAD_CORE})


def _on_core(core: int) -> Any:
    def pin() -> None:
        if two_cores():
            os.sched_setaffinity(0, {core})

    return pin


# --- The report ----------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _memory_gb() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.0f} GB"
    return "?"


def _git_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "no git"
    return commit + (" + uncommitted changes" if dirty else "")


def wrk_version() -> str:
    try:
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    except OSError:
        return "not installed"
    return out.split(" [", 1)[0].removeprefix("wrk ").strip() or "?"


def header(title: str, database: str, extra: dict[str, str] | None = None) -> str:
    """The lines above a benchmark's table: what ran, where, with which versions."""
    pinning = (
        f"server pinned to core {SERVER_CORE}, load on core {LOAD_CORE}"
        if two_cores()
        else "NOT pinned (fewer than 2 cores available): ratios are less trustworthy"
    )
    versions = ", ".join(f"{p} {_version(p)}" for p in PACKAGES)
    command = " ".join(["scripts/bench", Path(sys.argv[0]).stem, *sys.argv[1:]])
    lines = [
        f"## {title}",
        "",
        f"- Run: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}, `{command}`",
        f"- Machine: {_cpu_model()}, {os.cpu_count()} cores, {_memory_gb()} RAM, {platform.system()} "
        f"{platform.release()}; {pinning}",
        f"- Versions: NovaWrite {_version('novawrite')} ({_git_commit()}), Python {platform.python_version()}, "
        f"{versions}, wrk {wrk_version()}",
        f"- Server: uvicorn {' '.join(UVICORN_FLAGS)}; database: {database}",
        f"- Load average at the end (1, 5, 15 min): {', '.join(Path('/proc/loadavg').read_text().split()[:3])}",
    ]
    lines += [f"- {name}: {value}" for name, value in (extra or {}).items()]
    return "\n".join(lines)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def median(values: Sequence[float]) -> float:
    return percentile(values, 0.5)


# --- Command line ----------------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes."""
    args = argparse.ArgumentParser(
        prog=f"scripts/bench {Path(sys.argv[0]).stem}",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    args.add_argument(
        "--database",
        default="sqlite",
        help="sqlite (a file in a temporary directory), or a PostgreSQL server as "
        "postgresql+asyncpg://user@host:port[/db]: the benchmark creates a database of its own there and drops it",
    )
    args.add_argument("--quick", action="store_true", help="a smoke run: small sizes, short runs")
    args.add_argument("--keep", action="store_true", help="keep the temporary directory (server logs, SQLite files)")
    return args


# --- Databases --------------------------------------------------------------------------------


class Databases:
    """Databases made for one run, all removed by ``close`` (``--database`` decides the backend)."""

    def __init__(self, option: str, workdir: Path) -> None:
        self.option = option
        self.workdir = workdir
        self._postgres: list[str] = []

    @property
    def is_sqlite(self) -> bool:
        return self.option == "sqlite"

    def describe(self) -> str:
        if self.is_sqlite:
            return f"SQLite {sqlite3.sqlite_version} (a file, WAL)"
        return f"PostgreSQL {asyncio.run(self._pg_version())}"

    def create(self, name: str) -> str:
        """A new, migrated database; its SQLAlchemy URL."""
        if self.is_sqlite:
            url = f"sqlite+aiosqlite:///{self.workdir / name}.sqlite3"
        else:
            database = f"nw_bench_{uuid.uuid4().hex[:10]}"
            asyncio.run(self._pg_admin(f'CREATE DATABASE "{database}"'))
            self._postgres.append(database)
            url = self._pg_url(database)
        migrate.upgrade(url)
        return url

    def close(self) -> None:
        for database in self._postgres:
            asyncio.run(self._pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        self._postgres.clear()

    def _pg_url(self, database: str) -> str:
        base, _, _ = self.option.partition("?")
        server = base.rstrip("/")
        if server.count("/") > 2:  # a database is named: replace it
            server = server.rsplit("/", 1)[0]
        return f"{server}/{database}"

    def _admin_dsn(self) -> str:
        dsn = self.option.replace("postgresql+asyncpg://", "postgresql://")
        return dsn if dsn.rstrip("/").count("/") > 2 else dsn.rstrip("/") + "/postgres"

    async def _pg_admin(self, statement: str) -> None:
        conn = await asyncpg.connect(self._admin_dsn(), timeout=10)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    async def _pg_version(self) -> str:
        conn = await asyncpg.connect(self._admin_dsn(), timeout=10)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()


@contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="novawrite-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"(kept {path})", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


# --- Seeding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    user_id: int
    username: str
    novel_ids: list[int]
    #: One finished task from the middle of the history.
    finished_task_id: str | None


def seed(url: str, username: str, *, tasks: int = 0, novels: int = 1) -> Seeded:
    """A user with ``novels`` novels and a history of ``tasks`` finished tasks (three events each)."""
    return asyncio.run(_seed(url, username, tasks, novels))


async def _seed(url: str, username: str, tasks: int, novels: int) -> Seeded:
    db = Database(url)
    try:
        now = datetime.now(UTC)
        password_hash = Passwords(time_cost=1, memory_kib=1024).hash(PASSWORD)
        async with db.write() as conn:
            user_id = (
                await conn.execute(
                    insert(User)
                    .values(username=username, password_hash=password_hash, created_at=now)
                    .returning(User.id)
                )
            ).scalar_one()
            novel_ids = [
                (
                    await conn.execute(
                        insert(Novel)
                        .values(
                            user_id=user_id,
                            title=f"Bench novel {n + 1}",
                            genre="science fiction",
                            synopsis="A courier crosses a dying empire.",
                            language="en",
                            created_at=now,
                            updated_at=now,
                        )
                        .returning(Novel.id)
                    )
                ).scalar_one()
                for n in range(novels)
            ]
        finished = await _seed_history(db, user_id, novel_ids, tasks, now) if tasks else None
        return Seeded(user_id, username, novel_ids, finished)
    finally:
        await db.dispose()


BATCH = 5000


async def _seed_history(db: Database, user_id: int, novel_ids: list[int], count: int, now: datetime) -> str:
    """``count`` finished tasks, oldest first, one a second before ``now``; the id of the middle one."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    for start in range(0, count, BATCH):
        rows = [_task_row(ids[i], i, user_id, novel_ids, count, now) for i in range(start, min(count, start + BATCH))]
        async with db.write() as conn:
            await conn.execute(insert(Task), rows)
            inserted = await conn.execute(select(Task.id, Task.pk).where(Task.id.in_([r["id"] for r in rows])))
            pks = {task_id: pk for task_id, pk in inserted}
            await conn.execute(insert(TaskEvent), [event for r in rows for event in _events(r, pks[r["id"]])])
    return ids[count // 2]


def _task_row(task_id: str, i: int, user_id: int, novel_ids: list[int], count: int, now: datetime) -> dict[str, Any]:
    kind = HISTORY_KINDS[i % len(HISTORY_KINDS)]
    status = "failed" if i % 20 == 7 else "cancelled" if i % 20 == 13 else "completed"
    created = now - timedelta(seconds=count - i)
    finished = created + timedelta(milliseconds=800)
    completed = status == "completed"
    result = {"items": [{"name": f"Item {i}", "description": "Seeded by the benchmark."}]} if completed else None
    error = {"code": "provider_error", "message": "The model is unavailable"} if status == "failed" else None
    return {
        "id": task_id,
        "user_id": user_id,
        "novel_id": novel_ids[i % len(novel_ids)],
        "task_type": kind,
        "scope": 0,
        "status": status,
        "progress": 100 if status == "completed" else 40,
        "message": {"completed": "Done", "failed": "Failed", "cancelled": "Cancelled"}[status],
        "params": {"count": 5},
        "result": result,
        "error": error,
        "usage": {"prompt_tokens": 1200, "output_tokens": 800},
        "attempt": 1,
        "retry_of": None,
        "cancel_requested": status == "cancelled",
        "idempotency_key": None,
        "request_hash": None,
        "owner": None,
        "lease_expires_at": None,
        "seq": 3,
        "output": "",
        "checkpoint": None,
        "created_at": created,
        "started_at": created + timedelta(milliseconds=10),
        "finished_at": finished,
        "updated_at": finished,
    }


def _events(task: dict[str, Any], pk: int) -> list[dict[str, Any]]:
    task_id, status = task["id"], task["status"]
    if status == "completed":
        final_extra = {"result": task["result"]}
    else:
        final_extra = {"error": task["error"]} if task["error"] else {}
    steps = [
        ("status", "pending", 0, "Queued", {"attempt": 1}),
        ("status", "running", 0, "Started", {"attempt": 1}),
        (status, status, task["progress"], task["message"], final_extra),
    ]
    return [
        {
            "task_pk": pk,
            "seq": seq,
            "kind": kind,
            "data": event_data(task_id, seq, state, progress, message, **extra),
            "created_at": task["started_at"],
        }
        for seq, (kind, state, progress, message, extra) in enumerate(steps, start=1)
    ]


# --- Server processes -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def novawrite_env(database_url: str, **settings: object) -> dict[str, str]:
    """A NovaWrite server's environment: demo provider, fixed secret; ``settings`` are NOVAWRITE_* minus the prefix."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NOVAWRITE_") and k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    }
    env.update(
        NOVAWRITE_DATABASE_URL=database_url,
        NOVAWRITE_PROVIDER="demo",
        NOVAWRITE_SECRET_KEY=SECRET,
        NOVAWRITE_ACCESS_LOG="false",
        PYTHONUNBUFFERED="1",
    )
    env.update({f"NOVAWRITE_{name.upper()}": str(value) for name, value in settings.items()})
    return env


class Server:
    """One uvicorn process serving ``app`` (an import string), pinned to the server core."""

    def __init__(
        self,
        name: str,
        app: str,
        env: dict[str, str],
        workdir: Path,
        *,
        factory: bool = False,
        core: int | None = SERVER_CORE,
    ) -> None:
        self.name = name
        self.app = app
        self.env = env
        #: The core it runs on (None: any core, even when this process is pinned to the load core).
        self.core = core
        self.log = workdir / f"{name}.log"
        self.factory = factory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, health_path: str = "/healthz", deadline_s: float = 60.0) -> Server:
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            self.app,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *UVICORN_FLAGS,
            *(["--factory"] if self.factory else []),
        ]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                argv, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, preexec_fn=self._placement()
            )
        deadline = time.monotonic() + deadline_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    if client.get(self.url + health_path).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.05)  # the port is not open yet: nothing to wait on but time
        self.stop()
        raise RuntimeError(f"{self.name} did not start:\n{self.log.read_text(errors='replace')[-4000:]}")

    def _placement(self) -> Any:
        if self.core is not None:
            return _on_core(self.core)

        def anywhere() -> None:
            if two_cores():
                os.sched_setaffinity(0, AVAILABLE_CORES)

        return anywhere

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def rss_kb(self) -> int:
        """Resident memory now (VmRSS), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def core_busy_seconds(core: int) -> float:
    """CPU time ``core`` has spent on anything but idle and iowait since boot (/proc/stat)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            ticks = [int(v) for v in line.split()[1:9]]  # user nice system idle iowait irq softirq steal
            return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    raise RuntimeError(f"no cpu{core} in /proc/stat")


@dataclass(frozen=True)
class CoreShare:
    """Over some interval: the share of one core the server used, and what everything else used of its core."""

    server: float
    others: float
    #: The server's CPU time over the interval, in seconds.
    server_seconds: float


class CoreMeter:
    """Measures a server's CPU share from now on, and how much other processes took of its core.

    Other processes on the server's core (a test suite, another benchmark) slow it
    down; ``others`` says how much, so a noisy figure can be told from a slow server.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self._start = (time.monotonic(), server.cpu_seconds(), core_busy_seconds(SERVER_CORE))

    def read(self) -> CoreShare:
        wall0, cpu0, core0 = self._start
        wall = time.monotonic() - wall0
        used = self.server.cpu_seconds() - cpu0
        core = (core_busy_seconds(SERVER_CORE) - core0) / wall
        return CoreShare(used / wall, max(0.0, core - used / wall), used)


def login(base_url: str, username: str) -> str:
    """A bearer token for a seeded user."""
    r = httpx.post(f"{base_url}/api/auth/login", json={"username": username, "password": PASSWORD}, timeout=30)
    r.raise_for_status()
    return str(r.json()["access_token"])


def start_running_task(base_url: str, token: str, novel_id: int, route: str = "generate-characters") -> str:
    """A task that runs, unchanged, for the whole benchmark (on a server with ``demo_delay_ms=HOUR_MS``)."""
    auth = {"Authorization": f"Bearer {token}"}
    r = httpx.post(f"{base_url}/api/ai/{route}", json={"novel_id": novel_id, "count": 50}, headers=auth)
    r.raise_for_status()
    task_id = str(r.json()["id"])

    def settled() -> bool:
        task = httpx.get(f"{base_url}/api/tasks/{task_id}", headers=auth).json()
        return task["status"] == "running" and task["progress"] > 0  # past its first progress event

    wait_for(settled, 30, f"task {task_id} to run")
    return task_id


def wait_for(condition: Any, timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``condition()`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def metric(base_url: str, name: str) -> float | None:
    """One unlabelled sample from the server's /metrics, or None when it has none."""
    try:
        r = httpx.get(f"{base_url}/metrics", timeout=10)
    except httpx.TransportError:
        return None
    if r.status_code != 200:
        return None
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", r.text, re.MULTILINE)
    return float(match.group(1)) if match else None


# --- wrk -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad_responses: int  # non-2xx/3xx
    socket_errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, *, seconds: float, connections: int, headers: dict[str, str] | None = None) -> WrkResult:
    """One wrk run (one thread, on the load core) against ``url``."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s", "--latency"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*argv, url], capture_output=True, text=True, check=True, preexec_fn=_on_core(LOAD_CORE)
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return WrkResult(
        requests_per_s=float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(latency["50"]) if latency else float("nan"),
        p99_ms=_ms(latency["99"]) if latency else float("nan"),
        requests=int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        bad_responses=int(bad.group(1)) if bad else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install wrk` (scripts/bench installs it when run as root)")


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def print_measurement(options: argparse.Namespace, measure: Any, *, wrk: bool = True) -> None:
    """Pin this process to the load core, make the run's databases, print ``measure``'s table
    (``wrk``: the benchmark loads the server with wrk, which must be installed)."""
    if wrk:
        require_wrk()
    pin_to_load_core()
    with workspace(options.keep) as workdir:
        databases = Databases(options.database, workdir)
        try:
            print(measure(options, databases, workdir))
        finally:
            databases.close()
