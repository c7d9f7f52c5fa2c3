"""Engine throughput across processes on one PostgreSQL (``scripts/bench throughput --processes 1,2,4``).

Each trial starts P worker processes on a fresh database. Every worker is what one
``novawrite serve --workers P`` worker runs, minus HTTP: its own supervisor (claims
across processes), store and bus, listening for the others' notifications. The users
are split between the workers; each worker submits its users' no-op tasks through
``Tasks.submit`` and counts their ``completed`` events on its bus, whichever process
ran them (an event another process stored reaches it by NOTIFY, as a client's stream
would). All workers start together at a barrier; the clock runs from there until the
last worker has heard its last completion. Per-process concurrency is the same in
every trial, so P processes may run P times as many tasks at once: the question is
how far the cluster's rate grows with its processes, on this machine's cores.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import os
import sys
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from bench.common import core_busy_seconds, median, table
from bench.engine_kit import NullProvider, bounded, fresh_database, run, running_engine, seed_novels
from novawrite.db.engine import Database
from novawrite.db.models import Task, TaskEvent, TaskStatus
from novawrite.generators.base import GenerationContext
from novawrite.settings import Settings

TRIAL_TIMEOUT = 600.0
READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class WorkerResult:
    started: float  # time.time() when the barrier let it go
    finished: float  # time.time() when its last completion arrived
    ran: int  # tasks this process ran (claimed and completed)
    cpu_seconds: float
    machine_busy: tuple[float, float]  # the machine's busy CPU seconds (all cores) at start and finish


@dataclass(frozen=True)
class ClusterTrial:
    processes: int
    tasks: int
    seconds: float
    ran: tuple[int, ...]  # tasks each process ran
    cpu_seconds: float  # all workers' CPU time
    machine_busy: float  # the share of the machine's cores busy (anything but idle and iowait), 0 to 1

    @property
    def per_second(self) -> float:
        return self.tasks / self.seconds


def _worker(url: str, targets: list[tuple[int, int]], concurrency: int, total: int, barrier: Any, out: Any) -> None:
    out.put(run(_work(url, targets, concurrency, total, barrier)))


async def _work(url: str, targets: list[tuple[int, int]], concurrency: int, total: int, barrier: Any) -> WorkerResult:
    from bench.throughput import NOOP, NoopParams, _count_completions, generate_noop

    ran = 0

    async def counted(ctx: GenerationContext) -> Any:
        nonlocal ran
        ran += 1
        return await generate_noop(ctx)

    kind = dataclasses.replace(NOOP, generate=counted)
    settings = Settings(
        database_url=url,
        max_concurrency=concurrency,
        max_running_per_user=concurrency,
        max_unfinished_per_user=total,
        sweep_seconds=60.0,
        stream_queue_size=total * 4,
    )
    async with running_engine(settings, {kind.task_type: kind}, NullProvider()) as engine:
        owned = Counter(user for user, _ in targets)
        async with AsyncExitStack() as stack:
            readers = [
                _count_completions(await stack.enter_async_context(engine.bus.user(user)), count)
                for user, count in owned.items()
            ]
            await asyncio.to_thread(barrier.wait, READY_TIMEOUT)
            started, cpu, busy = time.time(), time.process_time(), machine_busy_seconds()
            everything = asyncio.gather(*readers)
            for user_id, novel_id in targets:
                await engine.tasks.submit(user_id, kind, NoopParams(novel_id=novel_id), None)
            await bounded(everything, TRIAL_TIMEOUT, f"{len(targets)} completions in process {os.getpid()}")
            finished, cpu, busy_after = time.time(), time.process_time() - cpu, machine_busy_seconds()
            # Stay up until every worker is done: a worker that stopped now would hand the
            # others' tasks it runs back to the queue (as SIGTERM does), and they would run twice.
            await asyncio.to_thread(barrier.wait, TRIAL_TIMEOUT)
    return WorkerResult(started, finished, ran, cpu, (busy, busy_after))


async def _check(url: str, tasks: int) -> None:
    db = Database(url)
    try:
        async with db.read() as conn:
            completed = (
                await conn.execute(select(func.count()).select_from(Task).where(Task.status == TaskStatus.COMPLETED))
            ).scalar_one()
            events = (await conn.execute(select(func.count()).select_from(TaskEvent))).scalar_one()
        if completed != tasks or events != tasks * 4:
            raise RuntimeError(f"expected {tasks} completed tasks and {tasks * 4} events, got {completed} and {events}")
    finally:
        await db.dispose()


async def _seed(url: str, users: int, tasks: int) -> list[tuple[int, int]]:
    db = Database(url)
    try:
        return await seed_novels(db, users, tasks)
    finally:
        await db.dispose()


def cluster_trial(processes: int, concurrency: int, tasks: int, users: int) -> ClusterTrial:
    """One trial: ``processes`` workers on a fresh PostgreSQL database, ``tasks`` no-op tasks in all."""
    context = multiprocessing.get_context("spawn")
    with fresh_database("postgres") as url:
        targets = run(_seed(url, max(users, processes), tasks))
        by_process: list[list[tuple[int, int]]] = [[] for _ in range(processes)]
        for user_id, novel_id in targets:
            by_process[user_id % processes].append((user_id, novel_id))
        barrier = context.Barrier(processes)
        out = context.Queue()
        workers = [
            context.Process(target=_worker, args=(url, share, concurrency, tasks, barrier, out), name=f"worker-{n}")
            for n, share in enumerate(by_process)
        ]
        for worker in workers:
            worker.start()
        try:
            results: list[WorkerResult] = [out.get(timeout=TRIAL_TIMEOUT) for _ in workers]
        finally:
            for worker in workers:
                worker.join(timeout=60)
                if worker.is_alive():
                    worker.kill()
        run(_check(url, tasks))
    seconds = max(r.finished for r in results) - min(r.started for r in results)
    first, last = min(results, key=lambda r: r.started), max(results, key=lambda r: r.finished)
    busy = (last.machine_busy[1] - first.machine_busy[0]) / (seconds * (os.cpu_count() or 1))
    return ClusterTrial(
        processes, tasks, seconds, tuple(sorted(r.ran for r in results)), sum(r.cpu_seconds for r in results), busy
    )


def machine_busy_seconds() -> float:
    """CPU time all the machine's cores have spent on anything but idle and iowait since boot."""
    return sum(core_busy_seconds(core) for core in range(os.cpu_count() or 1))


def measure(process_counts: list[int], concurrency: int, tasks: int, users: int, rounds: int) -> str:
    trials: list[ClusterTrial] = []
    cluster_trial(1, concurrency, 50, users)  # warm-up: the server's caches, the interpreter's files
    for round_number in range(1, rounds + 1):
        for processes in process_counts:
            trial = cluster_trial(processes, concurrency, tasks, users)
            print(
                f"round {round_number}: {processes} process(es): {trial.per_second:,.0f} tasks/s "
                f"(ran per process: {', '.join(map(str, trial.ran))})",
                file=sys.stderr,
            )
            trials.append(trial)
    rate = {p: median([t.per_second for t in trials if t.processes == p]) for p in process_counts}
    base = rate[process_counts[0]]
    rows = [
        (
            p,
            concurrency,
            round(rate[p]),
            " ".join(f"{t.per_second:,.0f}" for t in trials if t.processes == p),
            f"{rate[p] / base:.2f}",
            median([t.cpu_seconds / t.tasks * 1000 for t in trials if t.processes == p]),
            f"{median([t.machine_busy for t in trials if t.processes == p]):.0%}",
            " / ".join(",".join(map(str, t.ran)) for t in trials if t.processes == p),
        )
        for p in process_counts
    ]
    return table(
        [
            "processes",
            "concurrency per process",
            "tasks/s (median)",
            "each round",
            f"÷ {process_counts[0]} process(es)",
            "workers' CPU ms/task",
            "machine's cores busy (workers, PostgreSQL, all)",
            "tasks each process ran, per round",
        ],
        rows,
    )
