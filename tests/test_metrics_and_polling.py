"""/metrics, and the polling cache: polls answered from memory stay exactly as fresh as the database."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

from sqlalchemy import update

from novawrite.db.models import Task
from novawrite.jsonenc import dumps, dumps_kept
from novawrite.services.task_views import ENTRY_OVERHEAD, TaskBody, TaskViews
from novawrite.settings import Settings
from tests.conftest import Api, make_api
from tests.engine_kit import Gate, NullProvider, first_to_start, two_instances, wait_for_status
from tests.server import sample
from tests.waiting import until


async def test_metrics_count_tasks_calls_events_and_subscribers(api: Api) -> None:
    h = await api.register()
    novel = await api.novel(h)
    writes_before = sample((await api.client.get("/metrics")).text, "novawrite_db_write_transactions_total") or 0
    r = await api.client.post("/api/ai/generate-outline", json={"novel_id": novel["id"]}, headers=h)
    task = r.json()["id"]
    await wait_for_status(api, h, task, {"completed"})

    async with api.services.bus.task(task):  # one live subscriber, as an open SSE stream holds
        r = await api.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert sample(text, "novawrite_tasks", status="completed", kind="generate_outline") == 1
    assert sample(text, "novawrite_queue_depth") == 0
    assert sample(text, "novawrite_tasks_running") == 0
    assert sample(text, "novawrite_stream_subscribers") == 1
    assert sample(text, "novawrite_task_duration_seconds_count", kind="generate_outline", outcome="completed") == 1
    assert (sample(text, "novawrite_provider_call_seconds_count", kind="outline_plan", call="json") or 0) >= 1
    assert sample(text, "novawrite_events_published_total", kind="completed") == 1
    assert (sample(text, "novawrite_events_published_total", kind="progress") or 0) >= 1
    assert sample(text, "novawrite_bus_dropped_total") == 0
    # at least the submit, the claim and the completion (events may share a transaction)
    assert (sample(text, "novawrite_db_write_transactions_total") or 0) >= writes_before + 3
    assert sample(text, "process_resident_memory_bytes") is not None


async def test_provider_errors_are_counted_by_kind(settings: Settings) -> None:
    async for api in make_api(settings, provider=NullProvider()):  # refuses every call, as a bad key would
        h = await api.register()
        novel = await api.novel(h)
        r = await api.client.post("/api/ai/generate-outline", json={"novel_id": novel["id"]}, headers=h)
        await wait_for_status(api, h, r.json()["id"], {"failed"})
        text = (await api.client.get("/metrics")).text
        assert sample(text, "novawrite_provider_errors_total", kind="outline_plan", error="permanent") == 1
        assert sample(text, "novawrite_task_duration_seconds_count", kind="generate_outline", outcome="failed") == 1


async def test_metrics_can_be_protected_or_turned_off(settings: Settings) -> None:
    async for api in make_api(settings.with_(metrics_token="scrape-me")):
        assert (await api.client.get("/metrics")).status_code == 401
        r = await api.client.get("/metrics", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        assert (await api.client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})).status_code == 200
    async for api in make_api(settings.with_(metrics_enabled=False)):
        r = await api.client.get("/metrics")
        assert r.status_code == 404 and "error" in r.json()


def test_a_read_overtaken_by_a_change_is_not_cached() -> None:
    views = TaskViews(capacity=2)
    token = views.begin_read("a")
    views.changed("a")  # an event committed while the row was being read
    views.end_read("a", token, TaskBody.of(1, b"{}"))
    assert views.get("a") is None
    for name in "abc":
        views.end_read(name, views.begin_read(name), TaskBody.of(1, name.encode()))
    assert views.get("a") is None and len(views) == 2  # the least recently polled went first
    views.changed(None)
    assert len(views) == 0


def test_the_cache_holds_at_most_its_budget_in_bytes() -> None:
    chapter = TaskBody.of(1, b"x" * 30_000)  # a finished chapter's body carries its text
    views = TaskViews(capacity=100, budget=3 * chapter.cost)
    for name in "abcd":
        views.end_read(name, views.begin_read(name), TaskBody.of(1, chapter.body))
    assert list(views._bodies) == ["b", "c", "d"] and views.cost == 3 * chapter.cost
    views.changed("c")
    views.end_read("e", views.begin_read("e"), TaskBody.of(1, b"{}"))
    assert list(views._bodies) == ["b", "d", "e"] and views.cost == 2 * chapter.cost + 2 + ENTRY_OVERHEAD
    # a body bigger than the whole budget is not cached, and pushes nothing else out
    views.end_read("f", views.begin_read("f"), TaskBody.of(1, b"x" * 100_000))
    assert list(views._bodies) == ["b", "d", "e"]


def test_a_kept_body_holds_no_more_memory_than_its_length() -> None:
    """orjson leaves its output in the buffer it grew; a body kept in the cache is copied to its own size."""
    view = {"result": {"content": "字" * 1_500}, "status": "completed"}  # a short chapter: about 4.5 KB

    def held(encode: Callable[[Any], bytes]) -> tuple[int, int]:
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            bodies = [encode(view) for _ in range(20)]
            grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
        finally:
            tracemalloc.stop()
        return grown // len(bodies), len(bodies[0])

    per_body, length = held(dumps_kept)
    assert per_body < length * 1.2, (per_body, length)
    print(f"kept: {per_body} bytes per {length}-byte body; as orjson returns it: {held(dumps)[0]}")


async def test_a_polled_body_is_cached_at_its_own_size(api: Api) -> None:
    h = await api.register()
    r = await api.client.post("/api/ai/generate-outline", json={"novel_id": (await api.novel(h))["id"]}, headers=h)
    task_id = r.json()["id"]
    await wait_for_status(api, h, task_id, {"completed"})
    async with api.services.db.write() as conn:  # a finished chapter's body: about 4.5 KB of Chinese
        await conn.execute(update(Task).where(Task.id == task_id).values(result={"content": "字" * 1_500}))
    tasks = api.services.tasks
    tasks.views.changed(task_id)
    user_id = (await tasks.store.row(task_id)).user_id
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        body = await tasks.poll(user_id, task_id)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    encoded = sum(
        s.size_diff for s in after.compare_to(before, "filename") if s.traceback[0].filename.endswith("jsonenc.py")
    )
    assert tasks.views.get(task_id) is body and len(body.body) > 4_500
    assert encoded < len(body.body) * 1.2, (encoded, len(body.body))  # orjson's own buffer: 64 KB


async def test_polls_follow_every_change_and_answer_304(settings: Settings) -> None:
    gate = Gate()
    async for api in make_api(settings, provider=NullProvider(), kinds={"generate_outline": gate.kind()}):
        h = await api.register()
        novel = await api.novel(h)
        r = await api.client.post("/api/ai/generate-outline", json={"novel_id": novel["id"]}, headers=h)
        task = r.json()["id"]
        await gate.wait_started(1)
        running = await wait_for_status(api, h, task, {"running"})
        assert task in api.services.tasks.views._bodies  # the poll was cached

        first = await api.client.get(f"/api/tasks/{task}", headers=h)
        again = await api.client.get(f"/api/tasks/{task}", headers={**h, "If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.headers["etag"] == first.headers["etag"]

        # A cancel request changes the row without an event: the next poll shows it at once.
        supervisor = api.services.supervisor
        supervisor.cancel_local = lambda task_id: False  # hold the runner: only the flag moves
        r = await api.client.post(f"/api/tasks/{task}/cancel", headers=h)
        assert r.json()["cancel_requested"] is True
        after = (await api.client.get(f"/api/tasks/{task}", headers=h)).json()
        assert after["status"] == "running" and after["cancel_requested"] is True
        del supervisor.cancel_local  # the lease keeper now stops it through the flag
        done = await wait_for_status(api, h, task, {"cancelled"})
        assert done["updated_at"] != running["updated_at"]
        changed = await api.client.get(f"/api/tasks/{task}", headers={**h, "If-None-Match": first.headers["etag"]})
        assert changed.status_code == 200 and changed.json()["status"] == "cancelled"

        # Another user's poll of a cached task is a 404, like any task that is not theirs.
        other = await api.register("bob")
        assert (await api.client.get(f"/api/tasks/{task}", headers=other)).status_code == 404

        # A deleted novel takes its cached tasks with it.
        assert (await api.client.delete(f"/api/novels/{novel['id']}", headers=h)).status_code == 204
        assert (await api.client.get(f"/api/tasks/{task}", headers=h)).status_code == 404


async def test_two_instances_never_serve_each_other_stale_tasks(postgres_url: str) -> None:
    async for a, b, gate_a, gate_b in two_instances(postgres_url):
        h = await a.register()
        novel = (await a.novel(h))["id"]
        task = (await a.client.post("/api/ai/generate-outline", json={"novel_id": novel}, headers=h)).json()["id"]
        # A is the instance running the task (either may claim it), B the other one.
        a, b = await first_to_start(a, b, gate_a, gate_b)
        await wait_for_status(b, h, task, {"running"})  # cached in B while A runs it

        # The cancel flag, set through A while A's runner has not stopped yet, reaches B's cache.
        a.services.supervisor.cancel_local = lambda task_id: False  # keep it running: only the flag moves
        r = await a.client.post(f"/api/tasks/{task}/cancel", headers=h)
        assert r.json()["cancel_requested"] is True

        async def flag_seen_by_b() -> bool:
            return bool((await b.client.get(f"/api/tasks/{task}", headers=h)).json()["cancel_requested"])

        await until(flag_seen_by_b, 5, "B's poll shows the cancel request made through A")

        # A novel deleted through A: B stops serving its task.
        del a.services.supervisor.cancel_local
        await wait_for_status(b, h, task, {"cancelled"})
        assert (await a.client.delete(f"/api/novels/{novel}", headers=h)).status_code == 204

        async def gone_from_b() -> bool:
            return (await b.client.get(f"/api/tasks/{task}", headers=h)).status_code == 404

        await until(gone_from_b, 5, "B's poll of a task whose novel A deleted is a 404")
        assert (await b.client.get("/api/tasks", headers=h)).json()["items"] == []
