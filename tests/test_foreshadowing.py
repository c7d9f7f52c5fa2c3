"""The foreshadowing lifecycle (API.md, "Writing the book"): chapters by id, status, overdue, the recap's changes.

Through the HTTP API on SQLite and PostgreSQL: the author's PATCH, generation on
the fake Gemini server (the real google-genai SDK) and the fake OpenAI server,
and the offline demo end to end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, text

from novawrite.db import migrate
from novawrite.db.engine import null_pool_engine
from novawrite.db.models import Chapter, Novel, UTCDateTime, Volume
from novawrite.settings import Settings
from tests.conftest import make_api
from tests.fakes import Text
from tests.test_kinds_e2e import FAST, Answer, AnsweringGemini, AnsweringOpenAI, Env, provider_settings

MODELS = pytest.mark.parametrize("env", ["gemini", "openai"], indirect=True)
GEMINI = pytest.mark.parametrize("env", ["gemini"], indirect=True)
DEMO = pytest.mark.parametrize("env", ["demo"], indirect=True)


@pytest.fixture(scope="module")
def gemini_server() -> Iterator[AnsweringGemini]:
    with AnsweringGemini() as server:
        yield server


@pytest.fixture(scope="module")
def openai_server() -> Iterator[AnsweringOpenAI]:
    with AnsweringOpenAI() as server:
        yield server


@pytest.fixture
async def env(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Env]:
    """The app on ``request.param`` (demo or a fake), a user and an English novel outlined as 1 x 3 chapters."""
    name = str(request.param)
    fake = request.getfixturevalue(f"{name}_server") if name != "demo" else None
    if fake is not None:
        fake.reset()
    async for api in make_api(provider_settings(settings, name, fake), retry=FAST):
        headers = await api.register()
        novel = await api.novel(headers, title="The Lantern Keeper", genre="Fantasy", language="en")
        env = Env(api, headers, fake, int(novel["id"]), "en")
        await env.run("/api/ai/generate-outline", volumes=1, chapters_per_volume=3)
        yield env


async def add_thread(env: Env, **fields: Any) -> dict[str, Any]:
    r = await env.api.client.post(
        f"/api/novels/{env.novel_id}/foreshadowings", json={"title": "The bell", **fields}, headers=env.headers
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def thread(env: Env, thread_id: int) -> dict[str, Any]:
    r = await env.api.client.get(f"/api/novels/{env.novel_id}/foreshadowings/{thread_id}", headers=env.headers)
    assert r.status_code == 200, r.text
    listed = [f for f in (await env.novel())["foreshadowings"] if f["id"] == thread_id]
    assert listed == [r.json()]  # the Novel shows the same item
    return dict(r.json())


async def patch_thread(env: Env, thread_id: int, body: dict[str, Any], **headers: str) -> Any:
    return await env.api.client.patch(
        f"/api/novels/{env.novel_id}/foreshadowings/{thread_id}", json=body, headers={**env.headers, **headers}
    )


def recap_answer(chapter: int, changes: list[tuple[int, str]]) -> Text:
    return Text(
        json.dumps(
            {"recap": f"Chapter {chapter} as scripted.", "foreshadowing": [{"id": i, "change": c} for i, c in changes]}
        )
    )


async def foreign_chapter(env: Env) -> int:
    """A chapter of another novel of the same user."""
    async with env.api.services.db.session() as session:
        user_id = (await env.api.client.get("/api/auth/me", headers=env.headers)).json()["id"]
        other = Novel(user_id=user_id, title="Another")
        session.add(other)
        await session.flush()
        volume = Volume(novel_id=other.id, number=1, title="v", summary="")
        session.add(volume)
        await session.flush()
        chapter = Chapter(novel_id=other.id, volume_id=volume.id, number=1, title="c")
        session.add(chapter)
        await session.flush()
        return int(chapter.id)


# --- The author's hand ---------------------------------------------------------------------


@DEMO
async def test_the_author_sets_chapters_and_status_and_foreign_chapters_are_422(env: Env) -> None:
    one, two, three = await env.chapter_ids()
    clue = await add_thread(env, planted_chapter_id=one, payoff_chapter_id=three)
    assert {k: clue[k] for k in ("planted_chapter_id", "payoff_chapter_id", "planted_chapter", "payoff_chapter")} == {
        "planted_chapter_id": one,
        "payoff_chapter_id": three,
        "planted_chapter": 1,
        "payoff_chapter": 3,
    }
    assert (clue["status"], clue["overdue"]) == ("planted", False)

    r = await env.api.client.get(f"/api/novels/{env.novel_id}/foreshadowings/{clue['id']}", headers=env.headers)
    etag = r.headers["etag"]
    r = await patch_thread(env, clue["id"], {"payoff_chapter_id": two, "status": "hinted"}, **{"If-Match": etag})
    assert r.status_code == 200, r.text
    assert (r.json()["payoff_chapter_id"], r.json()["payoff_chapter"], r.json()["status"]) == (two, 2, "hinted")
    assert r.headers["etag"] != etag

    foreign = await foreign_chapter(env)
    for body in (
        {"payoff_chapter_id": foreign},
        {"planted_chapter_id": 10**9},
        {"planted_chapter_id": 0},
        {"payoff_chapter_id": -1},
    ):
        r = await patch_thread(env, clue["id"], body)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", (body, r.text)
        assert r.json()["error"]["details"][0]["field"] == next(iter(body))
    for body in ({"status": "paid"}, {"payoff_chapter_id": "2"}, {"status": None}):
        assert (await patch_thread(env, clue["id"], body)).status_code == 422, body
    r = await env.api.client.post(
        f"/api/novels/{env.novel_id}/foreshadowings",
        json={"title": "Elsewhere", "planted_chapter_id": foreign},
        headers=env.headers,
    )
    assert r.status_code == 422
    assert (await thread(env, clue["id"]))["payoff_chapter_id"] == two  # nothing changed

    # null clears a chapter; abandoned is a status the author may set.
    r = await patch_thread(env, clue["id"], {"planted_chapter_id": None, "status": "abandoned"})
    assert r.status_code == 200 and (r.json()["planted_chapter_id"], r.json()["status"]) == (None, "abandoned")


@DEMO
async def test_chapter_references_follow_renumbering_and_a_deleted_chapter_leaves_null(env: Env) -> None:
    one, two, three = await env.chapter_ids()
    clue = await add_thread(env, planted_chapter_id=two, payoff_chapter_id=three)
    novel = await env.novel()
    volume_id = novel["volumes"][0]["id"]
    r = await env.api.client.delete(f"/api/novels/{env.novel_id}/chapters/{one}", headers=env.headers)
    assert r.status_code == 204
    now = await thread(env, clue["id"])
    assert (now["planted_chapter_id"], now["planted_chapter"], now["payoff_chapter"]) == (two, 1, 2)
    r = await env.api.client.delete(f"/api/novels/{env.novel_id}/chapters/{three}", headers=env.headers)
    assert r.status_code == 204
    now = await thread(env, clue["id"])
    assert (now["payoff_chapter_id"], now["payoff_chapter"], now["overdue"]) == (None, None, False)
    assert volume_id == (await env.novel())["volumes"][0]["id"]


# --- Overdue and the recap's changes -------------------------------------------------------


@MODELS
async def test_a_payoff_chapter_written_without_resolving_leaves_the_thread_overdue_until_a_recap_resolves_it(
    env: Env,
) -> None:
    assert env.fake is not None
    one, two, _ = await env.chapter_ids()
    clue = await add_thread(env, planted_chapter_id=one, payoff_chapter_id=two)
    await env.run("/api/ai/write-chapter-content", chapter_id=one, target_words=100)
    assert (await thread(env, clue["id"]))["overdue"] is False
    before = len(env.calls())
    await env.run("/api/ai/write-chapter-content", chapter_id=two, target_words=100)
    calls = env.calls()[before:]
    # The chapter's prompt asked for the payoff; its recap prompt listed the thread by id.
    assert "resolve each of them in this chapter" in calls[0].user and "The bell" in calls[0].user
    assert f"id {clue['id']}: The bell" in calls[1].user
    now = await thread(env, clue["id"])
    assert (now["status"], now["overdue"]) == ("planted", True)  # the fake's recap resolved nothing

    env.fake.push(recap_answer(2, [(clue["id"], "RESOLVED")]))
    task = await env.run("/api/ai/recap-chapters", chapter_ids=[two])
    assert task["result"]["recaps"][0]["threads"] == [{"foreshadowing_id": clue["id"], "status": "resolved"}]
    now = await thread(env, clue["id"])
    assert (now["status"], now["overdue"]) == ("resolved", False)

    # Never backwards: a later recap reporting a hint leaves it resolved.
    env.fake.push(recap_answer(2, [(clue["id"], "hinted")]))
    await env.run("/api/ai/recap-chapters", chapter_ids=[two])
    assert (await thread(env, clue["id"]))["status"] == "resolved"


@GEMINI
async def test_the_recap_of_a_written_chapter_moves_threads_forward_only(env: Env) -> None:
    assert env.fake is not None
    one, two, three = await env.chapter_ids()
    hinted = await add_thread(env, planted_chapter_id=one, payoff_chapter_id=three)
    dropped = await add_thread(env, title="The oar", payoff_chapter_id=three)
    r = await patch_thread(env, dropped["id"], {"status": "abandoned"})
    assert r.status_code == 200
    # The recap hints at one thread, resolves an abandoned one and names ids it was never shown.
    env.fake.push(
        Answer(), recap_answer(2, [(hinted["id"], "hinted"), (dropped["id"], "resolved"), (10**6, "resolved")])
    )
    task = await env.run("/api/ai/write-chapter-content", chapter_id=two, target_words=100)
    assert task["result"]["threads"] == [{"foreshadowing_id": hinted["id"], "status": "hinted"}]
    assert (await thread(env, hinted["id"]))["status"] == "hinted"
    assert (await thread(env, dropped["id"]))["status"] == "abandoned"
    # The abandoned thread's payoff chapter gets written: abandoned is never overdue.
    await env.run("/api/ai/write-chapter-content", chapter_id=three, target_words=100)
    assert (await thread(env, dropped["id"]))["overdue"] is False
    assert (await thread(env, hinted["id"]))["overdue"] is True


# --- Generation sets the chapters from the outline ------------------------------------------


@MODELS
async def test_generated_foreshadowing_names_outline_chapters_by_id(env: Env) -> None:
    assert env.fake is not None
    one, two, three = await env.chapter_ids()
    answer = {
        "foreshadowings": [
            {"title": "Near", "description": "d", "planted_chapter": 1, "payoff_chapter": 3, "status": "planted"},
            {"title": "Far", "description": "d", "planted_chapter": 2, "payoff_chapter": 99, "status": "planted"},
            {"title": "Nowhere", "description": "d", "status": "planted"},
        ]
    }
    env.fake.push(Text(json.dumps(answer)))
    await env.run("/api/ai/generate-foreshadowings", count=3)
    threads = {f["title"]: f for f in (await env.novel())["foreshadowings"]}
    assert (threads["Near"]["planted_chapter_id"], threads["Near"]["payoff_chapter_id"]) == (one, three)
    assert (threads["Far"]["planted_chapter_id"], threads["Far"]["payoff_chapter_id"]) == (two, None)
    assert (threads["Nowhere"]["planted_chapter_id"], threads["Nowhere"]["payoff_chapter_id"]) == (None, None)
    assert {f["status"] for f in threads.values()} == {"planted"}


# --- The demo, end to end ------------------------------------------------------------------


@DEMO
async def test_the_demo_novel_recaps_its_chapters_and_resolves_a_thread_at_its_payoff(env: Env) -> None:
    chapters = await env.chapter_ids()
    await env.run("/api/ai/generate-foreshadowings", count=2)
    threads = (await env.novel())["foreshadowings"]
    # On a three-chapter outline the demo plants in chapter 1 and pays off in chapter 2.
    assert [(f["planted_chapter"], f["payoff_chapter"], f["status"]) for f in threads] == [(1, 2, "planted")] * 2
    assert [f["planted_chapter_id"] for f in threads] == [chapters[0]] * 2

    statuses = []
    for number, chapter_id in enumerate(chapters, start=1):
        task = await env.run("/api/ai/write-chapter-content", chapter_id=chapter_id, target_words=200)
        saved = await env.chapter(chapter_id)
        assert saved["recap"] and saved["recap"] == task["result"]["recap"]
        assert saved["recap"].startswith(f"Chapter {number},")
        statuses.append([(f["status"], f["overdue"]) for f in (await env.novel())["foreshadowings"]])
    assert statuses == [[("planted", False)] * 2, [("resolved", False)] * 2, [("resolved", False)] * 2]
    novel = await env.novel()
    assert all(c["recap"] and not c["recap_stale"] for c in novel["volumes"][0]["chapters"])


# --- Migration 0005 ------------------------------------------------------------------------


def test_migration_maps_chapter_numbers_to_ids_and_keeps_summaries_as_stale_recaps(database_url: str) -> None:
    migrate.downgrade(database_url, "0004")
    now = datetime(2030, 1, 1, tzinfo=UTC)

    async def seed() -> None:
        engine = null_pool_engine(database_url)
        try:
            async with engine.begin() as conn:
                at = {"t": now}
                stamp = bindparam("t", type_=UTCDateTime())
                await conn.execute(
                    text("INSERT INTO users (username, password_hash, created_at) VALUES ('u', 'x', :t)").bindparams(
                        stamp
                    ),
                    at,
                )
                await conn.execute(
                    text(
                        "INSERT INTO novels (user_id, title, genre, synopsis, language, created_at, updated_at) "
                        "VALUES (1, 'n', '', '', 'en', :t, :t)"
                    ).bindparams(stamp),
                    at,
                )
                await conn.execute(text("INSERT INTO volumes (novel_id, number, title, summary) VALUES (1, 1, '', '')"))
                for number, content, summary in ((1, "text one", "summary one"), (2, "", ""), (3, "", "stray")):
                    await conn.execute(
                        text(
                            "INSERT INTO chapters (novel_id, volume_id, number, title, summary, content, word_count, "
                            "content_summary, in_outline, updated_at) VALUES (1, 1, :n, '', '', :c, 0, :s, :o, :t)"
                        ).bindparams(stamp, bindparam("o", value=True)),
                        {"n": number, "c": content, "s": summary, "t": now},
                    )
                await conn.execute(
                    text(
                        "INSERT INTO foreshadowings (novel_id, title, description, status, planted_chapter, "
                        "payoff_chapter) VALUES (1, 'a', '', 'planted', 1, 3), (1, 'b', '', 'hinted', 2, 9)"
                    )
                )
        finally:
            await engine.dispose()

    async def read() -> tuple[list[Any], list[Any]]:
        engine = null_pool_engine(database_url)
        try:
            async with engine.connect() as conn:
                chapters = list(
                    await conn.execute(text("SELECT id, number, recap, recap_stale FROM chapters ORDER BY number"))
                )
                threads = list(
                    await conn.execute(
                        text(
                            "SELECT title, status, planted_chapter_id, payoff_chapter_id FROM foreshadowings ORDER BY id"
                        )
                    )
                )
                return chapters, threads
        finally:
            await engine.dispose()

    asyncio.run(seed())
    migrate.upgrade(database_url)
    chapters, threads = asyncio.run(read())
    ids = {row[1]: row[0] for row in chapters}
    # A summary of written text becomes a stale recap; one without text is dropped.
    assert [(row[1], row[2], bool(row[3])) for row in chapters] == [
        (1, "summary one", True),
        (2, None, False),
        (3, None, False),
    ]
    assert [tuple(row) for row in threads] == [("a", "planted", ids[1], ids[3]), ("b", "hinted", ids[2], None)]
    # And back: the numbers of the chapters named.
    migrate.downgrade(database_url, "0004")
    migrate.upgrade(database_url)
