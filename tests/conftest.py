"""Shared fixtures: a real, migrated database per test on SQLite and on PostgreSQL.

Every test that asks for ``database_url`` (directly or through ``settings``,
``app``, ``client``...) runs twice, once per backend. The schema is migrated once
per session into a template (a SQLite file; a PostgreSQL template database) and
each test gets its own copy, so tests are isolated and cheap.

PostgreSQL is at 127.0.0.1:5432 (user postgres, trust auth) unless
NOVAWRITE_TEST_PG_URL says otherwise. When it cannot be reached the PostgreSQL
half is skipped locally, and fails under CI=true.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from novawrite.db import migrate
from novawrite.settings import Settings

PG_URL = os.environ.get("NOVAWRITE_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
PG_TEMPLATE = f"nw_template_{os.getpid()}"
IN_CI = os.environ.get("CI", "").lower() == "true"


def _pg_dsn(url: str, database: str | None = None) -> str:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    if database is not None:
        dsn = dsn.rsplit("/", 1)[0] + "/" + database
    return dsn


def _pg_url(database: str) -> str:
    return PG_URL.rsplit("/", 1)[0] + "/" + database


async def _pg_execute(*statements: str) -> None:
    conn = await asyncpg.connect(_pg_dsn(PG_URL), timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    try:
        asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{PG_TEMPLATE}"', f'CREATE DATABASE "{PG_TEMPLATE}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is required in CI and unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    migrate.upgrade(_pg_url(PG_TEMPLATE))
    yield PG_TEMPLATE
    asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{PG_TEMPLATE}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def postgres_url(pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database of the test's own."""
    name = f"nw_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    try:
        yield _pg_url(name)
    finally:
        asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "novawrite.sqlite3"
        shutil.copyfile(template, path)
        return f"sqlite+aiosqlite:///{path}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key-that-is-long-enough-for-hs256",
        demo_delay_ms=0,
        sweep_seconds=60.0,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
    )


@dataclass
class Api:
    """An httpx client on the app, with helpers for accounts."""

    client: httpx.AsyncClient
    app: Any

    @property
    def services(self) -> Any:
        return self.app.state.novawrite

    async def register(self, username: str = "alice", password: str = "correct horse") -> dict[str, str]:
        """Register and log in; returns the Authorization header."""
        r = await self.client.post("/api/auth/register", json={"username": username, "password": password})
        assert r.status_code == 201, r.text
        r = await self.client.post("/api/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        self.client.cookies.clear()  # bearer only unless a test wants the cookie
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def novel(self, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
        body = {"title": "星河", "genre": "科幻", "synopsis": "少年在星际间寻找失落的家园。", **fields}
        r = await self.client.post("/api/novels", json=body, headers=headers)
        assert r.status_code == 201, r.text
        return dict(r.json())


async def make_api(settings: Settings, **app_kwargs: Any) -> AsyncIterator[Api]:
    from novawrite.app import create_app

    app = create_app(settings, **app_kwargs)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(client, app)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async for value in make_api(settings):
        yield value


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Playwright's sync API keeps an event loop running in the main thread until the
    # session ends, and the database fixtures use asyncio.run: browser tests go last.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
