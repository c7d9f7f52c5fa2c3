"""Two NovaWrite instances on one PostgreSQL database: events, wake-ups and cancels cross over."""

from __future__ import annotations


from tests.engine_kit import two_instances, wait_for_status


async def test_events_and_cancels_cross_instances(postgres_url: str) -> None:
    async for a, b, gate_a, gate_b in two_instances(postgres_url):
        h = await a.register()
        n1, n2 = (await a.novel(h))["id"], (await a.novel(h))["id"]
        r = await a.client.post("/api/ai/generate-outline", json={"novel_id": n1}, headers=h)
        first = r.json()["id"]
        # A runs it (its one slot); B hears every event of it on its own bus.
        async with b.services.bus.task(first) as watching:
            await gate_a.wait_started(1)
            assert gate_b.started == []
            # The second submit (to A, which is full) wakes B, which claims it.
            r = await a.client.post("/api/ai/generate-outline", json={"novel_id": n2}, headers=h)
            second = r.json()["id"]
            await gate_b.wait_started(1)
            assert gate_b.started == [n2]
            # A cancel sent to B for A's task: A stops it through the flag within 2 s.
            r = await b.client.post(f"/api/tasks/{first}/cancel", headers=h)
            assert r.status_code == 200
            await wait_for_status(b, h, first, {"cancelled"}, timeout=3)
            seen = []
            while not seen or not seen[-1].terminal:
                event = await watching.get(timeout=5)
                assert event is not None, "B missed events of A's task"
                seen.append(event)
            assert [e.kind for e in seen][-1] == "cancelled"
            assert [e.seq for e in seen] == list(range(seen[0].seq, seen[-1].seq + 1))
        gate_b.release_all.set()
        await wait_for_status(a, h, second, {"completed"})
