"""The event bus: bounded per-subscriber queues, drops instead of blocking, unsubscribe on exit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from novawrite.engine import bus as bus_module
from novawrite.engine.bus import EventBus, Subscription
from novawrite.engine.events import TaskEvent
from tests.waiting import until


def _event(seq: int, task: str = "t1", user: int = 1) -> TaskEvent:
    return TaskEvent.of(task, user, seq, "progress", f'{{"seq": {seq}}}')


async def test_a_reader_that_falls_behind_is_dropped_and_others_keep_going() -> None:
    bus = EventBus(queue_size=3)
    async with bus.task("t1") as slow, bus.task("t1") as fast, bus.user(1) as per_user:
        for seq in range(1, 4):
            bus.publish(_event(seq))
            assert (await fast.get(timeout=1)).seq == seq  # type: ignore[union-attr]
        bus.publish(_event(4))  # slow has 3 queued already: dropped, never blocks the publisher
        assert slow.dropped and await slow.get(timeout=1) is None
        assert (await fast.get(timeout=1)).seq == 4  # type: ignore[union-attr]
        assert per_user.dropped  # the per-user reader read nothing either
        assert bus.dropped == 2
        assert bus.subscriber_count == 1
    assert bus.subscriber_count == 0


async def test_events_go_to_their_task_and_user_only() -> None:
    bus = EventBus()
    async with bus.task("t1") as mine, bus.user(2) as other_user:
        bus.publish(_event(1, task="t2", user=1))
        assert await mine.get(timeout=0.05) is None and not mine.dropped
        assert await other_user.get(timeout=0.05) is None
        bus.publish(_event(1, task="t1", user=2))
        assert (await mine.get(timeout=1)).task_id == "t1"  # type: ignore[union-attr]
        assert (await other_user.get(timeout=1)).user_id == 2  # type: ignore[union-attr]


async def test_close_all_ends_every_reader() -> None:
    bus = EventBus()
    async with bus.user(1) as reader:
        bus.close_all()
        assert await reader.get(timeout=1) is None and reader.closed


async def test_the_bus_keeps_each_tasks_last_seq_until_a_while_after_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    bus = EventBus()
    assert bus.last_seq("t1") is None
    for seq in (1, 2, 4, 3):  # a late event does not move it back
        bus.publish(_event(seq))
    assert bus.last_seq("t1") == 4
    bus.publish(TaskEvent.of("t1", 1, 5, "completed", '{"seq": 5}'))
    bus.publish(TaskEvent.of("t2", 1, 1, "completed", '{"seq": 1}'))
    assert (bus.last_seq("t1"), bus.last_seq("t2")) == (5, 1)  # kept for ENDED_KEPT_SECONDS after its end
    monkeypatch.setattr(bus_module, "ENDED_KEPT_SECONDS", -1.0)
    bus.publish(TaskEvent.of("t3", 1, 1, "failed", '{"seq": 1}'))
    assert (bus.last_seq("t1"), bus.last_seq("t2"), bus.last_seq("t3")) == (None, None, 1)


class Timers:
    """The bus's clock and timers, moved on by the test."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pending: list[asyncio.TimerHandle] = []
        self._loop = asyncio.get_running_loop()

    def clock(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        handle = asyncio.TimerHandle(when, callback, (), self._loop)
        self.pending.append(handle)
        return handle

    def advance_to(self, now: float) -> None:
        self.now = now
        due = [h for h in self.pending if h.when() <= now and not h.cancelled()]
        self.pending = [h for h in self.pending if h not in due]
        for handle in due:
            handle._run()


async def read_in_wakes(subscription: Subscription, wakes: list[list[int]]) -> None:
    """What a stream does: at each wake-up, the event and every one already queued (one write)."""
    while (first := await subscription.get()) is not None:
        batch = [first.seq]
        while (queued := subscription.ready()) is not None:
            batch.append(queued.seq)
        wakes.append(batch)


async def test_a_crowd_of_readers_is_woken_at_a_pace_and_a_few_readers_at_once() -> None:
    timers = Timers()
    # from 3 readers, a group's wake-ups are 3 x 0.1 s apart at least
    bus = EventBus(pace_from=3, pace_per_reader=0.1, clock=timers.clock, call_at=timers.call_at)
    crowd: list[list[list[int]]] = [[], [], []]
    few: list[list[list[int]]] = [[], []]
    async with bus.task("t1") as a, bus.task("t1") as b, bus.task("t1") as c, bus.task("t2") as d, bus.task("t2") as e:
        readers = [asyncio.create_task(read_in_wakes(s, w)) for s, w in zip((a, b, c, d, e), crowd + few, strict=True)]

        async def woken(wakes: list[list[list[int]]], expected: list[list[int]]) -> None:
            async def seen() -> bool:
                return all(w == expected for w in wakes)

            await until(seen, 5, f"every reader woken for {expected}, not {wakes}")

        async def let_readers_run() -> None:
            for _ in range(10):
                await asyncio.sleep(0)  # not a wait for time: the readers' turn on the loop

        bus.publish(_event(1))  # the crowd was quiet: woken at once
        await woken(crowd, [[1]])
        timers.advance_to(0.1)
        bus.publish(_event(2))
        bus.publish(_event(3))
        late: list[list[int]] = []
        async with bus.task("t1") as newcomer:  # joins after them: nothing to wake it for
            listening = asyncio.create_task(read_in_wakes(newcomer, late))
            await let_readers_run()
            assert crowd == [[[1]]] * 3  # held until 0.3
            timers.advance_to(0.35)
            await woken(crowd, [[1], [2, 3]])  # both in one write
            await let_readers_run()
            assert late == [] and not listening.done()  # not woken with nothing to send (a stream would ping)
        await asyncio.wait_for(listening, 5)
        bus.publish(_event(4))  # just woken at 0.35: the next is due at 0.65
        await let_readers_run()
        assert crowd == [[[1], [2, 3]]] * 3
        timers.advance_to(0.7)
        await woken(crowd, [[1], [2, 3], [4]])
        timers.advance_to(1.5)
        bus.publish(_event(5))  # quiet long enough: at once again
        await woken(crowd, [[1], [2, 3], [4], [5]])

        for seq in (1, 2):  # two readers of another task: woken at every event, nothing held
            bus.publish(_event(seq, task="t2"))
            await woken(few, [[s] for s in range(1, seq + 1)])

        timers.advance_to(1.6)
        bus.publish(_event(6))
        assert len(timers.pending) == 1
        bus.close_all()  # a shutdown drops the pending wake-up and ends every reader
        assert timers.pending[0].cancelled()
        await asyncio.wait_for(asyncio.gather(*readers), 5)


async def test_a_crowd_that_leaves_takes_its_pacing_with_it() -> None:
    timers = Timers()
    bus = EventBus(pace_from=2, pace_per_reader=0.1, clock=timers.clock, call_at=timers.call_at)
    for held in (False, True):  # woken at once (no timer left behind), or with a wake-up pending
        async with bus.task("t1"), bus.task("t1"):
            bus.publish(_event(1))
            if held:
                bus.publish(_event(2))
                assert len(timers.pending) == 1
        assert bus._paces == {}  # a process that served many crowds keeps nothing of them
        assert all(h.cancelled() for h in timers.pending)
        timers.advance_to(timers.now + 1)
