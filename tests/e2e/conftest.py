"""End-to-end fixtures: a real NovaWrite server process and a real headless Chromium.

The server is ``uvicorn novawrite.app:app`` on a free port with the demo provider
and its own migrated SQLite database, started once per session. The browser is
Debian's chromium driven by Playwright (a Playwright browser download cannot
work here). Each test gets a fresh browser context; ``signed_in`` registers a
new user through the API so that most tests start on a page, not a form.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import APIRequestContext, Browser, BrowserContext, Page, Playwright, sync_playwright

CHROMIUM = os.environ.get("NOVAWRITE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
DEMO_DELAY_MS = "25"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    url: str
    log: Path


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("e2e-server")) as started:
        yield started


@contextmanager
def running_server(workdir: Path, **env: str) -> Iterator[Server]:
    """``novawrite`` migrated and served from ``workdir`` (SQLite there), on the demo provider unless
    ``env`` says otherwise."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the browser tests need chromium at {CHROMIUM} in CI")
        pytest.skip(f"no chromium at {CHROMIUM}")
    env = {
        **os.environ,
        "NOVAWRITE_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'db.sqlite'}",
        "NOVAWRITE_PROVIDER": "demo",
        "NOVAWRITE_DEMO_DELAY_MS": DEMO_DELAY_MS,
        "NOVAWRITE_SECRET_KEY": "e2e-test-secret-key-0123456789abcdef0123",
        **env,
    }
    subprocess.run(
        [sys.executable, "-m", "novawrite", "db", "upgrade"],
        env=env,
        cwd=workdir,
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = _free_port()
    log = workdir / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "novawrite.app:app", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
        yield Server(url=url, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited ({process.returncode}):\n{log.read_text(errors='replace')}")
            try:
                if client.get(f"{url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # a bounded poll for the port to open; nothing else to wait on
    raise RuntimeError(f"server not healthy within {deadline_s}s:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright, server: Server) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()


_page_errors: list[str] = []


def new_context(browser: Browser, server: Server, *, locale: str = "en-US", **options: Any) -> BrowserContext:
    """A browser context whose uncaught page errors fail the running test."""
    context = browser.new_context(
        base_url=server.url, locale=locale, viewport={"width": 1280, "height": 800}, **options
    )
    context.set_default_timeout(15_000)
    context.on("weberror", lambda error: _page_errors.append(f"{error.page.url if error.page else '?'}: {error.error}"))
    return context


@pytest.fixture(autouse=True)
def no_page_errors() -> Iterator[None]:
    _page_errors.clear()
    yield
    assert not _page_errors, f"uncaught errors in the page: {_page_errors}"


@pytest.fixture
def context(browser: Browser, server: Server) -> Iterator[BrowserContext]:
    context = new_context(browser, server)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def unique_name(prefix: str = "author") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


class Api:
    """The JSON API through the browser context's own cookies (so the pages share its session)."""

    def __init__(self, request: APIRequestContext, context: BrowserContext) -> None:
        self.request = request
        self.context = context

    def _csrf(self) -> dict[str, str]:
        for cookie in self.context.cookies():
            if cookie["name"] == "nw_csrf":
                return {"X-CSRF-Token": cookie["value"]}
        return {}

    def call(self, method: str, path: str, body: Any = None, expect: int | tuple[int, ...] = (200, 201, 202)) -> Any:
        headers = {"Content-Type": "application/json", **self._csrf()}
        data = json.dumps(body) if body is not None else None
        response = self.request.fetch(path, method=method, headers=headers, data=data)
        expected = (expect,) if isinstance(expect, int) else expect
        assert response.status in expected, f"{method} {path}: {response.status} {response.text()}"
        return response.json() if response.status != 204 and response.text() else None

    def register_and_login(self, username: str, password: str = "correct horse battery") -> None:
        self.call("POST", "/api/auth/register", {"username": username, "password": password}, expect=201)
        self.call("POST", "/api/auth/login", {"username": username, "password": password}, expect=200)

    def novel(self, title: str, language: str = "en", **fields: Any) -> dict[str, Any]:
        body = {
            "title": title,
            "genre": fields.pop("genre", "fantasy"),
            "synopsis": fields.pop("synopsis", "A cartographer maps a city that rearranges itself."),
            "language": language,
            **fields,
        }
        return self.call("POST", "/api/novels", body, expect=201)

    def generate(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", f"/api/ai/{route}", body, expect=202)

    def wait_task(self, task_id: str, status: str = "completed", timeout_s: float = 90.0) -> Any:
        """Wait for a task to finish by reading its event stream, which closes after the terminal event."""
        response = self.request.get(f"/api/tasks/{task_id}/events", timeout=timeout_s * 1000)
        assert response.status == 200, response.text()
        task = self.call("GET", f"/api/tasks/{task_id}")
        assert task["status"] == status, task
        return task


@pytest.fixture
def api(context: BrowserContext) -> Api:
    return Api(context.request, context)


@pytest.fixture
def signed_in(api: Api) -> str:
    username = unique_name()
    api.register_and_login(username)
    return username


def screenshot(page: Page, name: str) -> None:
    """Save the page as artifacts/screenshots/<name>-1280.png (1280x800), <name>-390.png
    (390x844) and <name>-390-full.png (390 wide, the whole page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size or {"width": 1280, "height": 800}
    page.screenshot(path=str(SCREENSHOTS / f"{name}-1280.png"), animations="disabled")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SCREENSHOTS / f"{name}-390.png"), animations="disabled")
    page.screenshot(path=str(SCREENSHOTS / f"{name}-390-full.png"), full_page=True, animations="disabled")
    page.set_viewport_size(size)
