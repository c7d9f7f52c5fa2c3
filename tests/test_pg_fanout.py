"""Two NovaWrite instances on one PostgreSQL database: events, wake-ups and cancels cross over."""

from __future__ import annotations

from tests.engine_kit import first_to_start, two_instances, wait_for_status


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
