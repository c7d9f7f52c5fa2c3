"""The task engine in-process: submit, dispatch, fairness, cancel, retry, recovery, polling."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select, update

from novawrite.db.models import Task, TaskEvent, utcnow
from novawrite.db.raw import SqlaTx
from novawrite.engine import queries
from novawrite.engine.events import EventKind
from novawrite.engine.store import Claimed
from novawrite.generators.base import GenerationContext, RetryPolicy
from novawrite.generators.kind import TaskKind
from novawrite.providers.base import ProviderError
from novawrite.settings import Settings
from tests.conftest import Api, make_api
from tests.engine_kit import Gate, GateParams, GateResult, NullProvider, applied_count, wait_for_status
from tests.waiting import until


@pytest.fixture
def gate() -> Gate:
    return Gate()


async def _api(settings: Settings, gate: Gate, **changes: object) -> AsyncIterator[Api]:
    async for api in make_api(
        settings.with_(**changes),
        provider=NullProvider(),
        kinds={"generate_outline": gate.kind()},
        retry=RetryPolicy(base=0.01, cap=0.05),
    ):
        yield api


@pytest.fixture
async def eng(settings: Settings, gate: Gate) -> AsyncIterator[Api]:
    async for api in _api(settings, gate, max_concurrency=2, max_running_per_user=10):
        yield api


async def _submit(api: Api, h: dict[str, str], novel_id: int, **extra: object) -> dict:  # type: ignore[type-arg]
    r = await api.client.post("/api/ai/generate-outline", json={"novel_id": novel_id, **extra}, headers=h)
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/api/tasks/{r.json()['id']}"
    return dict(r.json())


async def test_submit_runs_and_applies_once(eng: Api, gate: Gate) -> None:
    h = await eng.register()
    novel = await eng.novel(h)
    task = await _submit(eng, h, novel["id"], label="one")
    assert task["status"] == "pending" and task["attempt"] == 1 and task["params"] == {"label": "one"}
    assert task["result"] is None and task["error"] is None and task["finished_at"] is None
    await gate.wait_started(1)
    gate.release(novel["id"])
    done = await wait_for_status(eng, h, task["id"], {"completed"})
    assert done["progress"] == 100 and done["result"] == {"label": "one", "text": ""}
    assert done["started_at"] and done["finished_at"]
    assert await applied_count(eng.services.db, novel["id"]) == 1
    async with eng.services.db.read_session() as s:
        pk = (await s.execute(select(Task.pk).where(Task.id == task["id"]))).scalar_one()
        events = (await s.execute(select(TaskEvent).where(TaskEvent.task_pk == pk).order_by(TaskEvent.seq))).scalars()
        kinds = [(e.seq, e.kind) for e in events]
    assert kinds == [(1, "status"), (2, "status"), (3, "progress"), (4, "progress"), (5, "completed")]


async def test_never_more_than_max_concurrency(eng: Api, gate: Gate) -> None:
    users = [await eng.register(f"user{i}") for i in range(3)]
    tasks = []
    for h in users:
        for _ in range(2):
            novel = await eng.novel(h)
            tasks.append((h, await _submit(eng, h, novel["id"])))
    await gate.wait_started(2)
    assert gate.running == 2
    gate.release_all.set()
    for h, task in tasks:
        await wait_for_status(eng, h, task["id"], {"completed"})
    assert gate.max_running == 2
    assert len(gate.started) == 6


async def test_fair_across_users(settings: Settings, gate: Gate) -> None:
    async for api in _api(settings, gate, max_concurrency=5, max_running_per_user=10):
        a = await api.register("usera")
        b = await api.register("userb")
        a_novels = [(await api.novel(a))["id"] for _ in range(20)]
        for nid in a_novels:
            await _submit(api, a, nid)
        await gate.wait_started(5)
        b_novel = (await api.novel(b))["id"]
        await _submit(api, b, b_novel)
        gate.release(gate.started[0])
        await gate.wait_started(6)
        assert gate.started[5] == b_novel, "B's single task must start before A's sixth"
        gate.release_all.set()
        await api.services.supervisor.wait_idle(20)


async def test_per_user_running_cap(settings: Settings, gate: Gate) -> None:
    async for api in _api(settings, gate, max_concurrency=5, max_running_per_user=3):
        a = await api.register("usera")
        for _ in range(6):
            await _submit(api, a, (await api.novel(a))["id"])
        await gate.wait_started(3)
        active = (await api.client.get("/api/tasks/active", headers=a)).json()["items"]
        assert sorted(t["status"] for t in active) == ["pending"] * 3 + ["running"] * 3
        gate.release_all.set()
        await api.services.supervisor.wait_idle(20)


async def test_cancel_pending_and_running(settings: Settings, gate: Gate) -> None:
    async for api in _api(settings, gate, max_concurrency=1):
        h = await api.register()
        n1, n2 = (await api.novel(h))["id"], (await api.novel(h))["id"]
        running = await _submit(api, h, n1)
        pending = await _submit(api, h, n2)
        await gate.wait_started(1)

        r = await api.client.post(f"/api/tasks/{pending['id']}/cancel", headers=h)
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert r.json()["finished_at"] is not None

        loop = asyncio.get_running_loop()
        start = loop.time()
        r = await api.client.post(f"/api/tasks/{running['id']}/cancel", headers=h)
        assert r.status_code == 200 and r.json()["cancel_requested"] is True
        done = await wait_for_status(api, h, running["id"], {"cancelled"}, timeout=2)
        assert loop.time() - start < 2
        assert done["progress"] == 10 and done["finished_at"]
        assert gate.cancelled == [n1]
        assert await applied_count(api.services.db, n1) == 0

        r = await api.client.post(f"/api/tasks/{running['id']}/cancel", headers=h)
        assert r.status_code == 409 and r.json()["error"]["code"] == "task_finished"
        assert gate.started == [n1], "a cancelled pending task never starts"


@pytest.mark.parametrize("backend", ["postgres"])  # SQLite has one writer at a time: no such race
async def test_a_cancel_that_read_running_as_the_task_was_given_back_still_cancels_it(
    eng: Api, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cancel reads the task running; before it sets the flag, another process gives the task
    # back to the queue (a shutdown, a sweep). The flag (for running tasks) then sets nothing: the
    # cancel must look again and cancel the pending task, not answer 200 and let it run later.
    h = await eng.register()
    task = await _submit(eng, h, (await eng.novel(h))["id"])
    await gate.wait_started(1)
    fetchrow = SqlaTx.fetchrow
    given_back: list[str] = []

    async def read_then_given_back(self: SqlaTx, sql: str, *args: Any) -> Any:
        row = await fetchrow(self, sql, *args)
        if sql == queries.CANCEL_TARGET and not given_back:
            given_back.append(task["id"])
            async with eng.services.db.raw_write() as other:  # another connection: another process
                await other.execute(
                    "UPDATE tasks SET status = 'pending', owner = NULL, lease_expires_at = NULL WHERE id = $1",
                    task["id"],
                )
        return row

    monkeypatch.setattr(SqlaTx, "fetchrow", read_then_given_back)
    r = await eng.client.post(f"/api/tasks/{task['id']}/cancel", headers=h)
    monkeypatch.undo()
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert given_back


async def test_partial_text_is_kept_on_cancel(eng: Api, gate: Gate) -> None:
    gate.chunks = ["第一段。", "第二段。"]
    h = await eng.register()
    novel = await eng.novel(h)
    task = await _submit(eng, h, novel["id"])
    await gate.wait_started(1)
    await eng.client.post(f"/api/tasks/{task['id']}/cancel", headers=h)
    await wait_for_status(eng, h, task["id"], {"cancelled"})
    out = (await eng.client.get(f"/api/tasks/{task['id']}/output", headers=h)).json()
    assert out == {"text": "第一段。第二段。", "complete": False}


async def test_text_whose_write_a_cancel_interrupts_is_stored_once(eng: Api, gate: Gate) -> None:
    # The cancel lands while the generator's own flush (its text reached flush_bytes) waits for
    # its group commit. The store lets that write end (it commits); the cancelled runner's last
    # flush must not store the text again (before: it went out twice, and after a shutdown the
    # next attempt continued from the doubled text).
    text = "only once. " * 300  # past flush_bytes: written at once, by the generator's task
    gate.chunks = [text]
    store = eng.services.supervisor.store
    commit_group = store._commit_group
    waiting, go_on = asyncio.Event(), asyncio.Event()

    async def text_held(group: list[Any]) -> None:
        if any(write.event.kind == EventKind.CHUNK for write in group):
            waiting.set()
            await go_on.wait()
        await commit_group(group)

    store._commit_group = text_held  # type: ignore[method-assign]
    h = await eng.register()
    task = await _submit(eng, h, (await eng.novel(h))["id"])

    async def text_waits() -> bool:
        return waiting.is_set()

    await until(text_waits, 10, "the text's write waits for its group commit")
    r = await eng.client.post(f"/api/tasks/{task['id']}/cancel", headers=h)
    assert r.status_code == 200, r.text
    go_on.set()
    await wait_for_status(eng, h, task["id"], {"cancelled"})
    out = (await eng.client.get(f"/api/tasks/{task['id']}/output", headers=h)).json()
    assert out == {"text": text, "complete": False}
    async with eng.services.db.read() as conn:
        kinds = (
            await conn.execute(
                select(TaskEvent.kind).join(Task, Task.pk == TaskEvent.task_pk).where(Task.id == task["id"])
            )
        ).scalars()
        assert list(kinds).count("chunk") == 1


async def test_a_checkpoint_saved_while_text_is_stored_keeps_the_task(eng: Api, gate: Gate) -> None:
    # The checkpoint's write is guarded by the task's seq, which a text write in flight moves
    # on: unserialised, the checkpoint found "no such task" and the runner gave it up
    # (LeaseLost), leaving it running until its lease expired (seen in the long-form churn).
    gate.chunks = ["one. ", "two. "]
    gate.checkpoint_while_flushing = True
    store = eng.services.supervisor.store
    save_checkpoint = store.save_checkpoint

    async def after_the_text_is_stored(task: Claimed, owner: str, checkpoint: dict[str, object]) -> None:
        # The losing order, forced: the checkpoint's write goes out with the seq it was called
        # with, after any text write in flight has committed (it moves the seq on).
        called_with = dataclasses.replace(task)
        await store.drained()
        await save_checkpoint(called_with, owner, checkpoint)

    store.save_checkpoint = after_the_text_is_stored  # type: ignore[method-assign]
    h = await eng.register()
    novel = await eng.novel(h)
    task = await _submit(eng, h, novel["id"])
    await gate.wait_started(1)
    gate.release(novel["id"])
    done = await wait_for_status(eng, h, task["id"], {"completed", "failed"}, timeout=10)
    assert done["status"] == "completed" and done["result"]["text"] == "one. two. "


async def test_shutdown_requeues_running_work(settings: Settings, gate: Gate) -> None:
    async for api in _api(settings, gate, max_concurrency=1):
        h = await api.register()
        novel = await api.novel(h)
        task = await _submit(api, h, novel["id"])
        await gate.wait_started(1)
        await api.services.supervisor.stop()  # what the lifespan does on SIGTERM
        row = await api.services.tasks.store.row(task["id"])
        assert row.status == "pending" and row.attempt == 2
        assert "attempt 2" in row.message
    # A new process on the same database finishes it, applying it once.
    second = Gate()
    second.release_all.set()
    async for api in _api(settings, second, max_concurrency=1):
        await api.services.supervisor.wait_idle(10)
        await until(lambda: _completed(api, task["id"]), 10, "the requeued task completes")
        assert await applied_count(api.services.db, novel["id"]) == 1


async def test_a_cancel_asked_just_before_a_shutdown_ends_the_task_instead_of_requeueing_it(
    settings: Settings, gate: Gate
) -> None:
    # Another process recorded the cancel (the flag); before this runner heard of it (it looks
    # about once a second) its process shuts down: the task ends cancelled, not back in the queue
    # to be claimed and run again.
    async for api in _api(settings, gate, max_concurrency=1):
        h = await api.register()
        task = await _submit(api, h, (await api.novel(h))["id"])
        await gate.wait_started(1)
        async with api.services.db.write() as conn:
            await conn.execute(update(Task).where(Task.id == task["id"]).values(cancel_requested=True))
        await api.services.supervisor.stop()  # what the lifespan does on SIGTERM
        row = await api.services.tasks.store.row(task["id"])
        assert row.status == "cancelled" and row.attempt == 1, row


async def _completed(api: Api, task_id: str) -> bool:
    return bool((await api.services.tasks.store.row(task_id)).status == "completed")


async def test_expired_lease_is_recovered_then_gives_up(settings: Settings, gate: Gate) -> None:
    gate.release_all.set()
    async for api in _api(settings, gate, max_concurrency=1, max_attempts=2):
        h = await api.register()
        n1, n2 = (await api.novel(h))["id"], (await api.novel(h))["id"]
        # Two tasks that a dead process left running: one on its first attempt, one on its last.
        t1 = await _submit(api, h, n1)
        t2 = await _submit(api, h, n2)
        await wait_for_status(api, h, t2["id"], {"completed"})
        async with api.services.db.write() as conn:
            await conn.execute(
                update(Task)
                .where(Task.id.in_([t1["id"], t2["id"]]))
                .values(
                    status="running",
                    owner="dead-process",
                    lease_expires_at=utcnow() - timedelta(seconds=1),
                    finished_at=None,
                )
            )
            await conn.execute(update(Task).where(Task.id == t2["id"]).values(attempt=2))
        await api.services.supervisor._sweep()
        failed = await wait_for_status(api, h, t2["id"], {"failed"})
        assert failed["error"]["code"] == "interrupted"
        done = await wait_for_status(api, h, t1["id"], {"completed"})
        assert done["attempt"] == 2


async def test_a_dispatcher_woken_all_the_time_still_takes_over_expired_leases(settings: Settings, gate: Gate) -> None:
    # In a busy cluster the dispatcher is woken again and again (submits, ends, other processes'
    # events) and never waits a whole sweep interval idle; a dead process's tasks must still be
    # taken over once the interval has passed on the supervisor's clock.
    gate.release_all.set()
    async for api in _api(settings, gate, max_concurrency=1, sweep_seconds=3600):
        supervisor = api.services.supervisor
        lease_clock, ahead = supervisor.monotonic, [0.0]
        supervisor.monotonic = lambda: lease_clock() + ahead[0]
        h = await api.register()
        t = await _submit(api, h, (await api.novel(h))["id"])
        await wait_for_status(api, h, t["id"], {"completed"})
        async with api.services.db.write() as conn:  # left running by a process that died
            await conn.execute(
                update(Task)
                .where(Task.id == t["id"])
                .values(
                    status="running",
                    owner="dead-process",
                    lease_expires_at=utcnow() - timedelta(seconds=1),
                    finished_at=None,
                )
            )

        async def busy() -> None:
            while True:
                supervisor.wake()
                await asyncio.sleep(0.01)

        async def ran_again() -> bool:
            row = await api.services.tasks.store.row(t["id"])
            return bool(row.attempt == 2 and row.status in ("completed", "failed", "cancelled"))

        waking = asyncio.create_task(busy())
        try:
            ahead[0] = 3600.0  # the sweep interval has passed, with the dispatcher never idle in it
            await until(ran_again, 10, "the expired task is taken over and run again")
        finally:
            waking.cancel()
        row = await api.services.tasks.store.row(t["id"])
        assert row.status == "completed", row


async def test_transient_provider_errors_are_retried(eng: Api, gate: Gate) -> None:
    gate.fail_with = ProviderError("slow down", transient=True, retry_after=0.01, rate_limited=True, status=429)
    gate.release_all.set()
    h = await eng.register()
    task = await _submit(eng, h, (await eng.novel(h))["id"])
    await wait_for_status(eng, h, task["id"], {"completed"})
    assert gate.provider_calls == 2


async def test_fatal_provider_error_fails_the_task_and_retry_makes_a_new_one(eng: Api, gate: Gate) -> None:
    gate.fail_with = ProviderError("API key not valid", transient=False, status=400)
    h = await eng.register()
    novel = await eng.novel(h)
    task = await _submit(eng, h, novel["id"])
    failed = await wait_for_status(eng, h, task["id"], {"failed"})
    assert failed["error"] == {"code": "provider_error", "message": "API key not valid"}
    assert gate.provider_calls == 1

    gate.fail_with = None
    gate.release_all.set()
    r = await eng.client.post(f"/api/tasks/{task['id']}/retry", headers=h)
    assert r.status_code == 202
    retried = r.json()
    assert retried["id"] != task["id"] and retried["retry_of"] == task["id"] and retried["attempt"] == 2
    assert retried["params"] == task["params"]
    await wait_for_status(eng, h, retried["id"], {"completed"})
    r = await eng.client.post(f"/api/tasks/{retried['id']}/retry", headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "task_not_retryable"


async def test_conflict_idempotency_and_queue_limit(settings: Settings, gate: Gate) -> None:
    async for api in _api(settings, gate, max_concurrency=1, max_unfinished_per_user=3):
        h = await api.register()
        novel = await api.novel(h)
        body = {"novel_id": novel["id"]}
        answers = await asyncio.gather(
            *[api.client.post("/api/ai/generate-outline", json=body, headers=h) for _ in range(10)]
        )
        created = [r for r in answers if r.status_code == 202]
        conflicts = [r for r in answers if r.status_code == 409]
        assert len(created) == 1 and len(conflicts) == 9
        assert {r.json()["error"]["task_id"] for r in conflicts} == {created[0].json()["id"]}
        assert all(r.json()["error"]["code"] == "task_conflict" for r in conflicts)

        other = await api.novel(h)
        keyed = {"Idempotency-Key": "abc-123", **h}
        answers = await asyncio.gather(
            *[
                api.client.post("/api/ai/generate-outline", json={"novel_id": other["id"]}, headers=keyed)
                for _ in range(10)
            ]
        )
        assert {r.json()["id"] for r in answers} and len({r.json()["id"] for r in answers}) == 1
        assert sorted(r.status_code for r in answers) == [200] * 9 + [202]
        r = await api.client.post(
            "/api/ai/generate-outline", json={"novel_id": other["id"], "label": "different"}, headers=keyed
        )
        assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_reused"
        for bad in ("", "k" * 201):
            r = await api.client.post("/api/ai/generate-outline", json=body, headers={"Idempotency-Key": bad, **h})
            assert r.status_code == 422

        third = await api.novel(h)
        await _submit(api, h, third["id"])
        fourth = await api.novel(h)
        r = await api.client.post("/api/ai/generate-outline", json={"novel_id": fourth["id"]}, headers=h)
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_tasks"
        assert int(r.headers["retry-after"]) > 0
        gate.release_all.set()
        await api.services.supervisor.wait_idle(20)


async def test_submit_colliding_with_a_task_that_just_finished_goes_through(eng: Api, gate: Gate) -> None:
    """The second submit hits the one-active-task index; the first task completes before the
    submit can name it (the order the fuzz found): the submit tries again instead of a 500."""
    h = await eng.register()
    novel = await eng.novel(h)
    first = await _submit(eng, h, novel["id"])
    await gate.wait_started(1)
    store = eng.services.tasks.store
    lookup = store.active_in_scope

    async def finish_first_then_look(*args: object) -> str | None:
        gate.release(novel["id"])
        await wait_for_status(eng, h, first["id"], {"completed"})
        return await lookup(*args)  # type: ignore[arg-type]

    store.active_in_scope = finish_first_then_look  # type: ignore[method-assign]
    second = await _submit(eng, h, novel["id"])
    assert second["id"] != first["id"] and second["status"] == "pending"


async def test_while_text_streams_a_progress_change_waits_for_the_flush_interval(settings: Settings) -> None:
    """Once a task streams text, no write of its own for a progress change made right after
    a chunk was stored: it goes out with the next write (here the final flush)."""
    writes_at_update: list[int] = []

    async def generate(ctx: GenerationContext) -> GateResult:
        await ctx.progress.chunk("first words")
        await ctx.progress.flush()
        before = ctx.progress.writes
        await ctx.progress.update(50, "half way")
        writes_at_update.append(ctx.progress.writes - before)
        await ctx.progress.chunk(", more words")
        return GateResult(label="x", text="first words, more words")

    async def apply(session: object, novel_id: int, params: object, result: object) -> None:
        return None

    kind = TaskKind(
        task_type="generate_outline",
        params=GateParams,
        result=GateResult,
        generate=generate,
        apply=apply,
        streams_text=True,
    )
    async for api in make_api(
        settings.with_(chunk_flush_seconds=60), provider=NullProvider(), kinds={kind.task_type: kind}
    ):
        h = await api.register()
        task = await _submit(api, h, (await api.novel(h))["id"])
        await wait_for_status(api, h, task["id"], {"completed"})
        store = api.services.tasks.store
        row = await store.row(task["id"])
        events = await store.events_after(row.pk, row.user_id, task["id"], 0)
        assert writes_at_update == [0]
        running = [(e.kind, orjson.loads(e.data)) for e in events if e.kind not in ("status", "completed")]
        assert [(k, d.get("text"), d["progress"], d["message"]) for k, d in running] == [
            ("chunk", "first words", 0, ""),
            ("chunk", ", more words", 50, "half way"),
        ]


async def test_filters_by_ids_that_cannot_exist_list_nothing(eng: Api, gate: Gate) -> None:
    h = await eng.register()
    novel = await eng.novel(h)
    await _submit(eng, h, novel["id"])
    for query in (f"chapter_id={2**70}", f"chapter_id={2**63}", "chapter_id=0"):
        r = await eng.client.get(f"/api/novels/{novel['id']}/tasks?{query}", headers=h)
        assert r.status_code == 200 and r.json()["items"] == [], (query, r.text)
    r = await eng.client.get(f"/api/tasks?novel_id={2**70}", headers=h)
    assert r.status_code == 200 and r.json()["items"] == []
    gate.release_all.set()


async def test_polling_etag_and_lists(eng: Api, gate: Gate) -> None:
    gate.release_all.set()
    h = await eng.register()
    other = await eng.register("someone")
    novel = await eng.novel(h)
    ids = []
    for i in range(5):
        task = await _submit(eng, h, novel["id"], label=str(i))
        await wait_for_status(eng, h, task["id"], {"completed"})
        ids.append(task["id"])
    r = await eng.client.get(f"/api/tasks/{ids[0]}", headers=h)
    etag = r.headers["etag"]
    r2 = await eng.client.get(f"/api/tasks/{ids[0]}", headers={"If-None-Match": etag, **h})
    assert r2.status_code == 304 and r2.content == b""
    assert (await eng.client.get(f"/api/tasks/{ids[0]}", headers={"If-None-Match": '"x"', **h})).status_code == 200
    assert (await eng.client.get(f"/api/tasks/{ids[0]}", headers=other)).status_code == 404

    page = (await eng.client.get("/api/tasks?limit=2", headers=h)).json()
    assert [t["id"] for t in page["items"]] == ids[::-1][:2]
    seen = [t["id"] for t in page["items"]]
    while page["next_cursor"]:
        page = (await eng.client.get(f"/api/tasks?limit=2&cursor={page['next_cursor']}", headers=h)).json()
        seen += [t["id"] for t in page["items"]]
    assert seen == ids[::-1]
    by_novel = (await eng.client.get(f"/api/novels/{novel['id']}/tasks", headers=h)).json()
    assert [t["id"] for t in by_novel["items"]] == ids[::-1] and by_novel["next_cursor"] is None
    assert (await eng.client.get("/api/tasks?status=completed&task_type=generate_outline", headers=h)).json()["items"]
    assert (await eng.client.get("/api/tasks?status=failed", headers=h)).json()["items"] == []
    assert (await eng.client.get(f"/api/tasks?novel_id={novel['id']}", headers=other)).json()["items"] == []
    assert (await eng.client.get("/api/tasks?novel_id=99999999999999999999", headers=h)).json()["items"] == []
    for query in ("status=done", "task_type=nope", "cursor=bad", "limit=0", "limit=101", "limit=x", "novel_id=x"):
        r = await eng.client.get(f"/api/tasks?{query}", headers=h)
        assert r.status_code == 422, query
        assert r.json()["error"]["code"] == "validation_error"
    assert (await eng.client.get("/api/tasks/active", headers=h)).json() == {"items": []}
    out = (await eng.client.get(f"/api/tasks/{ids[0]}/output", headers=h)).json()
    assert out == {"text": "", "complete": True}


async def test_deleting_a_novel_cancels_its_tasks(eng: Api, gate: Gate) -> None:
    h = await eng.register()
    novel = await eng.novel(h)
    task = await _submit(eng, h, novel["id"])
    await gate.wait_started(1)
    assert (await eng.client.delete(f"/api/novels/{novel['id']}", headers=h)).status_code == 204
    assert gate.cancelled == [novel["id"]]
    assert (await eng.client.get(f"/api/tasks/{task['id']}", headers=h)).status_code == 404
    assert (await eng.client.get(f"/api/novels/{novel['id']}", headers=h)).status_code == 404
