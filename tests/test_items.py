"""API.md's editable lists: characters, world settings, timeline events and foreshadowing, item by item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.authoring_kit import novel
from tests.conftest import Api


@dataclass(frozen=True)
class ListCase:
    segment: str
    field: str  # the novel's member
    key: str  # name or title
    create: dict[str, Any]
    change: dict[str, Any]


CASES = [
    ListCase(
        "characters",
        "characters",
        "name",
        {"name": "林远", "role": "主角", "description": "山村少年", "traits": ["倔强"], "arc": "成长"},
        {"role": "剑修", "traits": ["倔强", "重情"], "relationships": "师从青岚"},
    ),
    ListCase(
        "world-settings",
        "world_settings",
        "name",
        {"name": "青岚宗", "category": "宗门", "description": "山中剑宗"},
        {"category": "势力", "description": "x" * 5_000},
    ),
    ListCase(
        "timeline-events",
        "timeline_events",
        "title",
        {"title": "拜师", "time_label": "第一年春", "description": "入门", "chapter_number": 2},
        {"time_label": "第二年", "chapter_number": None},
    ),
    ListCase(
        "foreshadowings",
        "foreshadowings",
        "title",
        # Chapter references are ids of the novel's chapters (tests/test_foreshadowing.py); none here.
        {"title": "玉简", "description": "会发光", "planted_chapter_id": None, "payoff_chapter_id": None},
        {"status": "hinted", "description": "不再发光"},
    ),
]
IDS = [case.segment for case in CASES]


async def start(api: Api, username: str = "alice") -> int:
    headers = await api.register(username)
    api.client.headers.update(headers)
    return int((await api.novel(headers))["id"])


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_an_item_is_added_read_changed_and_deleted(api: Api, case: ListCase) -> None:
    nid = await start(api)
    collection = f"/api/novels/{nid}/{case.segment}"
    r = await api.client.post(collection, json=case.create)
    assert r.status_code == 201, r.text
    item = r.json()
    assert {k: item[k] for k in case.create} == case.create
    path = f"{collection}/{item['id']}"
    assert r.headers["location"] == path
    got = await api.client.get(path)
    assert got.json() == item and got.headers["etag"] == r.headers["etag"]
    assert (await novel(api, nid))[case.field] == [item]

    etag = got.headers["etag"]
    r = await api.client.patch(path, json=case.change, headers={"If-Match": etag})
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed == {**item, **case.change}
    assert r.headers["etag"] != etag and (await api.client.get(path)).headers["etag"] == r.headers["etag"]

    # The stale ETag changes nothing and deletes nothing.
    r = await api.client.patch(path, json={case.key: "stale"}, headers={"If-Match": etag})
    assert r.status_code == 412 and r.json()["error"]["code"] == "precondition_failed"
    assert (await api.client.delete(path, headers={"If-Match": etag})).status_code == 412
    assert (await api.client.get(path)).json() == changed

    r = await api.client.delete(path, headers={"If-Match": (await api.client.get(path)).headers["etag"]})
    assert r.status_code == 204
    assert (await api.client.get(path)).status_code == 404
    assert (await api.client.delete(path)).status_code == 404
    assert (await novel(api, nid))[case.field] == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_a_name_is_taken_whatever_its_case_and_spacing(api: Api, case: ListCase) -> None:
    nid = await start(api)
    collection = f"/api/novels/{nid}/{case.segment}"
    first = (await api.client.post(collection, json={case.key: "Lin Feng"})).json()
    for taken in ("Lin Feng", " lin  FENG ", "LIN\tfeng"):
        r = await api.client.post(collection, json={case.key: taken})
        assert r.status_code == 409 and r.json()["error"]["code"] == "name_taken", taken
    other = (await api.client.post(collection, json={case.key: "Su Qing"})).json()
    r = await api.client.patch(f"{collection}/{other['id']}", json={case.key: "lin feng"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "name_taken"
    # An item may keep its own name, or change only its case.
    r = await api.client.patch(f"{collection}/{first['id']}", json={case.key: "LIN FENG"})
    assert r.status_code == 200 and r.json()[case.key] == "LIN FENG"
    assert [i[case.key] for i in (await novel(api, nid))[case.field]] == ["LIN FENG", "Su Qing"]
    # Another novel's list is another list.
    second = (await api.novel(dict(api.client.headers)))["id"]
    assert (
        await api.client.post(f"/api/novels/{second}/{case.segment}", json={case.key: "Lin Feng"})
    ).status_code == 201


async def test_timeline_positions_stay_one_to_n(api: Api) -> None:
    nid = await start(api)
    collection = f"/api/novels/{nid}/timeline-events"

    async def order() -> list[tuple[int, str]]:
        return [(e["position"], e["title"]) for e in (await novel(api, nid))["timeline_events"]]

    ids = {}
    for title in ("A", "B", "C"):
        r = await api.client.post(collection, json={"title": title})
        assert r.status_code == 201
        ids[title] = r.json()["id"]
    assert await order() == [(1, "A"), (2, "B"), (3, "C")]
    r = await api.client.post(collection, json={"title": "first", "position": 1})
    assert r.json()["position"] == 1
    ids["first"] = r.json()["id"]
    assert await order() == [(1, "first"), (2, "A"), (3, "B"), (4, "C")]
    r = await api.client.post(collection, json={"title": "far", "position": 99})
    assert r.json()["position"] == 5
    r = await api.client.patch(f"{collection}/{ids['first']}", json={"position": 3})
    assert r.status_code == 200 and r.json()["position"] == 3
    assert await order() == [(1, "A"), (2, "B"), (3, "first"), (4, "C"), (5, "far")]
    r = await api.client.patch(f"{collection}/{ids['C']}", json={"position": 1000})
    assert r.json()["position"] == 5
    assert await order() == [(1, "A"), (2, "B"), (3, "first"), (4, "far"), (5, "C")]
    assert (await api.client.delete(f"{collection}/{ids['B']}")).status_code == 204
    assert await order() == [(1, "A"), (2, "first"), (3, "far"), (4, "C")]
    for bad in (0, -1, "2", 1.5, None, 10**7):
        r = await api.client.patch(f"{collection}/{ids['A']}", json={"position": bad})
        assert r.status_code == 422, bad
    assert await order() == [(1, "A"), (2, "first"), (3, "far"), (4, "C")]


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_bad_items_are_refused_and_change_nothing(api: Api, case: ListCase) -> None:
    nid = await start(api)
    collection = f"/api/novels/{nid}/{case.segment}"
    item = (await api.client.post(collection, json=case.create)).json()
    path = f"{collection}/{item['id']}"
    before = await novel(api, nid)
    other_text = next(k for k in case.create if k != case.key and isinstance(case.create[k], str))
    bodies: list[Any] = [
        {},
        {case.key: ""},
        {case.key: "x" * 201},
        {case.key: None},
        {case.key: 7},
        {case.key: ["x"]},
        {case.key: "a\x00b"},
        {case.key: "ok", other_text: "x" * 5_001},
        {case.key: "ok", other_text: None},
        {case.key: "ok", other_text: "a\x00"},
    ]
    if case.segment == "characters":
        bodies += [
            {"name": "ok", "traits": "brave"},
            {"name": "ok", "traits": [1]},
            {"name": "ok", "traits": ["x"] * 51},
        ]
    if case.segment == "foreshadowings":
        bodies += [{"title": "ok", "status": "done"}, {"title": "ok", "payoff_chapter_id": 0}]
    for body in bodies:
        r = await api.client.post(collection, json=body)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", (str(body)[:60], r.text)
        if body:
            r = await api.client.patch(path, json=body)
            assert r.status_code == 422, (str(body)[:60], r.text)
    for raw in (b"[]", b"{", b"1"):
        r = await api.client.post(collection, content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400
    for bad in ("abc", "-1", "0", "9" * 25):
        for method in ("GET", "PATCH", "DELETE"):
            r = await api.client.request(method, f"{collection}/{bad}", json={case.key: "x"})
            assert r.status_code == 404, (method, bad)
        assert (await api.client.post(f"/api/novels/{bad}/{case.segment}", json=case.create)).status_code == 404
    assert await novel(api, nid) == before


async def test_another_users_items_are_404_on_every_route(api: Api) -> None:
    bob_novel = await start(api, "bob")
    bob_items = {}
    for case in CASES:
        r = await api.client.post(f"/api/novels/{bob_novel}/{case.segment}", json=case.create)
        bob_items[case.segment] = r.json()["id"]
    before = await novel(api, bob_novel)
    api.client.headers.clear()
    mine = await start(api, "mallory")
    for case in CASES:
        theirs = f"/api/novels/{bob_novel}/{case.segment}/{bob_items[case.segment]}"
        # And bob's item under mallory's own novel.
        crossed = f"/api/novels/{mine}/{case.segment}/{bob_items[case.segment]}"
        for path in (theirs, crossed):
            for method in ("GET", "PATCH", "DELETE"):
                r = await api.client.request(method, path, json={case.key: "stolen"})
                assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (method, path)
        r = await api.client.post(f"/api/novels/{bob_novel}/{case.segment}", json={case.key: "planted"})
        assert r.status_code == 404
    api.client.headers.clear()
    r = await api.client.post("/api/auth/login", json={"username": "bob", "password": "correct horse"})
    api.client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    api.client.cookies.clear()
    assert await novel(api, bob_novel) == before
