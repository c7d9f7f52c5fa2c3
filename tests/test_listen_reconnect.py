"""A process whose LISTEN connection drops loses no event: after listening again it catches up.

The store first (``TaskStore.relay`` and ``catch_up``, as another process's store runs them),
then the whole: two ``novawrite serve`` processes on one PostgreSQL database, each reaching it
through a TCP proxy of this test's own (``HeldProxy``), which can hold new
connections back. A chapter runs on one process (A) while a client streams it
from the other (B), on the task's stream and on the user's. The test terminates
B's LISTEN connection (``pg_terminate_backend``; the listener names itself
``novawrite listener <pid>``) while B's proxy holds new connections, so B cannot
listen again until the chapter has completed on A: every event from then on is
committed while nobody in B listens. Then the proxy lets B reconnect, and both of
B's streams must deliver every event, seqs 1..N in order, through ``completed``,
on the HTTP streams they opened at the start.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from novawrite.db.models import utcnow
from novawrite.engine.bus import EventBus, Subscription
from novawrite.engine.store import TaskStore
from tests.conftest import Api as AppApi
from tests.engine_kit import wait_for_status
from tests.server import TERMINAL, Api, ServerProcess, Servers, Sse, api_on, assert_complete_log, servers  # noqa: F401
from tests.test_cluster import HOUR, chapter_task, outlined_novel, query, wait_owner
from tests.waiting import until


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """LISTEN/NOTIFY is PostgreSQL's: these tests run on it alone."""
    return postgres_url


class HeldProxy:
    """A TCP proxy to the database whose new connections wait while it is held (existing ones go on)."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.open = asyncio.Event()
        self.open.set()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> HeldProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    def url(self, database_url: str) -> str:
        """``database_url`` through this proxy."""
        parts = urlsplit(database_url)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._writers.add(client_writer)
        try:
            await self.open.wait()
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
            self._writers.add(server_writer)
            await asyncio.gather(_pipe(client_reader, server_writer), _pipe(server_reader, client_writer))
        except OSError:
            pass
        finally:
            client_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with suppress(OSError):
            writer.close()


class Reader:
    """Reads one stream in the background (one HTTP request, never reconnected) until ``done(event)``."""

    def __init__(self, api: Api, path: str, done: Any) -> None:
        self.events: list[Sse] = []
        self.started = asyncio.Event()
        self._done = done
        self.closed_by_server = False
        self.task = asyncio.create_task(self._read(api, path), name=f"read {path}")

    async def _read(self, api: Api, path: str) -> None:
        async with api.open_stream(path) as (response, items):
            assert response.status_code == 200
            self.started.set()
            async for item in items:
                if item.comment is not None:
                    continue
                self.events.append(item)
                if self._done(item):
                    return
            self.closed_by_server = True


def drained(subscription: Subscription) -> list[int]:
    """The seqs of what is queued for a subscriber now."""
    seqs = []
    while subscription._queue:
        seqs.append(subscription._queue.popleft().seq)
    return seqs


def of_task(events: list[Sse], task_id: str) -> list[Sse]:
    return [e for e in events if e.kind != "snapshot" and e.json.get("task_id") == task_id]


async def test_another_process_publishes_a_tasks_events_once_each_in_order(api: AppApi) -> None:
    h = await api.register()
    novel = await api.novel(h)
    task = (await api.client.post("/api/ai/generate-outline", json={"novel_id": novel["id"]}, headers=h)).json()["id"]
    await wait_for_status(api, h, task, {"completed"})
    user_id = (await api.client.get("/api/auth/me", headers=h)).json()["id"]
    row = await api.services.supervisor.store.row(task)
    assert row is not None and row.seq > 5
    final = row.seq

    since = utcnow() - timedelta(hours=1)
    # A notification ahead of the last seq published (notifications are relayed concurrently):
    # the events between come first, then every later one already committed; none twice.
    other = TaskStore(api.services.db, EventBus(), origin="another process")
    async with other.bus.user(user_id) as heard:
        assert (await other.relay(task, 1)) == (await api.services.supervisor.store.event(task, 1))
        third = await other.relay(task, 3)
        assert third is not None and third.seq == 3
        assert await other.relay(task, 2) is None
        assert await other.relay(task, final) is None
        assert await other.catch_up([task], [user_id], since) == 0
        assert drained(heard) == list(range(1, final + 1))

    # After a reconnect: the rest, from the last seq published, to the per-task and per-user subscribers.
    other = TaskStore(api.services.db, EventBus(), origin="another process")
    async with other.bus.user(user_id) as heard:
        await other.relay(task, 1)
        assert await other.catch_up([], [user_id], since) == final - 1
        assert await other.catch_up([task], [user_id], since) == 0
        assert await other.relay(task, 2) is None
        assert drained(heard) == list(range(1, final + 1))

    # A task the process never published: its events stored since the listener last heard anything.
    fresh = TaskStore(api.services.db, EventBus(), origin="a third process")
    assert await fresh.catch_up([task], [], utcnow() + timedelta(hours=1)) == 0
    assert await fresh.catch_up([task], [], utcnow() - timedelta(hours=1)) == final


@pytest.mark.server
async def test_events_committed_while_the_listener_reconnects_reach_every_stream(
    servers: Servers, database_url: str
) -> None:
    pg = urlsplit(database_url)
    assert pg.hostname is not None
    upstream = (pg.hostname, pg.port or 5432)
    async with HeldProxy(*upstream) as proxy_0, HeldProxy(*upstream) as proxy_1:
        proxies = [proxy_0, proxy_1]
        processes: list[ServerProcess] = list(
            await asyncio.gather(
                *(
                    servers.start(database_url=p.url(database_url), demo_delay_ms=30, sweep_seconds=HOUR)
                    for p in proxies
                )
            )
        )
        async with api_on(processes[0], "alice") as alice:
            apis = [alice, Api(processes[1].url, alice.token)]
            readers: list[Reader] = []
            try:
                novel_id, chapter_ids = await outlined_novel(alice, 2)
                # The user's stream on both processes before the task exists: it must see all of it.
                user_done: dict[str, str] = {}

                def user_stream_done(item: Sse) -> bool:
                    return item.kind == "completed" and item.json.get("task_id") == user_done.get("task_id")

                user_readers = [Reader(api, "/api/events", user_stream_done) for api in apis]
                await asyncio.wait_for(asyncio.gather(*(r.started.wait() for r in user_readers)), 10)
                readers += user_readers

                task_id = await chapter_task(alice, novel_id, chapter_ids[0], target_words=1500)  # about 3.5 s
                user_done["task_id"] = task_id
                runner = await wait_owner(database_url, task_id, processes)
                b = 1 - processes.index(runner)
                on_b, b_proxy, b_user = processes[b], proxies[b], user_readers[b]

                task_reader = Reader(apis[b], f"/api/tasks/{task_id}/events", lambda item: item.terminal)
                readers.append(task_reader)

                async def live_on_b() -> bool:
                    return sum(e.kind == "chunk" for e in task_reader.events) >= 2

                await until(live_on_b, 15, "B's task stream shows chunks live")

                # B's listener goes, and cannot come back until the chapter is done on A.
                b_proxy.open.clear()
                listener = f"novawrite listener {on_b.pid}"
                terminated = await query(
                    database_url,
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                    listener,
                )
                assert [r[0] for r in terminated] == [True], f"no connection named {listener!r}"

                async def ended() -> bool:
                    rows = await query(database_url, "SELECT status FROM tasks WHERE id = $1", task_id)
                    return rows[0]["status"] in TERMINAL

                await until(ended, 30, "the chapter ends on A")
                row = (await query(database_url, "SELECT status, seq, error FROM tasks WHERE id = $1", task_id))[0]
                assert row["status"] == "completed", dict(row)
                final_seq = row["seq"]
                seen_by_b = max(e.seq for e in task_reader.events)
                assert seen_by_b < final_seq - 2, (
                    "nothing was committed while B did not listen: the test proves nothing"
                )
                assert not task_reader.task.done()

                # B listens again: both its streams deliver the rest, on the same HTTP streams.
                b_proxy.open.set()
                await asyncio.wait_for(asyncio.gather(task_reader.task, b_user.task), 20)

                assert_complete_log(task_reader.events, task_id)
                assert task_reader.events[-1].seq == final_seq
                user_events = of_task(b_user.events, task_id)
                assert [e.seq for e in user_events] == list(range(1, final_seq + 1))
                assert [e.key() for e in user_events] == [e.key() for e in task_reader.events]
                assert "caught up on" in on_b.log_text()
            finally:
                for reader in readers:
                    reader.task.cancel()
                await asyncio.gather(*(r.task for r in readers), return_exceptions=True)
                await apis[1].aclose()
                for process in processes:
                    await process.terminate()
