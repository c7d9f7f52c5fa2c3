"""Three ``novawrite serve`` processes on one PostgreSQL database: one queue, any process serves any client.

Each test starts three real server processes (tests/server.py) on a database of
its own. What a process did is read from three places: the task events (the
store's own history: a ``status: running`` event per claim, a terminal event per
end), the task rows (``owner`` is ``host:pid:random`` while a task runs, so it
names the process), and each process's log, whose lines ``task=... status=running
attempt=N`` and ``status=completed`` are the only owner history there is: the
store keeps the current owner alone and clears it when a task ends.

The dispatchers' periodic sweep is set to an hour where the test is about
wake-ups, so a claim that happened can only have come from a wake-up.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest

from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.script import Stream
from tests.reliability.chapter_kit import (
    PIECES,
    check_nothing_stuck,
    check_written_once,
    fake,  # noqa: F401 (fixture)
    novel_with_chapters,
    use_gemini,
    wait_all_finished,
)
from tests.server import Api, ServerProcess, Servers, Sse, api_on, assert_complete_log, servers  # noqa: F401
from tests.waiting import until

pytestmark = pytest.mark.server

HOUR = 3600
TRANSITION = re.compile(r"novawrite\.engine task=(?P<task>\S+) type=\S+ user=\d+ status=(?P<status>\w+) attempt=(\d+)")


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """Several processes need PostgreSQL: these tests run on it alone."""
    return postgres_url


# --- helpers ------------------------------------------------------------------------------------


async def start_three(servers: Servers, **env: object) -> list[ServerProcess]:
    return list(await asyncio.gather(*(servers.start(**env) for _ in range(3))))


def apis_for(processes: list[ServerProcess], token: str | None) -> list[Api]:
    return [Api(p.url, token) for p in processes]


async def close_all(apis: list[Api]) -> None:
    await asyncio.gather(*(api.aclose() for api in apis))


async def query(database_url: str, sql: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def stored_events(database_url: str, task_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each task's stored events in seq order: seq, kind, data (decoded), created_at."""
    rows = await query(
        database_url,
        "SELECT t.id, e.seq, e.kind, e.data, e.created_at FROM task_events e JOIN tasks t ON t.pk = e.task_pk "
        "WHERE t.id = ANY($1::text[]) ORDER BY t.id, e.seq",
        task_ids,
    )
    out: dict[str, list[dict[str, Any]]] = {task_id: [] for task_id in task_ids}
    for r in rows:
        out[r["id"]].append(
            {"seq": r["seq"], "kind": r["kind"], "data": orjson.loads(r["data"]), "at": r["created_at"]}
        )
    return out


def claims(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``status: running`` events: one per claim."""
    return [e for e in events if e["kind"] == "status" and e["data"]["status"] == "running"]


def requeues(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] == "status" and e["data"]["status"] == "pending" and e["seq"] > 1]


def transitions(server: ServerProcess) -> list[tuple[str, str, int]]:
    """(task id, status, attempt) of each task transition this process logged."""
    return [(m["task"], m["status"], int(m[3])) for m in TRANSITION.finditer(server.log_text())]


async def owner_of(database_url: str, task_id: str, processes: list[ServerProcess]) -> ServerProcess | None:
    """The process running the task now (its pid is in the owner id, host:pid:random)."""
    rows = await query(database_url, "SELECT owner FROM tasks WHERE id = $1 AND status = 'running'", task_id)
    if not rows or rows[0]["owner"] is None:
        return None
    pid = int(rows[0]["owner"].split(":")[-2])
    return next(p for p in processes if p.pid == pid)


async def wait_owner(database_url: str, task_id: str, processes: list[ServerProcess]) -> ServerProcess:
    found: list[ServerProcess] = []

    async def running() -> bool:
        owner = await owner_of(database_url, task_id, processes)
        if owner is not None:
            found.append(owner)
        return bool(found)

    await until(running, 15, f"task {task_id} claimed")
    return found[0]


async def chapter_task(api: Api, novel_id: int, chapter_id: int, target_words: int) -> str:
    body = {"novel_id": novel_id, "chapter_id": chapter_id, "target_words": target_words}
    r = await api.post("/api/ai/write-chapter-content", json=body)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def outlined_novel(api: Api, chapters: int) -> tuple[int, list[int]]:
    """A novel with one volume of ``chapters`` chapters (the demo provider writes the outline)."""
    novel = await api.novel()
    task = await api.outline(novel["id"], volumes=1, chapters_per_volume=chapters)
    assert (await api.wait_task(task["id"]))["status"] == "completed"
    full = (await api.get(f"/api/novels/{novel['id']}")).json()
    return int(novel["id"]), [c["id"] for v in full["volumes"] for c in v["chapters"]]


# --- the tests ----------------------------------------------------------------------------------


TASKS = 60


async def test_sixty_tasks_round_robin_each_claimed_once_and_completed_once(
    servers: Servers, database_url: str
) -> None:
    processes = await start_three(servers, demo_delay_ms=20, max_unfinished_per_user=TASKS + 10, sweep_seconds=HOUR)
    async with api_on(processes[0], "alice") as alice:
        apis = apis_for(processes, alice.token)
        try:
            novels = await asyncio.gather(*(apis[i % 3].novel() for i in range(TASKS)))
            started = time.monotonic()
            submitted = await asyncio.gather(
                *(apis[i % 3].outline(novel["id"], volumes=1, chapters_per_volume=2) for i, novel in enumerate(novels))
            )
            task_ids = [t["id"] for t in submitted]
            assert len(set(task_ids)) == TASKS
            await wait_all_finished(alice, timeout=60)
            print(f"{TASKS} tasks over 3 processes in {time.monotonic() - started:.2f} s")

            rows = await query(
                database_url, "SELECT id, status, owner, attempt FROM tasks WHERE id = ANY($1)", task_ids
            )
            assert {(r["status"], r["owner"], r["attempt"]) for r in rows} == {("completed", None, 1)}
            assert len(rows) == TASKS

            # The store's history: one claim, no requeue, one terminal event (completed, last), seqs 1..N.
            for task_id, events in (await stored_events(database_url, task_ids)).items():
                assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), task_id
                assert len(claims(events)) == 1 and not requeues(events), (task_id, [e["kind"] for e in events])
                terminal = [e["kind"] for e in events if e["kind"] in ("completed", "failed", "cancelled")]
                assert terminal == ["completed"] and events[-1]["kind"] == "completed", task_id

            # The processes' logs: each task started by exactly one process, completed once, by that same one.
            started_by: dict[str, list[int]] = {task_id: [] for task_id in task_ids}
            completed_by: dict[str, list[int]] = {task_id: [] for task_id in task_ids}
            for index, process in enumerate(processes):
                for task_id, status, _ in transitions(process):
                    if task_id in started_by:
                        {"running": started_by, "completed": completed_by}.get(status, {}).setdefault(
                            task_id, []
                        ).append(index)
            assert all(len(by) == 1 for by in started_by.values()), started_by
            assert completed_by == started_by
            share = Counter(by[0] for by in started_by.values())
            print(f"tasks run per process: {dict(sorted(share.items()))}")
            assert set(share) == {0, 1, 2}, f"a process claimed nothing: {share}"

            # Applied once: each novel got its one outline (one volume of two chapters) from its one task.
            for i, novel in enumerate(novels):
                full = (await apis[i % 3].get(f"/api/novels/{novel['id']}")).json()
                assert [[c["number"] for c in v["chapters"]] for v in full["volumes"]] == [[1, 2]], full["volumes"]
                listed = (await apis[i % 3].get(f"/api/novels/{novel['id']}/tasks")).json()["items"]
                assert [t["id"] for t in listed] == [task_ids[i]]
        finally:
            await close_all(apis)


async def test_a_stream_on_another_process_is_live_and_resumes_on_a_third(servers: Servers, database_url: str) -> None:
    processes = await start_three(servers, demo_delay_ms=30, sweep_seconds=HOUR)
    async with api_on(processes[0], "alice") as alice:
        apis = apis_for(processes, alice.token)
        try:
            novel_id, chapter_ids = await outlined_novel(alice, 2)
            task_id = await chapter_task(alice, novel_id, chapter_ids[0], target_words=1500)  # about 3.5 s
            runner = await wait_owner(database_url, task_id, processes)
            b, c = (apis[i] for i, p in enumerate(processes) if p is not runner)

            # On B, from the seq stored now: events come as the runner stores them, not in one burst at the end.
            seq_now = (await query(database_url, "SELECT seq FROM tasks WHERE id = $1", task_id))[0]["seq"]
            live: list[tuple[Sse, datetime]] = []
            path = f"/api/tasks/{task_id}/events"
            async with b.open_stream(path, headers={"Last-Event-ID": str(seq_now)}) as (_, items):
                async for item in items:
                    if item.comment is None:
                        live.append((item, datetime.now(UTC)))
                        if sum(e.kind == "chunk" for e, _ in live) >= 4:
                            break
            assert (await c.task(task_id))["status"] == "running", "the task ended before B's stream was read"
            assert live[0][0].seq == seq_now + 1
            assert [e.seq for e, _ in live] == list(range(seq_now + 1, seq_now + 1 + len(live)))
            stored = {e["seq"]: e["at"] for e in (await stored_events(database_url, [task_id]))[task_id]}
            delays = [(received - stored[e.seq]).total_seconds() for e, received in live]
            spread = (live[-1][1] - live[0][1]).total_seconds()
            print(
                f"B: {len(live)} live events over {spread:.2f} s, delay after storing max {max(delays) * 1000:.0f} ms"
            )
            assert spread >= 0.5, "chunks are flushed every 250 ms: four of them cannot come at once if live"
            assert max(delays) < 1.0, delays

            # On C, resumed after the last event B showed: the rest, without a gap, to the end.
            rest = await c.task_events(task_id, last_event_id=live[-1][0].seq)
            assert rest.closed and rest.events, "C's stream did not run to the task's end"
            assert rest.events[0].seq == live[-1][0].seq + 1
            full = await apis[processes.index(runner)].task_events(task_id)
            head = [e for e in full.events if e.seq <= seq_now]
            assert [e.key() for e in head + [e for e, _ in live] + rest.events] == [e.key() for e in full.events]
            assert_complete_log(full.events, task_id)
        finally:
            await close_all(apis)


async def test_a_cancel_sent_to_another_process_stops_the_runners_model_call(
    servers: Servers, fake: FakeGemini, database_url: str
) -> None:
    use_gemini(servers, fake)
    processes = await start_three(servers, sweep_seconds=HOUR)
    async with api_on(processes[0], "alice") as alice:
        apis = apis_for(processes, alice.token)
        try:
            novel_id, chapter_ids = await novel_with_chapters(alice, fake, 1)
            fake.push(Stream(PIECES, delay=0.05, hang_after=4))  # four pieces, then an open, silent stream
            task_id = await chapter_task(alice, novel_id, chapter_ids[0], target_words=2000)
            await fake.wait_until(lambda: fake.open_connections == 1, timeout=15)
            runner = await wait_owner(database_url, task_id, processes)
            others = [i for i, p in enumerate(processes) if p is not runner]
            abandoned = fake.abandoned

            started = time.monotonic()
            r = await apis[others[0]].post(f"/api/tasks/{task_id}/cancel")
            assert r.status_code == 200, r.text
            await fake.wait_until(lambda: fake.abandoned == abandoned + 1 and fake.open_connections == 0, timeout=2.0)
            print(f"the runner's model call closed {time.monotonic() - started:.2f} s after the cancel")

            done = await apis[others[1]].wait_task(task_id, timeout=5)
            assert done["status"] == "cancelled", done
            log = (await apis[others[1]].task_events(task_id)).events
            assert_complete_log(log, task_id, terminal="cancelled")
            assert (task_id, "cancelled", 1) in transitions(runner), "the runner itself did not end the task"
        finally:
            await close_all(apis)


async def listeners(database_url: str) -> int:
    """Connections listening for task events (one per process)."""
    rows = await query(
        database_url,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
        "AND query = 'LISTEN \"novawrite_events\"'",
    )
    return int(rows[0]["n"])


async def test_a_submit_on_a_full_process_wakes_an_idle_one(servers: Servers, database_url: str) -> None:
    # B has one slot and keeps it busy for the whole test.
    b = await servers.start(max_concurrency=1, demo_delay_ms=1000, sweep_seconds=HOUR)
    async with api_on(b, "alice") as on_b:
        first, second = (await on_b.novel())["id"], (await on_b.novel())["id"]
        busy = (await on_b.outline(first, volumes=2, chapters_per_volume=5))["id"]  # about 12 s
        assert await wait_owner(database_url, busy, [b]) is b

        idle = list(await asyncio.gather(*(servers.start(demo_delay_ms=20, sweep_seconds=HOUR) for _ in range(2))))

        async def all_listening() -> bool:
            return await listeners(database_url) == 3

        await until(all_listening, 15, "three processes listening")
        started = time.monotonic()
        woken = (await on_b.outline(second, volumes=1, chapters_per_volume=2))["id"]
        runner = await wait_owner(database_url, woken, [b, *idle])
        took = time.monotonic() - started
        print(f"claimed by an idle process {took * 1000:.0f} ms after the submit to the full one")
        assert runner in idle
        assert took < 3, "the idle processes sweep hourly: only a wake-up can have them claim it"
        assert (await on_b.wait_task(woken, timeout=15))["status"] == "completed"
        assert (await on_b.task(busy))["status"] == "running"


LEASE = 3
SWEEP = 0.5
MARGIN = 2.0


async def test_sigkill_one_of_three_mid_chapter_its_tasks_finish_on_the_others_once(
    servers: Servers, database_url: str
) -> None:
    processes = await start_three(servers, demo_delay_ms=40, lease_seconds=LEASE, sweep_seconds=SWEEP, max_attempts=5)
    async with api_on(processes[0], "alice") as alice:
        apis = apis_for(processes, alice.token)
        try:
            novel_id, chapter_ids = await outlined_novel(alice, 6)
            # about 6,000 characters each, 75 pieces 40 ms apart: 3 s per chapter
            task_ids = [
                await chapter_task(apis[i % 3], novel_id, chapter_id, target_words=1000)
                for i, chapter_id in enumerate(chapter_ids)
            ]

            async def all_writing() -> bool:
                rows = await query(
                    database_url,
                    "SELECT count(*) AS n FROM tasks WHERE id = ANY($1) AND status = 'running' AND output <> ''",
                    task_ids,
                )
                return int(rows[0]["n"]) == len(task_ids)

            await until(all_writing, 15, "every chapter running with text stored")
            owners = {task_id: await owner_of(database_url, task_id, processes) for task_id in task_ids}
            victim = Counter(owners.values()).most_common(1)[0][0]
            assert victim is not None
            lost = [task_id for task_id, owner in owners.items() if owner is victim]
            survivors = [p for p in processes if p is not victim]
            await victim.kill()
            killed_at = datetime.now(UTC)
            print(f"killed the process running {len(lost)} of {len(task_ids)} chapters")

            on_survivor = apis[processes.index(survivors[0])]
            await wait_all_finished(on_survivor, timeout=30)
            await check_written_once(on_survivor, task_ids)  # chunks add up to the text; applied once
            await check_nothing_stuck(database_url, task_ids)

            logged = [transitions(p) for p in processes]
            victim_log = logged[processes.index(victim)]
            events = await stored_events(database_url, task_ids)
            for task_id in task_ids:
                log = events[task_id]
                if task_id not in lost:
                    assert len(claims(log)) == 1 and not requeues(log), task_id
                    continue
                (requeue,) = requeues(log)
                assert "interrupted" in requeue["data"]["message"].lower(), requeue
                claim_times = [e["at"] for e in claims(log)]
                assert len(claim_times) == 2, claim_times
                recovered = (requeue["at"] - killed_at).total_seconds()
                reclaimed = (claim_times[1] - killed_at).total_seconds()
                completed = (log[-1]["at"] - killed_at).total_seconds()
                print(f"{task_id}: requeued {recovered:.2f} s, claimed {reclaimed:.2f} s, done {completed:.2f} s")
                assert recovered < LEASE + SWEEP + MARGIN and reclaimed < LEASE + SWEEP + MARGIN
                # the victim started it and never finished it; exactly one survivor started attempt 2 and finished it
                assert (task_id, "running", 1) in victim_log and not [
                    t for t in victim_log if t[:2] == (task_id, "completed")
                ]
                runs = [i for i, lines in enumerate(logged) if (task_id, "running", 2) in lines]
                ends = [i for i, lines in enumerate(logged) if (task_id, "completed", 2) in lines]
                assert len(runs) == 1 and runs == ends and processes[runs[0]] in survivors, (runs, ends)
            for task_id in task_ids:
                assert sum(t[:2] == (task_id, "completed") for lines in logged for t in lines) == 1, task_id
        finally:
            await close_all(apis)


async def test_sigterm_one_of_three_its_tasks_go_on_at_once_on_the_others(servers: Servers, database_url: str) -> None:
    # A long lease and an hourly sweep: only a wake-up can bring the given-back tasks to the others.
    quiet = {"demo_delay_ms": 40, "lease_seconds": 60, "sweep_seconds": HOUR}
    victim = await servers.start(**quiet)
    async with api_on(victim, "alice") as api:
        novel_id, chapter_ids = await outlined_novel(api, 2)
        # about 9 s each: still running when the other two are up
        task_ids = [await chapter_task(api, novel_id, chapter_id, target_words=3000) for chapter_id in chapter_ids]
        for task_id in task_ids:
            assert await wait_owner(database_url, task_id, [victim]) is victim
        others = list(await asyncio.gather(*(servers.start(**quiet) for _ in range(2))))

        async def all_listening() -> bool:
            return await listeners(database_url) == 3

        await until(all_listening, 15, "three processes listening")
        code, _ = await victim.terminate()
        assert code is not None
        stopped = time.monotonic()
        api.base_url = others[0].url
        for task_id in task_ids:
            rows = await query(database_url, "SELECT status, attempt FROM tasks WHERE id = $1", task_id)
            assert (rows[0]["status"], rows[0]["attempt"]) in {("pending", 2), ("running", 2)}, rows

        async def taken_over() -> bool:
            owners = [await owner_of(database_url, task_id, others) for task_id in task_ids]
            return all(owner is not None for owner in owners)

        await until(taken_over, 3, "the others claimed the tasks the stopped process gave back")
        print(f"taken over {time.monotonic() - stopped:.2f} s after the SIGTERMed process exited")
        await wait_all_finished(api, timeout=30)
        await check_written_once(api, task_ids)


async def test_a_process_paused_past_its_lease_stops_the_chapter_another_took_over(
    servers: Servers, fake: FakeGemini, database_url: str
) -> None:
    # A long provider timeout: only the lease keeper can end A's silent model call within the test.
    use_gemini(servers, fake)
    quick = {"lease_seconds": LEASE, "sweep_seconds": SWEEP, "provider_timeout_seconds": 120}
    a = await servers.start(**quick)
    b: ServerProcess | None = None
    async with api_on(a, "alice") as alice:
        try:
            novel_id, chapter_ids = await novel_with_chapters(alice, fake, 1)
            fake.push(Stream(PIECES, delay=0.05, hang_after=4))  # A: four pieces, then an open, silent stream
            task_id = await chapter_task(alice, novel_id, chapter_ids[0], target_words=2000)
            head = "".join(PIECES[:4])

            async def four_pieces_stored() -> bool:
                rows = await query(database_url, "SELECT output FROM tasks WHERE id = $1", task_id)
                return bool(rows[0]["output"] == head)

            await until(four_pieces_stored, 15, "A streaming, its first four pieces stored")
            assert fake.open_connections == 1
            b = await servers.start(**quick)
            fake.push(Stream(PIECES[4:], delay=0.3))  # B goes on from the stored text: about 2.4 s

            a.pause()
            runner = await wait_owner(database_url, task_id, [a, b])
            if runner is a:  # still A's lease: wait for the takeover
                await until(lambda: _owned_by(database_url, task_id, b, [a, b]), LEASE + SWEEP + MARGIN, "B takes over")
            await fake.wait_until(lambda: fake.open_connections == 2, timeout=10)  # A's silent call, B's
            abandoned = fake.abandoned

            resumed = time.monotonic()
            a.resume()
            await fake.wait_until(lambda: fake.abandoned == abandoned + 1, timeout=2.0)
            print(f"A closed its model call {time.monotonic() - resumed:.2f} s after it resumed")

            alice.base_url = b.url
            done = await alice.wait_task(task_id, timeout=30)
            assert done["status"] == "completed" and done["attempt"] == 2, done
            await check_written_once(alice, [task_id])  # the chunks add up to the text: A wrote nothing more
            await check_nothing_stuck(database_url, [task_id])
            log = (await stored_events(database_url, [task_id]))[task_id]
            assert len(claims(log)) == 2 and len(requeues(log)) == 1, log
            assert done["result"]["content"] == "".join(PIECES)
            ran_on_a = [t for t in transitions(a) if t[0] == task_id and t[1] != "pending"]  # A took the submit
            assert ran_on_a == [(task_id, "running", 1)], "A ended the task it had lost"
            assert f"task={task_id} stopped: another process runs it now" in a.log_text()
            assert [t for t in transitions(b) if t[0] == task_id] == [
                (task_id, "running", 2),
                (task_id, "completed", 2),
            ]
        finally:
            a.resume()  # never leave a stopped process to the teardown


async def _owned_by(database_url: str, task_id: str, process: ServerProcess, processes: list[ServerProcess]) -> bool:
    return await owner_of(database_url, task_id, processes) is process
