"""A runner that lost its lease stops its work and writes nothing more for it.

In-process, on SQLite and PostgreSQL: the supervisor's lease keeper with a clock the
test moves on (``Supervisor.monotonic``), a database the test edits to play the
survivor that took a task over, and a store whose renewals the test makes fail to
play a process cut off from its database. The real-process version (a process
paused with SIGSTOP while another takes its chapter over) is in test_cluster.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from novawrite.db.models import Task, TaskEvent, utcnow
from novawrite.engine.supervisor import Supervisor
from novawrite.settings import Settings
from tests.conftest import Api, make_api
from tests.engine_kit import Gate, NullProvider, wait_for_status
from tests.waiting import until

LEASE = 30.0  # the default: the keeper looks every second, renews every 10 s


class Clock:
    """time.monotonic, moved on by the test: a pause of the whole process, as the process sees it."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.ahead


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def api(settings: Settings, gate: Gate, clock: Clock) -> AsyncIterator[Api]:
    async for api in make_api(
        settings.with_(lease_seconds=LEASE, sweep_seconds=3600),
        provider=NullProvider(),
        kinds={"generate_outline": gate.kind()},
    ):
        api.services.supervisor.monotonic = clock
        yield api


async def running_task(api: Api, gate: Gate) -> tuple[dict[str, str], int, str]:
    """A task that has stored its first progress and waits in its generator: (headers, novel id, task id)."""
    h = await api.register()
    novel_id = (await api.novel(h))["id"]
    r = await api.client.post("/api/ai/generate-outline", json={"novel_id": novel_id}, headers=h)
    assert r.status_code == 202, r.text
    await gate.wait_started(1)
    return h, novel_id, r.json()["id"]


async def stored(api: Api, task_id: str) -> tuple[Any, int]:
    """The task's row and how many events it has stored."""
    async with api.services.db.read() as conn:
        row = (await conn.execute(select(Task).where(Task.id == task_id))).one()
        events = (
            await conn.execute(select(func.count()).select_from(TaskEvent).where(TaskEvent.task_pk == row.pk))
        ).scalar_one()
    return row, int(events)


async def stopped(gate: Gate, novel_id: int, supervisor: Supervisor, what: str) -> None:
    async def runner_gone() -> bool:
        return novel_id in gate.cancelled and not supervisor.runners

    await until(runner_gone, 5, what)


async def test_a_runner_whose_task_was_taken_over_stops_and_writes_nothing(api: Api, gate: Gate, clock: Clock) -> None:
    supervisor = api.services.supervisor
    _, novel_id, task_id = await running_task(api, gate)
    # Another process took it over (this one was paused past its lease): its owner, a fresh lease.
    async with api.services.db.write() as conn:
        await conn.execute(
            update(Task)
            .where(Task.id == task_id)
            .values(owner="survivor:1:abc", lease_expires_at=utcnow() + timedelta(hours=1))
        )
    before, events = await stored(api, task_id)
    clock.ahead = LEASE / 3  # a renewal is due

    await stopped(gate, novel_id, supervisor, "the lease keeper stopped the runner of a task taken over")
    after, events_after = await stored(api, task_id)
    assert (after.status, after.owner, after.seq, after.progress) == ("running", "survivor:1:abc", before.seq, 10)
    assert events_after == events, "the stopped runner wrote an event"


@pytest.mark.parametrize("backend", ["postgres"])  # SQLite has one writer at a time: no such race
async def test_a_renewal_and_the_sweep_of_the_same_expired_lease_never_both_hold(api: Api, gate: Gate) -> None:
    # The sweep finds the lease expired and gives the task back; the owner's renewal (a slow
    # process, or clocks apart across machines) commits in between. Both holding would leave the
    # owner generating while another process claims the task.
    supervisor, store = api.services.supervisor, api.services.supervisor.store
    _, _, task_id = await running_task(api, gate)
    async with api.services.db.write() as conn:
        await conn.execute(
            update(Task).where(Task.id == task_id).values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    renewed: list[set[str] | None] = []
    write_with_event = store._write_with_event

    async def renewal_in_between(tx: Any, write: str, *args: Any) -> bool:
        try:  # the owner's renewal, from its own connection, while the sweep has read but not yet written
            renewed.append(await asyncio.wait_for(store.renew(supervisor.owner, LEASE, [task_id]), 1.0))
        except TimeoutError:
            renewed.append(None)  # it waits for the sweep's transaction
        return await write_with_event(tx, write, *args)

    store._write_with_event = renewal_in_between  # type: ignore[method-assign]
    requeued = await store.requeue_expired(supervisor.settings.max_attempts, "Interrupted")
    store._write_with_event = write_with_event  # type: ignore[method-assign]
    row, _ = await stored(api, task_id)
    assert renewed, "the sweep wrote nothing"
    assert not (renewed[0] and requeued), (renewed, requeued, row.status)


@pytest.mark.parametrize("database_answers", ["never", "with_an_error"])
async def test_a_runner_cut_off_from_the_database_stops_once_its_lease_runs_out(
    api: Api, gate: Gate, clock: Clock, database_answers: str
) -> None:
    supervisor, store = api.services.supervisor, api.services.supervisor.store
    asked: list[str] = []
    never = asyncio.Event()

    async def cut_off(*_: object) -> Any:
        asked.append("renew")
        if database_answers == "never":
            await never.wait()
        raise ConnectionError("the database does not answer")

    _, novel_id, task_id = await running_task(api, gate)
    before, events = await stored(api, task_id)
    store.renew = cut_off  # type: ignore[method-assign]
    store.cancel_requested = cut_off  # type: ignore[method-assign]
    clock.ahead = LEASE - 10  # a renewal due, and it does not go through; the lease not out yet: it keeps working

    async def renewal_tried() -> bool:
        return bool(asked)

    await until(renewal_tried, 5, "a renewal tried")
    assert supervisor.runners[task_id].stop_reason is None and novel_id not in gate.cancelled

    clock.ahead = LEASE + 1
    await stopped(gate, novel_id, supervisor, "the runner stopped once its lease ran out unrenewed")
    after, events_after = await stored(api, task_id)
    assert (after.status, after.owner, after.seq) == ("running", before.owner, before.seq)
    assert events_after == events, "the stopped runner wrote an event"


async def test_a_runner_paused_past_its_lease_that_nobody_took_goes_on(api: Api, gate: Gate, clock: Clock) -> None:
    supervisor = api.services.supervisor
    h, novel_id, task_id = await running_task(api, gate)
    clock.ahead = LEASE + 5  # paused past its lease; no other process swept it meanwhile

    async def renewed() -> bool:
        runner = supervisor.runners.get(task_id)
        return runner is not None and runner.confirmed > time.monotonic() + LEASE

    await until(renewed, 5, "the lease renewed after the pause")
    assert novel_id not in gate.cancelled
    gate.release(novel_id)
    done = await wait_for_status(api, h, task_id, {"completed", "failed", "cancelled"})
    assert done["status"] == "completed" and done["attempt"] == 1
