"""Engine throughput: no-op tasks per second from submit to completed, beside saq's no-op jobs.

NovaWrite runs in this process: the real supervisor, store and ``Tasks.submit``
(the service layer under ``POST /api/ai/...``, without HTTP), with a registered
no-op kind whose run reports one progress event and has nothing to apply (no
``apply``, as the batch kind: its completion opens no ORM session; until
2026-12-05 it had an empty one: its cost is in bench/results/README.md). Every task
stores four events (pending, running, progress, completed) and every one of them
is published on the bus, where one reader per user (as ``GET /api/events``
would) counts the completions: the clock runs from the first submit until the
last ``completed`` event is received. Afterwards the stored events are counted
to prove none was skipped.

saq runs in this process too: ``Queue.from_url`` on Redis and on PostgreSQL,
one ``Worker`` with the same concurrency, a no-op function; the clock runs from
the first enqueue until the worker's ``after_process`` hook has seen the last
job finish.

Both sides submit from the same number of producer coroutines, as fast as they
can, while the worker drains; each trial gets a fresh database (or Redis queue
name); trials of every system are interleaved round by round, so a machine that
slows down during the run slows all of them. The engine's per-user caps are
raised (``max_running_per_user`` = concurrency, ``max_unfinished_per_user`` =
the task count) and the novels spread over several users, so that what is
measured is the engine, not its fairness limits. One small untimed trial of
each system comes first (imports, first-use caches). Beside tasks/s the table
shows this process's CPU time per task: NovaWrite's Python path is the bottleneck
on these machines, and CPU time is less noisy than wall time when other work
shares the cores.

``scripts/bench throughput [--tasks 2000] [--concurrency 5 50] [--rounds 3] [--producers 1 4] [--users 10]
[--systems novawrite saq] [--profile DIR] [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from bench.common import median, table, verdict
from bench.engine_kit import (
    BACKENDS,
    Engine,
    NullProvider,
    bounded,
    fresh_database,
    header,
    libpq_url,
    run,
    running_engine,
    seed_novels,
)
from novawrite.db.models import Task, TaskEvent, TaskStatus
from novawrite.engine.bus import Subscription
from novawrite.engine.events import EventKind
from novawrite.generators.base import GenerationContext
from novawrite.generators.kind import TaskKind
from novawrite.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379"
EVENTS_PER_TASK = 4  # pending, running, progress, completed
TRIAL_TIMEOUT = 600.0
WARMUP_TASKS = 50


# --- the no-op kind ----------------------------------------------------------------------


class NoopParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    novel_id: int


class NoopResult(BaseModel):
    ok: bool = True


async def generate_noop(ctx: GenerationContext) -> NoopResult:
    await ctx.progress.update(50, "working")
    return NoopResult()


NOOP = TaskKind(
    task_type="bench_noop",
    params=NoopParams,
    result=NoopResult,
    generate=generate_noop,
    apply=None,  # applies nothing: no ORM session at completion
)


# --- one trial ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    system: str  # "NovaWrite" or "saq"
    store: str  # sqlite, postgres, redis
    concurrency: int
    producers: int = 1

    @property
    def label(self) -> str:
        return (
            f"{self.system} on {STORE_NAMES[self.store]}, concurrency {self.concurrency}, {self.producers} producer(s)"
        )


STORE_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL", "redis": "Redis"}
SAQ_STORES = ("redis", "postgres")


@dataclass(frozen=True)
class Trial:
    config: Config
    tasks: int
    seconds: float
    submitted_after: float  # seconds until the last submit returned
    cpu_seconds: float  # this process's CPU time (all threads) over the same span

    @property
    def cpu_ms_per_task(self) -> float:
        return self.cpu_seconds / self.tasks * 1000

    @property
    def per_second(self) -> float:
        return self.tasks / self.seconds


async def _count_completions(subscription: Subscription, expected: int) -> None:
    done = 0
    while done < expected:
        event = await subscription.get(timeout=60)
        if event is None:
            if subscription.dropped or subscription.closed:
                raise RuntimeError("the completion reader was dropped by the bus")
            continue
        if event.kind == EventKind.COMPLETED:
            done += 1
        elif event.terminal:
            raise RuntimeError(f"task {event.task_id} ended {event.kind}: {event.data}")


async def _submit_all(engine: Engine, targets: list[tuple[int, int]], producers: int) -> None:
    pending = iter(targets)

    async def producer() -> None:
        for user_id, novel_id in pending:
            await engine.tasks.submit(user_id, NOOP, NoopParams(novel_id=novel_id), None)

    await asyncio.gather(*(producer() for _ in range(producers)))


async def _check_stored(engine: Engine, tasks: int) -> None:
    async with engine.db.read() as conn:
        completed = (
            await conn.execute(select(func.count()).select_from(Task).where(Task.status == TaskStatus.COMPLETED))
        ).scalar_one()
        events = (await conn.execute(select(func.count()).select_from(TaskEvent))).scalar_one()
    if completed != tasks or events != tasks * EVENTS_PER_TASK:
        raise RuntimeError(
            f"expected {tasks} completed tasks and {tasks * EVENTS_PER_TASK} events, got {completed} and {events}"
        )


async def novawrite_trial(url: str, config: Config, tasks: int, users: int, producers: int) -> Trial:
    settings = Settings(
        database_url=url,
        max_concurrency=config.concurrency,
        max_running_per_user=config.concurrency,
        max_unfinished_per_user=tasks,
        sweep_seconds=60.0,
        stream_queue_size=tasks * EVENTS_PER_TASK,
    )
    async with running_engine(settings, {NOOP.task_type: NOOP}, NullProvider()) as engine:
        targets = await seed_novels(engine.db, users, tasks)
        owned = Counter(user for user, _ in targets)
        async with AsyncExitStack() as stack:
            readers = [
                _count_completions(await stack.enter_async_context(engine.bus.user(user)), count)
                for user, count in owned.items()
            ]
            started, cpu = time.perf_counter(), time.process_time()
            everything = asyncio.gather(*readers)
            await _submit_all(engine, targets, producers)
            submitted = time.perf_counter() - started
            await bounded(everything, TRIAL_TIMEOUT, f"{tasks} completions ({config.label})")
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        await _check_stored(engine, tasks)
    return Trial(config, tasks, seconds, submitted, cpu)


async def saq_trial(url: str, config: Config, tasks: int, producers: int) -> Trial:
    from saq import Queue, Worker

    queue = Queue.from_url(url, name=f"bench-{uuid.uuid4().hex[:8]}")
    finished = 0
    all_finished = asyncio.Event()

    async def noop(ctx: Any) -> None:
        return None

    async def after_process(ctx: Any) -> None:
        nonlocal finished
        finished += 1
        if finished >= tasks:
            all_finished.set()

    worker = Worker(queue, functions=[("noop", noop)], concurrency=config.concurrency, after_process=after_process)
    await queue.connect()
    working = asyncio.create_task(worker.start(), name="saq worker")
    try:
        remaining = iter(range(tasks))

        async def producer() -> None:
            for _ in remaining:
                await queue.enqueue("noop")

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(producer() for _ in range(producers)))
        submitted = time.perf_counter() - started
        await bounded(all_finished.wait(), TRIAL_TIMEOUT, f"{tasks} saq jobs ({config.label})")
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await _stop(worker, working)
        if config.store == "redis":
            await _forget_redis_queue(queue)
        await queue.disconnect()
    if queue.complete != tasks:
        raise RuntimeError(f"saq completed {queue.complete} of {tasks} jobs")
    return Trial(config, tasks, seconds, submitted, cpu)


async def _stop(worker: Any, working: asyncio.Task[None]) -> None:
    """Stop a saq worker within a deadline.

    saq's PostgreSQL dequeue waits in ``asyncio.wait_for``, which on Python 3.11
    can swallow the cancel ``Worker.stop`` sends; such a job slot never ends, so
    the stop is retried by cancelling the worker's slots (tasks named "process") again.
    """
    stopping = asyncio.ensure_future(worker.stop())
    deadline = time.monotonic() + 60
    while not (await asyncio.wait({stopping}, timeout=1))[0]:
        if time.monotonic() > deadline:
            raise RuntimeError("the saq worker did not stop within 60 s")
        for task in asyncio.all_tasks():
            if task.get_name() == "process":
                task.cancel()
    working.cancel()
    await asyncio.gather(working, return_exceptions=True)


async def _forget_redis_queue(queue: Any) -> None:
    keys = [key async for key in queue.redis.scan_iter(match=f"saq:*{queue.name}*", count=1000)]
    for start in range(0, len(keys), 500):
        await queue.redis.delete(*keys[start : start + 500])


def run_trial(config: Config, args: argparse.Namespace, profile_dir: Path | None) -> Trial:
    if config.store == "redis":
        return run(saq_trial(REDIS_URL, config, args.tasks, config.producers))
    with fresh_database(config.store, migrated=config.system == "NovaWrite") as url:
        if config.system == "saq":
            return run(saq_trial(libpq_url(url), config, args.tasks, config.producers))
        if profile_dir is None:
            return run(novawrite_trial(url, config, args.tasks, args.users, config.producers))
        return _profiled(
            lambda: run(novawrite_trial(url, config, args.tasks, args.users, config.producers)), config, profile_dir
        )


def _profiled(trial: Any, config: Config, folder: Path) -> Trial:
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="disabled")
    with profiler:
        result: Trial = trial()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"novawrite-{config.store}-c{config.concurrency}.txt"
    path.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    print(f"profile: {path}", file=sys.stderr)
    return result


# --- report ------------------------------------------------------------------------------


def configs(concurrencies: Sequence[int], producers: Sequence[int], systems: Sequence[str]) -> list[Config]:
    out = []
    for count in producers:
        for concurrency in concurrencies:
            if "novawrite" in systems:
                out += [Config("NovaWrite", backend, concurrency, count) for backend in BACKENDS]
            if "saq" in systems:
                out += [Config("saq", store, concurrency, count) for store in SAQ_STORES]
    return out


#: The goal for NovaWrite on each store: its rate over saq's on that store (issue 16).
GOALS = {"sqlite": ("redis", 1.0), "postgres": ("postgres", 1.5)}


async def _redis_version() -> str:
    import redis.asyncio

    client = redis.asyncio.from_url(REDIS_URL)
    try:
        return str((await client.info("server"))["redis_version"])
    finally:
        await client.aclose()


def markdown(trials: list[Trial], args: argparse.Namespace) -> str:
    by_config: dict[Config, list[Trial]] = {}
    for trial in trials:
        by_config.setdefault(trial.config, []).append(trial)
    rate = {c: median([t.per_second for t in ts]) for c, ts in by_config.items()}
    rows = [
        (
            config.system,
            STORE_NAMES[config.store],
            config.producers,
            config.concurrency,
            round(rate[config]),
            " ".join(f"{t.per_second:,.0f}" for t in ts),
            median([t.submitted_after for t in ts]),
            median([t.cpu_ms_per_task for t in ts]),
            EVENTS_PER_TASK if config.system == "NovaWrite" else 0,
        )
        for config, ts in by_config.items()
    ]
    ratios = []
    for count in args.producers:
        for concurrency in args.concurrency:
            for backend in BACKENDS:
                ours = rate.get(Config("NovaWrite", backend, concurrency, count))
                theirs = [rate.get(Config("saq", store, concurrency, count)) for store in SAQ_STORES]
                if ours is not None and None not in theirs:
                    cells = [f"{ours / other:.2f}" for other in theirs if other is not None]
                    store, factor = GOALS[backend]
                    goal = rate[Config("saq", store, concurrency, count)]
                    met = verdict(ours >= factor * goal)
                    ratios.append(
                        (
                            count,
                            concurrency,
                            STORE_NAMES[backend],
                            *cells,
                            f">= {factor:g}x saq on {STORE_NAMES[store]}",
                            met,
                        )
                    )
    return "\n\n".join(
        [
            table(
                [
                    "system",
                    "store",
                    "producers",
                    "concurrency",
                    "tasks/s (median)",
                    "each round",
                    "submit phase (s)",
                    "process CPU ms/task",
                    "events stored/task",
                ],
                rows,
            ),
            table(
                ["producers", "concurrency", "NovaWrite on", "÷ saq on Redis", "÷ saq on PostgreSQL", "goal", "met"],
                ratios,
            ),
        ]
    )


def settings_line(args: argparse.Namespace) -> dict[str, str]:
    return {
        "Trials": f"{args.tasks:,} no-op tasks each, submitted by {' or '.join(map(str, args.producers))} producer coroutine(s) "
        "(1: one client submitting as fast as it can; 4: several clients at once, as a service's users are), "
        f"{args.rounds} round(s) of every system interleaved, a fresh database (Redis queue) per trial",
        "NovaWrite": f"in-process supervisor + store, submit through `Tasks.submit` (the service layer, no HTTP), "
        f"clock from the first submit to the last `completed` event on the bus; {EVENTS_PER_TASK} events stored "
        f"and published per task (pending, running, progress, completed); novels spread over {args.users} users; "
        f"max_running_per_user = concurrency, max_unfinished_per_user = {args.tasks:,}",
        "saq": "in-process `Worker(functions=[noop], concurrency=C)` on `Queue.from_url`, clock from the first "
        "enqueue to the last job's `after_process`",
    }


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000, help="tasks (jobs) per trial (default 2000)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[5, 50], help="concurrency levels (default 5 50)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every system, interleaved (default 3)")
    parser.add_argument(
        "--producers",
        type=int,
        nargs="+",
        default=[1, 4],
        help="coroutines submitting at once, both systems; each count a trial of its own (default 1 4)",
    )
    parser.add_argument("--users", type=int, default=10, help="NovaWrite users the novels are spread over (default 10)")
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=["novawrite", "saq"],
        default=["novawrite", "saq"],
        help="what to run (default both)",
    )
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="profile NovaWrite's trials with pyinstrument into DIR"
    )
    parser.add_argument(
        "--processes",
        type=lambda text: [int(n) for n in text.split(",")],
        metavar="1,2,4",
        help="instead: NovaWrite alone on PostgreSQL, with this many worker processes in turn (bench/cluster.py)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 tasks, one round")
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.rounds = 200, 1
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.processes:
        return _cluster(args)
    # saq warns at every worker stop that its idle upkeep loops had to be cancelled.
    logging.getLogger("saq").setLevel(logging.ERROR)
    # Warm-up: the first trial of each system in the process pays for imports and first-use caches.
    for config in configs(args.concurrency[:1], args.producers[:1], args.systems):
        run_trial(config, argparse.Namespace(**{**vars(args), "tasks": WARMUP_TASKS}), None)
    trials = []
    for round_number in range(1, args.rounds + 1):
        for config in configs(args.concurrency, args.producers, args.systems):
            trial = run_trial(config, args, args.profile)
            print(
                f"round {round_number}: {config.label}: {trial.per_second:,.0f}/s, "
                f"{trial.cpu_ms_per_task:.2f} ms CPU/task",
                file=sys.stderr,
            )
            trials.append(trial)
    title = "Engine throughput: NovaWrite no-op tasks vs saq no-op jobs, same process style, same run"
    print(header(title, ["saq", "psycopg", "redis"], [f"Redis {run(_redis_version())}"], settings_line(args)))
    print()
    print(markdown(trials, args))
    return 0


def _cluster(args: argparse.Namespace) -> int:
    from bench import cluster

    concurrency = args.concurrency[0]
    report = cluster.measure(args.processes, concurrency, args.tasks, args.users, args.rounds)
    extra = {
        "Trials": f"{args.tasks:,} no-op tasks each on a fresh PostgreSQL database, {args.rounds} round(s) of every "
        f"process count interleaved; each worker process runs its own supervisor (max_concurrency = "
        f"{concurrency}) and submits its users' tasks (novels over {args.users} users) through `Tasks.submit`",
        "Clock": "from the barrier that starts all workers to the last completion any worker hears on its bus "
        "(events of tasks another process ran arrive by NOTIFY)",
    }
    print(header("Engine throughput across processes: one PostgreSQL, N worker processes", [], [], extra))
    print()
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
