"""``write_chapters`` batches (API.md, "Writing the book"): children in reading order, skips,
failure and retry, cancel, budget, one slot, fairness, conflicts, the parent_id filter.

Through the HTTP API on the fake Gemini server (the real google-genai SDK), on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from novawrite.db.models import Task, utcnow
from novawrite.settings import Settings
from tests.conftest import make_api
from tests.engine_kit import wait_for_status
from tests.fakes import Fail, Hang, Piece, Stream
from tests.server import Servers, api_on, servers  # noqa: F401 (fixture)
from tests.test_kinds_e2e import FAST, FINISHED, Answer, AnsweringGemini, Env, provider_settings
from tests.test_leases import Clock
from tests.waiting import until

BATCH = "/api/ai/write-chapters"
CALLS_PER_CHAPTER = 2  # the chapter's stream, then its recap


@pytest.fixture(scope="module")
def gemini_server() -> Iterator[AnsweringGemini]:
    with AnsweringGemini() as server:
        yield server


async def _env(settings: Settings, fake: AnsweringGemini, volumes: int, chapters: int) -> AsyncIterator[Env]:
    fake.reset()
    async for api in make_api(provider_settings(settings, "gemini", fake), retry=FAST):
        headers = await api.register()
        novel = await api.novel(headers, title="The Lantern Keeper", genre="Fantasy", language="en")
        env = Env(api, headers, fake, int(novel["id"]), "en")
        await env.run("/api/ai/generate-outline", volumes=volumes, chapters_per_volume=chapters)
        yield env


@pytest.fixture
async def env(settings: Settings, gemini_server: AnsweringGemini) -> AsyncIterator[Env]:
    """An English novel outlined as 1 x 5 chapters."""
    async for value in _env(settings, gemini_server, 1, 5):
        yield value


@pytest.fixture
async def env_one_slot(settings: Settings, gemini_server: AnsweringGemini) -> AsyncIterator[Env]:
    async for value in _env(settings.with_(max_concurrency=1), gemini_server, 1, 3):
        yield value


async def children(env: Env, batch_id: str) -> list[dict[str, Any]]:
    """The batch's children, oldest first (GET /api/tasks?parent_id=)."""
    r = await env.api.client.get("/api/tasks", params={"parent_id": batch_id, "limit": 100}, headers=env.headers)
    assert r.status_code == 200, r.text
    items = list(reversed(r.json()["items"]))
    assert all(c["parent_id"] == batch_id and c["task_type"] == "write_chapter_content" for c in items)
    return items


async def contents(env: Env) -> dict[int, str | None]:
    return {c["id"]: (await env.chapter(c["id"]))["content"] for c in await chapters_of(env)}


async def chapters_of(env: Env) -> list[dict[str, Any]]:
    return [c for v in (await env.novel())["volumes"] for c in v["chapters"]]


def calls_so_far(env: Env) -> int:
    return len(env.calls())


async def batch_on_a_silent_chapter(env: Env, chapter_ids: list[int]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A batch whose first chapter's stream never answers, once that chapter runs: (the batch, [its chapter])."""
    assert env.fake is not None
    env.fake.push(Hang())
    return await batch_on_a_running_chapter(env, chapter_ids)


async def batch_on_a_running_chapter(env: Env, chapter_ids: list[int]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A batch of these chapters, once its first chapter runs: (the batch, [its chapter])."""
    batch = await env.submit(BATCH, chapter_ids=chapter_ids, target_words=100)
    kid: list[dict[str, Any]] = []

    async def child_running() -> bool:
        kid[:] = [k for k in await children(env, batch["id"]) if k["status"] == "running"]
        return bool(kid)

    await until(child_running, timeout=20, what="a running child")
    return batch, kid


async def batch_taken_over(env: Env) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A batch on a silent chapter that another process ("survivor:1:abc") has taken over, once this
    process's runner of it has stopped and its chapter still runs here: (the batch, [its chapter])."""
    fake = env.fake
    assert fake is not None
    supervisor = env.api.services.supervisor
    supervisor.monotonic = clock = Clock()
    batch, kid = await batch_on_a_silent_chapter(env, (await env.chapter_ids())[:2])
    await fake.wait_until(lambda: fake.open_connections == 1, timeout=20)
    async with env.api.services.db.write() as conn:
        await conn.execute(
            update(Task)
            .where(Task.id == batch["id"])
            .values(owner="survivor:1:abc", lease_expires_at=utcnow() + timedelta(hours=1))
        )
    clock.ahead = supervisor.settings.lease_seconds / 3  # a renewal of each quiet runner is due

    async def batch_stopped() -> bool:
        return batch["id"] not in supervisor.runners

    await until(batch_stopped, timeout=5, what="the batch's runner stopped")
    return batch, kid


async def test_a_batch_writes_its_chapters_in_reading_order_each_after_the_one_before(
    settings: Settings, gemini_server: AnsweringGemini
) -> None:
    async for env in _env(settings, gemini_server, 2, 3):
        ids = await env.chapter_ids()  # reading order: volume 1's three, then volume 2's
        asked = [ids[4], ids[0], ids[2], ids[1], ids[3]]  # five of the six, out of order
        before = calls_so_far(env)
        batch = await env.run(BATCH, chapter_ids=asked, target_words=100, timeout=60)
        assert batch["task_type"] == "write_chapters" and batch["parent_id"] is None
        assert batch["result"] == {"written": ids[:5], "skipped": []}

        kids = await children(env, batch["id"])
        assert [k["params"]["chapter_id"] for k in kids] == ids[:5]
        assert all(k["status"] == "completed" for k in kids)
        # one after another: each child started after the one before finished
        for earlier, later in zip(kids, kids[1:], strict=False):
            assert later["started_at"] >= earlier["finished_at"]
        # usage sums the children's
        total = {"prompt_tokens": 0, "output_tokens": 0}
        for k in kids:
            for key in total:
                total[key] += k["usage"][key]
        assert batch["usage"] == total

        # messages name the chapter being written
        chapters = {c["id"]: c for c in await chapters_of(env)}
        messages = [d["message"] for kind, d in await env.events(batch["id"]) if kind == "progress"]
        for n, cid in enumerate(ids[:5], start=1):
            assert f"Chapter {n} of 5: {chapters[cid]['title']}" in messages, messages

        # each child's prompt holds the chapter before it: its recap and its ending
        streams = [c for c in env.calls()[before:] if c.streaming]
        assert len(streams) == 5
        for n in range(1, 5):
            previous = await env.chapter(ids[n - 1])
            assert previous["recap"] and previous["recap"][:40] in streams[n].user
            ending = previous["content"].strip()[-40:]
            assert ending in streams[n].user
        assert ids[5] not in [k["params"]["chapter_id"] for k in kids]
        assert (await env.chapter(ids[5]))["content"] in (None, "")


async def test_chapters_with_text_are_skipped_unless_overwrite(env: Env) -> None:
    ids = await env.chapter_ids()
    r = await env.api.client.patch(
        f"/api/novels/{env.novel_id}/chapters/{ids[1]}", json={"content": "Written by hand."}, headers=env.headers
    )
    assert r.status_code == 200, r.text
    batch = await env.run(BATCH, chapter_ids=ids[:3], target_words=100, timeout=60)
    assert batch["result"] == {"written": [ids[0], ids[2]], "skipped": [ids[1]]}
    assert (await env.chapter(ids[1]))["content"] == "Written by hand."

    again = await env.run(BATCH, chapter_ids=ids[:3], target_words=100, overwrite=True, timeout=60)
    assert again["result"] == {"written": ids[:3], "skipped": []}
    assert (await env.chapter(ids[1]))["content"] != "Written by hand."


async def test_a_failed_chapter_fails_the_batch_and_a_retry_writes_only_the_rest(env: Env) -> None:
    assert env.fake is not None
    ids = await env.chapter_ids()
    # chapters 1 and 2 answer, chapter 3's stream fails for good
    env.fake.push(*[Answer()] * (2 * CALLS_PER_CHAPTER), Fail(400, "The request is malformed"))
    batch = await env.finish(await env.submit(BATCH, chapter_ids=ids, target_words=100), timeout=60)
    assert batch["status"] == "failed", batch
    assert batch["error"]["code"] == "chapter_failed"
    title = {c["id"]: c["title"] for c in await chapters_of(env)}[ids[2]]
    assert title in batch["error"]["message"] and "malformed" in batch["error"]["message"]
    kids = await children(env, batch["id"])
    assert [k["status"] for k in kids] == ["completed", "completed", "failed"]
    written = await contents(env)
    assert [bool(written[i]) for i in ids] == [True, True, False, False, False]
    first_texts = {i: written[i] for i in ids[:2]}

    r = await env.api.client.post(f"/api/tasks/{batch['id']}/retry", headers=env.headers)
    assert r.status_code == 202, r.text
    retried = await env.finish(r.json(), timeout=60)
    assert retried["status"] == "completed", retried
    assert retried["retry_of"] == batch["id"]
    assert retried["result"] == {"written": ids[2:], "skipped": ids[:2]}
    assert [k["params"]["chapter_id"] for k in await children(env, retried["id"])] == ids[2:]
    after = await contents(env)
    assert all(after[i] for i in ids) and {i: after[i] for i in ids[:2]} == first_texts


async def test_a_chapter_deleted_while_the_batch_runs_is_skipped(env: Env) -> None:
    # API.md lets the author delete a chapter no task is writing yet, one a batch has still to
    # write included. Its child finds the chapter gone and fails at once (not_found); the batch
    # lists the chapter under skipped, as one deleted before it started, and goes on. Before,
    # the child was left running with no runner until its lease ran out, three attempts over.
    assert env.fake is not None
    ids = await env.chapter_ids()
    env.fake.push(Stream([Piece("The first chapter begins. "), Piece("It ends.", delay=2.0)]))
    batch, _ = await batch_on_a_running_chapter(env, ids[:3])
    r = await env.api.client.delete(f"/api/novels/{env.novel_id}/chapters/{ids[1]}", headers=env.headers)
    assert r.status_code == 204, r.text
    done = await env.finish(batch, timeout=20)
    assert done["status"] == "completed", done
    assert done["result"] == {"written": [ids[0], ids[2]], "skipped": [ids[1]]}, done
    kids = await children(env, batch["id"])
    assert [k["status"] for k in kids] == ["completed", "failed", "completed"], kids
    assert kids[1]["error"]["code"] == "not_found", kids[1]


async def test_cancelling_a_batch_cancels_its_running_chapter_and_starts_no_other(env: Env) -> None:
    fake = env.fake
    assert fake is not None
    ids = await env.chapter_ids()
    fake.push(*[Answer()] * CALLS_PER_CHAPTER, Hang())  # chapter 2's stream never answers
    start = calls_so_far(env)
    abandoned = fake.abandoned
    batch = await env.submit(BATCH, chapter_ids=ids, target_words=100)
    await fake.wait_until(lambda: calls_so_far(env) == start + 3 and fake.open_connections == 1, timeout=20)

    cancelled_at = time.monotonic()
    r = await env.api.client.post(f"/api/tasks/{batch['id']}/cancel", headers=env.headers)
    assert r.status_code == 200, r.text
    budget = 1.0 - (time.monotonic() - cancelled_at)
    await fake.wait_until(lambda: fake.abandoned > abandoned and fake.open_connections == 0, timeout=max(budget, 0.0))
    done = await wait_for_status(env.api, env.headers, batch["id"], FINISHED, timeout=2.0)
    assert done["status"] == "cancelled", done
    kids = await children(env, batch["id"])
    assert [k["status"] for k in kids] == ["completed", "cancelled"]
    await env.api.services.supervisor.wait_idle(5)
    assert calls_so_far(env) == start + 3
    assert [bool(v) for v in (await contents(env)).values()] == [True, False, False, False, False]


async def test_cancelling_a_batch_that_waits_in_the_queue_cancels_its_running_chapter(env: Env) -> None:
    # A batch given back to the queue (the process running it stopped) while its chapter runs on
    # in another: cancelling the batch then reaches the chapter too (API.md: cancelling the batch
    # cancels its running child). Before, only the batch was cancelled and the chapter was written.
    fake = env.fake
    assert fake is not None
    batch, kid = await batch_taken_over(env)
    async with env.api.services.db.write() as conn:  # which gave it back and is gone (not due yet: nobody takes it)
        await conn.execute(
            update(Task)
            .where(Task.id == batch["id"])
            .values(status="pending", owner=None, lease_expires_at=None, resume_at=utcnow() + timedelta(hours=1))
        )
    r = await env.api.client.post(f"/api/tasks/{batch['id']}/cancel", headers=env.headers)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    child = await wait_for_status(env.api, env.headers, kid[0]["id"], FINISHED, timeout=5)
    assert child["status"] == "cancelled", child
    await fake.wait_until(lambda: fake.open_connections == 0, timeout=5)


async def test_cancelling_the_running_chapter_cancels_the_batch(env: Env) -> None:
    ids = await env.chapter_ids()
    batch, kid = await batch_on_a_silent_chapter(env, ids[:2])
    r = await env.api.client.post(f"/api/tasks/{kid[0]['id']}/cancel", headers=env.headers)
    assert r.status_code == 200, r.text
    done = await env.finish(batch, timeout=10)
    assert done["status"] == "cancelled", done
    assert len(await children(env, batch["id"])) == 1


async def test_no_chapter_starts_once_the_budget_is_used(env: Env) -> None:
    ids = await env.chapter_ids()
    batch = await env.finish(await env.submit(BATCH, chapter_ids=ids, target_words=100, max_tokens=1), timeout=60)
    assert batch["status"] == "failed", batch
    assert batch["error"]["code"] == "budget_exceeded"
    kids = await children(env, batch["id"])
    assert len(kids) == 1 and kids[0]["status"] == "completed"
    assert batch["usage"] == kids[0]["usage"]
    assert [bool(v) for v in (await contents(env)).values()] == [True, False, False, False, False]


async def test_with_one_slot_a_batch_completes_and_another_users_task_goes_between_its_chapters(
    env_one_slot: Env,
) -> None:
    await another_users_task_goes_between_the_first_two_chapters(env_one_slot)


async def another_users_task_goes_between_the_first_two_chapters(env: Env) -> None:
    """On one slot: a batch of all the novel's chapters completes, and user B's task, submitted while
    the first chapter is written, runs before the second."""
    fake = env.fake
    assert fake is not None
    ids = await env.chapter_ids()
    # chapter 1 streams slowly, so that user B's task is queued while it runs
    fake.push(Stream([f"Piece {n}. " for n in range(8)], delay=0.15), Answer())
    batch = await env.submit(BATCH, chapter_ids=ids, target_words=100)

    async def first_running() -> bool:
        return any(k["status"] == "running" for k in await children(env, batch["id"]))

    await until(first_running, timeout=20, what="chapter 1 running")
    bob = await env.api.register("bob")
    r = await env.api.client.post("/api/novels", json={"title": "B", "genre": "g", "synopsis": "s"}, headers=bob)
    single = await env.api.client.post(
        "/api/ai/generate-characters", json={"novel_id": r.json()["id"], "count": 1}, headers=bob
    )
    assert single.status_code == 202, single.text

    done = await env.finish(batch, timeout=90)
    assert done["status"] == "completed", done
    assert done["result"]["written"] == ids
    theirs = await wait_for_status(env.api, bob, single.json()["id"], FINISHED, timeout=20)
    assert theirs["status"] == "completed"
    kids = await children(env, batch["id"])
    assert len(kids) == len(ids)
    assert kids[0]["finished_at"] <= theirs["started_at"] <= kids[1]["started_at"]


async def test_conflicts_the_parent_filter_and_other_users(env: Env) -> None:
    fake = env.fake
    assert fake is not None
    ids = await env.chapter_ids()
    fake.push(Hang())
    start = calls_so_far(env)
    batch = await env.submit(BATCH, chapter_ids=ids[:3], target_words=100)
    # the first chapter's call holds the Hang: the batch stays on it
    await fake.wait_until(lambda: calls_so_far(env) == start + 1 and fake.open_connections == 1, timeout=20)

    r = await env.api.client.post(BATCH, json={"novel_id": env.novel_id, "chapter_ids": ids[3:]}, headers=env.headers)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "task_conflict" and r.json()["error"]["task_id"] == batch["id"]
    r = await env.api.client.post(
        "/api/ai/write-chapter-content", json={"novel_id": env.novel_id, "chapter_id": ids[2]}, headers=env.headers
    )
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "task_conflict" and r.json()["error"]["task_id"] == batch["id"]

    # a chapter the batch does not name can be written meanwhile (it queues)
    r = await env.api.client.post(
        "/api/ai/write-chapter-content", json={"novel_id": env.novel_id, "chapter_id": ids[4]}, headers=env.headers
    )
    assert r.status_code == 202, r.text
    assert r.json()["parent_id"] is None
    single = r.json()

    # bad bodies: the contract's error shape
    for body in (
        {"novel_id": env.novel_id, "chapter_ids": []},
        {"novel_id": env.novel_id, "chapter_ids": [ids[0], ids[0]]},
        {"novel_id": env.novel_id, "chapter_ids": ids, "max_tokens": 0},
        {"novel_id": env.novel_id, "chapter_ids": list(range(1, 202))},
    ):
        r = await env.api.client.post(BATCH, json=body, headers=env.headers)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "validation_error"

    async def one_child() -> bool:
        return len(await children(env, batch["id"])) == 1

    await until(one_child, timeout=20, what="the first child")
    r = await env.api.client.get(
        f"/api/novels/{env.novel_id}/tasks", params={"parent_id": batch["id"]}, headers=env.headers
    )
    assert r.status_code == 200
    assert [t["parent_id"] for t in r.json()["items"]] == [batch["id"]]
    r = await env.api.client.get("/api/tasks", params={"parent_id": "not-a-task"}, headers=env.headers)
    assert r.status_code == 200 and r.json()["items"] == []

    # another user: the batch and its children are not found, nor are the novel's chapters
    bob = await env.api.register("bob")
    r = await env.api.client.get(f"/api/tasks/{batch['id']}", headers=bob)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await env.api.client.get("/api/tasks", params={"parent_id": batch["id"]}, headers=bob)
    assert r.status_code == 200 and r.json()["items"] == []
    r = await env.api.client.post(BATCH, json={"novel_id": env.novel_id, "chapter_ids": ids[:1]}, headers=bob)
    assert r.status_code == 404, r.text
    theirs = await env.api.novel(bob, title="Bob's")
    r = await env.api.client.post(BATCH, json={"novel_id": theirs["id"], "chapter_ids": ids[:1]}, headers=bob)
    assert r.status_code == 404, r.text

    for task in (batch, single):
        r = await env.api.client.post(f"/api/tasks/{task['id']}/cancel", headers=env.headers)
        assert r.status_code in (200, 409), r.text
    done = await env.finish(batch, timeout=10)
    assert done["status"] == "cancelled"


@pytest.mark.server
async def test_a_batch_killed_mid_chapter_carries_on_after_a_restart_writing_each_chapter_once(
    servers: Servers,
) -> None:
    first = await servers.start(demo_delay_ms=20, lease_seconds=2, sweep_seconds=1)
    async with api_on(first, "alice") as api:
        novel = await api.novel()
        outline = await api.wait_task((await api.outline(novel["id"], 1, 4))["id"], timeout=60)
        assert outline["status"] == "completed", outline
        detail = (await api.get(f"/api/novels/{novel['id']}")).json()
        ids = [c["id"] for v in detail["volumes"] for c in v["chapters"]]
        r = await api.post(BATCH, json={"novel_id": novel["id"], "chapter_ids": ids, "target_words": 100})
        assert r.status_code == 202, r.text
        batch = r.json()

        async def second_chapter_running() -> bool:
            r = await api.get("/api/tasks", params={"parent_id": batch["id"]})
            return any(t["params"]["chapter_id"] == ids[1] and t["status"] == "running" for t in r.json()["items"])

        await until(second_chapter_running, timeout=60, what="the second chapter running")
        await first.kill()

        second = await servers.start(demo_delay_ms=5, lease_seconds=2, sweep_seconds=1)
        api.base_url = second.url
        done = await api.wait_task(batch["id"], timeout=90)
        assert done["status"] == "completed", done
        assert done["result"] == {"written": ids, "skipped": []}
        assert done["attempt"] == 2  # requeued once, by the restart
        kids = (await api.get("/api/tasks", params={"parent_id": batch["id"]})).json()["items"]
        assert sorted(k["params"]["chapter_id"] for k in kids) == sorted(ids)  # one child per chapter
        assert all(k["status"] == "completed" for k in kids)
        for cid in ids:
            chapter = (await api.get(f"/api/novels/{novel['id']}/chapters/{cid}")).json()
            assert chapter["content"]
            revisions = (await api.get(f"/api/novels/{novel['id']}/chapters/{cid}/revisions")).json()
            assert revisions["items"] == [], f"chapter {cid} was written more than once"


async def test_a_batch_taken_over_by_another_process_stops_here_and_leaves_its_chapter_running(env: Env) -> None:
    # The batch's new owner adopts the chapter it finds running (test_leases.py has the rule for one task).
    fake = env.fake
    assert fake is not None
    abandoned = fake.abandoned
    batch, kid = await batch_taken_over(env)
    supervisor = env.api.services.supervisor
    assert kid[0]["id"] in supervisor.runners and supervisor.runners[kid[0]["id"]].stop_reason is None
    child = await env.task(kid[0]["id"])
    assert child["status"] == "running" and fake.abandoned == abandoned and fake.open_connections == 1
    assert (await env.task(batch["id"]))["status"] == "running"  # the survivor's now: nothing written here
    r = await env.api.client.post(f"/api/tasks/{kid[0]['id']}/cancel", headers=env.headers)
    assert r.status_code == 200, r.text
