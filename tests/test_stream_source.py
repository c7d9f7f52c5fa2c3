"""What a stream sends (``engine/streams.py``), without HTTP: the real app's database, supervisor and
EventBus in-process, a scripted generation kind (``Gate``), and the stream's items read one by one."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from novawrite.engine.bus import EventBus
from novawrite.engine.events import TaskEvent
from novawrite.engine.streams import EventStreams, Snapshot
from novawrite.errors import NotFound, TooManyStreams
from novawrite.generators.base import RetryPolicy
from novawrite.settings import Settings
from tests.conftest import Api, make_api
from tests.engine_kit import Gate, GateParams, NullProvider
from tests.waiting import until

Item = TaskEvent | Snapshot | None


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
async def app(settings: Settings, gate: Gate) -> AsyncIterator[Api]:
    async for api in make_api(
        settings, provider=NullProvider(), kinds={"generate_outline": gate.kind()}, retry=RetryPolicy(base=0.01)
    ):
        yield api


@dataclass
class World:
    app: Api
    gate: Gate
    user_id: int
    novels: dict[str, int] = field(default_factory=dict)  # task id -> its novel

    @property
    def services(self) -> Any:
        return self.app.services

    def streams(self, bus: EventBus | None = None, **settings: float) -> EventStreams:
        """The app's own stream source, or one on another bus (the test publishes on it), or other settings."""
        s = self.services
        if bus is None and not settings:
            return s.streams  # type: ignore[no-any-return]
        options = {"ping_seconds": 15.0, "max_seconds": 300.0, "per_user": 20, **settings}
        return EventStreams(
            bus or s.bus,
            s.tasks,
            ping_seconds=options["ping_seconds"],
            max_seconds=options["max_seconds"],
            per_user=int(options["per_user"]),
        )

    async def running_task(self) -> str:
        """A task whose generator has stored seq 1-3 (pending, running, progress 10) and waits on the gate."""
        novel = await self.services.novels.create(self.user_id, {"title": "T", "genre": "g", "synopsis": "s"})
        kind = self.services.kinds["generate_outline"]
        submitted = await self.services.tasks.submit(self.user_id, kind, GateParams(novel_id=novel["id"]), None)
        await self.gate.wait_started(len(self.gate.started) + 1)
        task_id = str(submitted.task["id"])
        self.novels[task_id] = int(novel["id"])
        return task_id

    async def finish(self, task_id: str) -> None:
        """Let the task end (seq 4 progress 90, seq 5 completed) and wait until both are stored."""
        self.gate.release(self.novels[task_id])

        async def stored() -> bool:
            row, events = await self.services.tasks.replay(self.user_id, task_id, 0)
            return row.status == "completed" and len(events) == 5

        await until(stored, 10, f"task {task_id} completed")


@pytest.fixture
async def world(app: Api, gate: Gate) -> World:
    user_id, _ = await app.services.users.register("alice", "correct horse")
    return World(app, gate, user_id)


async def take(items: AsyncIterator[Item], count: int, timeout: float = 10) -> list[Item]:
    async with asyncio.timeout(timeout):
        return [await anext(items) for _ in range(count)]


async def rest(items: AsyncIterator[Item], timeout: float = 10) -> list[Item]:
    """Everything until the stream ends by itself."""
    async with asyncio.timeout(timeout):
        return [item async for item in items]


def seqs(items: list[Item]) -> list[int]:
    assert all(isinstance(i, TaskEvent) for i in items), items
    return [i.seq for i in items]  # type: ignore[union-attr]


async def test_replay_then_live_until_the_terminal_event(world: World) -> None:
    task_id = await world.running_task()
    stream = world.streams().task(world.user_id, task_id, 0)
    replayed = await take(stream, 3)
    assert seqs(replayed) == [1, 2, 3]
    assert [e.kind for e in replayed] == ["status", "status", "progress"]  # type: ignore[union-attr]
    world.gate.release(world.novels[task_id])
    live = await rest(stream)
    assert seqs(live) == [4, 5] and live[-1].terminal  # type: ignore[union-attr]

    # The same log again, resumed after each seq: a finished task's stream replays and ends.
    _, stored = await world.services.tasks.replay(world.user_id, task_id, 0)
    for after in range(0, 7):
        again = await rest(world.streams().task(world.user_id, task_id, after))
        assert again == stored[after:], after  # the very events stored (their wire bytes too)


async def test_a_stream_skips_duplicates_and_fills_gaps_from_the_database(world: World) -> None:
    """Live events the replay already sent are skipped; one that arrives ahead of the next seq is
    preceded by the missing ones, read from the database. The test publishes on a bus of its own."""
    bus = EventBus()
    task_id = await world.running_task()
    stream = world.streams(bus).task(world.user_id, task_id, 0)
    assert seqs(await take(stream, 3)) == [1, 2, 3]  # subscribed to ``bus`` first, then replayed
    await world.finish(task_id)  # 4 and 5 are stored (and published on the app's bus, not this one)
    _, stored = await world.services.tasks.replay(world.user_id, task_id, 0)
    bus.publish(stored[1])  # seq 2 again
    bus.publish(stored[2])  # seq 3 again
    bus.publish(stored[4])  # seq 5: 4 is missing
    bus.publish(stored[3])  # 4, late: already sent by then
    assert seqs(await rest(stream)) == [4, 5]


def wire(event: TaskEvent | None) -> bytes:
    return b"ping;" if event is None else f"{event.task_id}:{event.seq};".encode()


def frames(item: object) -> list[str]:
    """The (task:seq) frames of one joined item."""
    assert isinstance(item, bytes), item
    return [f for f in item.decode().split(";") if f]


async def test_with_join_what_is_queued_goes_out_as_one_item(world: World) -> None:
    """A reader behind its stream gets what has queued up as one item (one send): the replay at once,
    then each wake-up's queued events, still without duplicates or gaps and ending at the terminal."""
    bus = EventBus()
    task_id = await world.running_task()
    task_stream = world.streams(bus).task(world.user_id, task_id, 0, wire, b"".join)
    assert frames(await anext(task_stream)) == [f"{task_id}:{seq}" for seq in (1, 2, 3)]  # the replay, one item
    await world.finish(task_id)
    _, stored = await world.services.tasks.replay(world.user_id, task_id, 0)
    user_stream = world.streams(bus).user(
        world.user_id, lambda i: b"" if isinstance(i, Snapshot) else wire(i), b"".join
    )
    assert await anext(user_stream) == b""  # the snapshot
    for event in (stored[2], stored[3], stored[2], stored[4]):  # 3 again, 4, 3 again, 5
        bus.publish(event)
    # The task stream: 4 and 5 in one item, the repeats left out; then it ends at the terminal.
    assert [frames(item) for item in await rest(task_stream)] == [[f"{task_id}:4", f"{task_id}:5"]]
    # The user stream relays what it is given, the four at once.
    assert frames(await anext(user_stream)) == [f"{task_id}:{seq}" for seq in (3, 4, 3, 5)]
    await user_stream.aclose()  # type: ignore[attr-defined]


async def test_the_user_stream_sends_a_snapshot_then_every_live_event_of_the_user(world: World) -> None:
    first = await world.running_task()
    stream = world.streams().user(world.user_id)
    snapshot = await take(stream, 1)
    assert isinstance(snapshot[0], Snapshot) and [t["id"] for t in snapshot[0].items] == [first]
    second = await world.running_task()  # created after the connection: from its seq 1
    live = await take(stream, 3)
    assert [(e.task_id, e.seq) for e in live] == [(second, 1), (second, 2), (second, 3)]  # type: ignore[union-attr]
    await world.finish(first)
    live = await take(stream, 2)
    assert [(e.task_id, e.seq) for e in live] == [(first, 4), (first, 5)]  # type: ignore[union-attr]
    await stream.aclose()  # type: ignore[attr-defined]


async def test_a_quiet_stream_pings_within_the_interval_of_whatever_went_out_last(world: World) -> None:
    ping = 0.25
    bus = EventBus()
    stream = world.streams(bus, ping_seconds=ping).user(world.user_id)
    arrivals: list[tuple[float, str]] = []
    events = iter(TaskEvent.of("t", world.user_id, seq, "progress", "{}") for seq in itertools.count(1))

    async def publish_at_odd_moments() -> None:
        for delay in (0.1, 0.37, 0.05, 0.3, 0.6):
            await asyncio.sleep(delay)  # a publisher's schedule, not a wait for something
            bus.publish(next(events))

    publisher = asyncio.create_task(publish_at_odd_moments(), name="publisher")
    try:
        async with asyncio.timeout(10):
            async for item in stream:
                arrivals.append((time.monotonic(), "ping" if item is None else type(item).__name__))
                if publisher.done() and item is None and arrivals[-2][1] != "ping":
                    break  # the ping after the last event
    finally:
        publisher.cancel()
        await stream.aclose()  # type: ignore[attr-defined]
    assert arrivals[0][1] == "Snapshot" and sum(1 for _, kind in arrivals if kind == "TaskEvent") == 5
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(arrivals)]
    assert max(gaps) < ping * 1.25, list(zip(gaps, arrivals[1:], strict=True))
    pings = [b for a, b in itertools.pairwise(arrivals) if b[1] == "ping"]
    assert pings and all(b[0] - a[0] > ping * 0.9 for a, b in itertools.pairwise(arrivals) if b[1] == "ping"), pings


async def test_streams_end_at_their_lifetime(world: World) -> None:
    task_id = await world.running_task()
    started = time.monotonic()
    user = await rest(world.streams(max_seconds=0.3).user(world.user_id))
    task = await rest(world.streams(max_seconds=0.3).task(world.user_id, task_id, 0))
    assert isinstance(user[0], Snapshot) and all(i is None for i in user[1:])
    assert seqs([i for i in task if i is not None]) == [1, 2, 3]  # no terminal event: the client resumes
    assert 0.6 <= time.monotonic() - started < 5


async def test_a_reader_that_falls_behind_or_a_closing_bus_ends_the_stream(world: World) -> None:
    for end in ("dropped", "closed"):
        bus = EventBus(queue_size=2)
        stream = world.streams(bus).user(world.user_id)
        assert isinstance((await take(stream, 1))[0], Snapshot)
        if end == "dropped":
            for seq in range(1, 4):  # one more than its queue holds, unread: the bus drops it
                bus.publish(TaskEvent.of("t", world.user_id, seq, "progress", "{}"))
        else:
            bus.close_all()  # server shutdown
        assert await rest(stream) == [], end
        assert bus.subscriber_count == 0


async def test_a_reader_leaving_unsubscribes(world: World) -> None:
    task_id = await world.running_task()
    bus = world.services.bus
    before = bus.subscriber_count
    task_stream = world.streams().task(world.user_id, task_id, 0)
    user_stream = world.streams().user(world.user_id)
    await take(task_stream, 3)
    await take(user_stream, 1)
    assert bus.subscriber_count == before + 2
    await task_stream.aclose()  # type: ignore[attr-defined]
    await user_stream.aclose()  # type: ignore[attr-defined]
    assert bus.subscriber_count == before


async def test_another_users_task_is_not_found(world: World) -> None:
    task_id = await world.running_task()
    mallory, _ = await world.services.users.register("mallory", "correct horse")
    with pytest.raises(NotFound):
        await take(world.streams().task(mallory, task_id, 0), 1)
    assert world.services.bus.subscriber_count == 0


async def test_each_user_has_a_bounded_number_of_stream_places(world: World) -> None:
    streams = world.streams(per_user=2)
    first, second = streams.open(1), streams.open(1)
    with pytest.raises(TooManyStreams) as refused:
        streams.open(1)
    assert refused.value.retry_after > 0
    other = streams.open(2)  # another user's places are their own
    first.release()
    first.release()  # a place is freed once, however often it is released
    assert streams.open_count(1) == 1
    third = streams.open(1)
    with pytest.raises(TooManyStreams):
        streams.open(1)
    for place in (second, third, other):
        place.release()
    assert streams.open_count(1) == streams.open_count(2) == 0
