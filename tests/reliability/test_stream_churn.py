"""Stream churn (issue 6): clients connecting and disconnecting at random leak nothing.

``CLIENTS`` raw-socket clients (``SseSocket``: a thousand httpx streams would
cost the test more than the server) each open a stream, hold it for a random
while or a random number of events, drop it, and start over, for
``CHURN_SECONDS``, against one real server process while every user has a demo
chapter streaming. Each connection draws:

- the per-user stream (``/api/events``) or a per-task stream of the user's latest
  task, running or finished (a finished one replays and closes), half of the
  latter with a Last-Event-ID;
- how it ends: after a random hold, after a random number of events, or before
  the answer even arrives; by a clean close (FIN) or an abrupt reset (RST).

Rounds of the same churn come first, until the server's RSS (read once the
server is quiet) settles: it grew less than ``SETTLED`` over the last round. That
is the baseline. First-use allocations are not leaks, and neither is the
allocators' working set: the heap objects in use stay flat from round to round,
while the memory glibc and pymalloc keep for reuse rises round after round to a
plateau (measured in the long form: RSS after each 60 s round 163, 190, 195, 200,
201, 202 MiB, with the objects in use growing by 1 MiB a round, the polling
cache filling). A server whose RSS has not settled after ``WARM_UP_ROUNDS`` is
growing with the churn: the test fails there (an 8 KB leak per per-user stream,
put in to check, failed it in the long form: 177, 197, 221, 240, 254, 268 MiB).
After the churn, with the workload stopped and every client gone:

- the live subscribers (/metrics ``novawrite_stream_subscribers``) drop to 0,
  waited on with a deadline since the server notices disconnects asynchronously;
- the server's RSS is within 10% of the baseline;
- the server logged no error.

Every stream is also checked on the way: a per-task stream delivers seqs
after+1, after+2... with no gap or duplicate and nothing after the terminal
event; the per-user stream starts with its snapshot and delivers each task's
events in order, with no gap or repeat. Choices are drawn from the printed seed
(``NOVAWRITE_RELIABILITY_SEED`` replays it).
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from dataclasses import dataclass, field

import httpx
import pytest

from tests.reliability.chapter_kit import reliability_seed
from tests.reliability.conftest import scale
from tests.reliability.sse_clients import SseSocket, StreamClosed, logged_errors, rss_bytes, subscribers
from tests.server import Api, ServerProcess, Servers, Sse, servers  # noqa: F401 (fixture)
from tests.waiting import until

pytestmark = pytest.mark.server

CLIENTS = int(scale(150, 1000))
CHURN_SECONDS = scale(6, 60)
WARM_UP_SECONDS = scale(3, 30)
WARM_UP_ROUNDS = 6
SETTLED = 0.03
USERS = 4
MAX_HOLD_SECONDS = scale(3, 20)
MEMORY_TOLERANCE = 0.10
#: The workload: each user writes one chapter after another, in ~10 chunk events.
DEMO_DELAY_MS = 50
CHAPTER_WORDS = 500
CHAPTERS = 5
#: Seconds. The churn can keep the server busy enough (more so on a shared machine) that
#: a chapter takes 10 s and a request waits more than httpx's usual 10 s; the test is
#: about what the churn leaves behind, not how fast the server answers meanwhile.
PATIENCE = 60
CONNECT_TIMEOUT = 10


@dataclass
class User:
    api: Api
    novel_id: int
    chapter_ids: list[int]
    latest_task: str = ""

    @property
    def token(self) -> str:
        return self.api.token or ""


@dataclass
class Plan:
    """What one connection does."""

    path: str
    per_task: bool
    last_event_id: int | None
    hold: float
    max_events: int | None
    leave_before_answer: bool
    abrupt: bool

    @classmethod
    def draw(cls, rng: random.Random, user: User, deadline: float) -> Plan:
        per_task = bool(user.latest_task) and rng.random() < 0.6
        return cls(
            path=f"/api/tasks/{user.latest_task}/events" if per_task else "/api/events",
            per_task=per_task,
            last_event_id=rng.randint(0, 20) if per_task and rng.random() < 0.5 else None,
            hold=min(rng.uniform(0, MAX_HOLD_SECONDS), deadline - time.monotonic()),
            max_events=rng.randint(1, 10) if rng.random() < 0.3 else None,
            leave_before_answer=rng.random() < 0.1,
            abrupt=rng.random() < 0.5,
        )


@dataclass
class Tally:
    """What the clients did and saw."""

    connections: int = 0
    answered: int = 0
    events: collections.Counter[str] = field(default_factory=collections.Counter)
    closes: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    violations: list[str] = field(default_factory=list)

    def check(self, plan: Plan, client: SseSocket) -> None:
        """The stream's protocol: record what breaks it."""
        if client.status == 0:
            return
        self.answered += 1
        if client.status != 200:
            self.violations.append(f"{plan.path}: status {client.status}")
            return
        self.events["per-task" if plan.per_task else "per-user"] += len(client.events)
        problem = task_stream_problem(plan, client.events) if plan.per_task else user_stream_problem(client.events)
        if problem:
            self.violations.append(f"{plan.path} (Last-Event-ID {plan.last_event_id}): {problem}")


def task_stream_problem(plan: Plan, events: list[Sse]) -> str | None:
    after = plan.last_event_id or 0
    seqs = [e.seq for e in events]
    if seqs != list(range(after + 1, after + 1 + len(seqs))):
        return f"seqs {seqs}"
    if any(e.terminal for e in events[:-1]):
        return f"events after the terminal one: {[e.kind for e in events]}"
    return None


def user_stream_problem(events: list[Sse]) -> str | None:
    if not events:
        return None
    if events[0].kind != "snapshot" or events[0].id is not None:
        return f"first event {events[0].kind} id {events[0].id}, not the snapshot"
    last: dict[str, int] = {}
    for event in events[1:]:
        data = event.json
        task_id, seq = data["task_id"], data["seq"]
        if task_id in last and seq != last[task_id] + 1:
            return f"task {task_id}: seq {seq} after {last[task_id]}"
        last[task_id] = seq
    return None


async def one_connection(port: int, user: User, plan: Plan, tally: Tally) -> None:
    tally.connections += 1
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            client = await SseSocket.connect(port)
    except (OSError, TimeoutError) as exc:
        tally.errors[f"connect: {type(exc).__name__}"] += 1
        return
    try:
        await client.get(plan.path, user.token, plan.last_event_id)
        if not plan.leave_before_answer:
            await read_for_a_while(client, plan)
    except (OSError, StreamClosed) as exc:
        tally.errors[type(exc).__name__] += 1
    finally:
        client.close(abrupt=plan.abrupt)
        tally.closes["abrupt" if plan.abrupt else "clean"] += 1
    tally.check(plan, client)


async def read_for_a_while(client: SseSocket, plan: Plan) -> None:
    """Until the hold time is up, ``max_events`` have come, or the server ends the stream."""
    try:
        async with asyncio.timeout(plan.hold):
            if await client.read_head() != 200:
                return
            while await client.next_event() is not None:
                if plan.max_events is not None and len(client.events) >= plan.max_events:
                    return
    except TimeoutError:
        pass


async def churn(port: int, users: list[User], seconds: float, rng: random.Random, tally: Tally) -> None:
    deadline = time.monotonic() + seconds

    async def client(seed: int) -> None:
        own = random.Random(seed)
        while time.monotonic() < deadline:
            user = own.choice(users)
            plan = Plan.draw(own, user, deadline)
            started = time.monotonic()
            await one_connection(port, user, plan, tally)
            # A stream that ended early leaves its client idle for the rest of its hold, as a
            # browser waits before it reconnects: new connections arrive at CLIENTS / mean hold
            # per second, not as fast as finished tasks' streams can replay and close.
            await asyncio.sleep(max(0.0, plan.hold - (time.monotonic() - started)))

    await asyncio.gather(*(client(rng.randrange(2**32)) for _ in range(CLIENTS)))


async def keep_writing(user: User, stop: asyncio.Event) -> int:
    """The workload: one chapter after another until ``stop``; how many were written."""
    written = 0
    while not stop.is_set():
        chapter_id = user.chapter_ids[written % len(user.chapter_ids)]
        body = {"novel_id": user.novel_id, "chapter_id": chapter_id, "target_words": CHAPTER_WORDS, "overwrite": True}
        r = await user.api.post("/api/ai/write-chapter-content", json=body)
        assert r.status_code == 202, r.text
        user.latest_task = r.json()["id"]
        done = await user.api.wait_task(user.latest_task, timeout=PATIENCE)
        assert done["status"] == "completed", done
        written += 1
    return written


async def churn_with_workload(
    server: ServerProcess, users: list[User], seconds: float, rng: random.Random, probe: Api
) -> tuple[Tally, int, int]:
    """Churn while every user writes; then wait until the server is quiet. (tally, chapters, peak subscribers)"""
    tally = Tally()
    stop = asyncio.Event()
    writers = [asyncio.create_task(keep_writing(user, stop), name=f"writer {i}") for i, user in enumerate(users)]
    peak = 0

    async def watch_peak() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, await subscribers(probe))
            await asyncio.sleep(0.5)  # a sample rate, not a wait for something

    watcher = asyncio.create_task(watch_peak(), name="peak subscribers")
    try:
        await churn(server.port, users, seconds, rng, tally)
    finally:
        stop.set()
        written = sum(await asyncio.gather(*writers))
        await watcher

    async def quiet() -> bool:
        return await subscribers(probe) == 0

    await until(quiet, PATIENCE, "every stream's subscription released")
    return tally, written, peak


def report(name: str, tally: Tally, written: int, peak: int, seconds: float) -> None:
    print(
        f"{name}: {CLIENTS} clients, {seconds:.0f} s: {tally.connections} connections "
        f"({tally.connections / seconds:.0f}/s), {tally.answered} answered, events {dict(tally.events)}, "
        f"closes {dict(tally.closes)}, errors {dict(tally.errors)}, {written} chapters written, "
        f"peak {peak} subscribers"
    )


def settled(sizes: list[int]) -> bool:
    return len(sizes) >= 2 and sizes[-1] <= sizes[-2] * (1 + SETTLED)


def mib(sizes: list[int]) -> str:
    return ", ".join(f"{size / 2**20:.1f}" for size in sizes)


def patient_api(server: ServerProcess) -> Api:
    api = Api(server.url)
    api.client.timeout = httpx.Timeout(PATIENCE)
    return api


async def a_user(server: ServerProcess, index: int) -> User:
    api = await patient_api(server).sign_up(f"churn{index}")
    novel = await api.novel(language="en")
    outline = await api.outline(novel["id"], volumes=1, chapters_per_volume=CHAPTERS)
    assert (await api.wait_task(outline["id"]))["status"] == "completed"
    full = (await api.get(f"/api/novels/{novel['id']}")).json()
    return User(api, int(novel["id"]), [c["id"] for c in full["volumes"][0]["chapters"]])


async def test_churning_clients_leave_no_subscriber_and_no_memory_behind(servers: Servers) -> None:
    rng = random.Random(reliability_seed())
    # CLIENTS streams spread over USERS users: well past the per-user limit, which is not what this tests.
    server = await servers.start(demo_delay_ms=DEMO_DELAY_MS, max_streams_per_user=CLIENTS)
    users = [await a_user(server, i) for i in range(USERS)]
    probe = patient_api(server)
    try:
        sizes: list[int] = []
        while not settled(sizes):
            if len(sizes) == WARM_UP_ROUNDS:
                pytest.fail(f"the server's RSS kept growing through the warm-up: {mib(sizes)} MiB")
            tally, written, peak = await churn_with_workload(server, users, WARM_UP_SECONDS, rng, probe)
            report(f"warm-up {len(sizes) + 1}", tally, written, peak, WARM_UP_SECONDS)
            sizes.append(rss_bytes(server.pid))
        baseline = sizes[-1]

        tally, written, peak = await churn_with_workload(server, users, CHURN_SECONDS, rng, probe)
        report("churn", tally, written, peak, CHURN_SECONDS)
        after = rss_bytes(server.pid)
        print(
            f"RSS: {mib(sizes)} MiB after the warm-up rounds, {after / 2**20:.1f} MiB after the churn "
            f"({(after - baseline) / baseline:+.1%})"
        )
    finally:
        for api in (probe, *(user.api for user in users)):
            await api.aclose()

    assert not tally.violations, tally.violations[:20]
    assert not tally.errors, tally.errors
    # The churn was real: every client came and went many times, on both kinds of stream, both ways.
    assert tally.connections >= 2 * CLIENTS, tally.connections
    assert tally.events["per-task"] > 0 and tally.events["per-user"] > 0, tally.events
    assert min(tally.closes.values()) > CLIENTS / 4 and len(tally.closes) == 2, tally.closes
    assert written >= USERS and peak >= CLIENTS / 10, (written, peak)
    assert after <= baseline * (1 + MEMORY_TOLERANCE), (baseline, after)
    errors = logged_errors(server)
    assert not errors, f"{len(errors)} error lines in the server log, the first: {errors[:4]}"
