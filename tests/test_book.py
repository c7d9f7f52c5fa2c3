"""A whole book through ``write_chapters`` at the issue's sizes (API.md, "Writing the book").

- 30 chapters in one batch, in-process on the fake Gemini server: each chapter once,
  in reading order, each child's prompt holding the chapter before it (its recap and
  its ending), progress that never goes down, the result and the usage.
- 10 chapters in one batch on a real server process (demo provider), SIGKILLed twice
  mid-chapter and restarted on the same database: the batch completes, each chapter is
  written once, its text neither duplicated nor cut (the chunk events of the child that
  wrote it add up to it, across the child's attempts), and every child's stream has no gap.

Smaller versions of these are in ``tests/test_batches.py``; their helpers are reused.
"""

from __future__ import annotations

from typing import Any

import pytest

from novawrite.settings import Settings
from tests.server import Api, ServerProcess, Servers, api_on, assert_complete_log, servers  # noqa: F401 (fixture)
from tests.test_batches import (  # noqa: F401 (gemini_server: the module-scoped fake, a fixture)
    BATCH,
    CALLS_PER_CHAPTER,
    _env,
    another_users_task_goes_between_the_first_two_chapters,
    calls_so_far,
    chapters_of,
    children,
    gemini_server,
)
from tests.test_kinds_e2e import AnsweringGemini
from tests.waiting import until

VOLUMES, PER_VOLUME = 2, 15
CHAPTERS = VOLUMES * PER_VOLUME


async def test_a_30_chapter_book_in_one_batch_each_chapter_once_in_order_following_the_one_before(
    settings: Settings, gemini_server: AnsweringGemini
) -> None:
    async for env in _env(settings, gemini_server, VOLUMES, PER_VOLUME):
        ids = await env.chapter_ids()
        assert len(ids) == CHAPTERS
        before = calls_so_far(env)
        # The list out of reading order: the batch writes them in reading order anyway.
        asked = ids[1::2] + ids[0::2]
        batch = await env.run(BATCH, chapter_ids=asked, target_words=100, timeout=50)
        assert batch["result"] == {"written": ids, "skipped": []}

        # Exactly one child per chapter, all completed, in reading order, one after another.
        kids = await children(env, batch["id"])
        assert [k["params"]["chapter_id"] for k in kids] == ids
        assert all(k["status"] == "completed" for k in kids), [k["status"] for k in kids]
        for earlier, later in zip(kids, kids[1:], strict=False):
            assert later["started_at"] >= earlier["finished_at"], (earlier, later)

        # Usage sums the children's.
        total = {"prompt_tokens": 0, "output_tokens": 0}
        for k in kids:
            for key in total:
                total[key] += k["usage"][key]
        assert batch["usage"] == total

        # The batch's progress never goes down over its stored events, below 100 until it completes.
        events = await env.events(batch["id"])
        progress = [data["progress"] for _, data in events]
        assert progress == sorted(progress), progress
        assert all(p < 100 for kind, data in events if kind != "completed" for p in [data["progress"]])
        assert events[-1][0] == "completed" and events[-1][1]["progress"] == 100
        # Each chapter named by the batch's messages, once written in turn.
        chapters = {c["id"]: c for c in await chapters_of(env)}
        messages = [d["message"] for kind, d in events if kind == "progress"]
        for n, cid in enumerate(ids, start=1):
            assert f"Chapter {n} of {CHAPTERS}: {chapters[cid]['title']}" in messages

        # Each chapter written once: one stream and one recap call per chapter, no more.
        calls = env.calls()[before:]
        assert len(calls) == CHAPTERS * CALLS_PER_CHAPTER, len(calls)
        streams = [c for c in calls if c.streaming]
        assert len(streams) == CHAPTERS
        # The fake numbers its takes: take n is the n-th chapter it streamed, saved into the n-th chapter.
        for n, cid in enumerate(ids, start=1):
            saved = chapters[cid]
            content = (await env.chapter(cid))["content"]
            assert content.startswith(f"[take {n}] "), (n, content[:40])
            assert content.count("[take ") == 1, content  # not written twice into one chapter
            assert saved["recap"] == f"Recap of chapter {saved['number']}: Mara reads the map by lamplight."

        # Each child's prompt holds the chapter before it: its recap and its ending.
        for n in range(1, CHAPTERS):
            previous = await env.chapter(ids[n - 1])
            prompt = streams[n].user
            assert previous["recap"] and previous["recap"][:40] in prompt, n
            assert "[How the previous chapter ends]" in prompt
            ending = previous["content"].strip()[-40:]
            assert ending in prompt, n
        assert "[How the previous chapter ends]" not in streams[0].user


async def test_with_one_slot_another_users_task_goes_before_the_next_of_twenty_chapters(
    settings: Settings, gemini_server: AnsweringGemini
) -> None:
    async for env in _env(settings.with_(max_concurrency=1), gemini_server, 2, 10):
        assert len(await env.chapter_ids()) == 20
        await another_users_task_goes_between_the_first_two_chapters(env)


# --- SIGKILLed twice ----------------------------------------------------------------------


KILLS_AT = (3, 7)  # the chapters (1-based, reading order) that are being written when a server is killed
TEN = 10


async def _child_for(api: Api, batch_id: str, chapter_id: int) -> dict[str, Any] | None:
    r = await api.get("/api/tasks", params={"parent_id": batch_id, "limit": 100})
    assert r.status_code == 200, r.text
    found = [t for t in r.json()["items"] if t["params"]["chapter_id"] == chapter_id]
    assert len(found) <= 1, f"two children for chapter {chapter_id}: {found}"
    return found[0] if found else None


async def _kill_mid_chapter(api: Api, server: ServerProcess, batch_id: str, chapter_id: int) -> str:
    """Wait until ``chapter_id``'s child is running with some of its text out, then SIGKILL the server."""
    child: dict[str, Any] = {}

    async def writing() -> bool:
        found = await _child_for(api, batch_id, chapter_id)
        if found is None or found["status"] != "running":
            return False
        r = await api.get(f"/api/tasks/{found['id']}/output")
        child.update(found)
        return r.status_code == 200 and bool(r.json()["text"]) and not r.json()["complete"]

    await until(writing, timeout=60, what=f"chapter {chapter_id} being written")
    await server.kill()
    return str(child["id"])


@pytest.mark.server
async def test_a_10_chapter_batch_killed_twice_writes_each_chapter_once_whole_with_no_gap(servers: Servers) -> None:
    options = {"demo_delay_ms": 20, "lease_seconds": 2, "sweep_seconds": 1}
    server = await servers.start(**options)
    async with api_on(server, "alice") as api:
        novel = await api.novel()
        outline = await api.wait_task((await api.outline(novel["id"], 2, TEN // 2))["id"], timeout=60)
        assert outline["status"] == "completed", outline
        detail = (await api.get(f"/api/novels/{novel['id']}")).json()
        ids = [c["id"] for v in detail["volumes"] for c in v["chapters"]]
        assert len(ids) == TEN
        r = await api.post(BATCH, json={"novel_id": novel["id"], "chapter_ids": ids, "target_words": 500})
        assert r.status_code == 202, r.text
        batch = r.json()

        killed: list[str] = []  # the children running when a server was killed
        for number in KILLS_AT:
            killed.append(await _kill_mid_chapter(api, server, batch["id"], ids[number - 1]))
            server = await servers.start(**options)  # same database, same secret
            api.base_url = server.url

        done = await api.wait_task(batch["id"], timeout=120)
        assert done["status"] == "completed", done
        assert done["result"] == {"written": ids, "skipped": []}
        assert done["attempt"] == 1 + len(KILLS_AT)  # requeued once by each restart

        kids = (await api.get("/api/tasks", params={"parent_id": batch["id"], "limit": 100})).json()["items"]
        kids.reverse()  # oldest first
        # One child per chapter, in reading order, all completed.
        assert [k["params"]["chapter_id"] for k in kids] == ids
        assert all(k["status"] == "completed" for k in kids), [k["status"] for k in kids]
        attempts = {k["id"]: k["attempt"] for k in kids}
        for child_id in killed:
            assert attempts[child_id] == 2, attempts  # the killed chapter ran again, as the same task
        assert sorted(attempts.values()) == [1] * (TEN - len(KILLS_AT)) + [2] * len(KILLS_AT), attempts

        for kid in kids:
            cid = kid["params"]["chapter_id"]
            chapter = (await api.get(f"/api/novels/{novel['id']}/chapters/{cid}")).json()
            content = chapter["content"]
            assert content, f"chapter {cid} has no text"
            revisions = (await api.get(f"/api/novels/{novel['id']}/chapters/{cid}/revisions")).json()
            assert revisions["items"] == [], f"chapter {cid} was written more than once"
            # The child's whole stream, replayed: seq 1..n, no gap, no duplicate, one terminal event.
            read = await api.task_events(kid["id"], timeout=30)
            assert read.status == 200 and read.closed
            assert_complete_log(read.events, kid["id"])
            # Its chunks, across every attempt, add up to the saved text: nothing repeated, nothing cut.
            chunks = "".join(e.json["text"] for e in read.events if e.kind == "chunk")
            assert chunks == content, f"chapter {cid}: chunks {len(chunks)} chars, saved {len(content)}"
            assert kid["result"]["content"] == content
            # Queued and started once, plus an interruption and a new start per requeue.
            statuses = [e.json["status"] for e in read.events if e.kind == "status"]
            assert statuses == ["pending", "running"] * kid["attempt"], statuses
            if kid["id"] in killed:
                # Killed mid-text: chunks of the first attempt, then the second attempt's continuation.
                requeued = next(i for i, e in enumerate(read.events) if e.kind == "status" and i > 1)
                before = "".join(e.json["text"] for e in read.events[:requeued] if e.kind == "chunk")
                assert before and content.startswith(before) and len(before) < len(content), (cid, len(before))
        # A text written twice over would also show in the output endpoint of the killed children.
        for child_id in killed:
            output = (await api.get(f"/api/tasks/{child_id}/output")).json()
            assert output["complete"] is True
            cid = next(k["params"]["chapter_id"] for k in kids if k["id"] == child_id)
            assert output["text"] == (await api.get(f"/api/novels/{novel['id']}/chapters/{cid}")).json()["content"]
