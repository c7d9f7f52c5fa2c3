"""What the fuzz and bad-input tests share: a seeded server per database, bad values, a table dump.

``world`` (a module-scoped fixture, parametrised over SQLite and PostgreSQL; import
it into the test module) copies the migrated template into a database of the
module's own, starts one real ``novawrite serve`` on it, and seeds it through the
API: a user ("author") with a novel, an outlined volume, a chapter written twice
(so it has a revision) and finished tasks; and a second user ("stranger") with a
novel, chapters and a task, whose ids the first user must never reach. Module
scope, because the fuzzer makes one test per operation and a server per test would
cost more than the tests.

``stored_rows`` reads every table straight from the database, for "nothing stored
changes" checks that do not go through the API they check.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from novawrite.db.models import Base
from tests.conftest import _pg_execute, _pg_url
from tests.server import Api, Servers, api_on, server_env

#: How long ``GET /api/events`` stays open: the fuzzer and the table call it often.
STREAM_SECONDS = 0.05

#: 10,000 characters: of text for bodies, of ASCII where it travels in the URL or a header
#: (servers cap a request line and its headers near 16 KiB, before the app sees them).
LONG_TEXT = "长" * 10_000
LONG_ASCII = "x" * 10_000
#: Path ids that cannot be a novel's or a chapter's (API.md: 404).
BAD_IDS = (
    "-1",
    "0",
    "abc",
    "99999999999999999999",
    "9" * 25,
    str(2**63),
    "1.0",
    "1e3",
    "+1",
    " 1",
    "0x1",
    "1_0",
    "١",
    "１",
    "%00",
    "null",
    "[]",
    "é",
    "😀",
    "\u202e1",
    "9" * 10_000,
    LONG_ASCII,
)
#: Path ids that cannot be a task's.
BAD_TASK_IDS = (
    "-1",
    "0",
    "abc",
    "99999999999999999999",
    "9" * 10_000,
    LONG_ASCII,
    str(uuid.UUID(int=0)),
    str(uuid.uuid4()),
    uuid.uuid4().hex,
    "{" + str(uuid.uuid4()) + "}",
    "urn:uuid:" + str(uuid.uuid4()),
    str(uuid.uuid4()) + "0",
    "é" * 36,
    "%00" * 12,
)
#: Last-Event-ID values that are not a non-negative integer: each counts as 0 (API.md).
NOT_AN_EVENT_ID = ("", "abc", "-1", "1.5", "+1", "0x10", "1e3", "١", "１", "null", "é", LONG_ASCII)
#: Last-Event-ID values past any seq: nothing to replay.
PAST_EVERY_EVENT_ID = (str(2**31), str(2**63), "9" * 25, "9" * 10_000)


@dataclass(frozen=True)
class Ids:
    """One user's objects, as path parameters (strings, the way they travel)."""

    novel_id: str
    chapter_id: str
    task_id: str
    volume_id: str
    revision_id: str
    character_id: str
    world_setting_id: str
    timeline_event_id: str
    foreshadowing_id: str

    def __getitem__(self, name: str) -> str:
        return str(getattr(self, name))


@dataclass(frozen=True)
class World:
    url: str
    database_url: str
    token: str
    mine: Ids
    theirs: Ids  # the other user's: always 404 for this user
    #: The seq of the last event of ``mine.task_id`` (a finished task).
    last_seq: int

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def _seed_user(api: Api, writes: int) -> Ids:
    """A novel with an outlined volume, ``writes`` finished writes of its first chapter and an edit of it, an item per list."""
    novel = await api.novel()
    task_id = (await api.outline(novel["id"], volumes=1, chapters_per_volume=2))["id"]
    await api.wait_task(task_id)
    detail = (await api.get(f"/api/novels/{novel['id']}")).json()
    chapter_id = detail["volumes"][0]["chapters"][0]["id"]
    for overwrite in (False, True)[:writes]:  # a second write keeps the first text as a revision
        r = await api.post(
            "/api/ai/write-chapter-content",
            json={"novel_id": novel["id"], "chapter_id": chapter_id, "target_words": 100, "overwrite": overwrite},
        )
        assert r.status_code == 202, r.text
        task_id = r.json()["id"]
        await api.wait_task(task_id)
    # The author's hand: an edit keeps the written text as a revision; one item of each list.
    r = await api.request("PATCH", f"/api/novels/{novel['id']}/chapters/{chapter_id}", json={"content": "edited"})
    assert r.status_code == 200, r.text
    revision_id = (await api.get(f"/api/novels/{novel['id']}/chapters/{chapter_id}/revisions")).json()["items"][0]["id"]
    items = {}
    for segment, key in (
        ("characters", "name"),
        ("world-settings", "name"),
        ("timeline-events", "title"),
        ("foreshadowings", "title"),
    ):
        r = await api.post(f"/api/novels/{novel['id']}/{segment}", json={key: f"seeded {segment}"})
        assert r.status_code == 201, r.text
        items[segment] = str(r.json()["id"])
    return Ids(
        str(novel["id"]),
        str(chapter_id),
        task_id,
        volume_id=str(detail["volumes"][0]["id"]),
        revision_id=str(revision_id),
        character_id=items["characters"],
        world_setting_id=items["world-settings"],
        timeline_event_id=items["timeline-events"],
        foreshadowing_id=items["foreshadowings"],
    )


async def _seed(servers: Servers) -> World:
    server = await servers.start(demo_delay_ms=0, stream_max_seconds=STREAM_SECONDS)
    async with api_on(server, "stranger") as other:
        theirs = await _seed_user(other, writes=1)
    async with api_on(server, "author") as api:
        mine = await _seed_user(api, writes=2)
        task = await api.task(mine.task_id)
        assert task["status"] == "completed", task
        last_seq = (await api.task_events(mine.task_id)).events[-1].seq
        assert api.token is not None
        return World(server.url, servers.database_url, api.token, mine, theirs, last_seq)


def _module_database(backend: str, request: pytest.FixtureRequest, workdir: Path) -> tuple[str, str | None]:
    """A migrated database of this module's own: (url, PostgreSQL database name to drop or None)."""
    if backend == "sqlite":
        path = workdir / "novawrite.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}", None
    template = request.getfixturevalue("pg_template")
    name = f"nw_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    return _pg_url(name), name


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp(f"world-{request.param}")
    database_url, pg_name = _module_database(request.param, request, workdir)
    servers = Servers(database_url, workdir, server_env(database_url))
    failed_before = request.session.testsfailed
    try:
        yield asyncio.run(_seed(servers))
    finally:
        for server in servers.started:
            server.stop_sync()
        if request.session.testsfailed != failed_before:  # show what the server said about the failures
            for server in servers.started:
                print(f"===== {server.log.name} =====\n{server.log_text()[-20000:]}")
        if pg_name is not None:
            asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))


async def stored_rows(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return {
                table.name: [tuple(row) for row in await conn.execute(select(table).order_by(*table.primary_key))]
                for table in Base.metadata.sorted_tables
            }
    finally:
        await engine.dispose()
