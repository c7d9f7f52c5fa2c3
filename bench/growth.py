"""Benchmark 5, growth: the active list and the first history page with 100 and with 100,000 tasks.

Two databases are seeded with the same user, novels and mix of finished tasks,
``--small`` (100) and ``--large`` (100,000) of them, and a NovaWrite server runs
on each (same settings, same core). On each server the user then starts the
same two real tasks, which stay running for the whole run (the demo provider
paced at an hour per item), so ``/api/tasks/active`` lists two tasks on both.

wrk measures ``GET /api/tasks/active`` and ``GET /api/tasks`` (the first page,
20 tasks) on both servers, interleaved in each round; the time of a request is
1 / (requests/s) with the server saturated, and the goal is
time at 100,000 / time at 100 <= 1.5, that is req/s at 100 / req/s at 100,000.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx

from bench.common import (
    HOUR_MS,
    CoreMeter,
    CoreShare,
    Databases,
    Server,
    WrkResult,
    header,
    login,
    median,
    novawrite_env,
    parser,
    print_measurement,
    seed,
    start_running_task,
    table,
    verdict,
    wrk,
)

GOAL = 1.5
ENDPOINTS = ("/api/tasks/active", "/api/tasks")


def main() -> None:
    args = parser(__doc__.split("\n", 1)[0])
    args.add_argument("--small", type=int, default=100, help="finished tasks in the small history")
    args.add_argument("--large", type=int, default=100_000, help="finished tasks in the large history")
    args.add_argument("--seconds", type=float, default=5, help="length of one wrk run")
    args.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the table shows the median")
    args.add_argument("--connections", type=int, default=8, help="wrk connections")
    options = args.parse_args()
    if options.quick:
        options.large, options.seconds, options.rounds = min(options.large, 5000), 2, 1
    print_measurement(options, measure)


def start(size: int, databases: Databases, workdir: Path) -> tuple[Server, dict[str, str]]:
    """A server on a database with ``size`` finished tasks and two running ones; its auth header."""
    url = databases.create(f"growth-{size}")
    print(f"seeding {size:,} tasks...", file=sys.stderr)
    seeded = seed(url, "bench", tasks=size, novels=3)
    server = Server(f"novawrite-{size}", "novawrite.app:app", novawrite_env(url, demo_delay_ms=HOUR_MS), workdir)
    server.start()
    token = login(server.url, seeded.username)
    for novel_id, route in zip(seeded.novel_ids, ("generate-characters", "generate-world-settings"), strict=False):
        start_running_task(server.url, token, novel_id, route)
    return server, {"Authorization": f"Bearer {token}"}


def measure(options: argparse.Namespace, databases: Databases, workdir: Path) -> str:
    sizes = (options.small, options.large)
    servers: dict[int, tuple[Server, dict[str, str]]] = {}
    try:
        for size in sizes:
            servers[size] = start(size, databases, workdir)
        runs: dict[tuple[str, int], list[tuple[WrkResult, CoreShare]]] = {
            (path, size): [] for path in ENDPOINTS for size in sizes
        }
        shape: dict[tuple[str, int], tuple[int, int]] = {}
        for path, size in runs:
            server, auth = servers[size]
            r = httpx.get(server.url + path, headers=auth)
            r.raise_for_status()
            shape[path, size] = len(r.json()["items"]), len(r.content)
            wrk(server.url + path, seconds=min(2.0, options.seconds), connections=options.connections, headers=auth)
        for n in range(options.rounds):
            print(f"round {n + 1} of {options.rounds}...", file=sys.stderr)
            for (path, size), results in runs.items():
                server, auth = servers[size]
                meter = CoreMeter(server)
                result = wrk(server.url + path, seconds=options.seconds, connections=options.connections, headers=auth)
                results.append((result, meter.read()))
    finally:
        for server, _ in servers.values():
            server.stop()
    rows = []
    small, large = sizes
    for path in ENDPOINTS:
        rps = {size: median([r.requests_per_s for r, _ in runs[path, size]]) for size in sizes}
        cost = {size: median([1e6 * c.server_seconds / r.requests for r, c in runs[path, size]]) for size in sizes}
        p50 = {size: median([r.p50_ms for r, _ in runs[path, size]]) for size in sizes}
        bad = sum(r.bad_responses + r.socket_errors for size in sizes for r, _ in runs[path, size])
        others = median([c.others for size in sizes for _, c in runs[path, size]])
        ratio = rps[small] / rps[large]
        rows.append(
            [
                path,
                " / ".join(f"{shape[path, size][0]} items, {shape[path, size][1]:,} B" for size in sizes),
                rps[small],
                rps[large],
                p50[small],
                p50[large],
                f"{cost[small]:.0f} / {cost[large]:.0f}",
                f"{100 * others:.0f}%",
                f"{ratio:.2f}",
                f"{cost[large] / cost[small]:.2f}",
                verdict(ratio <= GOAL and not bad),
                f"{bad} bad responses or socket errors" if bad else "",
            ]
        )
    extra = {
        "Load": f"wrk, 1 thread, {options.connections} connections, {options.seconds:g} s per run, "
        f"{options.rounds} interleaved round(s), median shown; 'others on its core': the share of the server's "
        "core other processes took meanwhile",
        "Data": f"{small:,} vs {large:,} finished tasks (3 events each) in the user's history, plus 2 running tasks",
        "Reading it": "the goal is met on req/s; the CPU ratio (server CPU time per request at the large size over "
        "the small) measures the same in a way that other processes on the server's core barely disturb",
    }
    headers = [
        "endpoint",
        f"answer at {small:,} / {large:,}",
        f"req/s at {small:,}",
        f"req/s at {large:,}",
        f"p50 ms at {small:,}",
        f"p50 ms at {large:,}",
        "server CPU µs/req",
        "others on its core",
        f"time ratio by req/s (goal <= {GOAL})",
        "time ratio by CPU/req",
        "met",
        "problems",
    ]
    return (
        header("Growth: the active list and the first history page", databases.describe(), extra)
        + "\n\n"
        + table(headers, rows)
    )


if __name__ == "__main__":
    main()
