"""Progress streams (API.md "Progress stream") against a real server process, on both databases."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import pytest

from tests.conftest import Api as InProcessApi
from tests.engine_kit import wait_for_status
from tests.reliability.sse_clients import SseSocket
from tests.server import Api, Servers, Sse, StreamRead, api_on, assert_complete_log, servers  # noqa: F401 (fixture)
from tests.waiting import until

TASK_FIELDS = {
    "id",
    "novel_id",
    "user_id",
    "task_type",
    "status",
    "progress",
    "message",
    "params",
    "result",
    "error",
    "usage",
    "attempt",
    "retry_of",
    "parent_id",
    "cancel_requested",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
}


def keys(events: list[Sse]) -> list[tuple[Any, ...]]:
    return [e.key() for e in events]


def assert_progress_never_decreases(events: list[Sse]) -> None:
    """Within an attempt (a requeue to pending starts a new one), progress only goes up."""
    last = 0
    for event in events:
        data = event.json
        if event.kind == "status" and data["status"] == "pending":
            last = 0
        assert data["progress"] >= last, f"progress went down at seq {data['seq']}: {data['progress']} < {last}"
        assert 0 <= data["progress"] <= 100
        assert data["progress"] < 100 or event.kind == "completed"
        last = data["progress"]


async def resume_from(api: Api, task_id: str, after: int, how: str, **kwargs: Any) -> Any:
    if how == "header":
        return await api.task_events(task_id, last_event_id=after, **kwargs)
    return await api.task_events(task_id, query={"last_event_id": str(after)}, **kwargs)


@pytest.mark.server
async def test_resume_after_every_event_equals_one_uninterrupted_read(servers: Servers) -> None:
    server = await servers.start(demo_delay_ms=20)
    async with api_on(server, "alice") as api:
        novel = await api.novel()
        task = await api.outline(novel["id"], volumes=2, chapters_per_volume=5)
        task_id = task["id"]

        # One uninterrupted read, from right after the submit to the end.
        full = await api.task_events(task_id)
        assert full.status == 200
        assert full.headers["content-type"].split(";")[0].strip() == "text/event-stream"
        # The start went through every middleware (the body skips their send wrappers: SERVER_SEND).
        assert full.headers["x-content-type-options"] == "nosniff" and full.headers["x-accel-buffering"] == "no"
        assert full.closed, "the stream must close after the terminal event"
        assert_complete_log(full.events, task_id)
        assert_progress_never_decreases(full.events)
        n = len(full.events)
        assert n >= 6, [e.kind for e in full.events]
        assert [e.kind for e in full.events[:2]] == ["status", "status"]
        assert [e.json["status"] for e in full.events[:2]] == ["pending", "running"]
        final = await api.task(task_id)
        assert final["status"] == "completed" and final["progress"] == 100
        assert full.events[-1].json["result"] == final["result"]
        assert full.events[-1].json["progress"] == 100

        # A finished task's stream replays everything and closes.
        replay = await api.task_events(task_id)
        assert replay.closed and keys(replay.events) == keys(full.events)

        # Disconnect after event k, resume after k by header and by query: the union is the whole.
        for k in range(1, n):
            first = await api.task_events(task_id, stop_after=k)
            assert not first.closed and keys(first.events) == keys(full.events[:k])
            for how in ("header", "query"):
                rest = await resume_from(api, task_id, k, how)
                assert rest.closed, (k, how)
                union = first.events + rest.events
                assert [e.seq for e in union] == list(range(1, n + 1)), (k, how, [e.seq for e in union])
                assert keys(union) == keys(full.events), (k, how)

        # The same while the task is live: a chain of disconnects, alternating header and query.
        novel2 = await api.novel(title="Second")
        live_task = await api.outline(novel2["id"], volumes=4, chapters_per_volume=10)
        got: list[Sse] = []
        last: int | None = None
        for i, cut in enumerate((1, 2, 3, 5)):  # disconnect right after these seqs
            how = "header" if i % 2 == 0 else "query"
            if last is None:
                part = await api.task_events(live_task["id"], stop_after=cut)
            else:
                part = await resume_from(api, live_task["id"], last, how, stop_after=cut - last)
            assert not part.closed
            got += part.events
            last = got[-1].seq
            assert last == cut
        still = await api.task(live_task["id"])
        assert still["status"] == "running", "the task finished before the live resumes were made"
        rest = await resume_from(api, live_task["id"], last, "query")
        assert rest.closed
        got += rest.events
        assert_complete_log(got, live_task["id"])
        whole = await api.task_events(live_task["id"])
        assert keys(got) == keys(whole.events)

        await check_chapter_chunks_equal_saved_text(api)


@pytest.mark.server
async def test_stream_edges_and_errors(servers: Servers) -> None:
    server = await servers.start(demo_delay_ms=5)
    async with api_on(server, "alice") as api, api_on(server, "mallory") as other:
        novel = await api.novel()
        task = await api.outline(novel["id"], volumes=1, chapters_per_volume=3)
        full = await api.task_events(task["id"])
        assert full.closed
        assert_complete_log(full.events, task["id"])
        n = len(full.events)

        # Not a non-negative integer: counts as 0, so everything is replayed.
        for bad in ("abc", "-1", "1.5", "", "1e3", "٣", "0x2"):
            for how in ("header", "query") if bad.isascii() else ("query",):
                if how == "header":
                    r = await api.task_events(task["id"], last_event_id=bad)
                else:
                    r = await api.task_events(task["id"], query={"last_event_id": bad})
                assert r.status == 200 and r.closed, (bad, how)
                assert keys(r.events) == keys(full.events), (bad, how)

        # Leading zeros do not matter, however many (API.md: `0002` is 2).
        for zeros, after in (("00000000002", 2), ("0" * 40 + "3", 3), ("0002", 2), ("000", 0), ("0" * 5000, 0)):
            for how in ("header", "query"):
                if how == "header":
                    r = await api.task_events(task["id"], last_event_id=zeros)
                else:
                    r = await api.task_events(task["id"], query={"last_event_id": zeros})
                assert r.status == 200 and r.closed, (zeros, how)
                assert r.seqs == list(range(after + 1, n + 1)), (zeros[:20], how, r.seqs)
        r = await api.task_events(task["id"], last_event_id="0" * 30 + str(n))
        assert r.closed and r.events == []  # one past the last seq, zeros or not: nothing

        # The header wins over the query parameter.
        r = await api.task_events(task["id"], last_event_id=2, query={"last_event_id": "1"})
        assert r.seqs == list(range(3, n + 1))

        # At or past the last seq: nothing to replay, and a finished task's stream closes.
        for after in (n, n + 1, 10**6):
            for how in ("header", "query"):
                r = await resume_from(api, task["id"], after, how)
                assert r.status == 200 and r.closed and r.events == [], (after, how)

        # Unknown, malformed or foreign task ids are a JSON 404 before any stream starts.
        for task_id in ("0b6e0000-0000-4000-8000-000000000000", "abc", "-1", "1" * 25):
            r = await api.task_events(task_id)
            assert r.status == 404, (task_id, r.status)
            assert r.headers["content-type"].startswith("application/json")
            assert _error_code(r.body) == "not_found"
        r = await other.task_events(task["id"])
        assert r.status == 404 and _error_code(r.body) == "not_found"
        r = await other.read_stream("/api/events", stop_after=1)
        assert r.status == 200 and r.events[0].json == {"items": []}  # nothing of alice's leaks

        # No credentials: 401, also as JSON.
        anonymous = Api(server.url)
        try:
            r = await anonymous.task_events(task["id"])
            assert r.status == 401 and _error_code(r.body) == "unauthorized"
            r = await anonymous.read_stream("/api/events")
            assert r.status == 401 and _error_code(r.body) == "unauthorized"
        finally:
            await anonymous.aclose()


def _error_code(body: bytes) -> str:
    return str(json.loads(body)["error"]["code"])


@pytest.mark.server
async def test_user_stream_snapshot_then_two_concurrent_tasks(servers: Servers) -> None:
    server = await servers.start(demo_delay_ms=20)
    async with api_on(server, "alice") as alice, api_on(server, "bob") as bob:
        early_novel = await alice.novel(title="Early")
        first, second = await alice.novel(title="First"), await alice.novel(title="Second")
        bobs_novel = await bob.novel(title="Bob's")
        early = await alice.outline(early_novel["id"], volumes=3, chapters_per_volume=10)  # active at connect

        events: list[Sse] = []
        async with asyncio.timeout(60):
            async with alice.open_stream("/api/events") as (response, items):
                assert response.status_code == 200
                assert response.headers["content-type"].split(";")[0].strip() == "text/event-stream"
                assert response.headers["referrer-policy"] == "same-origin"
                snapshot = await anext(items)
                while snapshot.comment is not None:  # a ping before it would be allowed
                    snapshot = await anext(items)
                assert snapshot.kind == "snapshot" and snapshot.id is None
                active = snapshot.json["items"]
                assert [t["id"] for t in active] == [early["id"]]
                assert TASK_FIELDS <= active[0].keys() and active[0]["status"] in ("pending", "running")

                t1 = await alice.outline(first["id"], volumes=2, chapters_per_volume=5)
                t2 = await alice.outline(second["id"], volumes=2, chapters_per_volume=5)
                theirs = await bob.outline(bobs_novel["id"], volumes=1, chapters_per_volume=2)
                waiting = {t1["id"], t2["id"]}
                async for item in items:
                    if item.comment is not None:
                        continue
                    events.append(item)
                    if item.terminal:
                        waiting.discard(item.json["task_id"])
                        if not waiting:
                            break

        assert all(e.kind != "snapshot" and e.id is not None for e in events)
        by_task: dict[str, list[Sse]] = {}
        for event in events:
            by_task.setdefault(event.json["task_id"], []).append(event)
        assert theirs["id"] not in by_task, "another user's task reached alice's stream"
        for task in (t1, t2):
            own = by_task[task["id"]]
            assert_complete_log(own, task["id"])  # from seq 1, in order, no gap, terminal last
            replay = await alice.task_events(task["id"])
            assert keys(own) == keys(replay.events)
        # The task that was active at connect: in order, no gap, from where the snapshot left it.
        own = by_task.get(early["id"], [])
        if own:
            start = own[0].seq
            assert [e.seq for e in own] == list(range(start, start + len(own)))
            replay = await alice.task_events(early["id"], last_event_id=start - 1)
            assert keys(own) == keys(replay.events[: len(own)])
        # The two ran at the same time: each started before the other finished.
        position = {(e.json["task_id"], e.kind, e.json["status"]): i for i, e in reversed(list(enumerate(events)))}
        for a, b in ((t1, t2), (t2, t1)):
            assert position[(a["id"], "status", "running")] < position[(b["id"], "completed", "completed")]
        assert (await bob.wait_task(theirs["id"]))["status"] == "completed"


@pytest.mark.server
async def test_ping_and_maximum_lifetime(servers: Servers) -> None:
    server = await servers.start(demo_delay_ms=20, stream_ping_seconds=0.1, stream_max_seconds=0.5)
    async with api_on(server, "alice") as api:
        # An idle user stream: the snapshot, pings, then a clean end at its lifetime.
        started = time.monotonic()
        idle = await api.read_stream("/api/events", timeout=15)
        lasted = time.monotonic() - started
        assert idle.closed, "the stream should end by itself after its maximum lifetime"
        assert [e.kind for e in idle.events] == ["snapshot"]
        assert "ping" in idle.comments, idle.comments
        assert 0.4 <= lasted < 10, lasted

        # A task stream outliving its lifetime ends without its terminal event; resuming continues.
        novel = await api.novel()
        task = await api.outline(novel["id"], volumes=3, chapters_per_volume=10)
        got: list[Sse] = []
        segments = 0
        deadline = time.monotonic() + 60
        while not (got and got[-1].terminal):
            assert time.monotonic() < deadline, "the task stream never reached its terminal event"
            part = await api.task_events(task["id"], last_event_id=got[-1].seq if got else None, timeout=15)
            assert part.status == 200 and part.closed
            segments += 1
            got += part.events
        assert segments >= 2, "the task finished within one stream lifetime; make it longer"
        assert_complete_log(got, task["id"])
        replay = await api.task_events(task["id"])
        assert keys(got) == keys(replay.events)


@pytest.mark.server
async def test_an_idle_stream_pings_within_the_ping_interval_of_its_last_event(servers: Servers) -> None:
    """API.md: a ping at least every interval while idle, counted from whatever went out last."""
    ping = 0.5
    server = await servers.start(demo_delay_ms=0, stream_ping_seconds=ping, stream_max_seconds=30)
    async with api_on(server, "alice") as api:
        novels = [await api.novel(), await api.novel()]
        arrivals: list[tuple[float, str]] = []
        completed = 0
        async with api.open_stream("/api/events") as (_, items):
            async for item in items:
                arrivals.append((time.monotonic(), item.kind or f": {item.comment}"))
                if item.kind == "snapshot" or (
                    item.comment == "ping" and completed < len(novels) and arrivals[-2][1] == "completed"
                ):
                    # Work, then silence: a task now, the next one after the first ping that follows it.
                    await api.outline(novels[completed]["id"], volumes=1, chapters_per_volume=2)
                elif item.kind == "completed":
                    completed += 1
                elif completed == len(novels) and item.comment == "ping":
                    break
        gaps = [(b[0] - a[0], a[1]) for a, b in itertools.pairwise(arrivals)]
        assert max(g for g, _ in gaps) < ping * 1.2, gaps
        assert sum(1 for _, kind in gaps if kind == "completed") == 2


@pytest.mark.server
async def test_a_lifetime_shorter_than_the_ping_interval_still_ends_the_stream(servers: Servers) -> None:
    server = await servers.start(stream_ping_seconds=30, stream_max_seconds=0.3)
    async with api_on(server, "alice") as api:
        started = time.monotonic()
        idle = await api.read_stream("/api/events", timeout=10)
        lasted = time.monotonic() - started
        assert idle.closed and [e.kind for e in idle.events] == ["snapshot"]
        assert 0.3 <= lasted < 5, lasted  # at its lifetime, not at the first ping check


async def check_chapter_chunks_equal_saved_text(api: Api) -> None:
    """The concatenated chunk texts of a chapter task are the saved chapter and the task's /output."""
    novel = await api.novel(title="Chapters")
    outline = await api.outline(novel["id"], volumes=1, chapters_per_volume=2)
    assert (await api.wait_task(outline["id"]))["status"] == "completed"
    chapter_id = (await api.get(f"/api/novels/{novel['id']}")).json()["volumes"][0]["chapters"][1]["id"]

    r = await api.post(
        "/api/ai/write-chapter-content", json={"novel_id": novel["id"], "chapter_id": chapter_id, "target_words": 600}
    )
    assert r.status_code == 202, r.text
    task_id = r.json()["id"]
    first = await api.task_events(task_id, stop_after=4)  # a disconnect mid-text, then the rest
    rest = await api.task_events(task_id, last_event_id=first.events[-1].seq)
    events = first.events + rest.events
    assert_complete_log(events, task_id)
    assert_progress_never_decreases(events)
    chunks = [e.json["text"] for e in events if e.kind == "chunk"]
    assert len(chunks) >= 2 and all(chunks)
    streamed = "".join(chunks)

    chapter = (await api.get(f"/api/novels/{novel['id']}/chapters/{chapter_id}")).json()
    output = (await api.get(f"/api/tasks/{task_id}/output")).json()
    assert output == {"text": streamed, "complete": True}
    assert chapter["content"] == streamed
    assert chapter["word_count"] > 0
    assert events[-1].json["result"]["content"] == streamed
    assert keys(events) == keys((await api.task_events(task_id)).events)


async def test_last_event_id_beyond_any_seq_replays_nothing(api: InProcessApi) -> None:
    """A Last-Event-ID past the last seq is still a non-negative integer: nothing to replay, however large.

    In-process (the bug is in the route, not the process): on PostgreSQL a value above 2**31-1 breaks
    the stream (task_events.seq is INTEGER); on both databases one of 19+ digits replays everything.
    """
    headers = await api.register()
    novel = await api.novel(headers)
    r = await api.client.post(
        "/api/ai/generate-outline",
        json={"novel_id": novel["id"], "volumes": 1, "chapters_per_volume": 2},
        headers=headers,
    )
    assert r.status_code == 202, r.text
    task_id = r.json()["id"]
    await wait_for_status(api, headers, task_id, {"completed"})
    for huge in ("2147483648", "9" * 18, "9223372036854775808", "1" * 25):
        for how in ("header", "query"):
            extra = {"Last-Event-ID": huge} if how == "header" else {}
            params = {"last_event_id": huge} if how == "query" else {}
            r = await api.client.get(f"/api/tasks/{task_id}/events", headers={**headers, **extra}, params=params)
            assert r.status_code == 200, (huge, how, r.status_code)
            assert "id:" not in r.text, f"Last-Event-ID {huge} ({how}) replayed: {r.text[:300]}"


@pytest.mark.server
async def test_a_user_holds_at_most_the_limit_of_open_streams_and_a_closed_one_frees_its_place(
    servers: Servers,
) -> None:
    """API.md Hardening: NOVAWRITE_MAX_STREAMS_PER_USER open streams per user across both routes, then 429."""
    limit = 3
    server = await servers.start(max_streams_per_user=limit, demo_delay_ms=0)
    async with api_on(server, "alice") as alice, api_on(server, "bob") as bob:
        novel = await alice.novel()
        done = await alice.outline(novel["id"], volumes=1, chapters_per_volume=2)
        assert (await alice.wait_task(done["id"]))["status"] == "completed"
        finished_path = f"/api/tasks/{done['id']}/events"
        # Streams that end by themselves give their places back: more of them than the limit, one after another.
        for _ in range(limit + 2):
            assert (await alice.task_events(done["id"])).closed

        async def open_user_stream() -> SseSocket | None:
            client = await SseSocket.connect(server.port)
            await client.get("/api/events", alice.token or "")
            if await client.read_head() != 200:
                client.close()
                return None
            snapshot = await client.next_event()
            assert snapshot is not None and snapshot.kind == "snapshot"
            return client

        held = [await open_user_stream() for _ in range(limit)]
        try:
            assert all(held)

            async def refused_on_both_routes() -> None:
                for path in ("/api/events", finished_path):
                    r = await alice.read_stream(path, stop_after=0)
                    assert r.status == 429, (path, r.status)
                    assert _error_code(r.body) == "too_many_streams"
                    assert int(r.headers["retry-after"]) > 0

            await refused_on_both_routes()
            other = await bob.read_stream("/api/events", stop_after=1)  # another user's places are their own
            assert other.status == 200 and other.events[0].kind == "snapshot"

            for abrupt in (False, True):  # a client that leaves, by FIN and by RST, frees its place
                leaving = held.pop()
                assert leaving is not None
                leaving.close(abrupt=abrupt)
                replay: list[StreamRead] = []

                async def a_place_is_free() -> bool:
                    replay.append(await alice.task_events(done["id"]))  # a stream that ends by itself
                    return replay[-1].status == 200

                await until(a_place_is_free, 10, f"the place of a client that left ({abrupt=}) is free")
                assert replay[-1].closed and replay[-1].seqs[0] == 1
                refill: list[SseSocket | None] = []

                async def taken_again() -> bool:
                    refill.append(await open_user_stream())
                    return refill[-1] is not None

                await until(taken_again, 10, "the freed place taken by a new stream")
                held.append(refill[-1])
                await refused_on_both_routes()
        finally:
            for client in held:
                if client is not None:
                    client.close()
