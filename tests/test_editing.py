"""API.md's "The author's hand": volumes, chapters, revisions, editing sessions and ETags, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Table, bindparam, insert, select, text

from novawrite.db import migrate
from novawrite.db.engine import null_pool_engine
from novawrite.db.models import ChapterRevision, Novel, User, UTCDateTime, Volume
from novawrite.settings import Settings
from tests.authoring_kit import Clock, HeldProvider, build, chapters, novel, wait_task
from tests.conftest import Api, make_api

H = dict[str, str]


@pytest.fixture
async def clock(api: Api) -> Clock:
    the_clock = Clock()
    api.services.editing.clock = the_clock
    return the_clock


async def setup(api: Api, content: str = "") -> tuple[H, dict[str, Any], str]:
    """alice, a novel of two volumes (chapters 1-2 and 3-4), and the path of chapter 1 (its text ``content``)."""
    alice = await api.register("alice")
    made = await api.novel(alice)
    api.client.headers.update(alice)
    detail = await build(
        api, made["id"], [("起", [("开端", content), ("相遇", "")]), ("承", [("风起", ""), ("云涌", "")])]
    )
    return alice, detail, f"/api/novels/{made['id']}/chapters/{chapters(detail)[0]['id']}"


async def revisions(api: Api, chapter_path: str) -> list[dict[str, Any]]:
    r = await api.client.get(chapter_path + "/revisions")
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


# --- Novel and volume -----------------------------------------------------------------------


async def test_novel_outline_can_be_edited(api: Api) -> None:
    alice, detail, _ = await setup(api)
    path = f"/api/novels/{detail['id']}"
    r = await api.client.patch(path, json={"outline": "全书大纲"})
    assert r.status_code == 200 and r.json()["outline"] == "全书大纲"
    for bad in ("x" * 100_001, None, 5, "a\x00b"):
        r = await api.client.patch(path, json={"outline": bad})
        assert r.status_code == 422, (bad, r.text)
    assert (await novel(api, detail["id"]))["outline"] == "全书大纲"
    assert (await api.client.patch(path, json={"outline": "x" * 100_000})).status_code == 200


async def test_a_volume_is_read_and_edited_under_its_etag(api: Api) -> None:
    alice, detail, _ = await setup(api)
    volume = detail["volumes"][0]
    path = f"/api/novels/{detail['id']}/volumes/{volume['id']}"
    r = await api.client.get(path)
    assert r.status_code == 200
    assert r.json() == {k: volume[k] for k in ("id", "number", "title", "summary")}
    etag = r.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')

    r = await api.client.patch(path, json={"title": "第一卷", "summary": "新的概要"}, headers={"If-Match": etag})
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "第一卷" and r.json()["summary"] == "新的概要"
    new_etag = r.headers["etag"]
    assert new_etag != etag and (await api.client.get(path)).headers["etag"] == new_etag

    r = await api.client.patch(path, json={"title": "stale"}, headers={"If-Match": etag})
    assert r.status_code == 412 and r.json()["error"]["code"] == "precondition_failed"
    assert (await api.client.get(path)).json()["title"] == "第一卷"
    r = await api.client.patch(path, json={"summary": "any"}, headers={"If-Match": "*"})
    assert r.status_code == 200, r.text
    listed = f'"nope", {r.headers["etag"]}'
    r = await api.client.patch(path, json={"summary": "listed"}, headers={"If-Match": listed})
    assert r.status_code == 200, r.text
    r = await api.client.patch(path, json={"title": "no precondition"})
    assert r.status_code == 200 and r.json()["title"] == "no precondition"
    for body in ({"title": ""}, {"title": "x" * 501}, {"summary": "x" * 5001}, {"title": None}, {"title": 1}):
        assert (await api.client.patch(path, json=body)).status_code == 422, body
    assert (await api.client.get(path)).json()["title"] == "no precondition"


# --- Chapter edits, ETags and the 412 race ---------------------------------------------------


async def test_chapter_fields_are_edited_and_every_write_answers_its_etag(api: Api, clock: Clock) -> None:
    alice, detail, path = await setup(api, "原来的文字。")
    r = await api.client.get(path)
    etag = r.headers["etag"]
    r = await api.client.patch(
        path,
        json={"title": "新标题", "summary": "新概要", "content": "新的正文，一共有十个字。"},
        headers={"If-Match": etag},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["title"], body["summary"], body["content"]) == ("新标题", "新概要", "新的正文，一共有十个字。")
    assert body["word_count"] == 10
    got = await api.client.get(path)
    assert got.json() == body and got.headers["etag"] == r.headers["etag"] != etag
    listed = chapters(await novel(api, detail["id"]))[0]
    assert listed["title"] == "新标题" and listed["has_content"] and listed["word_count"] == 10
    [kept] = await revisions(api, path)
    assert (kept["content"], kept["source"], kept["word_count"]) == ("原来的文字。", "author", 5)

    # A title edit keeps no revision; content at the limit is accepted.
    assert (await api.client.patch(path, json={"title": "再改"})).status_code == 200
    assert (await api.client.patch(path, json={"content": "字" * 200_000})).status_code == 200
    assert len(await revisions(api, path)) == 1


async def test_two_tabs_with_one_etag_one_wins_and_the_other_gets_412(api: Api) -> None:
    alice, detail, path = await setup(api, "first draft")
    etag = (await api.client.get(path)).headers["etag"]
    texts = {"tab A's text", "tab B's text"}
    results = await asyncio.gather(
        *(api.client.patch(path, json={"content": t}, headers={"If-Match": etag}) for t in sorted(texts))
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 412], [r.text for r in results]
    winner = next(r for r in results if r.status_code == 200).json()["content"]
    loser = (texts - {winner}).pop()
    refused = next(r for r in results if r.status_code == 412)
    assert refused.json()["error"]["code"] == "precondition_failed"
    # The winner's text is the content, the first draft a revision; the loser's text was stored nowhere
    # (it is still the client's, to merge and send again with the new ETag).
    assert (await api.client.get(path)).json()["content"] == winner
    assert [r["content"] for r in await revisions(api, path)] == ["first draft"]
    fresh = (await api.client.get(path)).headers["etag"]
    r = await api.client.patch(path, json={"content": loser}, headers={"If-Match": fresh})
    assert r.status_code == 200 and r.json()["content"] == loser


async def test_bad_if_match_values_are_412_and_change_nothing(api: Api) -> None:
    alice, detail, path = await setup(api, "text")
    before = await api.client.get(path)
    etag = before.headers["etag"]
    for header in ("", "garbage", etag.strip('"'), f"W/{etag}", '"' + "0" * 32 + '"', "x" * 8000, "é"):
        for method, kwargs in (("PATCH", {"json": {"content": "lost?"}}), ("DELETE", {})):
            r = await api.client.request(
                method, path, headers={"If-Match": header.encode() if header == "é" else header}, **kwargs
            )
            assert r.status_code == 412, (method, header[:20], r.text)
    after = await api.client.get(path)
    assert after.json() == before.json() and after.headers["etag"] == etag
    assert await revisions(api, path) == []


# --- Editing sessions ------------------------------------------------------------------------------


async def test_edits_less_than_ten_minutes_apart_keep_one_revision(api: Api, clock: Clock) -> None:
    alice, detail, path = await setup(api, "v0")

    async def edit(content: str) -> None:
        r = await api.client.patch(path, json={"content": content})
        assert r.status_code == 200, r.text

    await edit("v1")
    first_session = clock.now
    for text_, minutes in (("v2", 1), ("v3", 1), ("v4", 9.9)):  # each less than 10 minutes after the last
        clock.advance(minutes=minutes)
        await edit(text_)
    assert [(r["content"], r["source"]) for r in await revisions(api, path)] == [("v0", "author")]

    clock.advance(minutes=11)
    await edit("v5")  # a new session: keeps the text as it was before it began
    second_session = clock.now
    clock.advance(minutes=1)
    await edit("v6")
    clock.advance(minutes=10)  # exactly ten minutes is not less than ten
    await edit("v7")
    items = await revisions(api, path)
    assert [(r["content"], r["source"]) for r in items] == [("v6", "author"), ("v4", "author"), ("v0", "author")]
    assert [r["created_at"] for r in items[1:]] == [_iso(second_session), _iso(first_session)]
    assert (await api.client.get(path)).json()["content"] == "v7"


def _iso(moment: Any) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_the_session_lives_in_the_database(settings: Settings) -> None:
    """A second app (another process, or a restart) carries on the session the first one began."""
    clock = Clock()
    async for first in make_api(settings):
        first.services.editing.clock = clock
        alice, detail, path = await setup(first, "v0")
        assert (await first.client.patch(path, json={"content": "v1"})).status_code == 200
    clock.advance(minutes=3)
    async for second in make_api(settings):
        second.services.editing.clock = clock
        second.client.headers.update(alice)
        assert (await second.client.patch(path, json={"content": "v2"})).status_code == 200
        assert [r["content"] for r in await revisions(second, path)] == ["v0"]


async def test_a_generation_between_edits_ends_the_session(api: Api, clock: Clock) -> None:
    """No word is lost: the author's text, the generated text that replaced it, and the edit after it."""
    alice, detail, path = await setup(api, "")
    chapter_id = chapters(detail)[0]["id"]
    assert (await api.client.patch(path, json={"content": "作者的第一稿"})).status_code == 200
    assert await revisions(api, path) == []  # an empty chapter had nothing to keep
    r = await api.client.post(
        "/api/ai/write-chapter-content",
        json={"novel_id": detail["id"], "chapter_id": chapter_id, "target_words": 100, "overwrite": True},
    )
    assert r.status_code == 202, r.text
    await wait_task(api, alice, r.json()["id"])
    generated = (await api.client.get(path)).json()["content"]
    assert generated and generated != "作者的第一稿"
    clock.advance(minutes=1)  # within ten minutes of the author's edit, but the text is no longer the author's
    assert (await api.client.patch(path, json={"content": "作者的第二稿"})).status_code == 200
    assert [(r["content"], r["source"]) for r in await revisions(api, path)] == [
        (generated, "author"),
        ("作者的第一稿", "generated"),
    ]


async def test_unchanged_content_is_no_edit(api: Api, clock: Clock) -> None:
    alice, detail, path = await setup(api, "same")
    assert (await api.client.patch(path, json={"content": "same"})).status_code == 200
    assert await revisions(api, path) == []


# --- Restore ---------------------------------------------------------------------------------------


async def test_restore_makes_a_revision_the_content_and_keeps_what_it_replaces(api: Api, clock: Clock) -> None:
    alice, detail, path = await setup(api, "one")
    await api.client.patch(path, json={"content": "two"})
    [first] = await revisions(api, path)
    etag = (await api.client.get(path)).headers["etag"]

    r = await api.client.post(f"{path}/revisions/{first['id']}/restore", headers={"If-Match": '"stale"'})
    assert r.status_code == 412
    assert (await api.client.get(path)).json()["content"] == "two"

    r = await api.client.post(f"{path}/revisions/{first['id']}/restore", headers={"If-Match": etag})
    assert r.status_code == 200, r.text
    assert r.json()["content"] == "one" and r.json()["word_count"] == 1
    assert r.headers["etag"] == (await api.client.get(path)).headers["etag"]
    items = await revisions(api, path)
    assert [(i["content"], i["source"]) for i in items] == [("two", "restored"), ("one", "author")]

    # The restore ended the editing session: the next edit keeps the restored text.
    clock.advance(minutes=1)
    await api.client.patch(path, json={"content": "three"})
    assert [i["content"] for i in await revisions(api, path)] == ["one", "two", "one"]

    other = f"/api/novels/{detail['id']}/chapters/{chapters(detail)[1]['id']}"
    for bad in (f"{other}/revisions/{first['id']}/restore", f"{path}/revisions/999999/restore"):
        r = await api.client.post(bad)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", bad
    for bad_id in ("abc", "-1", "0", "9" * 25):
        assert (await api.client.post(f"{path}/revisions/{bad_id}/restore")).status_code == 404


# --- A chapter a task is writing ------------------------------------------------------------------


@pytest.fixture
async def held(settings: Settings) -> AsyncIterator[tuple[Api, HeldProvider]]:
    provider = HeldProvider()
    async for api in make_api(settings, provider=provider):
        try:
            yield api, provider
        finally:
            provider.released.set()


async def test_a_chapter_being_written_refuses_content_changes_and_deletion(
    held: tuple[Api, HeldProvider],
) -> None:
    api, provider = held
    alice, detail, path = await setup(api, "before")
    chapter_id = chapters(detail)[0]["id"]
    await api.client.patch(path, json={"content": "the author's"})
    [kept] = await revisions(api, path)
    r = await api.client.post(
        "/api/ai/write-chapter-content",
        json={"novel_id": detail["id"], "chapter_id": chapter_id, "target_words": 100, "overwrite": True},
    )
    task_id = r.json()["id"]
    await asyncio.wait_for(provider.streaming.wait(), 10)

    refused = [
        await api.client.patch(path, json={"content": "mine"}),
        await api.client.patch(path, json={"title": "t", "content": "mine"}),
        await api.client.delete(path, params={"force": "true"}),
        await api.client.post(f"{path}/revisions/{kept['id']}/restore"),
    ]
    for r in refused:
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "task_conflict" and r.json()["error"]["task_id"] == task_id
    assert (await api.client.get(path)).json()["title"] == "开端"  # the refused PATCH changed nothing at all
    # The title and summary stay editable, and other chapters are not concerned.
    r = await api.client.patch(path, json={"title": "写作中", "content": "the author's"})
    assert r.status_code == 200 and r.json()["title"] == "写作中"
    other = f"/api/novels/{detail['id']}/chapters/{chapters(detail)[1]['id']}"
    assert (await api.client.patch(other, json={"content": "free"})).status_code == 200

    provider.released.set()
    await wait_task(api, alice, task_id)
    r = await api.client.patch(path, json={"content": "after the task"})
    assert r.status_code == 200
    sources = [(i["content"], i["source"]) for i in await revisions(api, path)]
    assert sources[1:] == [("the author's", "generated"), ("before", "author")]


# --- Adding and deleting chapters --------------------------------------------------------------------


async def test_chapters_are_added_at_the_end_of_their_volume_and_numbers_move(api: Api) -> None:
    alice, detail, path = await setup(api)
    nid = detail["id"]
    v1, v2 = detail["volumes"]
    r = await api.client.post(
        f"/api/novels/{nid}/timeline-events", json={"title": "决战", "chapter_number": 3}
    )  # names chapter 3, the first of volume 2
    assert r.status_code == 201, r.text
    event_path = f"/api/novels/{nid}/timeline-events/{r.json()['id']}"
    numbered = {c["number"]: c["id"] for c in chapters(detail)}
    r = await api.client.post(
        f"/api/novels/{nid}/foreshadowings",
        json={"title": "玉佩", "planted_chapter_id": numbered[2], "payoff_chapter_id": numbered[4]},
    )
    clue_path = f"/api/novels/{nid}/foreshadowings/{r.json()['id']}"

    r = await api.client.post(f"/api/novels/{nid}/volumes/{v1['id']}/chapters", json={"title": "插曲"})
    assert r.status_code == 201, r.text
    added = r.json()
    assert added["number"] == 3 and added["volume_id"] == v1["id"] and added["content"] == ""
    assert added["summary"] == "" and added["word_count"] == 0
    assert r.headers["location"] == f"/api/novels/{nid}/chapters/{added['id']}"
    assert r.headers["etag"] == (await api.client.get(r.headers["location"])).headers["etag"]
    now = await novel(api, nid)
    assert [[(c["number"], c["title"]) for c in v["chapters"]] for v in now["volumes"]] == [
        [(1, "开端"), (2, "相遇"), (3, "插曲")],
        [(4, "风起"), (5, "云涌")],
    ]
    assert (await api.client.get(event_path)).json()["chapter_number"] == 4
    clue = (await api.client.get(clue_path)).json()
    assert (clue["planted_chapter"], clue["payoff_chapter"]) == (2, 5)

    # An empty volume: its first chapter follows the volumes before it.
    async with api.services.db.session() as session:
        session.add(Volume(novel_id=nid, number=3, title="转", summary=""))
    v3 = (await novel(api, nid))["volumes"][2]
    r = await api.client.post(
        f"/api/novels/{nid}/volumes/{v3['id']}/chapters", json={"title": "新章", "summary": "概要"}
    )
    assert (r.status_code, r.json()["number"], r.json()["summary"]) == (201, 6, "概要")

    # Deleting renumbers the rest; a reference to the deleted chapter is cleared.
    wind = chapters(await novel(api, nid))[3]
    assert wind["title"] == "风起"
    assert (await api.client.delete(f"/api/novels/{nid}/chapters/{added['id']}")).status_code == 204
    assert (await api.client.get(event_path)).json()["chapter_number"] == 3
    assert (await api.client.delete(f"/api/novels/{nid}/chapters/{wind['id']}")).status_code == 204
    assert (await api.client.get(event_path)).json()["chapter_number"] is None
    clue = (await api.client.get(clue_path)).json()
    assert (clue["planted_chapter"], clue["payoff_chapter"]) == (2, 3)
    now = await novel(api, nid)
    assert [[(c["number"], c["title"]) for c in v["chapters"]] for v in now["volumes"]] == [
        [(1, "开端"), (2, "相遇")],
        [(3, "云涌")],
        [(4, "新章")],
    ]
    assert (await api.client.get(f"/api/novels/{nid}/chapters/{added['id']}")).status_code == 404

    for body in ({}, {"title": ""}, {"title": "x" * 501}, {"title": "t", "summary": "x" * 5001}, {"title": None}):
        r = await api.client.post(f"/api/novels/{nid}/volumes/{v1['id']}/chapters", json=body)
        assert r.status_code == 422, body
    assert len(chapters(await novel(api, nid))) == 4


async def test_a_chapter_holding_text_is_deleted_only_with_force(api: Api, clock: Clock) -> None:
    alice, detail, path = await setup(api, "words")
    r = await api.client.delete(path)
    assert r.status_code == 409 and r.json()["error"]["code"] == "chapter_has_content"
    for value in ("maybe", "", "2"):
        assert (await api.client.delete(path, params={"force": value})).status_code == 422
    assert (await api.client.delete(path, params={"force": "false"})).status_code == 409
    # Emptied by the author, it still holds text in its revisions.
    await api.client.patch(path, json={"content": ""})
    assert (await api.client.delete(path)).status_code == 409
    etag = (await api.client.get(path)).headers["etag"]
    assert (await api.client.delete(path, params={"force": "true"}, headers={"If-Match": '"old"'})).status_code == 412
    r = await api.client.delete(path, params={"force": "true"}, headers={"If-Match": etag})
    assert r.status_code == 204
    assert (await api.client.get(path)).status_code == 404
    assert [c["number"] for c in chapters(await novel(api, detail["id"]))] == [1, 2, 3]
    async with api.services.db.read_session() as session:  # its revisions went with it
        assert (await session.execute(select(ChapterRevision))).scalars().all() == []


# --- Other users, impossible ids, bad input --------------------------------------------------------


async def test_another_users_novel_volume_chapter_and_revision_are_404_everywhere(api: Api) -> None:
    bob_headers, bob_novel, bob_path = await setup(api, "bob's words")
    await api.client.patch(bob_path, json={"content": "bob's second words"})
    [bob_revision] = await revisions(api, bob_path)
    bob_volume = bob_novel["volumes"][0]["id"]
    before = (await api.client.get(bob_path)).json()
    api.client.headers.clear()
    mallory = await api.register("mallory")
    mine = await api.novel(mallory)
    api.client.headers.update(mallory)
    await build(api, mine["id"], [("mine", [("c", "")])])
    nid = bob_novel["id"]
    routes = [
        ("GET", f"/api/novels/{nid}/volumes/{bob_volume}", None),
        ("PATCH", f"/api/novels/{nid}/volumes/{bob_volume}", {"title": "x"}),
        ("POST", f"/api/novels/{nid}/volumes/{bob_volume}/chapters", {"title": "x"}),
        ("GET", bob_path, None),
        ("PATCH", bob_path, {"content": "x"}),
        ("DELETE", bob_path + "?force=true", None),
        ("GET", bob_path + "/revisions", None),
        ("POST", f"{bob_path}/revisions/{bob_revision['id']}/restore", None),
        ("PATCH", f"/api/novels/{nid}", {"outline": "x"}),
        # Bob's volume, chapter and revision under mallory's own novel.
        ("PATCH", f"/api/novels/{mine['id']}/volumes/{bob_volume}", {"title": "x"}),
        ("POST", f"/api/novels/{mine['id']}/volumes/{bob_volume}/chapters", {"title": "x"}),
        ("PATCH", f"/api/novels/{mine['id']}/chapters/{before['id']}", {"content": "x"}),
        ("DELETE", f"/api/novels/{mine['id']}/chapters/{before['id']}?force=true", None),
    ]
    for method, path, body in routes:
        r = await api.client.request(method, path, json=body)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (method, path, r.text)
    api.client.headers.update(bob_headers)
    assert (await api.client.get(bob_path)).json() == before
    assert len(await revisions(api, bob_path)) == 1


async def test_bad_input_is_refused_and_changes_nothing(api: Api) -> None:
    alice, detail, path = await setup(api, "kept")
    before = await api.client.get(path)
    bodies: list[Any] = [
        {"content": "x" * 200_001},
        {"content": "a\x00b"},
        {"title": "a\x00b"},
        {"content": None},
        {"content": 5},
        {"content": ["x"]},
        {"title": ""},
        {"title": "x" * 501},
        {"summary": "x" * 5_001},
        {"summary": False},
        {"title": "ok", "content": 1.5},
    ]
    for body in bodies:
        r = await api.client.patch(path, json=body)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", (str(body)[:50], r.text)
    for raw in (b"[]", b"{", b"null", b'"x"'):
        r = await api.client.patch(path, content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, raw
    nid = detail["id"]
    for bad in ("abc", "-1", "0", "9" * 25, "1.0", str(2**63)):
        for method, url in (
            ("PATCH", f"/api/novels/{nid}/chapters/{bad}"),
            ("DELETE", f"/api/novels/{nid}/chapters/{bad}"),
            ("GET", f"/api/novels/{nid}/volumes/{bad}"),
            ("PATCH", f"/api/novels/{nid}/volumes/{bad}"),
            ("POST", f"/api/novels/{nid}/volumes/{bad}/chapters"),
            ("PATCH", f"/api/novels/{bad}/chapters/1"),
        ):
            r = await api.client.request(method, url, json={"title": "x"})
            assert r.status_code == 404, (method, url, r.text)
    r = await api.client.get(path)
    assert r.json() == before.json() and r.headers["etag"] == before.headers["etag"]
    assert await revisions(api, path) == []


# --- Migration -----------------------------------------------------------------------------------------


def test_revisions_from_before_the_migration_are_generated(database_url: str) -> None:
    migrate.downgrade(database_url, "0003")
    asyncio.run(_seed_revision_at_0003(database_url))
    migrate.upgrade(database_url)

    async def sources() -> list[str]:
        engine = null_pool_engine(database_url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(select(ChapterRevision.source))).scalars())
        finally:
            await engine.dispose()

    assert asyncio.run(sources()) == ["generated"]


async def _seed_revision_at_0003(database_url: str) -> None:
    """A chapter with a revision, written with the columns schema 0003 has."""
    now = datetime(2030, 1, 1, tzinfo=UTC)
    engine = null_pool_engine(database_url)
    try:
        async with engine.begin() as conn:

            async def add(table: Table, **values: Any) -> int:
                return int((await conn.execute(insert(table).values(**values))).inserted_primary_key[0])

            user_id = await add(User.__table__, username="u", password_hash="x", created_at=now)
            novel_id = await add(Novel.__table__, user_id=user_id, title="t", created_at=now, updated_at=now)
            volume_id = await add(Volume.__table__, novel_id=novel_id, number=1)
            # Raw SQL: the model's chapters table has columns schema 0003 has not (and lacks content_summary).
            chapter = text(
                "INSERT INTO chapters (novel_id, volume_id, number, title, summary, content, word_count, "
                "content_summary, in_outline, updated_at) VALUES (:n, :v, 1, '', '', 'now', 1, '', :o, :t)"
            ).bindparams(bindparam("t", type_=UTCDateTime()), bindparam("o", value=True))
            await conn.execute(chapter, {"n": novel_id, "v": volume_id, "t": now})
            chapter_id = int((await conn.execute(text("SELECT max(id) FROM chapters"))).scalar_one())
            revision = text(
                "INSERT INTO chapter_revisions (chapter_id, content, word_count, created_at) VALUES (:c, 'old', 1, :t)"
            ).bindparams(bindparam("t", type_=UTCDateTime()))
            await conn.execute(revision, {"c": chapter_id, "t": now})
    finally:
        await engine.dispose()
