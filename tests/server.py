"""A real NovaWrite server process for tests, an SSE reader, and a small API client.

``servers`` (a fixture; import it into the test module) starts
``python -m novawrite serve`` on a free port against the test's ``database_url``
with the demo provider, waits for ``/healthz`` with a deadline, and stops every
process it started at teardown (SIGTERM, then SIGKILL). Each process writes its
log to a file under the test's tmp_path; when the test fails, the logs are
printed in the teardown section of the report.

Nothing here sleeps to wait for something that can be awaited: process start and
exit are polled with deadlines, and streams are read with ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.waiting import until

SECRET = "server-test-secret-key-0123456789abcdef0123456789"
#: ``python -m novawrite serve`` is the default; this is the other documented way to run it.
UVICORN = ["-m", "uvicorn", "novawrite.app:app", "--host", "127.0.0.1", "--port", "{port}"]
POLL = 0.05  # seconds between polls of something that cannot be awaited (a port, a process)
TERMINAL = ("completed", "failed", "cancelled")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- The server process ------------------------------------------------------------------


class ServerProcess:
    """One ``novawrite serve`` process; ``start`` it, ``kill`` or ``terminate`` it."""

    def __init__(self, env: dict[str, str], workdir: Path, log: Path, command: list[str] | None = None) -> None:
        self.env = env
        self.workdir = workdir
        self.log = log
        self.command = command
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"

    def _spawn(self) -> None:
        self.port = free_port()
        command = self.command or ["-m", "novawrite", "serve", "--host", "127.0.0.1", "--port", "{port}"]
        argv = [sys.executable, *(part.format(port=self.port) for part in command)]
        with open(self.log, "ab") as out:
            out.write(f"--- {' '.join(argv)}\n".encode())
            out.flush()
            self.process = subprocess.Popen(argv, env=self.env, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT)

    async def start(self, deadline_s: float = 60.0) -> ServerProcess:
        """Start and wait until /healthz answers 200; retry on a port someone else took."""
        for _ in range(3):
            self._spawn()
            if await self._wait_healthy(deadline_s):
                return self
            # it exited: a port race is worth another try, anything else is not
            if "address already in use" not in self.log_text().lower():
                break
        raise AssertionError(f"server did not start (exit {self.returncode}):\n{self.log_text()}")

    async def _wait_healthy(self, deadline_s: float) -> bool:
        deadline = time.monotonic() + deadline_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.returncode is not None:
                    return False
                try:
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                await asyncio.sleep(POLL)  # the port is not open yet: nothing to await but time
        self.kill_now()
        raise AssertionError(f"server not healthy within {deadline_s}s:\n{self.log_text()}")

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None if the process is still running after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.running and time.monotonic() < deadline:
            await asyncio.sleep(POLL)
        return self.returncode

    async def kill(self) -> None:
        """SIGKILL, as a crash would, and wait until it is gone."""
        self.kill_now()
        code = await self.wait_exit(10)
        assert code is not None, "SIGKILLed server still running"

    def kill_now(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP: the process stops where it is (a VM frozen, a laptop asleep), holding its connections."""
        assert self.process is not None and self.running
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after ``pause``."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    async def terminate(self, timeout: float = 15.0) -> tuple[int | None, float]:
        """SIGTERM; (exit code or None if still running after ``timeout``, seconds it took)."""
        assert self.process is not None
        started = time.monotonic()
        if self.running:
            self.process.send_signal(signal.SIGTERM)
        code = await self.wait_exit(timeout)
        return code, time.monotonic() - started

    def stop_sync(self) -> None:
        """Teardown: SIGTERM, then SIGKILL after a while."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class Servers:
    """Makes server processes on one database; every one shares the same secret."""

    database_url: str
    workdir: Path
    base_env: dict[str, str]
    started: list[ServerProcess] = field(default_factory=list)

    def make(self, command: list[str] | None = None, **env: object) -> ServerProcess:
        """A server (not started). ``env`` keys are NOVAWRITE_ variables without the prefix."""
        full = dict(self.base_env)
        full.update({f"NOVAWRITE_{k.upper()}": str(v) for k, v in env.items()})
        log = self.workdir / f"server-{len(self.started) + 1}.log"
        server = ServerProcess(full, self.workdir, log, command)
        self.started.append(server)
        return server

    async def start(self, command: list[str] | None = None, **env: object) -> ServerProcess:
        return await self.make(command, **env).start()


def server_env(database_url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NOVAWRITE_") and k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    }
    env.update(
        {
            "NOVAWRITE_DATABASE_URL": database_url,
            "NOVAWRITE_PROVIDER": "demo",
            "NOVAWRITE_DEMO_DELAY_MS": "10",
            "NOVAWRITE_SECRET_KEY": SECRET,
            # Cheap password hashing: a login per test costs milliseconds, not a second.
            "NOVAWRITE_ARGON2_TIME_COST": "1",
            "NOVAWRITE_ARGON2_MEMORY_KIB": "1024",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture
def servers(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Servers]:
    workdir = tmp_path / "server"
    workdir.mkdir()
    made = Servers(database_url, workdir, server_env(database_url))
    failed_before = request.session.testsfailed
    try:
        yield made
    finally:
        for server in made.started:
            server.stop_sync()
        if request.session.testsfailed != failed_before:  # the test failed: show what the servers said
            for server in made.started:
                print(f"===== {server.log.name} =====\n{server.log_text()[-20000:]}")


# --- Server-Sent Events -------------------------------------------------------------------


@dataclass(frozen=True)
class Sse:
    """One SSE item: an event (``kind``, ``id``, ``data``) or a comment line."""

    kind: str | None = None
    id: str | None = None
    data: str = ""
    comment: str | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.data)

    @property
    def seq(self) -> int:
        return int(self.json["seq"])

    @property
    def terminal(self) -> bool:
        return self.kind in TERMINAL

    def key(self) -> tuple[str | None, str | None, Any]:
        """What must be equal between two reads of the same event."""
        return self.id, self.kind, self.json


class SseParser:
    """The SSE wire format (WHATWG), a line at a time: ``field: value`` lines, a blank
    line dispatches an event, ``:`` starts a comment; "retry" and unknown fields are ignored."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.kind: str | None = None
        self.event_id: str | None = None
        self.data: list[str] = []

    def feed(self, line: str) -> Sse | None:
        """The event or comment this line completes, if any."""
        if line == "":
            done = None
            if self.data or self.kind is not None:
                done = Sse(kind=self.kind or "message", id=self.event_id, data="\n".join(self.data))
            self._reset()
            return done
        if line.startswith(":"):
            return Sse(comment=line[1:].removeprefix(" "))
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self.kind = value
        elif name == "data":
            self.data.append(value)
        elif name == "id":
            self.event_id = value
        return None


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[Sse]:
    parser = SseParser()
    async for line in lines:
        item = parser.feed(line)
        if item is not None:
            yield item


@dataclass
class StreamRead:
    """What one connection to a stream delivered."""

    status: int
    headers: httpx.Headers
    events: list[Sse]
    comments: list[str]
    closed: bool  # the server ended the stream (as opposed to us disconnecting)
    body: bytes = b""  # for a non-stream answer (an error)

    @property
    def seqs(self) -> list[int]:
        return [e.seq for e in self.events]


class Api:
    """A bearer-authenticated httpx client on one server (the URL can change on restart)."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(10.0))
        self.token = token

    async def aclose(self) -> None:
        await self.client.aclose()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def url(self, path: str) -> str:
        return self.base_url + path

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return await self.client.request(method, self.url(path), headers=headers, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def sign_up(self, username: str, password: str = "correct horse battery") -> Api:
        r = await self.client.post(self.url("/api/auth/register"), json={"username": username, "password": password})
        assert r.status_code == 201, r.text
        r = await self.client.post(self.url("/api/auth/login"), json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        self.client.cookies.clear()  # bearer only
        self.token = r.json()["access_token"]
        return self

    async def novel(self, **fields: Any) -> dict[str, Any]:
        body = {
            "title": "Starfall",
            "genre": "science fiction",
            "synopsis": "A courier crosses a dying empire.",
            "language": "en",
            **fields,
        }
        r = await self.post("/api/novels", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def outline(self, novel_id: int, volumes: int = 2, chapters_per_volume: int = 5) -> dict[str, Any]:
        r = await self.post(
            "/api/ai/generate-outline",
            json={"novel_id": novel_id, "volumes": volumes, "chapters_per_volume": chapters_per_volume},
        )
        assert r.status_code == 202, r.text
        return dict(r.json())

    async def task(self, task_id: str) -> dict[str, Any]:
        r = await self.get(f"/api/tasks/{task_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def wait_task(
        self, task_id: str, statuses: tuple[str, ...] = TERMINAL, timeout: float = 30
    ) -> dict[str, Any]:
        """Poll the task (the polling API) with a deadline until its status is one of ``statuses``."""
        task: dict[str, Any] = {}

        async def reached() -> bool:
            task.update(await self.task(task_id))
            return task["status"] in statuses

        await until(reached, timeout, f"task {task_id} reaches {statuses}")
        return task

    @asynccontextmanager
    async def open_stream(
        self, path: str, *, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
    ) -> AsyncIterator[tuple[httpx.Response, AsyncIterator[Sse]]]:
        """A stream and its parsed items; leaving the block disconnects."""
        timeout = httpx.Timeout(10.0, read=30.0)
        async with self.client.stream(
            "GET", self.url(path), headers={**self.headers, **(headers or {})}, params=params, timeout=timeout
        ) as response:
            items = parse_sse(response.aiter_lines())
            try:
                yield response, items
            finally:
                await items.aclose()  # type: ignore[attr-defined]

    async def read_stream(
        self,
        path: str,
        *,
        last_event_id: int | str | None = None,
        query: dict[str, str] | None = None,
        stop_after: int | None = None,
        timeout: float = 30.0,
    ) -> StreamRead:
        """Read events until the server closes the stream, or disconnect after ``stop_after`` events."""
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        events: list[Sse] = []
        comments: list[str] = []
        closed = False
        async with asyncio.timeout(timeout):
            async with self.open_stream(path, headers=headers, params=query) as (response, items):
                if response.status_code != 200:
                    return StreamRead(response.status_code, response.headers, [], [], True, await response.aread())
                if stop_after == 0:
                    return StreamRead(200, response.headers, events, comments, False)
                async for item in items:
                    if item.comment is not None:
                        comments.append(item.comment)
                        continue
                    events.append(item)
                    if stop_after is not None and len(events) >= stop_after:
                        break
                else:
                    closed = True
        return StreamRead(200, response.headers, events, comments, closed)

    async def task_events(self, task_id: str, **kwargs: Any) -> StreamRead:
        return await self.read_stream(f"/api/tasks/{task_id}/events", **kwargs)


@asynccontextmanager
async def api_on(server: ServerProcess, username: str | None = None) -> AsyncIterator[Api]:
    api = Api(server.url)
    try:
        if username is not None:
            await api.sign_up(username)
        yield api
    finally:
        await api.aclose()


def assert_complete_log(events: list[Sse], task_id: str, terminal: str = "completed") -> None:
    """One task's whole event log: seq 1..N, id == seq, one terminal event, last."""
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(events) + 1)), f"seqs not 1..N: {seqs}"
    assert [e.id for e in events] == [str(s) for s in seqs]
    for event in events:
        data = event.json
        assert data["task_id"] == task_id
        assert {"task_id", "seq", "status", "progress", "message"} <= data.keys(), data
        assert event.kind in ("status", "progress", "chunk", *TERMINAL), event.kind
    assert [e.kind for e in events if e.terminal] == [terminal], [e.kind for e in events]
    assert events[-1].kind == terminal


# --- Metrics ----------------------------------------------------------------------------


def sample(text: str, name: str, **labels: str) -> float | None:
    """One sample's value from Prometheus exposition text."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, raw = head.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', raw))
        if metric == name and all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return None
