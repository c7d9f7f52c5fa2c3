"""The engine's one-place helpers: the NOTIFY payload, the asyncpg DSN, the active statuses, the poll's headers."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from novawrite.db.models import ACTIVE_SQL, TaskStatus
from novawrite.db.raw import asyncpg_dsn
from novawrite.engine.events import EventKind, TaskEvent, event_data, running_data_sql
from novawrite.engine.notify import (
    Notification,
    claim_payload_sql,
    event_notification,
    notification,
    parse_notification,
)
from novawrite.services.task_views import TaskBody
from novawrite.web.api_tasks import _poll_headers

MIGRATIONS = Path(__file__).resolve().parents[1] / "alembic" / "versions"


def test_a_notification_reads_back_as_it_was_written() -> None:
    task = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert parse_notification(notification("host:1:ab", task, 7)) == Notification("host:1:ab", task, 7)
    assert parse_notification(notification("host:1:ab", task, 1, 42, pending=True)) == Notification(
        "host:1:ab", task, 1, 42, True
    )
    assert notification("host:1:ab", None, 0) == "host:1:ab * 0 0 0"  # any task may have changed
    assert parse_notification("host:1:ab * 0 0 0") == Notification("host:1:ab", None, 0)
    assert parse_notification("host:1:ab * 0") == Notification("host:1:ab", None, 0)  # an older process's


def test_an_event_notification_says_whose_task_and_whether_it_is_pending_now() -> None:
    task = "0f8fad5b-d9cb-469f-a165-70867728950e"
    submitted = TaskEvent.of(task, 42, 1, EventKind.STATUS, event_data(task, 1, TaskStatus.PENDING, 0, "Queued"))
    claimed = TaskEvent.of(task, 42, 2, EventKind.STATUS, event_data(task, 2, TaskStatus.RUNNING, 0, "Started"))
    chunk = TaskEvent.of(task, 42, 3, EventKind.CHUNK, event_data(task, 3, TaskStatus.RUNNING, 5, "", text="pending"))
    for event, pending in ((submitted, True), (claimed, False), (chunk, False)):
        heard = parse_notification(event_notification("o", event))
        assert heard[:5] == ("o", task, event.seq, 42, pending)
        assert heard.event() == event  # carried whole: relaying it reads nothing


def test_an_event_too_long_for_a_notification_is_named_but_not_carried() -> None:
    task = "0f8fad5b-d9cb-469f-a165-70867728950e"
    text = "长" * 3_000  # 9,000 bytes of UTF-8: past PostgreSQL's 8,000-byte payload
    chunk = TaskEvent.of(task, 42, 9, EventKind.CHUNK, event_data(task, 9, TaskStatus.RUNNING, 5, "", text=text))
    payload = event_notification("o", chunk)
    assert len(payload.encode()) < 8_000
    heard = parse_notification(payload)
    assert heard == Notification("o", task, 9, 42, False) and heard.event() is None


def test_the_asyncpg_dsn_keeps_everything_but_the_driver() -> None:
    url = "postgresql+asyncpg://nova:p%40ss@db.example:5433/novawrite?sslmode=require"
    assert asyncpg_dsn(url) == "postgresql://nova:p%40ss@db.example:5433/novawrite?sslmode=require"
    assert (
        asyncpg_dsn("postgresql+asyncpg://postgres@127.0.0.1:5432/test") == "postgresql://postgres@127.0.0.1:5432/test"
    )


def test_active_is_the_partial_index_text_the_migration_made() -> None:
    initial = next(MIGRATIONS.glob("0001_*.py")).read_text()
    assert f'sa.text("{ACTIVE_SQL}")' in initial


def test_a_polled_task_s_headers_are_encoded_once_per_change() -> None:
    body = TaskBody.of(1, b'{"id": "t"}')
    ok, not_modified = _poll_headers(body)
    assert _poll_headers(body)[0] is ok  # the second poll reuses them
    assert dict(ok) == {
        b"content-length": b"11",
        b"content-type": b"application/json",
        b"etag": body.etag.encode(),
        b"cache-control": b"private, no-cache",
    }
    assert dict(not_modified) == {b"etag": body.etag.encode(), b"cache-control": b"private, no-cache"}
    changed = TaskBody.of(1, b'{"id": "t", "seq": 2}')  # the task changed: a new body, new headers
    assert _poll_headers(changed)[0] is not ok and changed.etag != body.etag


async def test_a_claims_event_and_notification_built_by_postgresql_are_the_ones_python_writes(
    postgres_url: str,
) -> None:
    # The claim (CLAIM_PG) builds the running event's data and its NOTIFY payload in SQL; they must be the
    # bytes event_data() and event_notification() write (a message that needs escaping included).
    task, message = "0f8fad5b-d9cb-469f-a165-70867728950e", 'Started "now"\n\\ 开始'
    conn = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        data, payload = await conn.fetchrow(
            "SELECT data, "
            + claim_payload_sql("$6", "id", "seq::text", "user_id::text", "data")
            + " FROM (SELECT *, "
            + running_data_sql("id", "seq", "progress", "message", "attempt")
            + " AS data FROM (SELECT $1::text AS id, $2::int AS seq, $3::int AS progress, $4::text AS message,"
            " $5::int AS attempt, 42::bigint AS user_id) AS row) AS claimed",
            task,
            7,
            0,
            message,
            3,
            "host:1:ab",
        )
    finally:
        await conn.close()
    expected = event_data(task, 7, TaskStatus.RUNNING, 0, message, attempt=3)
    assert data == expected
    event = TaskEvent.of(task, 42, 7, EventKind.STATUS, expected)
    assert payload == event_notification("host:1:ab", event)
