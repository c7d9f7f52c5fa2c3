"""Group commit: writes of several tasks that arrive together share one transaction, each
is published after it, and one the database refuses (or whose lease is gone) fails alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select, text

from novawrite.db.engine import Database
from novawrite.db.models import TaskEvent, utcnow
from novawrite.db.raw import IntegrityError
from novawrite.engine.bus import EventBus
from novawrite.engine.events import EventKind, event_data
from novawrite.engine.events import TaskEvent as StoredEvent
from novawrite.engine.store import Claimed, LeaseLost, TaskStore
from novawrite.settings import Settings
from tests.conftest import make_api

OWNER = "group-commit-test"


@dataclass
class Kit:
    db: Database
    bus: EventBus
    store: TaskStore
    user_id: int
    novel_ids: list[int]


@pytest.fixture
async def kit(settings: Settings) -> AsyncIterator[Kit]:
    """A user with three novels (made through the app, which is then shut down) and a store of our own."""
    async for api in make_api(settings):
        h = await api.register()
        novel_ids = [int((await api.novel(h, title=f"Novel {n}"))["id"]) for n in range(3)]
    db = Database(settings.database_url)
    async with db.read() as conn:
        user_id = int((await conn.execute(text("SELECT id FROM users WHERE username = 'alice'"))).scalar_one())
    bus = EventBus(100)
    try:
        yield Kit(db, bus, TaskStore(db, bus, origin=OWNER), user_id, novel_ids)
    finally:
        await db.dispose()


async def _insert(kit: Kit, novel_id: int, key: str | None = None) -> str:
    task_id = str(uuid.uuid4())
    await _insert_task(kit, task_id, novel_id, idempotency_key=key)
    return task_id


async def _insert_task(kit: Kit, task_id: str, novel_id: int, **fields: Any) -> StoredEvent | None:
    """``store.insert_task`` of a new task (an outline unless ``fields`` say otherwise)."""
    return await kit.store.insert_task(
        **{
            "task_id": task_id,
            "user_id": kit.user_id,
            "novel_id": novel_id,
            "task_type": "generate_outline",
            "scope": 0,
            "message": "Queued",
            "params": {},
            "attempt": 1,
            "retry_of": None,
            "idempotency_key": None,
            "request_hash": None,
            "now": utcnow(),
            **fields,
        }
    )


async def _stored_events(kit: Kit) -> int:
    async with kit.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(TaskEvent))).scalar_one())


async def _claimed(kit: Kit) -> list[Claimed]:
    """One running task on each of the user's novels, claimed by ``OWNER``."""
    for n in kit.novel_ids:
        await _insert(kit, n)
    claimed = [task for _ in kit.novel_ids for task in await kit.store.claim_oldest([kit.user_id], OWNER, 30.0)]
    assert len(claimed) == len(kit.novel_ids)
    return claimed


async def test_a_write_the_database_refuses_fails_alone(kit: Kit) -> None:
    # Two tasks of one user given the same idempotency key: the unique index refuses the second.
    first, second, third = await _claimed(kit)
    refused_later = "UPDATE tasks SET idempotency_key = 'same', seq = $2 WHERE pk = $1 RETURNING pk"
    before = await _stored_events(kit)
    writes = []
    for task in (first, second, third):
        event = _progress_event(task)
        sql = refused_later if task is not third else "UPDATE tasks SET seq = $2 WHERE pk = $1 RETURNING pk"
        writes.append(kit.store._append(sql, (task.pk, event.seq), event, utcnow()))
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert results[0] is True and results[2] is True, results
    assert isinstance(results[1], IntegrityError), results
    assert await _stored_events(kit) == before + 2  # the refused write stored no event
    assert kit.bus.published_by_kind[EventKind.PROGRESS] == 2


def _progress_event(task: Claimed) -> StoredEvent:
    """The task's next event: a progress step."""
    seq = task.seq + 1
    return StoredEvent.of(
        task.id, task.user_id, seq, EventKind.PROGRESS, event_data(task.id, seq, "running", 1, "step")
    )


async def test_progress_of_several_tasks_is_one_transaction_and_a_lost_lease_fails_alone(kit: Kit) -> None:
    claimed = await _claimed(kit)
    lost: Claimed = claimed[2]
    lost.seq += 5  # as if another process had moved the task on: this write is no longer ours

    before = kit.db.write_transactions
    results = await asyncio.gather(
        *(kit.store.record(c, OWNER, EventKind.PROGRESS, 10, "Writing", text="Once") for c in claimed),
        return_exceptions=True,
    )
    assert kit.db.write_transactions == before + 1
    assert isinstance(results[2], LeaseLost) and not isinstance(results[0], BaseException)
    assert [c.seq for c in claimed[:2]] == [3, 3]
    for c in claimed[:2]:
        row = await kit.store.row(c.id)
        assert row is not None and row.output == "Once" and row.seq == 3
    assert kit.bus.published_by_kind[EventKind.PROGRESS] == 2


async def test_a_writer_cancelled_while_its_group_commits_still_learns_its_seq(kit: Kit) -> None:
    await _insert(kit, kit.novel_ids[0])
    (task,) = await kit.store.claim_oldest([kit.user_id], OWNER, 30.0)
    writer = asyncio.ensure_future(kit.store.record(task, OWNER, EventKind.CHUNK, 5, "Writing", text="Once"))
    await asyncio.sleep(0)  # one turn: the write is queued, its drain not yet run
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    assert task.seq == 3  # the write went through, and the runner knows it
    row = await kit.store.row(task.id)
    assert row is not None and row.seq == 3 and row.output == "Once"


async def test_a_progress_write_never_moves_a_renewed_lease_back(kit: Kit) -> None:
    # A progress write's lease is fixed when it is queued; a renewal may commit before it does.
    task = (await _claimed(kit))[0]
    renewed = await kit.store.renew(OWNER, 3600.0, [task.id])
    assert renewed == {task.id}
    before = await _lease(kit, task.pk)
    await kit.store.record(task, OWNER, EventKind.PROGRESS, 10, "still writing")  # its lease: now + 30 s
    assert await _lease(kit, task.pk) == before


async def _lease(kit: Kit, pk: int) -> object:
    async with kit.db.read() as conn:
        return (await conn.execute(text("SELECT lease_expires_at FROM tasks WHERE pk = :pk"), {"pk": pk})).scalar_one()


async def test_a_batch_that_lost_its_lease_queues_no_child(kit: Kit) -> None:
    batch = (await _claimed(kit))[0]

    async def child(scope: int) -> StoredEvent | None:
        return await _insert_task(
            kit,
            str(uuid.uuid4()),
            batch.novel_id,
            task_type="write_chapter_content",
            scope=scope,
            parent_id=batch.id,
            parent_owner=OWNER,
        )

    assert await child(1) is not None
    async with kit.db.write() as conn:  # another process took the batch over
        await conn.execute(text("UPDATE tasks SET owner = 'survivor:1:abc' WHERE pk = :pk"), {"pk": batch.pk})
    assert await child(2) is None
    async with kit.db.read() as conn:
        scopes = (await conn.execute(text("SELECT scope FROM tasks WHERE parent_id = :id"), {"id": batch.id})).all()
    assert [s for (s,) in scopes] == [1]
