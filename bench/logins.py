"""Benchmark: a burst of logins beside a user who polls (API.md: bounded password hashing).

Two NovaWrite servers, one after the other, identical but for
``NOVAWRITE_PASSWORD_HASH_THREADS``: the default bound (half the cores, at least 1)
and an unbounded-like pool (``--wide``, what asyncio's default pool would give:
min(32, cores + 4) threads). Both hash at the production cost (argon2id, time 3,
64 MiB). On each, one user polls ``GET /api/tasks/{id}`` of a running task
back to back on one connection, first alone (baseline), then while ``--logins``
concurrent correct logins of other accounts arrive at once. The table gives the
poller's latency in both phases, the burst's own time and the logins' latency.

Unlike the other benchmarks the server is not pinned to one core: the point of the
bound is that hashing leaves the event loop a core, which a pinned server does not
have. (The load still runs on core 1.)

One command: ``scripts/bench logins`` (or ``.venv/bin/python -m bench.logins``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import httpx

from bench.common import (
    AVAILABLE_CORES,
    HOUR_MS,
    Databases,
    Server,
    header,
    novawrite_env,
    parser,
    percentile,
    pin_to_load_core,
    seed,
    start_running_task,
    table,
    workspace,
)
from bench.common import login as bench_login

PASSWORD = "burst password 1"


def main() -> None:
    args = parser(__doc__.split("\n", 1)[0])
    args.add_argument("--logins", type=int, default=100, help="concurrent logins in the burst")
    args.add_argument("--accounts", type=int, default=20, help="accounts the burst logs in to (round robin)")
    args.add_argument("--baseline-seconds", type=float, default=3.0, help="polling alone before the burst")
    args.add_argument(
        "--wide", type=int, default=min(32, (os.cpu_count() or 1) + 4), help="hash threads of the unbounded server"
    )
    options = args.parse_args()
    if options.quick:
        options.logins, options.accounts, options.baseline_seconds = 20, 5, 1.0
    pin_to_load_core()
    with workspace(options.keep) as workdir:
        databases = Databases(options.database, workdir)
        try:
            print(measure(options, databases, workdir))
        finally:
            databases.close()


async def _poll(url: str, auth: dict[str, str], stop: asyncio.Event) -> list[float]:
    latencies: list[float] = []
    async with httpx.AsyncClient(headers=auth, timeout=60) as client:
        while not stop.is_set():
            started = time.perf_counter()
            r = await client.get(url)
            latencies.append(1000 * (time.perf_counter() - started))
            r.raise_for_status()
            await asyncio.sleep(0)
    return latencies


async def _burst(base: str, usernames: list[str], count: int) -> tuple[list[float], float]:
    async def one(client: httpx.AsyncClient, username: str) -> float:
        started = time.perf_counter()
        r = await client.post(f"{base}/api/auth/login", json={"username": username, "password": PASSWORD})
        r.raise_for_status()
        return 1000 * (time.perf_counter() - started)

    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        started = time.perf_counter()
        times = await asyncio.gather(*(one(client, usernames[i % len(usernames)]) for i in range(count)))
        return list(times), time.perf_counter() - started


async def _run(server: Server, task_url: str, auth: dict[str, str], usernames: list[str], options: argparse.Namespace):  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    poller = asyncio.create_task(_poll(task_url, auth, stop))
    await asyncio.sleep(options.baseline_seconds)  # the baseline phase lasts this long: time is what is measured
    stop.set()
    baseline = await poller
    stop = asyncio.Event()
    poller = asyncio.create_task(_poll(task_url, auth, stop))
    logins, wall = await _burst(server.url, usernames, options.logins)
    stop.set()
    during = await poller
    return baseline, during, logins, wall


def measure(options: argparse.Namespace, databases: Databases, workdir: Path) -> str:
    bounded = max(1, (os.cpu_count() or 2) // 2)
    rows = []
    for name, threads in (("bounded", bounded), ("wide", options.wide)):
        url = databases.create(f"logins-{name}")
        seeded = seed(url, "poller")
        env = novawrite_env(url, demo_delay_ms=HOUR_MS, password_hash_threads=threads)
        with Server(f"novawrite-{name}", "novawrite.app:app", env, workdir) as server:
            server.start()
            for thread in os.listdir(f"/proc/{server.pid}/task"):  # unpinned: every core, for every thread
                os.sched_setaffinity(int(thread), AVAILABLE_CORES)
            token = bench_login(server.url, seeded.username)
            task = start_running_task(server.url, token, seeded.novel_ids[0])
            usernames = [f"burst{i}" for i in range(options.accounts)]
            print(f"{name}: registering {len(usernames)} accounts at the production hash cost...", file=sys.stderr)
            for username in usernames:
                r = httpx.post(
                    f"{server.url}/api/auth/register", json={"username": username, "password": PASSWORD}, timeout=60
                )
                r.raise_for_status()
            auth = {"Authorization": f"Bearer {token}"}
            baseline, during, logins, wall = asyncio.run(
                _run(server, f"{server.url}/api/tasks/{task}", auth, usernames, options)
            )
        ratio = percentile(during, 0.99) / percentile(baseline, 0.99)
        rows.append(
            [
                f"{name} ({threads} hash thread{'s' if threads > 1 else ''})",
                len(baseline),
                percentile(baseline, 0.5),
                percentile(baseline, 0.99),
                len(during),
                percentile(during, 0.5),
                percentile(during, 0.99),
                max(during),
                f"{ratio:.1f}",
                wall,
                percentile(logins, 0.5),
                percentile(logins, 0.99),
            ]
        )
    head = header(
        "Logins: a burst beside a poller",
        databases.describe(),
        {
            "Burst": f"{options.logins} concurrent correct logins over {options.accounts} accounts, "
            "argon2id time 3, 64 MiB",
            "Server threads": f"not pinned (cores {sorted(AVAILABLE_CORES)}); the load on core 1",
        },
    )
    columns = [
        "server",
        "polls alone",
        "p50 ms",
        "p99 ms",
        "polls in burst",
        "p50 ms",
        "p99 ms",
        "max ms",
        "p99 burst / alone",
        "burst s",
        "login p50 ms",
        "login p99 ms",
    ]
    return head + "\n\n" + table(columns, rows)


if __name__ == "__main__":
    main()
