"""Benchmark: a 30-chapter ``write_chapters`` batch on a real server, and the chapter prompt of a long novel.

One NovaWrite server (uvicorn, pinned to core 0; demo provider at its default
pause, ``NOVAWRITE_DEMO_DELAY_MS`` 30 ms unless ``--demo-delay-ms``) on a fresh
database. A user's novel is outlined (2 volumes x 15 chapters, through the API),
then one batch writes all 30 chapters (``POST /api/ai/write-chapters``, default
``target_words`` 2,000). Measured from submit to completed:

- wall time (as the polling client saw it, and the task's own created_at to
  finished_at), chapters per minute, the server's CPU time;
- database write transactions: ``novawrite_db_write_transactions_total`` scraped
  from ``GET /metrics`` before the submit and after the batch completed (every
  write of the process in between, lease renewals and sweeps included);
- task events stored for the batch and its children (``task_events`` joined with
  ``tasks`` where id = the batch or parent_id = the batch), by kind, and per chapter.

Then, without a server: the prompt of chapter 150 of a 200-chapter novel whose
earlier chapters all have recaps at their length limit (the construction of
``tests/test_memory.py``), in Chinese and in English, within the default chapter
context budget (``NOVAWRITE_CHAPTER_CONTEXT_TOKENS``).

``scripts/bench batch [--database postgresql+asyncpg://postgres@127.0.0.1:5432] [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, or_, select

from bench.common import (
    CoreMeter,
    Databases,
    Server,
    header,
    login,
    metric,
    novawrite_env,
    parser,
    print_measurement,
    seed,
    table,
)
from novawrite.db.engine import Database
from novawrite.db.models import Task, TaskEvent
from novawrite.generators import chapter
from novawrite.generators.chapter_context import estimate_tokens
from novawrite.settings import Settings

WRITES = "novawrite_db_write_transactions_total"
POLL_S = 0.1


def main() -> None:
    args = parser(__doc__.split("\n", 1)[0])
    args.add_argument("--volumes", type=int, default=2, help="volumes in the outline")
    args.add_argument("--chapters-per-volume", type=int, default=15, help="chapters per volume")
    args.add_argument("--target-words", type=int, default=2000, help="each chapter's target_words (the API default)")
    args.add_argument("--language", choices=("en", "zh"), default="en", help="the novel's language")
    args.add_argument(
        "--demo-delay-ms", type=int, default=None, help="the demo provider's pause per piece (default: the setting's)"
    )
    options = args.parse_args()
    if options.quick:
        options.volumes, options.chapters_per_volume, options.target_words = 1, 5, 300
    print_measurement(options, measure, wrk=False)


# --- the batch --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchRun:
    chapters: int
    wall_s: float  # submit to the poll that saw it completed
    task_s: float  # the task's created_at to finished_at
    writes: float | None
    events: Counter[str]
    tasks_with_events: int
    server_cpu_s: float
    attempt: int
    usage: dict[str, int]


async def _wait(client: httpx.AsyncClient, url: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = dict((await client.get(url)).json())
        if task["status"] in ("completed", "failed", "cancelled"):
            return task
        if time.monotonic() > deadline:
            raise RuntimeError(f"not finished within {timeout} s: {task}")
        await asyncio.sleep(POLL_S)  # the polling API: nothing to await but the next poll


async def _events(url: str, batch_id: str) -> tuple[Counter[str], int]:
    db = Database(url)
    try:
        async with db.read() as conn:
            rows = await conn.execute(
                select(TaskEvent.kind, func.count())
                .join(Task, Task.pk == TaskEvent.task_pk)
                .where(or_(Task.id == batch_id, Task.parent_id == batch_id))
                .group_by(TaskEvent.kind)
            )
            kinds = Counter({str(kind): int(n) for kind, n in rows})
            tasks = (
                await conn.execute(
                    select(func.count(func.distinct(TaskEvent.task_pk)))
                    .join(Task, Task.pk == TaskEvent.task_pk)
                    .where(or_(Task.id == batch_id, Task.parent_id == batch_id))
                )
            ).scalar_one()
        return kinds, int(tasks)
    finally:
        await db.dispose()


async def run_batch(server: Server, url: str, token: str, novel_id: int, options: argparse.Namespace) -> BatchRun:
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=auth, timeout=30) as client:
        r = await client.post(
            "/api/ai/generate-outline",
            json={"novel_id": novel_id, "volumes": options.volumes, "chapters_per_volume": options.chapters_per_volume},
        )
        r.raise_for_status()
        outline = await _wait(client, f"/api/tasks/{r.json()['id']}", 600)
        if outline["status"] != "completed":
            raise RuntimeError(f"the outline did not complete: {outline}")
        novel = (await client.get(f"/api/novels/{novel_id}")).json()
        ids = [c["id"] for v in novel["volumes"] for c in v["chapters"]]

        writes_before = metric(server.url, WRITES)
        meter = CoreMeter(server)
        started = time.monotonic()
        r = await client.post(
            "/api/ai/write-chapters",
            json={"novel_id": novel_id, "chapter_ids": ids, "target_words": options.target_words},
        )
        r.raise_for_status()
        batch_id = r.json()["id"]
        done = await _wait(client, f"/api/tasks/{batch_id}", 3600)
        wall = time.monotonic() - started
        cpu = meter.read().server_seconds
        writes_after = metric(server.url, WRITES)
        if done["status"] != "completed" or done["result"]["written"] != ids:
            raise RuntimeError(f"the batch did not write every chapter: {done}")
    events, tasks = await _events(url, batch_id)
    task_s = (datetime.fromisoformat(done["finished_at"]) - datetime.fromisoformat(done["created_at"])).total_seconds()
    writes = None if writes_before is None or writes_after is None else writes_after - writes_before
    return BatchRun(len(ids), wall, task_s, writes, events, tasks, cpu, done["attempt"], done["usage"])


# --- the prompt of chapter 150 of 200 ------------------------------------------------------------


@dataclass(frozen=True)
class PromptSize:
    language: str
    chars: int
    tokens: int
    budget: int
    context: dict[str, Any]


def prompt_at_150(language: str, budget: int) -> PromptSize:
    """tests/test_memory.py's novel: 200 chapters, every recap before chapter 150 at its length limit."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.gen_support import novel_at_150  # the tests' construction, reused as is

    novel = novel_at_150(language)
    prompt = chapter.build_chapter_prompt(novel, chapter.ChapterParams(novel_id=1, chapter_id=150), budget=budget)
    text = prompt.system + prompt.user
    return PromptSize(language, len(text), estimate_tokens(text), budget, dict(prompt.context))


# --- the report ----------------------------------------------------------------------------------


def measure(options: argparse.Namespace, databases: Databases, workdir: Path) -> str:
    url = databases.create("batch")
    seeded = seed(url, "author")
    defaults = Settings.from_env({})
    delay = options.demo_delay_ms if options.demo_delay_ms is not None else defaults.demo_delay_ms
    settings: dict[str, object] = {"argon2_time_cost": 1, "argon2_memory_kib": 1024}
    if options.demo_delay_ms is not None:
        settings["demo_delay_ms"] = options.demo_delay_ms
    env = novawrite_env(url, **settings)
    novel_id = seeded.novel_ids[0]
    if options.language != "en":
        asyncio.run(_set_language(url, novel_id, options.language))
    with Server("novawrite", "novawrite.app:app", env, workdir) as server:
        server.start()
        token = login(server.url, seeded.username)
        run = asyncio.run(run_batch(server, url, token, novel_id, options))
    budget = defaults.chapter_context_tokens
    prompts = [prompt_at_150(language, budget) for language in ("zh", "en")]

    n = run.chapters
    total_events = sum(run.events.values())
    per_kind = ", ".join(f"{kind} {count:,}" for kind, count in sorted(run.events.items()))
    per_chapter = ", ".join(f"{kind} {count / n:.1f}" for kind, count in sorted(run.events.items()))
    rows: list[list[object]] = [
        ["chapters written (one batch, one child each)", n],
        ["**wall time, submit to completed (s)**", run.wall_s],
        ["the task's created_at to finished_at (s)", run.task_s],
        ["**chapters/min**", n / run.wall_s * 60],
        ["seconds per chapter", run.wall_s / n],
        ["server CPU time (s) / per chapter (ms)", f"{run.server_cpu_s:.2f} / {run.server_cpu_s / n * 1000:,.0f}"],
        [
            "**database write transactions** (`/metrics` delta)",
            "-" if run.writes is None else f"{run.writes:,.0f}",
        ],
        ["write transactions per chapter", "-" if run.writes is None else f"{run.writes / n:.1f}"],
        ["write transactions per second", "-" if run.writes is None else f"{run.writes / run.wall_s:.2f}"],
        ["**task events stored** (batch + children)", total_events],
        ["tasks with events (batch + children)", run.tasks_with_events],
        ["events by kind", per_kind],
        ["**events per chapter**", f"{total_events / n:.1f}"],
        ["events per chapter by kind", per_chapter],
        ["batch attempt / usage", f"{run.attempt} / {run.usage}"],
    ]
    prompt_rows = [
        [
            p.language,
            p.chars,
            p.tokens,
            p.budget,
            f"{p.tokens / p.budget:.0%}",
            "yes" if p.tokens <= p.budget else "**no**",
        ]
        for p in prompts
    ]
    words = f"target_words {options.target_words:,}, language {options.language}"
    lines = [
        header(
            "A 30-chapter batch, and the prompt of chapter 150 of 200",
            databases.describe(),
            {
                "Batch": f"{options.volumes} volumes x {options.chapters_per_volume} chapters outlined through the API "
                f"(demo provider), then one `write_chapters` batch of all {n} chapters ({words})",
                "Demo provider": f"`NOVAWRITE_DEMO_DELAY_MS` = {delay} ms per piece "
                + ("(the default)" if options.demo_delay_ms is None else "(set by --demo-delay-ms)"),
                "Wall time": f"submit to the poll that saw `completed` (polled every {POLL_S * 1000:.0f} ms)",
                "Write transactions": f"`{WRITES}` from `GET /metrics`, scraped just before the submit and just "
                "after completion: every write of the server in between, lease renewals and sweeps included",
            },
        ),
        "",
        table(["batch", databases.describe()], rows),
        "",
        f"Chapter 150 of a 200-chapter novel (tests/test_memory.py's construction: recaps of chapters 1-149 at their "
        f"limit, a 2,000-character previous ending, 60 characters, 199 threads), default budget "
        f"`NOVAWRITE_CHAPTER_CONTEXT_TOKENS` = {budget:,}; tokens as the code estimates them "
        "(`estimate_tokens`: one per CJK character, one per 4 other characters), over system + user prompt:",
        "",
        table(["language", "prompt characters", "estimated tokens", "budget", "of budget", "within"], prompt_rows),
    ]
    return "\n".join(lines)


async def _set_language(url: str, novel_id: int, language: str) -> None:
    from sqlalchemy import update

    from novawrite.db.models import Novel

    db = Database(url)
    try:
        async with db.write() as conn:
            await conn.execute(update(Novel).where(Novel.id == novel_id).values(language=language))
    finally:
        await db.dispose()


if __name__ == "__main__":
    main()
