"""Slow reader (issue 6): a client that reads nothing while a chapter streams.

The design promises (DESIGN.md, "Event bus") that a slow reader never slows a
generator and never grows memory without bound, and that the reader catches up
from the database.

A chapter's own stream: two identical chapters (two novels with the same fields,
so the demo provider writes the same text) are generated at the same time on one
real server process, one with a normal reader on its stream, the other with a
reader that takes the first chunk and then reads nothing for ``STALL_SECONDS``
and until the chapter is finished. Running the twins together puts both under the
same load, so their generation times compare within a few percent even on a busy
machine, where two runs one after the other differ by 10% on their own. A short
chapter generated before them warms the process up (first-use allocations are not
growth). Then:

- the stalled chapter's generation time (task created -> finished) is its twin's
  within 10%;
- the server's RSS during the stall stays within ``MEMORY_BOUND`` of where it was
  when the stall began;
- the stall really backed up into the server: at its end the server process
  holds at least ``BACKLOG_FLOOR`` bytes of the stream that fit in neither
  kernel buffer, so its sends were blocked, not merely slow;
- the stalled client parses what the kernel had delivered to it, drops the
  connection, resumes with the Last-Event-ID of the last event it parsed, and its
  chunk texts join to the task's /output, the saved chapter, the result, and the
  twin's text;
- the stalled stream's subscription is released (/metrics subscribers back to 0)
  and the server logs no error.

The per-user stream, the one the web UI keeps open (long form only: it outlasts
the server's 30 s send timeout): a tab that stops reading while two chapters
stream has its sends blocked within seconds, and the server ends the stream on
its own, as routine (no error in its log), with memory bounded; the client then
catches up with a new connection.

"Reads nothing" is a raw socket (``SseSocket``) the test does not read, with a
small SO_RCVBUF so its window closes at once, and with the MSS of a path through
a real network: at loopback's 64 KiB segments the kernel autotunes the server's
send buffer to 4 MiB, more than a whole chapter's stream, so the server would
never notice the stall; at 536 bytes it sizes the buffer as for a remote client.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest

from novawrite.engine.events import sse_bytes
from tests.reliability.conftest import LONG, scale
from tests.reliability.sse_clients import SseSocket, kernel_queues, logged_errors, metric, rss_bytes, subscribers
from tests.server import TERMINAL, Api, ServerProcess, Servers, Sse, api_on, assert_complete_log, servers  # noqa: F401
from tests.waiting import until

pytestmark = pytest.mark.server

STALL_SECONDS = scale(4, 30)
#: The demo streams a 20,000-word English chapter in about 1,400 pieces, one per
#: delay: ~6 s in the short form, ~45 s in the long one (the default pace), so the
#: chapter is still streaming when the stall begins and finishes within or just
#: after it.
DEMO_DELAY_MS = scale(4, 30)
TARGET_WORDS = 20000
WARM_UP_WORDS = 2000
RECEIVE_BUFFER = 2048  # the kernel doubles it: a 4 KiB window
MSS = 536  # the IPv4 default when a peer advertises none (RFC 879)
TIME_TOLERANCE = 0.10
#: The stalled chapter's whole event log is ~0.25 MB on the wire, so no buffering of
#: it, bounded or not, shows in RSS; what this bound catches is memory that grows
#: per event or per second of stall. Meanwhile the chapters' writes grow what is
#: bounded anyway (SQLite's page cache, up to 2 MiB per pooled connection; the
#: ORM's caches): 1-3 MiB measured.
MEMORY_BOUND = 8 * 1024 * 1024
#: uvicorn pauses a response's sends once 64 KiB wait in its transport.
BACKLOG_FLOOR = 64 * 1024
FINISH_TIMEOUT = scale(60, 180)
#: api_tasks.py gives up on a send that has waited this long.
SEND_TIMEOUT = 30
#: The per-user stall: the sends block within ~3 s, and the timeout needs 30 s more.
PAST_SEND_TIMEOUT = SEND_TIMEOUT + 10


async def novel_with_one_chapter(api: Api) -> tuple[int, int]:
    """A novel with the test's fields (so the same chapter text every time) and its one chapter."""
    novel = await api.novel(language="en")
    outline = await api.outline(novel["id"], volumes=1, chapters_per_volume=1)
    assert (await api.wait_task(outline["id"]))["status"] == "completed"
    full = (await api.get(f"/api/novels/{novel['id']}")).json()
    return int(novel["id"]), int(full["volumes"][0]["chapters"][0]["id"])


async def write_chapter(api: Api, novel_id: int, chapter_id: int, words: int = TARGET_WORDS) -> str:
    body = {"novel_id": novel_id, "chapter_id": chapter_id, "target_words": words}
    r = await api.post("/api/ai/write-chapter-content", json=body)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def warm_up(api: Api) -> None:
    task_id = await write_chapter(api, *await novel_with_one_chapter(api), words=WARM_UP_WORDS)
    assert (await api.task_events(task_id, timeout=FINISH_TIMEOUT)).closed


async def stalled_client(server: ServerProcess, api: Api, path: str) -> SseSocket:
    client = await SseSocket.connect(server.port, receive_buffer=RECEIVE_BUFFER, mss=MSS)
    await client.get(path, api.token or "")
    assert await client.read_head() == 200
    return client


async def completed_events(api: Api) -> float:
    return await metric(api, "novawrite_events_published_total", kind="completed")


async def stall(
    api: Api, server: ServerProcess, seconds: float, task_ids: list[str], completed_before: float
) -> list[int]:
    """Read nothing for ``seconds`` and until every task's terminal event is published; RSS samples."""
    samples: list[int] = []
    started = time.monotonic()

    async def over() -> bool:
        samples.append(rss_bytes(server.pid))
        if time.monotonic() - started < seconds:
            return False
        for task_id in task_ids:
            if (await api.task(task_id))["status"] not in TERMINAL:
                return False
        # Finished in the database; each terminal event is published just after its commit.
        return await completed_events(api) >= completed_before + len(task_ids)

    await until(over, seconds + FINISH_TIMEOUT, f"tasks {task_ids} finished and their terminal events published")
    return samples


async def first_chunk(client: SseSocket) -> None:
    while (event := await client.next_event()) is not None:
        if event.kind == "chunk":
            return
    raise AssertionError(f"the stream ended before its first chunk: {client.events}")


def generation_seconds(task: dict[str, str]) -> float:
    return (datetime.fromisoformat(task["finished_at"]) - datetime.fromisoformat(task["created_at"])).total_seconds()


def wire_size(events: list[Sse]) -> int:
    """The bytes the server writes for these events: their SSE frames, without the chunked framing."""
    return sum(len(sse_bytes(int(e.id) if e.id else None, str(e.kind), e.data)) for e in events)


def chunk_text(events: list[Sse]) -> str:
    return "".join(e.json["text"] for e in events if e.kind == "chunk")


def check_memory(rss_at_stall: int, samples: list[int]) -> None:
    growth = max(samples) - rss_at_stall
    print(f"RSS: {rss_at_stall / 2**20:.1f} MiB when the stall began, at most {growth / 2**10:+.0f} KiB during it")
    assert growth <= MEMORY_BOUND, growth


async def check_released(api: Api) -> None:
    async def released() -> bool:
        return await subscribers(api) == 0

    await until(released, 10, "every stream's subscription released")


def check_no_errors(server: ServerProcess) -> None:
    errors = logged_errors(server)
    assert not errors, f"{len(errors)} error lines in the server log, the first: {errors[:4]}"


async def test_slow_reader_neither_slows_its_chapter_nor_grows_memory_and_resumes(servers: Servers) -> None:
    server = await servers.start(demo_delay_ms=DEMO_DELAY_MS)
    async with api_on(server, "slow") as api:
        await warm_up(api)
        twin, stalled = [await novel_with_one_chapter(api) for _ in range(2)]
        completed_before = await completed_events(api)
        twin_id = await write_chapter(api, *twin)
        stalled_id = await write_chapter(api, *stalled)
        client = await stalled_client(server, api, f"/api/tasks/{stalled_id}/events")
        await first_chunk(client)
        rss_at_stall = rss_bytes(server.pid)
        twin_read, samples = await asyncio.gather(
            api.task_events(twin_id, timeout=FINISH_TIMEOUT),
            stall(api, server, STALL_SECONDS, [twin_id, stalled_id], completed_before),
        )
        send_queue, receive_queue = kernel_queues(server.port, client.local_port)
        read_before_waking = client.received

        # It wakes, parses what had reached it, and reconnects from the last event it parsed.
        client.take_unread()
        client.close(abrupt=True)
        parsed, last = client.events, client.last_id
        assert last is not None
        rest = await api.task_events(stalled_id, last_event_id=last)

        done, twin_done = await api.task(stalled_id), await api.task(twin_id)
        assert done["status"] == twin_done["status"] == "completed", (done, twin_done)
        full = await api.task_events(stalled_id)
        assert_complete_log(full.events, stalled_id)
        assert twin_read.closed
        assert_complete_log(twin_read.events, twin_id)

        # Not slowed: the generator never waited for its reader.
        seconds, twin_seconds = generation_seconds(done), generation_seconds(twin_done)
        print(f"generation: {twin_seconds:.2f} s read, {seconds:.2f} s with the stalled reader")
        assert abs(seconds - twin_seconds) <= TIME_TOLERANCE * twin_seconds, (twin_seconds, seconds)

        # The stall was real: part of the stream waited in the server process, beyond both kernel buffers.
        held = wire_size(full.events) - read_before_waking - receive_queue - send_queue
        print(
            f"at the stall's end: {send_queue} B in the server's send queue, {receive_queue} B unread by the "
            f"client, {held} B held by the server process"
        )
        assert held >= BACKLOG_FLOOR, (held, send_queue, receive_queue)

        check_memory(rss_at_stall, samples)

        # The resume: no gap, no duplicate, and the same text everywhere.
        assert [e.seq for e in parsed] == list(range(1, last + 1))
        assert rest.closed and [e.seq for e in rest.events] == list(range(last + 1, len(full.events) + 1))
        assert [e.key() for e in parsed + rest.events] == [e.key() for e in full.events]
        text = chunk_text(parsed + rest.events)
        output = (await api.get(f"/api/tasks/{stalled_id}/output")).json()
        chapter = (await api.get(f"/api/novels/{stalled[0]}/chapters/{stalled[1]}")).json()
        assert output == {"text": text, "complete": True}
        assert chapter["content"] == text == done["result"]["content"] == chunk_text(twin_read.events)

        await check_released(api)
    check_no_errors(server)


@pytest.mark.skipif(not LONG, reason="long form only: it outlasts the server's 30 s send timeout")
async def test_a_stalled_user_stream_is_ended_quietly_after_the_send_timeout(servers: Servers) -> None:
    server = await servers.start(demo_delay_ms=4)  # ~250 KB of events in ~6 s per chapter
    async with api_on(server, "tab") as api:
        await warm_up(api)
        chapters = [await novel_with_one_chapter(api) for _ in range(2)]
        client = await stalled_client(server, api, "/api/events")
        snapshot = await client.next_event()
        assert snapshot is not None and snapshot.kind == "snapshot", snapshot
        rss_at_stall = rss_bytes(server.pid)
        completed_before = await completed_events(api)
        task_ids = [await write_chapter(api, *chapter) for chapter in chapters]
        samples = await stall(api, server, PAST_SEND_TIMEOUT, task_ids, completed_before)
        check_memory(rss_at_stall, samples)
        await check_released(api)  # while the client still reads nothing: the server let go of it

        # The server has ended the stream: what it had sent drains, then the connection closes, short of the end.
        async with asyncio.timeout(10):
            while await client.next_event() is not None:
                pass
        client.close()
        published = sum([len((await api.task_events(task_id)).events) for task_id in task_ids])
        received = len(client.events) - 1  # the snapshot
        print(f"the stalled tab received {received} of the {published} events before the server cut its stream")
        assert received < published

        # The tab catches up: a new connection's snapshot has nothing active, and each task replays whole.
        catch_up = await stalled_client(server, api, "/api/events")
        snapshot = await catch_up.next_event()
        catch_up.close()
        assert snapshot is not None and snapshot.json == {"items": []}, snapshot
        for task_id in task_ids:
            log = await api.task_events(task_id)
            assert_complete_log(log.events, task_id)
            assert (await api.get(f"/api/tasks/{task_id}/output")).json() == {
                "text": chunk_text(log.events),
                "complete": True,
            }
    check_no_errors(server)
