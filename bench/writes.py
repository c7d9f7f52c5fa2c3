"""Write amplification: a 20,000-character chapter streamed over 60 s, its database writes and its live delivery.

A paced provider (below) streams the chapter in small even pieces at an even
pace; the task runs through the real chapter generator, supervisor, progress
reporter and store, submitted through ``Tasks.submit``. The benchmark measures,
over the stream (first piece to last piece):

- database writes: committed write transactions, on the raw driver (the engine's own
  statements) and on the SQLAlchemy writer, taken
  from SQLAlchemy's ``commit`` event, each classified by what it wrote (an
  event row, a lease renewal, anything else); also INSERT/UPDATE statements and
  reads. The goal: at most one write per 250 ms, read both as an average
  (writes/s <= 4) and as the strict form (no two writes closer than 250 ms, at
  most one in any 250 ms window).
- live delivery: a reader of the user's bus stream (what ``GET /api/events``
  and ``GET /api/tasks/{id}/events`` forward) records when each ``chunk`` event
  arrives. Per piece, the delivery delay is the time from the provider handing
  the piece over to the arrival of the chunk that carries its last character.
  "Per piece" holds when there is one live delivery per provider piece.

It also checks that the chunk texts add up to the chapter that was saved.

``scripts/bench writes [--seconds 60] [--chars 20000] [--piece-chars 10] [--backends sqlite postgres] [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import event, insert, select

from bench.common import percentile, table, verdict
from bench.engine_kit import (
    BACKENDS,
    Engine,
    bounded,
    fresh_database,
    header,
    run,
    running_engine,
    seed_novels,
)
from novawrite.db.models import Chapter, Volume
from novawrite.engine.bus import Subscription
from novawrite.engine.events import EventKind
from novawrite.generators import chapter
from novawrite.providers.base import Completion, Prompt, ProviderError, Usage
from novawrite.services.kinds import default_kinds
from novawrite.settings import Settings

WINDOW = 0.25  # the goal: at most one write per 250 ms
SENTENCE = "夜色渐深，港口的灯一盏盏亮起，她把旧地图摊在桌上，指尖停在那条无人走过的航线上。"


# --- the paced provider ------------------------------------------------------------------


@dataclass
class PacedProvider:
    """Streams ``chars`` characters in pieces of ``piece_chars``, evenly over ``seconds``.

    Each piece leaves on a fixed schedule (not after a fixed sleep), so slow
    consumers do not stretch the stream; ``sent`` records when each piece left
    and the text offset it ends at.
    """

    chars: int
    seconds: float
    piece_chars: int
    name: str = "paced"
    is_demo: bool = True
    sent: list[tuple[float, int]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return (SENTENCE * (self.chars // len(SENTENCE) + 1))[: self.chars]

    async def generate_json(self, prompt: Prompt, schema: type[BaseModel]) -> Completion:
        raise ProviderError("the write benchmark only streams", transient=False)

    async def stream_text(self, prompt: Prompt) -> AsyncIterator[Completion]:
        text = self.text
        pieces = [text[i : i + self.piece_chars] for i in range(0, len(text), self.piece_chars)]
        interval = self.seconds / len(pieces)
        start = time.perf_counter()
        offset = 0
        for number, piece in enumerate(pieces, 1):
            await asyncio.sleep(max(0.0, start + number * interval - time.perf_counter()))
            offset += len(piece)
            self.sent.append((time.perf_counter(), offset))
            last = number == len(pieces)
            # Like real providers, the call's token count comes with the last piece.
            yield Completion(piece, Usage(prompt_tokens=3000, output_tokens=self.chars) if last else Usage())

    async def aclose(self) -> None:
        return None


# --- counting writes ---------------------------------------------------------------------


@dataclass
class WriteLog:
    """Every committed write transaction on the writer engine, and every statement, with times."""

    commits: list[tuple[float, str]] = field(default_factory=list)
    statements: list[tuple[float, str]] = field(default_factory=list)
    _open: dict[int, list[str]] = field(default_factory=dict)

    def attach(self, engine: Engine) -> None:
        self._attach_raw(engine)
        sync_engine = engine.db.writer.sync_engine

        @event.listens_for(sync_engine, "before_cursor_execute")
        def statement(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
            verb = sql.lstrip().split(None, 1)[0].upper()
            self.statements.append((time.perf_counter(), verb))
            self._open.setdefault(id(conn), []).append(sql)

        @event.listens_for(sync_engine, "commit")
        def commit(conn: Any) -> None:
            self.commits.append((time.perf_counter(), _classify(self._open.pop(id(conn), []))))

        @event.listens_for(sync_engine, "rollback")
        def rollback(conn: Any) -> None:
            self._open.pop(id(conn), None)

    def _attach_raw(self, engine: Engine) -> None:
        """The engine's own statements run on the raw driver (novawrite.db.raw): count its transactions too."""
        raw = engine.db.raw
        begin = raw.transaction
        log = self

        class Counted:
            def __init__(self, tx: Any, sql: list[str]) -> None:
                self.dialect, self._tx, self._sql = tx.dialect, tx, sql

            def _note(self, sql: str) -> None:
                now, verb = time.perf_counter(), sql.lstrip().split(None, 1)[0].upper()
                if verb == "WITH":  # PostgreSQL's one-statement writes: count what they do
                    log.statements += [(now, v) for v in ("UPDATE", "INSERT") if f"{v} " in sql.upper()]
                else:
                    log.statements.append((now, verb))
                self._sql.append(sql)

            async def fetch(self, sql: str, *args: Any) -> Any:
                self._note(sql)
                return await self._tx.fetch(sql, *args)

            async def fetchrow(self, sql: str, *args: Any) -> Any:
                self._note(sql)
                return await self._tx.fetchrow(sql, *args)

            async def execute(self, sql: str, *args: Any) -> Any:
                self._note(sql)
                return await self._tx.execute(sql, *args)

            async def executemany(self, sql: str, rows: Any) -> Any:
                self._note(sql)
                return await self._tx.executemany(sql, rows)

        @asynccontextmanager
        async def transaction(single_statement: bool = False) -> AsyncIterator[Any]:
            sql: list[str] = []
            async with begin(single_statement) as tx:
                yield Counted(tx, sql)
            self.commits.append((time.perf_counter(), _classify(sql)))

        raw.transaction = transaction  # type: ignore[method-assign]

    def commits_between(self, start: float, end: float) -> list[tuple[float, str]]:
        return [(t, what) for t, what in self.commits if start <= t <= end]

    def statements_between(self, start: float, end: float) -> Counter[str]:
        return Counter(verb for t, verb in self.statements if start <= t <= end)


def _classify(statements: list[str]) -> str:
    joined = " ".join(s.lower() for s in statements)
    if "insert into task_events" in joined:
        return "event"
    if "lease_expires_at" in joined and "update tasks" in joined:
        return "lease renewal"
    return "other"


# --- live delivery -----------------------------------------------------------------------


@dataclass
class Deliveries:
    """Chunk events as a live reader receives them: (arrival time, text offset the chunk ends at)."""

    chunks: list[tuple[float, int]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)

    async def read(self, subscription: Subscription) -> None:
        offset = 0
        while True:
            item = await subscription.get(timeout=30)
            if item is None:
                if subscription.dropped or subscription.closed:
                    raise RuntimeError("the live reader was dropped by the bus")
                continue
            self.kinds[item.kind] += 1
            if item.kind == EventKind.CHUNK:
                piece = orjson.loads(item.data)["text"]
                offset += len(piece)
                self.chunks.append((time.perf_counter(), offset))
                self.text.append(piece)
            if item.terminal:
                if item.kind != EventKind.COMPLETED:
                    raise RuntimeError(f"the chapter task ended {item.kind}: {item.data}")
                return

    def delays(self, sent: list[tuple[float, int]]) -> list[float]:
        """Per provider piece: seconds from leaving the provider to arriving in a chunk event."""
        offsets = [offset for _, offset in self.chunks]
        out = []
        for left, end in sent:
            index = bisect_left(offsets, end)
            if index < len(self.chunks):
                out.append(self.chunks[index][0] - left)
        return out


# --- one run -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    backend: str
    seconds: float  # first piece to last piece
    pieces: int
    commits: list[tuple[float, str]]
    statements: Counter[str]
    deliveries: int
    delays: list[float]
    events: Counter[str]
    text_matches: bool

    @property
    def writes_per_second(self) -> float:
        return len(self.commits) / self.seconds

    @property
    def gaps(self) -> list[float]:
        times = [t for t, _ in self.commits]
        return [b - a for a, b in itertools.pairwise(times)]

    @property
    def max_in_window(self) -> int:
        times = [t for t, _ in self.commits]
        return max((bisect_left(times, t + WINDOW) - i for i, t in enumerate(times)), default=0)


async def _seed_chapter(engine: Engine) -> tuple[int, int, int]:
    ((user_id, novel_id),) = await seed_novels(engine.db, 1, 1)
    async with engine.db.write() as conn:
        volume_id = (
            await conn.execute(
                insert(Volume).values(novel_id=novel_id, number=1, title="第一卷", summary="").returning(Volume.id)
            )
        ).scalar_one()
        chapter_id = (
            await conn.execute(
                insert(Chapter)
                .values(novel_id=novel_id, volume_id=volume_id, number=1, title="第一章", summary="出海。", content="")
                .returning(Chapter.id)
            )
        ).scalar_one()
    return user_id, novel_id, chapter_id


async def measure(url: str, backend: str, args: argparse.Namespace) -> Result:
    provider = PacedProvider(args.chars, args.seconds, args.piece_chars)
    settings = Settings(database_url=url, sweep_seconds=60.0)
    kind = default_kinds()["write_chapter_content"]
    async with running_engine(settings, {kind.task_type: kind}, provider) as engine:
        user_id, novel_id, chapter_id = await _seed_chapter(engine)
        writes = WriteLog()
        writes.attach(engine)
        live = Deliveries()
        params = chapter.ChapterParams(novel_id=novel_id, chapter_id=chapter_id, target_words=args.target_words)
        async with engine.bus.user(user_id) as subscription:
            reading = asyncio.ensure_future(live.read(subscription))
            await engine.tasks.submit(user_id, kind, params, None)
            await bounded(reading, args.seconds * 3 + 30, "the chapter task to complete")
        async with engine.db.read() as conn:
            saved = (await conn.execute(select(Chapter.content).where(Chapter.id == chapter_id))).scalar_one()
    start, end = provider.sent[0][0], provider.sent[-1][0]
    return Result(
        backend=backend,
        seconds=end - start,
        pieces=len(provider.sent),
        commits=writes.commits_between(start, end),
        statements=writes.statements_between(start, end),
        deliveries=len(live.chunks),
        delays=live.delays(provider.sent),
        events=live.kinds,
        text_matches="".join(live.text) == saved == provider.text,
    )


# --- report ------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def markdown(results: list[Result]) -> str:
    rows: list[list[object]] = []

    def row(name: str, cell: Callable[[Result], object]) -> None:
        rows.append([name, *(cell(r) for r in results)])

    row("stream, first piece to last (s)", lambda r: f"{r.seconds:.1f}")
    row("write transactions", lambda r: len(r.commits))
    row("of which event writes / lease renewals / other", _split)
    row("**writes/s** (goal <= 4)", lambda r: f"{r.writes_per_second:.2f}")
    row("goal met: <= 4 writes/s", lambda r: verdict(r.writes_per_second <= 1 / WINDOW))
    row("shortest gap between writes", lambda r: _ms(min(r.gaps)))
    row(
        "gaps under 250 ms / most writes in any 250 ms",
        lambda r: f"{sum(1 for g in r.gaps if g < WINDOW)} / {r.max_in_window}",
    )
    row("strict goal met: never two writes within 250 ms", lambda r: verdict(min(r.gaps) >= WINDOW))
    row("INSERT / UPDATE statements", lambda r: f"{r.statements['INSERT']} / {r.statements['UPDATE']}")
    row("provider pieces", lambda r: r.pieces)
    row("**live chunk deliveries**", lambda r: r.deliveries)
    row("pieces per delivery", lambda r: f"{r.pieces / max(1, r.deliveries):.1f}")
    row("goal met: one live delivery per piece", lambda r: verdict(r.deliveries >= r.pieces))
    row(
        "delivery delay per piece p50 / p95 / max",
        lambda r: " / ".join(_ms(percentile(r.delays, q)) for q in (0.5, 0.95, 1.0)),
    )
    row("live events by kind", lambda r: ", ".join(f"{k} {n}" for k, n in sorted(r.events.items())))
    row("chunk texts = provider text = saved chapter", lambda r: verdict(r.text_matches))
    return table(["", *(STORE[r.backend] for r in results)], rows)


def settings_line(args: argparse.Namespace) -> dict[str, str]:
    pace = _ms(args.seconds * args.piece_chars / args.chars)
    return {
        "Stream": f"a {args.chars:,}-character chapter (Chinese) in {args.piece_chars}-character pieces over "
        f"{args.seconds:g} s, one piece every {pace}; target_words {args.target_words:,} (a progress event every 2%)",
        "Engine": "the real chapter generator, supervisor, progress reporter and store in-process, submitted through "
        "`Tasks.submit`; default settings (chunk flush every 250 ms or 2 KB, lease 30 s renewed every 10 s)",
        "Counted": "from the first provider piece to the last: commits of write transactions on the writer engine, "
        "chunk events received by a reader of the user's bus stream",
    }


STORE = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def _split(result: Result) -> str:
    kinds = Counter(what for _, what in result.commits)
    return f"{kinds['event']} / {kinds['lease renewal']} / {kinds['other']}"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench writes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the stream lasts (default 60)")
    parser.add_argument("--chars", type=int, default=20000, help="characters in the chapter (default 20000)")
    parser.add_argument("--piece-chars", type=int, default=10, help="characters per provider piece (default 10)")
    parser.add_argument(
        "--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="databases (default both)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 4 s, with the characters scaled to keep the pace"
    )
    args = parser.parse_args(argv)
    # The generator reports progress every 2% of the target: the full chapter's target keeps that pace in --quick.
    args.target_words = min(20000, max(100, args.chars))
    if args.quick:
        args.chars = round(args.chars * 4 / args.seconds)
        args.seconds = 4.0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    results = []
    for backend in args.backends:
        with fresh_database(backend) as url:
            results.append(run(measure(url, backend, args)))
        print(f"{STORE[backend]}: {results[-1].writes_per_second:.2f} writes/s", file=sys.stderr)
    title = "Write amplification: a streamed chapter's database writes and live delivery"
    print(header(title, [], [], settings_line(args)))
    print()
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
