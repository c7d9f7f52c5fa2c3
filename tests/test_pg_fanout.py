"""Two NovaWrite instances on one PostgreSQL database: events, wake-ups and cancels cross over."""

from __future__ import annotations

from tests.engine_kit import first_to_start, two_instances, wait_for_status
from tests.waiting import until


async def test_events_and_cancels_cross_instances(postgres_url: str) -> None:
    async for a, b, gate_a, gate_b in two_instances(postgres_url):
        h = await a.register()
        n1, n2 = (await a.novel(h))["id"], (await a.novel(h))["id"]
        user_id = (await a.client.get("/api/auth/me", headers=h)).json()["id"]
        async with a.services.bus.user(user_id) as heard_by_a, b.services.bus.user(user_id) as heard_by_b:
            r = await a.client.post("/api/ai/generate-outline", json={"novel_id": n1}, headers=h)
            first = r.json()["id"]
            runner, other = await first_to_start(a, b, gate_a, gate_b)  # one slot each
            other_gate, watching = (gate_b, heard_by_b) if runner is a else (gate_a, heard_by_a)
            # The second submit, to the instance that is full, wakes the other one, which claims it.
            r = await runner.client.post("/api/ai/generate-outline", json={"novel_id": n2}, headers=h)
            second = r.json()["id"]
            await other_gate.wait_started(1)
            assert other_gate.started == [n2]
            # A cancel sent to the other instance for the runner's task: the runner stops it through the flag.
            r = await other.client.post(f"/api/tasks/{first}/cancel", headers=h)
            assert r.status_code == 200
            await wait_for_status(other, h, first, {"cancelled"}, timeout=3)
            # The other instance heard every event of the runner's task, in order, without a gap.
            seen = []
            while not seen or not seen[-1].terminal:
                event = await watching.get(timeout=5)
                assert event is not None, "an event of the other instance's task was not heard"
                if event.task_id == first:
                    seen.append(event)
            assert [e.kind for e in seen][-1] == "cancelled"
            assert [e.seq for e in seen] == list(range(1, seen[-1].seq + 1))
        gate_a.release_all.set()
        gate_b.release_all.set()
        await wait_for_status(a, h, second, {"completed"})


async def test_events_let_pass_unwatched_are_not_replayed_to_a_later_subscriber(postgres_url: str) -> None:
    # The instance that does not run the task follows it while a subscriber watches, lets its events
    # pass once nobody does, and must not hand a later subscriber all of those with the next one
    # (before: it read every event since the last it published and sent them all, old ones first).
    async for a, b, gate_a, gate_b in two_instances(postgres_url):
        h = await a.register()
        user_id = (await a.client.get("/api/auth/me", headers=h)).json()["id"]
        novel_id = (await a.novel(h))["id"]
        async with a.services.bus.user(user_id) as heard_by_a, b.services.bus.user(user_id) as heard_by_b:
            r = await a.client.post("/api/ai/generate-outline", json={"novel_id": novel_id}, headers=h)
            task_id = r.json()["id"]
            runner, other = await first_to_start(a, b, gate_a, gate_b)
            watching = heard_by_b if other is b else heard_by_a
            while (event := await watching.get(timeout=5)) is None or event.seq < 3:  # pending, running, started
                assert event is not None, "the other instance did not relay the task's first events"
        progress = runner.services.supervisor.runners[task_id].progress
        passed: list[str | None] = []
        other.services.bus.on_change(passed.append)
        for step in (20, 30, 40):  # seq 4 to 6, with nobody on the other instance watching
            await progress.update(step, f"step {step}")

        async def let_pass() -> bool:
            return passed.count(task_id) >= 3

        await until(let_pass, 5, "the other instance lets the unwatched events pass")
        async with other.services.bus.user(user_id) as later:
            await progress.update(50, "step 50")  # seq 7
            event = await later.get(timeout=5)
            assert event is not None and (event.task_id, event.seq) == (task_id, 7), event
        gate_a.release_all.set()
        gate_b.release_all.set()
        await wait_for_status(a, h, task_id, {"completed"})
