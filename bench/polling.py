"""Benchmark 1, polling: ``GET /api/tasks/{id}`` against a bare Starlette route, side by side.

NovaWrite serves a database holding ``--tasks`` finished tasks (100,000 by
default) of one user, plus one task of that user that is running for the whole
run (the demo provider paced at an hour per item, so its state, and ETag, stay
put). Both are polled: the running task is what clients poll in practice, the
finished one is a row among the 100,000. The bare route (bench/bare.py) answers
the same URL with the same bytes, under the same uvicorn settings, on the same
core, measured by the same wrk in the same run.

Each round runs every case once, interleaved (bare, NovaWrite 200, NovaWrite
304, for each task), and the table shows the median of the rounds; the ratio is
NovaWrite's requests/s over the bare route's for the same body. Goals: the 200
path at least 60% of the bare route, the 304 path (If-None-Match) at least 80%.
A run whose ETag changed, or that got any non-2xx/3xx answer, is marked invalid.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.common import (
    HOUR_MS,
    CoreMeter,
    CoreShare,
    Databases,
    Server,
    WrkResult,
    dumps,
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

GOAL_200 = 0.60
GOAL_304 = 0.80


@dataclass
class Case:
    name: str
    server: Server
    path: str
    headers: dict[str, str]
    #: The response this case must get, checked before and after every run.
    status: int
    runs: list[WrkResult] = field(default_factory=list)
    shares: list[CoreShare] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def median_rps(self) -> float:
        return median([r.requests_per_s for r in self.runs])

    def median_cost_us(self) -> float:
        """The server's CPU time per request: what it costs, however much of its core it got."""
        return median([1e6 * s.server_seconds / r.requests for r, s in zip(self.runs, self.shares, strict=True)])


def check(case: Case) -> None:
    """The case answers as it must (a 304 case: its ETag still matches)."""
    r = httpx.get(case.server.url + case.path, headers=case.headers)
    if r.status_code != case.status:
        case.problems.append(f"got {r.status_code}, expected {case.status}")


def run(case: Case, seconds: float, connections: int) -> tuple[WrkResult, CoreShare]:
    check(case)
    meter = CoreMeter(case.server)
    result = wrk(case.server.url + case.path, seconds=seconds, connections=connections, headers=case.headers)
    share = meter.read()
    check(case)
    if result.bad_responses or result.socket_errors:
        case.problems.append(f"{result.bad_responses} bad responses, {result.socket_errors} socket errors")
    return result, share


def main() -> None:
    args = parser(__doc__.split("\n", 1)[0])
    args.add_argument("--tasks", type=int, default=100_000, help="finished tasks in the database")
    args.add_argument("--seconds", type=float, default=10, help="length of one wrk run")
    args.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the table shows the median")
    args.add_argument("--connections", type=int, default=32, help="wrk connections")
    options = args.parse_args()
    if options.quick:
        options.tasks, options.seconds, options.rounds = min(options.tasks, 1000), 2, 1
    print_measurement(options, measure)


def measure(options: argparse.Namespace, databases: Databases, workdir: Path) -> str:
    tasks, seconds, connections, rounds = options.tasks, options.seconds, options.connections, options.rounds
    url = databases.create("polling")
    print(f"seeding {tasks:,} tasks...", file=sys.stderr)
    seeded = seed(url, "bench", tasks=tasks)
    assert seeded.finished_task_id is not None
    env = novawrite_env(url, demo_delay_ms=HOUR_MS)
    with Server("novawrite", "novawrite.app:app", env, workdir).start() as novawrite:
        token = login(novawrite.url, seeded.username)
        running_id = start_running_task(novawrite.url, token, seeded.novel_ids[0])
        auth = {"Authorization": f"Bearer {token}"}
        targets = {"running": running_id, "finished": seeded.finished_task_id}
        bodies, etags = {}, {}
        for task_id in targets.values():
            r = httpx.get(f"{novawrite.url}/api/tasks/{task_id}", headers=auth)
            r.raise_for_status()
            bodies[task_id], etags[task_id] = r.text, r.headers["etag"]
        bodies_file = workdir / "bare-bodies.json"
        bodies_file.write_text(dumps(bodies))
        bare_env = {**env, "BENCH_BARE_BODIES": str(bodies_file)}
        with Server("bare", "bench.bare:app", bare_env, workdir).start() as bare:
            cases = []
            for label, task_id in targets.items():
                path = f"/api/tasks/{task_id}"
                conditional = {**auth, "If-None-Match": etags[task_id]}
                cases += [
                    Case(f"bare Starlette ({label} task's bytes)", bare, path, {}, 200),
                    Case(f"NovaWrite, {label} task, 200", novawrite, path, auth, 200),
                    Case(f"NovaWrite, {label} task, 304", novawrite, path, conditional, 304),
                ]
            for case in cases:  # warm-up, not counted
                run(case, min(2.0, seconds), connections)
            for n in range(rounds):
                print(f"round {n + 1} of {rounds}...", file=sys.stderr)
                for case in cases:
                    result, share = run(case, seconds, connections)
                    case.runs.append(result)
                    case.shares.append(share)
            rows = []
            for index, case in enumerate(cases):
                baseline = cases[index - index % 3]
                body = len(bodies[case.path.rsplit("/", 1)[1]].encode()) if case.status == 200 else 0
                ratio = case.median_rps() / baseline.median_rps()
                others = median([s.others for s in case.shares])
                goal = None if case is baseline else GOAL_304 if case.status == 304 else GOAL_200
                rows.append(
                    [
                        case.name,
                        body,
                        case.median_rps(),
                        median([r.p50_ms for r in case.runs]),
                        median([r.p99_ms for r in case.runs]),
                        f"{case.median_cost_us():.0f}",
                        f"{100 * median([s.server for s in case.shares]):.0f}%",
                        f"{100 * others:.0f}%",
                        f"{ratio:.2f}",
                        f"{baseline.median_cost_us() / case.median_cost_us():.2f}",
                        "" if goal is None else f">= {goal:.2f}",
                        "" if goal is None else verdict(ratio >= goal and not case.problems),
                        "; ".join(sorted(set(case.problems))) or "",
                    ]
                )
    extra = {
        "Load": f"wrk, 1 thread, {connections} connections, {seconds:g} s per run, {rounds} interleaved round(s), "
        "median shown; 'others on its core': the share of the server's core other processes took meanwhile",
        "Data": f"{tasks:,} finished tasks (3 events each) of the polling user, plus 1 running task",
        "Reading it": "the goal is met on req/s; 'vs bare (CPU/req)' is the bare route's CPU time per request over "
        "NovaWrite's, the same ratio measured in a way that other processes on the server's core barely disturb",
    }
    headers = [
        "case",
        "body bytes",
        "req/s",
        "p50 ms",
        "p99 ms",
        "server CPU µs/req",
        "server CPU",
        "others on its core",
        "vs bare (req/s)",
        "vs bare (CPU/req)",
        "goal",
        "met",
        "problems",
    ]
    return header("Polling: GET /api/tasks/{id}", databases.describe(), extra) + "\n\n" + table(headers, rows)


if __name__ == "__main__":
    main()
