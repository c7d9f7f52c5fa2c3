"""API.md's Health, Auth and Novels sections, with their errors, on both databases."""

from __future__ import annotations

import time

import jwt
import pytest

from novawrite.security import TokenClaims, TokenSigner
from tests.conftest import Api


async def test_health_ready_and_openapi(api: Api) -> None:
    r = await api.client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    assert (await api.client.get("/readyz")).status_code == 200
    doc = (await api.client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    for path in ("/api/novels", "/api/novels/{novel_id}", "/api/tasks/{task_id}", "/api/ai/generate-outline"):
        assert path in doc["paths"], path
    body = doc["paths"]["/api/novels"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = doc["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert schema["properties"]["title"]["maxLength"] == 200


async def test_readyz_is_503_when_the_database_is_gone(api: Api) -> None:
    await api.services.db.dispose()
    api.services.db.reader = api.services.db.writer = _broken_engine()
    r = await api.client.get("/readyz")
    assert r.status_code == 503


def _broken_engine():  # type: ignore[no-untyped-def]
    from sqlalchemy.ext.asyncio import create_async_engine

    return create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")


async def test_register_login_me_logout(api: Api) -> None:
    c = api.client
    r = await c.post("/api/auth/register", json={"username": "bob.smith", "password": "12345678"})
    assert r.status_code == 201
    assert r.json()["username"] == "bob.smith" and r.json()["id"]
    r = await c.post("/api/auth/register", json={"username": "bob.smith", "password": "another-pass"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "username_taken"

    r = await c.post("/api/auth/login", json={"username": "bob.smith", "password": "wrong-password"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = await c.post("/api/auth/login", json={"username": "nobody", "password": "12345678"})
    assert r.status_code == 401

    r = await c.post("/api/auth/login", json={"username": "bob.smith", "password": "12345678"})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 24 * 3600
    cookies = r.headers.get_list("set-cookie")
    session = next(h for h in cookies if h.startswith("nw_session="))
    csrf = next(h for h in cookies if h.startswith("nw_csrf="))
    assert "HttpOnly" in session and "SameSite=lax" in session.replace("Lax", "lax")
    assert "HttpOnly" not in csrf

    me = await c.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json() == {"id": me.json()["id"], "username": "bob.smith"}
    assert (await c.get("/api/auth/me")).status_code == 200  # the session cookie alone

    r = await c.post("/api/auth/logout", headers={"X-CSRF-Token": c.cookies["nw_csrf"]})
    assert r.status_code == 204
    assert "nw_session" not in c.cookies
    assert (await c.get("/api/auth/me")).status_code == 401
    # A bearer token outlives logout until it expires.
    me = await c.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"username": "ab", "password": "12345678"},
        {"username": "a" * 65, "password": "12345678"},
        {"username": "has space", "password": "12345678"},
        {"username": "名字名字", "password": "12345678"},
        {"username": "carol", "password": "1234567"},
        {"username": "carol", "password": "x" * 257},
        {"username": "carol"},
        {"username": None, "password": "12345678"},
        {"username": 123, "password": "12345678"},
    ],
)
async def test_register_validation(api: Api, body: dict) -> None:  # type: ignore[type-arg]
    r = await api.client.post("/api/auth/register", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"] and all({"field", "message"} <= set(d) for d in error["details"])


async def test_expired_and_tampered_tokens_are_rejected(api: Api) -> None:
    headers = await api.register()
    token = headers["Authorization"].split()[1]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    secret = api.services.settings.secret_key
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    expired = jwt.encode({**claims, "exp": int(time.time()) - 10}, secret, algorithm="HS256")
    forged = jwt.encode(claims, "another secret key, long enough for HS256 use", algorithm="HS256")
    for bad in (tampered, expired, forged, "garbage", ""):
        r = await api.client.get("/api/novels", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401, bad
        assert r.json()["error"]["code"] == "unauthorized"
    r = await api.client.get("/api/novels", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401


def test_a_remembered_token_still_expires() -> None:
    now = [time.time()]
    signer = TokenSigner("a secret key that is long enough for HS256 use", ttl_seconds=60, clock=lambda: now[0])
    token = signer.issue(7, generation=2)
    claims = signer.verify(token)
    assert claims is not None and signer.verify(token) is claims  # the second from memory
    assert claims == TokenClaims(7, None, claims.jti, 2, int(now[0]) + 60) and len(claims.jti) >= 16
    assert signer.verify(signer.issue(7)).jti != claims.jti  # type: ignore[union-attr]
    assert signer.verify(token[:-2] + "AA") is None
    now[0] += 61
    assert signer.verify(token) is None


async def test_auth_is_checked_before_the_body(api: Api) -> None:
    r = await api.client.post("/api/novels", content=b"{not json")
    assert r.status_code == 401
    r = await api.client.post("/api/ai/generate-outline", json={"novel_id": "x"})
    assert r.status_code == 401


async def test_cookie_requests_need_the_csrf_header(api: Api) -> None:
    c = api.client
    await c.post("/api/auth/register", json={"username": "dora", "password": "12345678"})
    await c.post("/api/auth/login", json={"username": "dora", "password": "12345678"})
    csrf = c.cookies["nw_csrf"]
    r = await c.post("/api/novels", json={"title": "Cross-site"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    r = await c.post("/api/novels", json={"title": "Cross-site"}, headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403
    assert (await c.get("/api/novels")).json()["items"] == []  # nothing was created
    r = await c.post("/api/novels", json={"title": "Same site"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    novel_id = r.json()["id"]
    r = await c.patch(f"/api/novels/{novel_id}", json={"title": "x"})
    assert r.status_code == 403
    r = await c.delete(f"/api/novels/{novel_id}")
    assert r.status_code == 403
    assert (await c.get(f"/api/novels/{novel_id}")).json()["title"] == "Same site"


async def test_novel_crud(api: Api) -> None:
    h = await api.register()
    c = api.client
    r = await c.post("/api/novels", json={"title": "The Long Road", "language": "en"}, headers=h)
    assert r.status_code == 201
    novel = r.json()
    assert novel["genre"] == "" and novel["synopsis"] == "" and novel["language"] == "en"
    assert novel["outline"] is None
    for key in ("volumes", "characters", "world_settings", "timeline_events", "foreshadowings"):
        assert novel[key] == []
    assert novel["created_at"].endswith(("Z", "+00:00"))
    default = (await c.post("/api/novels", json={"title": "默认"}, headers=h)).json()
    assert default["language"] == "zh"

    listed = (await c.get("/api/novels", headers=h)).json()["items"]
    assert {n["id"] for n in listed} == {novel["id"], default["id"]}

    r = await c.patch(f"/api/novels/{novel['id']}", json={"genre": "fantasy", "synopsis": "A road."}, headers=h)
    assert r.status_code == 200
    assert r.json()["genre"] == "fantasy" and r.json()["title"] == "The Long Road"
    r = await c.patch(f"/api/novels/{novel['id']}", json={"title": None}, headers=h)
    assert r.status_code == 422
    assert (await c.get(f"/api/novels/{novel['id']}", headers=h)).json()["title"] == "The Long Road"

    r = await c.delete(f"/api/novels/{novel['id']}", headers=h)
    assert r.status_code == 204
    assert (await c.get(f"/api/novels/{novel['id']}", headers=h)).status_code == 404
    assert (await c.delete(f"/api/novels/{novel['id']}", headers=h)).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "t" * 201},
        {"title": None},
        {"title": "ok", "genre": None},
        {"title": "ok", "genre": "g" * 101},
        {"title": "ok", "synopsis": "s" * 20_001},
        {"title": "ok", "language": "fr"},
        {"title": 5},
        {"title": ["a"]},
    ],
)
async def test_novel_validation(api: Api, body: dict) -> None:  # type: ignore[type-arg]
    h = await api.register()
    r = await api.client.post("/api/novels", json=body, headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"
    assert (await api.client.get("/api/novels", headers=h)).json()["items"] == []


async def test_bad_bodies(api: Api) -> None:
    h = await api.register()
    c = api.client
    for raw in (b"{bad", b"[1, 2]", b'"text"', b"", b"null"):
        r = await c.post("/api/novels", content=raw, headers={**h, "Content-Type": "application/json"})
        assert r.status_code == 400, raw
        assert r.json()["error"]["code"] == "invalid_json"
    big = b'{"title": "' + b"x" * (1024 * 1024) + b'"}'
    r = await c.post("/api/novels", content=big, headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


async def test_unknown_routes_and_methods(api: Api) -> None:
    h = await api.register()
    r = await api.client.get("/api/nothing-here", headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await api.client.put("/api/novels", headers=h)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("bad_id", ["abc", "-1", "0", "9" * 25, "1.5", "99999999999999999999"])
async def test_ids_that_cannot_exist_are_404(api: Api, bad_id: str) -> None:
    h = await api.register()
    for method, path in (
        ("GET", f"/api/novels/{bad_id}"),
        ("PATCH", f"/api/novels/{bad_id}"),
        ("DELETE", f"/api/novels/{bad_id}"),
        ("GET", f"/api/novels/{bad_id}/chapters/1"),
        ("GET", f"/api/novels/1/chapters/{bad_id}"),
        ("GET", f"/api/novels/{bad_id}/chapters/1/revisions"),
        ("GET", f"/api/novels/{bad_id}/tasks"),
        ("GET", f"/api/tasks/{bad_id}"),
        ("POST", f"/api/tasks/{bad_id}/cancel"),
    ):
        r = await api.client.request(method, path, headers=h, json={"title": "x"} if method == "PATCH" else None)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["code"] == "not_found"


async def test_another_users_novel_is_not_found_everywhere(api: Api) -> None:
    alice = await api.register("alice")
    mallory = await api.register("mallory")
    novel = await api.novel(alice)
    chapter_id = await _add_chapter(api, novel["id"])
    nid = novel["id"]
    for method, path, body in (
        ("GET", f"/api/novels/{nid}", None),
        ("PATCH", f"/api/novels/{nid}", {"title": "stolen"}),
        ("DELETE", f"/api/novels/{nid}", None),
        ("GET", f"/api/novels/{nid}/chapters/{chapter_id}", None),
        ("GET", f"/api/novels/{nid}/chapters/{chapter_id}/revisions", None),
        ("GET", f"/api/novels/{nid}/tasks", None),
        ("POST", "/api/ai/generate-outline", {"novel_id": nid}),
        ("POST", "/api/ai/write-chapter-content", {"novel_id": nid, "chapter_id": chapter_id}),
    ):
        r = await api.client.request(method, path, headers=mallory, json=body)
        assert r.status_code == 404, (method, path, r.text)
    assert (await api.client.get("/api/novels", headers=mallory)).json()["items"] == []
    assert (await api.client.get(f"/api/novels/{nid}", headers=alice)).json()["title"] == novel["title"]


async def _add_chapter(api: Api, novel_id: int, content: str = "") -> int:
    """Put a volume and a chapter straight into the database (generation is tested elsewhere)."""
    from novawrite.db.models import Chapter, Volume

    async with api.services.db.session() as session:
        volume = Volume(novel_id=novel_id, number=1, title="卷一", summary="")
        session.add(volume)
        await session.flush()
        chapter = Chapter(
            novel_id=novel_id, volume_id=volume.id, number=1, title="第一章", summary="开端", content=content
        )
        session.add(chapter)
        await session.flush()
        return chapter.id


async def test_chapter_and_revisions(api: Api) -> None:
    h = await api.register()
    novel = await api.novel(h)
    chapter_id = await _add_chapter(api, novel["id"], content="")
    r = await api.client.get(f"/api/novels/{novel['id']}/chapters/{chapter_id}", headers=h)
    assert r.status_code == 200
    assert r.json() == {
        "id": chapter_id,
        "volume_id": r.json()["volume_id"],
        "number": 1,
        "title": "第一章",
        "summary": "开端",
        "content": "",
        "word_count": 0,
        "recap": None,
        "recap_stale": False,
    }
    r = await api.client.get(f"/api/novels/{novel['id']}/chapters/{chapter_id}/revisions", headers=h)
    assert r.json() == {"items": []}
    detail = (await api.client.get(f"/api/novels/{novel['id']}", headers=h)).json()
    assert detail["volumes"][0]["chapters"][0]["has_content"] is False
    other = await api.novel(h, title="Other")
    r = await api.client.get(f"/api/novels/{other['id']}/chapters/{chapter_id}", headers=h)
    assert r.status_code == 404


async def test_nul_characters_are_a_validation_error(api: Api) -> None:
    h = await api.register()
    for path, body in (
        ("/api/novels", {"title": "a\x00b"}),
        ("/api/novels", {"title": "ok", "synopsis": "x\x00"}),
        ("/api/auth/login", {"username": "a\x00", "password": "12345678"}),
        ("/api/auth/register", {"username": "abc", "password": "1234567\x008"}),
    ):
        r = await api.client.post(path, json=body, headers=h)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["error"]["details"][0]["field"] in body
    assert (await api.client.get("/api/novels", headers=h)).json()["items"] == []
