"""``novawrite serve --workers N``: refused on SQLite; on PostgreSQL N processes, each its own supervisor.

The worker processes are uvicorn's (spawned by its process manager, which relays
SIGTERM to them); the tests find them as the children of the ``serve`` process
that run ``multiprocessing.spawn`` (the other child is multiprocessing's resource
tracker).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.server import Api, ServerProcess, Servers, api_on, servers  # noqa: F401 (fixture)
from tests.waiting import until

pytestmark = pytest.mark.server

WORKERS = 2
GRACE = 3  # NOVAWRITE_SHUTDOWN_GRACE_SECONDS: serve gives uvicorn this plus 5 s to finish
SERVE_WORKERS = ["-m", "novawrite", "serve", "--host", "127.0.0.1", "--port", "{port}", "--workers", str(WORKERS)]


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """Workers need PostgreSQL: these tests run on it alone."""
    return postgres_url


def serve(argv: list[str], database_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVAWRITE_")}
    env["NOVAWRITE_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "novawrite", "serve", *argv],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_workers_are_refused_on_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "novawrite.db"
    done = serve(["--port", "1", "--workers", "2"], f"sqlite+aiosqlite:///{db}", tmp_path)
    assert done.returncode == 2, done
    assert "--workers 2 is refused" in done.stderr and "SQLite has one writing process" in done.stderr, done.stderr
    assert "PostgreSQL" in done.stderr
    assert not db.exists(), "refused before touching the database"


def test_workers_option_is_checked(tmp_path: Path) -> None:
    postgres = "postgresql+asyncpg://nobody@127.0.0.1:1/none"  # never reached: refused before any connection
    done = serve(["--workers", "0"], postgres, tmp_path)
    assert done.returncode == 2 and "--workers: at least 1" in done.stderr, done.stderr
    done = serve(["--workers", "two"], postgres, tmp_path)
    assert done.returncode == 2 and "not a number" in done.stderr, done.stderr
    done = serve(["--workers", "2", "--reload"], postgres, tmp_path)
    assert done.returncode == 2 and "--reload runs one process" in done.stderr, done.stderr


# --- on PostgreSQL ------------------------------------------------------------------------------


def workers_of(server: ServerProcess) -> set[int]:
    """The uvicorn worker processes of a ``serve --workers`` process."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == server.pid and b"multiprocessing.spawn" in cmdline:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def running_owners(database_url: str) -> dict[str, str]:
    """task id -> owner of every running task, read from the database."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch("SELECT id, owner FROM tasks WHERE status = 'running'")
    finally:
        await conn.close()
    return {r["id"]: r["owner"] for r in rows}


async def task_rows(database_url: str, ids: list[str]) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch("SELECT id, status, owner, attempt FROM tasks WHERE id = ANY($1::text[])", ids)
    finally:
        await conn.close()
    return {r["id"]: r for r in rows}


async def submit_outlines(api: Api, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        novel = await api.novel()
        ids.append((await api.outline(novel["id"], volumes=2, chapters_per_volume=5))["id"])
    return ids


async def both_running(api: Api, ids: list[str], database_url: str) -> dict[str, str]:
    owners: dict[str, str] = {}

    async def running() -> bool:
        owners.clear()
        owners.update(await running_owners(database_url))
        return set(ids) <= owners.keys()

    await until(running, 15, f"tasks {ids} running at once")
    return {task_id: owners[task_id] for task_id in ids}


async def raw_exchange(server: ServerProcess, request: bytes) -> bytes:
    """Send raw bytes on a new connection; what comes back until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()


async def test_workers_share_the_queue_each_with_its_own_supervisor_and_stop_on_sigterm(
    servers: Servers, database_url: str
) -> None:
    server = await servers.start(
        SERVE_WORKERS,
        max_concurrency=1,  # one slot per worker: two tasks at once must run in two workers
        demo_delay_ms=300,  # an outline of 2 x 5 takes about 3.6 s
        shutdown_grace_seconds=GRACE,
        lease_seconds=60,  # recovery after SIGTERM must not wait for a lease
        max_header_bytes=2048,
        header_timeout_seconds=0.5,
    )
    workers: set[int] = set()

    async def all_workers_up() -> bool:
        workers.clear()
        workers.update(workers_of(server))
        return len(workers) == WORKERS and server.log_text().count(" ready: provider=") == WORKERS

    await until(all_workers_up, 60, f"{WORKERS} workers started")

    async with api_on(server, "alice") as api:
        # Two tasks at once: each worker claims one, under an owner id of its own (host:pid:random).
        first = await submit_outlines(api, 2)
        owners = await both_running(api, first, database_url)
        assert len(set(owners.values())) == 2, owners
        assert {int(owner.split(":")[1]) for owner in owners.values()} == workers, (owners, workers)
        for task_id in first:
            done = await api.wait_task(task_id, timeout=30)
            assert done["status"] == "completed" and done["attempt"] == 1, done

        # serve's HTTP bounds reach every worker (novawrite.web.protocol, configured from the environment).
        for _ in range(2 * WORKERS):
            big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4096 + b"\r\n\r\n"
            assert (await raw_exchange(server, big)).startswith(b"HTTP/1.1 431 "), "a head over the bound"
            assert (await raw_exchange(server, b"")).startswith(b"HTTP/1.1 408 "), "no head within the timeout"

        # SIGTERM to serve while both workers run a task and a stream is open: every process
        # exits within serve's bound and each worker gives its task back to the queue.
        second = await submit_outlines(api, 2)
        owners = await both_running(api, second, database_url)
        assert len(set(owners.values())) == 2, owners
        async with api.open_stream("/api/events") as (_, items):
            assert (await anext(items)).kind == "snapshot"
            code, took = await server.terminate(timeout=GRACE + 5 + 5)
        assert code == 0, server.log_text()[-4000:]
        assert took < GRACE + 5, f"serve --workers took {took:.1f} s to stop"
        assert not [pid for pid in workers if alive(pid)], "a worker outlived serve"
        rows = await task_rows(database_url, second)
        assert {(r["status"], r["owner"], r["attempt"]) for r in rows.values()} == {("pending", None, 2)}, rows
        print(f"serve --workers {WORKERS} stopped in {took:.2f} s")
