"""API.md's Auth hardening, on both databases: media types, origins, revocation, throttling,
bounded hashing, security headers, and the limits of a real ``novawrite serve``."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from novawrite.security import Passwords
from novawrite.settings import Settings
from tests.conftest import Api, make_api
from tests.server import Servers, servers  # noqa: F401 (a fixture)
from tests.waiting import until

PASSWORD = "correct horse"


async def _cookie_login(api: Api, username: str = "alice", password: str = PASSWORD) -> httpx.Response:
    """Register and log in with the client's cookie jar; the login response."""
    r = await api.client.post("/api/auth/register", json={"username": username, "password": password})
    assert r.status_code == 201, r.text
    r = await api.client.post("/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return r


def _bearer(login: httpx.Response) -> dict[str, str]:
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


# --- 415 unsupported_media_type ----------------------------------------------------------------

NOT_JSON = [
    ("text/plain", b'{"title": "form"}'),
    ("application/x-www-form-urlencoded", b"title=form"),
    ("multipart/form-data; boundary=xyz", b'--xyz\r\nContent-Disposition: form-data; name="title"\r\n\r\nx\r\n--xyz--'),
    ("application/json; charset=latin-1", b'{"title": "form"}'),
    ("application/json; version=2", b'{"title": "form"}'),
    ("application/jsonx", b'{"title": "form"}'),
    (None, b'{"title": "form"}'),
]


@pytest.mark.parametrize(("content_type", "body"), NOT_JSON)
async def test_a_body_that_is_not_json_is_415_and_changes_nothing(
    api: Api, content_type: str | None, body: bytes
) -> None:
    h = await api.register()
    headers = dict(h) if content_type is None else {**h, "Content-Type": content_type}
    r = await api.client.post("/api/novels", content=body, headers=headers)
    if content_type is None:
        assert "content-type" not in r.request.headers
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_media_type"
    # Public routes too: a cross-site form cannot log in or register either.
    for path in ("/api/auth/login", "/api/auth/register"):
        r = await api.client.post(path, content=b'{"username": "mallory", "password": "12345678"}', headers=headers)
        assert r.status_code == 415, (path, r.text)
    assert (await api.client.get("/api/novels", headers=h)).json()["items"] == []
    r = await api.client.post("/api/auth/login", json={"username": "mallory", "password": "12345678"})
    assert r.status_code == 401  # never registered


async def test_json_with_a_utf8_charset_is_accepted(api: Api) -> None:
    h = await api.register()
    for content_type in ("application/json; charset=utf-8", 'Application/JSON;charset="UTF-8"', "application/json;"):
        r = await api.client.post(
            "/api/novels", content='{"title": "星河"}'.encode(), headers={**h, "Content-Type": content_type}
        )
        assert r.status_code == 201, (content_type, r.text)


async def test_415_comes_after_401_and_the_csrf_check(api: Api) -> None:
    c = api.client
    form = {"content": b"title=x", "headers": {"Content-Type": "text/plain"}}
    assert (await c.post("/api/novels", **form)).status_code == 401  # type: ignore[arg-type]
    login = await _cookie_login(api)
    r = await c.post("/api/novels", **form)  # type: ignore[arg-type]
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    c.cookies.clear()
    r = await c.post("/api/novels", content=b"title=x", headers={**_bearer(login), "Content-Type": "text/plain"})
    assert r.status_code == 415


async def test_body_less_posts_need_no_content_type(api: Api) -> None:
    """No body (no Content-Length or 0, no Transfer-Encoding): any Content-Type or none is fine."""
    h = await api.register()
    novel = await api.novel(h)
    r = await api.client.post("/api/ai/generate-outline", json={"novel_id": novel["id"]}, headers=h)
    task = r.json()["id"]
    r = await api.client.post(f"/api/tasks/{task}/cancel", headers=h)
    assert "content-type" not in r.request.headers and r.request.headers["content-length"] == "0"
    assert r.status_code in (200, 409), r.text  # cancelled, or it had finished already
    r = await api.client.post(f"/api/tasks/{task}/cancel", headers={**h, "Content-Type": "text/plain"})
    assert r.status_code in (200, 409), r.text
    r = await api.client.post("/api/auth/logout", headers={"Content-Type": "text/plain"})
    assert r.status_code == 204
    # A body on a route that takes none must still be JSON.
    r = await api.client.post(f"/api/tasks/{task}/cancel", content=b"x=1", headers={**h, "Content-Type": "text/plain"})
    assert r.status_code == 415


# --- Same origin on register, login, logout ----------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://testserver:8080"},
        {"Origin": "https://testserver"},
        {"Origin": "null"},
        {"Origin": "not a url"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://testserver", "Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_register_login_logout_refuse_other_origins(api: Api, headers: dict[str, str]) -> None:
    c = api.client
    body = {"username": "alice", "password": PASSWORD}
    r = await c.post("/api/auth/register", json=body, headers=headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed", r.text
    assert (await c.post("/api/auth/login", json=body)).status_code == 401  # not registered
    assert (await c.post("/api/auth/register", json=body)).status_code == 201
    r = await c.post("/api/auth/login", json=body, headers=headers)
    assert r.status_code == 403 and "set-cookie" not in r.headers
    await c.post("/api/auth/login", json=body)
    session = c.cookies["nw_session"]
    r = await c.post("/api/auth/logout", headers={**headers, "X-CSRF-Token": c.cookies["nw_csrf"]})
    assert r.status_code == 403
    assert (await c.get("/api/auth/me")).status_code == 200 and c.cookies["nw_session"] == session


async def test_same_origin_is_the_requests_own_scheme_host_and_port(settings: Settings) -> None:
    async for api in make_api(settings):
        c = api.client
        body = {"username": "alice", "password": PASSWORD}
        same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
        assert (await c.post("/api/auth/register", json=body, headers=same)).status_code == 201
        assert (
            await c.post("/api/auth/login", json=body, headers={"Origin": "HTTP://TestServer:80"})
        ).status_code == 200
        # Behind a proxy: the Host the browser used, and the scheme the proxy says it came with.
        proxied = {"Host": "novels.example:8443", "Origin": "http://novels.example:8443"}
        assert (await c.post("/api/auth/login", json=body, headers=proxied)).status_code == 200
        r = await c.post(
            "/api/auth/login", json=body, headers={"Host": "novels.example", "Origin": "http://testserver"}
        )
        assert r.status_code == 403
        # No Origin at all (curl, scripts): allowed.
        assert (await c.post("/api/auth/login", json=body, headers={"Sec-Fetch-Site": "none"})).status_code == 200
    async for api in make_api(settings):
        transport = httpx.ASGITransport(app=api.app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            r = await c.post("/api/auth/login", json=body, headers={"Origin": "https://testserver"})
            assert r.status_code == 200
            r = await c.post("/api/auth/login", json=body, headers={"Origin": "http://testserver"})
            assert r.status_code == 403


# --- Logout and password changes revoke tokens -------------------------------------------------


async def test_logout_ends_the_session_on_the_server(api: Api) -> None:
    c = api.client
    login = await _cookie_login(api)
    session, csrf = c.cookies["nw_session"], c.cookies["nw_csrf"]
    # Without the CSRF header a live session is not ended.
    assert (await c.post("/api/auth/logout")).status_code == 403
    assert (await c.get("/api/auth/me")).status_code == 200
    assert (await c.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})).status_code == 204
    assert "nw_session" not in c.cookies
    # The cookie replayed: refused for reads and writes, even with its CSRF value.
    replay = {"Cookie": f"nw_session={session}; nw_csrf={csrf}", "X-CSRF-Token": csrf}
    r = await c.get("/api/auth/me", headers=replay)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert (await c.post("/api/novels", json={"title": "x"}, headers=replay)).status_code == 401
    assert (await c.post("/api/auth/logout", headers=replay)).status_code == 204  # idempotent
    # The bearer token of the same login is another token: it stays valid until it expires.
    assert (await c.get("/api/auth/me", headers=_bearer(login))).status_code == 200
    # A new login is a new session.
    await c.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    assert (await c.get("/api/auth/me")).status_code == 200


async def test_a_password_change_revokes_every_earlier_token(api: Api) -> None:
    c = api.client
    login = await _cookie_login(api)
    old_session, csrf = c.cookies["nw_session"], c.cookies["nw_csrf"]
    c.cookies.clear()
    other = await c.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})  # another device
    c.cookies.clear()
    h = _bearer(login)

    r = await c.post(
        "/api/auth/password", json={"current_password": "wrong password", "new_password": "n" * 8}, headers=h
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    for new in ("short", "x" * 257, None):
        r = await c.post("/api/auth/password", json={"current_password": PASSWORD, "new_password": new}, headers=h)
        assert r.status_code == 422, r.text
    assert (await c.get("/api/auth/me", headers=h)).status_code == 200  # nothing changed yet

    cookie_auth = {"Cookie": f"nw_session={old_session}; nw_csrf={csrf}", "X-CSRF-Token": csrf}
    r = await c.post(
        "/api/auth/password", json={"current_password": PASSWORD, "new_password": "new password"}, headers=cookie_auth
    )
    assert r.status_code == 204, r.text
    fresh_session, fresh_csrf = c.cookies["nw_session"], c.cookies["nw_csrf"]
    assert fresh_session != old_session and fresh_csrf != csrf
    c.cookies.clear()

    for stale in (h, _bearer(other), {"Cookie": f"nw_session={old_session}"}):
        assert (await c.get("/api/auth/me", headers=stale)).status_code == 401, stale
    fresh = {"Cookie": f"nw_session={fresh_session}; nw_csrf={fresh_csrf}"}
    assert (await c.get("/api/auth/me", headers=fresh)).json()["username"] == "alice"
    r = await c.post("/api/novels", json={"title": "after"}, headers={**fresh, "X-CSRF-Token": fresh_csrf})
    assert r.status_code == 201
    assert (await c.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})).status_code == 401
    r = await c.post("/api/auth/login", json={"username": "alice", "password": "new password"})
    assert r.status_code == 200
    assert (await c.get("/api/auth/me", headers=_bearer(r))).status_code == 200


async def test_the_password_route_needs_credentials_and_the_csrf_header(api: Api) -> None:
    c = api.client
    body = {"current_password": PASSWORD, "new_password": "new password"}
    assert (await c.post("/api/auth/password", json=body)).status_code == 401
    await _cookie_login(api)
    r = await c.post("/api/auth/password", json=body)
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    assert (await c.get("/api/auth/me")).status_code == 200  # the session still holds: nothing changed


@asynccontextmanager
async def _two_processes(settings: Settings) -> AsyncIterator[tuple[Api, Api]]:
    """Two app instances on one database, as two server processes would be."""
    first = make_api(settings)
    second = make_api(settings)
    a = await first.__anext__()
    try:
        b = await second.__anext__()
        try:
            yield a, b
        finally:
            await second.aclose()
    finally:
        await first.aclose()


async def test_revocations_hold_in_every_process_on_postgresql(postgres_url: str) -> None:
    # The cache bound is an hour here: only the NOTIFY can tell the second process.
    settings = Settings(
        database_url=postgres_url,
        secret_key="test-secret-key-that-is-long-enough-for-hs256",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        auth_cache_seconds=3600.0,
    )
    async with _two_processes(settings) as (a, b):
        await until(lambda: _listening(b), 10, "the second process listens for account changes")
        login = await _cookie_login(a)
        session, csrf = a.client.cookies["nw_session"], a.client.cookies["nw_csrf"]
        replay = {"Cookie": f"nw_session={session}"}
        assert (await b.client.get("/api/auth/me", headers=replay)).status_code == 200  # b now holds a copy

        assert (await a.client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})).status_code == 204

        async def refused(headers: dict[str, str]) -> bool:
            return (await b.client.get("/api/auth/me", headers=headers)).status_code == 401

        await until(lambda: refused(replay), 5, "the other process refuses the logged-out session")
        h = _bearer(login)
        assert (await b.client.get("/api/auth/me", headers=h)).status_code == 200
        body = {"current_password": PASSWORD, "new_password": "new password"}
        assert (await a.client.post("/api/auth/password", json=body, headers=h)).status_code == 204
        await until(lambda: refused(h), 5, "the other process refuses tokens from before the password change")


async def _listening(api: Api) -> bool:
    return bool(api.app.state.account_listener.ready.is_set())


async def test_without_notifications_a_cached_account_is_trusted_for_the_bound_only(settings: Settings) -> None:
    if not settings.is_sqlite:
        pytest.skip("PostgreSQL processes are told at once (the test above)")
    settings = settings.with_(auth_cache_seconds=0.5)
    async with _two_processes(settings) as (a, b):
        login = await _cookie_login(a)
        h = _bearer(login)
        assert (await b.client.get("/api/auth/me", headers=h)).status_code == 200
        body = {"current_password": PASSWORD, "new_password": "new password"}
        assert (await a.client.post("/api/auth/password", json=body, headers=h)).status_code == 204
        assert (await a.client.get("/api/auth/me", headers=h)).status_code == 401  # at once where it happened
        started = time.monotonic()

        async def refused() -> bool:
            return (await b.client.get("/api/auth/me", headers=h)).status_code == 401

        await until(refused, 5, "the other instance's copy expires")
        assert time.monotonic() - started < 0.5 + 2.0  # the bound, and slack for a loaded machine


# --- Failed logins are throttled -----------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"username": username, "password": password})


async def test_ten_failures_for_a_username_throttle_it_for_the_window(settings: Settings) -> None:
    clock = Clock()
    async for api in make_api(settings, clock=clock):
        c = api.client
        for name in ("alice", "bob"):
            assert (
                await c.post("/api/auth/register", json={"username": name, "password": PASSWORD})
            ).status_code == 201
        first = clock.now
        for _ in range(10):
            assert (await _login(c, "alice", "wrong password")).status_code == 401
            clock.now += 1
        r = await _login(c, "alice", PASSWORD)  # the right password does not get through
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_attempts"
        assert int(r.headers["Retry-After"]) == round(first + 900 - clock.now)
        assert "set-cookie" not in r.headers
        assert (await _login(c, "bob", PASSWORD)).status_code == 200  # another account is not held up
        clock.now += 10 * 60
        r = await _login(c, "alice", PASSWORD)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) == round(first + 900 - clock.now)
        clock.now = first + 900  # the first failure leaves the window: 9 are left
        assert (await _login(c, "alice", PASSWORD)).status_code == 200


async def test_a_success_resets_the_usernames_count(settings: Settings) -> None:
    clock = Clock()
    async for api in make_api(settings, clock=clock):
        c = api.client
        await c.post("/api/auth/register", json={"username": "alice", "password": PASSWORD})
        for _ in range(9):
            assert (await _login(c, "alice", "wrong password")).status_code == 401
        assert (await _login(c, "alice", PASSWORD)).status_code == 200
        for _ in range(9):
            assert (await _login(c, "alice", "wrong password")).status_code == 401
        assert (await _login(c, "alice", PASSWORD)).status_code == 200
        for _ in range(10):
            await _login(c, "alice", "wrong password")
        assert (await _login(c, "alice", PASSWORD)).status_code == 429


async def test_unknown_usernames_and_wrong_current_passwords_count_too(settings: Settings) -> None:
    clock = Clock()
    async for api in make_api(settings, clock=clock):
        c = api.client
        for _ in range(10):
            assert (await _login(c, "ghost", "wrong password")).status_code == 401
        assert (await _login(c, "ghost", "wrong password")).status_code == 429
        h = await api.register("carol", PASSWORD)
        body = {"current_password": "wrong password", "new_password": "new password"}
        for _ in range(10):
            assert (await c.post("/api/auth/password", json=body, headers=h)).status_code == 401
        body["current_password"] = PASSWORD
        r = await c.post("/api/auth/password", json=body, headers=h)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) == 900
        assert (await _login(c, "carol", PASSWORD)).status_code == 429


async def test_a_hundred_failures_from_one_address_throttle_that_address(settings: Settings) -> None:
    clock = Clock()
    async for api in make_api(settings.with_(login_failures_per_username=1000), clock=clock):
        c = api.client
        await c.post("/api/auth/register", json={"username": "alice", "password": PASSWORD})
        for i in range(100):
            assert (await _login(c, f"guess{i % 7}", "wrong password")).status_code == 401
        r = await _login(c, "alice", PASSWORD)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) == 900
        elsewhere = httpx.ASGITransport(app=api.app, client=("203.0.113.9", 4000))
        async with httpx.AsyncClient(transport=elsewhere, base_url="http://testserver") as other:
            assert (await _login(other, "alice", PASSWORD)).status_code == 200
        clock.now += 901
        assert (await _login(c, "alice", PASSWORD)).status_code == 200


# --- Password hashing runs on a small pool -------------------------------------------------------


async def test_password_hashing_runs_on_a_bounded_pool() -> None:
    passwords = Passwords(time_cost=1, memory_kib=8 * 1024, threads=2)
    try:
        hashed = passwords.hash("a password")
        peak = 0
        done = asyncio.Event()

        def watch() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, sum(t.name.startswith("argon2") for t in threading.enumerate()))
                time.sleep(0.001)  # a sampling thread, not a wait for a condition

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            results = await asyncio.gather(*(passwords.verify_async(hashed, "a password") for _ in range(40)))
        finally:
            done.set()
            watcher.join()
        assert all(results)
        assert 1 <= peak <= 2
    finally:
        passwords.close()


async def test_the_app_hashes_on_the_configured_pool(settings: Settings) -> None:
    async for api in make_api(settings.with_(password_hash_threads=3)):
        assert api.services.users.passwords.threads == 3
        await api.register()


# --- Security headers ------------------------------------------------------------------------------


def _assert_security_headers(r: httpx.Response) -> None:
    assert r.headers["x-content-type-options"] == "nosniff", (r.request.url, r.headers)
    assert r.headers["referrer-policy"] == "same-origin", (r.request.url, r.headers)


async def test_every_response_has_the_security_headers(api: Api) -> None:
    h = await api.register()
    novel = await api.novel(h)
    c = api.client
    for r in (
        await c.get("/healthz"),
        await c.get("/openapi.json"),
        await c.get("/api/novels", headers=h),
        await c.get(f"/api/novels/{novel['id']}", headers=h),
        await c.get("/api/novels"),  # 401
        await c.get("/api/nothing-here", headers=h),  # 404
        await c.post("/api/novels", json={"title": ""}, headers=h),  # 422
    ):
        _assert_security_headers(r)
        assert r.headers["cache-control"] == "no-store", (r.request.url, r.headers)
    r = await c.post("/api/auth/logout")
    assert r.status_code == 204
    _assert_security_headers(r)
    for page in ("/login", "/static/css/app.css"):
        r = await c.get(page)
        assert r.status_code == 200, page
        _assert_security_headers(r)


async def test_the_polling_route_keeps_its_revalidation(api: Api) -> None:
    h = await api.register()
    novel = await api.novel(h)
    r = await api.client.post("/api/ai/generate-outline", json={"novel_id": novel["id"]}, headers=h)
    task = r.json()["id"]
    r = await api.client.get(f"/api/tasks/{task}", headers=h)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "private, no-cache"
    _assert_security_headers(r)
    for _ in range(2):  # the second answer comes from the polling cache
        again = await api.client.get(f"/api/tasks/{task}", headers={**h, "If-None-Match": r.headers["etag"]})
        if again.status_code == 200:  # the task moved on meanwhile
            r = again
            continue
        assert again.status_code == 304 and again.headers["cache-control"] == "private, no-cache"
        _assert_security_headers(again)


# --- The server process ----------------------------------------------------------------------------


def _raw_request(port: int, head: bytes, timeout: float = 15.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(head)
        except OSError:
            pass  # the server may close before reading all of it
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return received


async def test_serve_refuses_oversized_and_slow_request_heads(servers: Servers) -> None:
    server = await servers.start(max_header_bytes=16384, header_timeout_seconds=1)
    port = server.port
    ok = await asyncio.to_thread(_raw_request, port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200"), ok
    assert b"x-content-type-options: nosniff" in ok
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    refused = await asyncio.to_thread(_raw_request, port, big)
    assert refused.startswith(b"HTTP/1.1 431"), refused[:200]
    assert b'"request_header_fields_too_large"' in refused
    endless = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-More: b\r\n" * 200_000  # 2.4 MB, never finished
    refused = await asyncio.to_thread(_raw_request, port, endless)
    assert refused.startswith(b"HTTP/1.1 431"), refused[:200]
    # A head that never completes is cut off after the header timeout.
    slow = await asyncio.to_thread(_raw_request, port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    assert slow.startswith(b"HTTP/1.1 408"), slow
    # A large body is not a large head.
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{server.url}/api/auth/login", json={"username": "u", "password": "p" * 100_000})
        assert r.status_code == 422
        assert (await client.get(f"{server.url}/healthz")).status_code == 200
    assert server.running


def test_server_limit_settings_from_env() -> None:
    s = Settings.from_env(
        {
            "NOVAWRITE_LIMIT_CONCURRENCY": "50",
            "NOVAWRITE_KEEP_ALIVE_SECONDS": "30",
            "NOVAWRITE_MAX_HEADER_BYTES": "8192",
            "NOVAWRITE_HEADER_TIMEOUT_SECONDS": "2.5",
            "NOVAWRITE_PASSWORD_HASH_THREADS": "2",
            "NOVAWRITE_AUTH_CACHE_SECONDS": "5",
        }
    )
    assert (s.limit_concurrency, s.keep_alive_seconds, s.max_header_bytes, s.header_timeout_seconds) == (
        50,
        30,
        8192,
        2.5,
    )
    assert (s.password_hash_threads, s.auth_cache_seconds) == (2, 5.0)
    d = Settings.from_env({})
    assert (d.limit_concurrency, d.keep_alive_seconds, d.max_header_bytes) == (10_000, 5, 65536)
    assert (d.login_failures_per_username, d.login_failures_per_address, d.login_window_seconds) == (10, 100, 900)


async def test_the_openapi_document_lists_the_password_route(api: Api) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    operation = doc["paths"]["/api/auth/password"]["post"]
    assert {"204", "401", "403", "415", "422", "429"} <= operation["responses"].keys()
    assert "429" in doc["paths"]["/api/auth/login"]["post"]["responses"]
    assert "415" in doc["paths"]["/api/novels"]["post"]["responses"]
