"""The event bus: bounded per-subscriber queues, drops instead of blocking, unsubscribe on exit."""

from __future__ import annotations

import pytest

from novawrite.engine import bus as bus_module
from novawrite.engine.bus import EventBus
from novawrite.engine.events import TaskEvent


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
