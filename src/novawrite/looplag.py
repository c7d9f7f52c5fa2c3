"""An opt-in meter of the event loop's lag, for ``scripts/bench looplag`` and for chasing a stall.

With ``NOVAWRITE_LOOPLAG_FILE=/some/path`` set, a timer due every millisecond
notes how late the loop runs it (its lag: whatever held the loop meanwhile), into
a histogram of 0.1 ms buckets. A watchdog thread writes the histogram to that
file once a second (JSON, replaced atomically) and, when the loop has not run the
timer for ``STALL_MS``, samples the loop thread's stack: each stall is kept with
the code that held the loop (``sqlite3`` releases the GIL while it works, so a
stall inside SQLite is seen from inside it). Unset, nothing is started.

The app starts it from ``Settings.looplag_file``. uvloop's clock has a resolution
of a millisecond, so lags under about 1 ms read as 0 or 1 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

TICK = 0.001  # seconds between timer runs
BUCKET_MS = 0.1
STALL_MS = 5.0
WRITE_EVERY = 1.0
KEEP_STALLS = 2000
STACK_DEPTH = 8

_meter: LoopLag | None = None


def start(path: str | None) -> LoopLag | None:
    """Start the meter on the running loop, writing to ``path`` (``NOVAWRITE_LOOPLAG_FILE``;
    None: off), once per process."""
    global _meter
    if not path or _meter is not None:
        return _meter
    _meter = LoopLag(Path(path), asyncio.get_running_loop())
    _meter.start()
    return _meter


def _stack(frame: Any) -> list[str]:
    """The innermost frames of a stack, as ``file:line function``, paths from the package or library on."""
    out = []
    for entry in traceback.extract_stack(frame)[-STACK_DEPTH:]:
        path = entry.filename
        for marker in ("/site-packages/", "/src/", "/lib/python3"):
            if marker in path:
                path = path.rsplit(marker, 1)[1]
                break
        out.append(f"{path}:{entry.lineno} {entry.name}")
    return out


class LoopLag:
    def __init__(self, path: Path, loop: asyncio.AbstractEventLoop) -> None:
        self.path = path
        self.loop = loop
        self.ticks = 0
        self.max_ms = 0.0
        self.histogram: dict[int, int] = {}  # lag bucket (BUCKET_MS each) -> ticks
        self.stalls: list[tuple[float, float, list[str]]] = []  # (monotonic time due, lag ms, stack)
        self._due = 0.0
        self._beat = time.monotonic()
        self._sample: list[str] | None = None  # the stack of the stall in progress
        self._loop_thread = threading.get_ident()
        self._watchdog = threading.Thread(target=self._watch, name="looplag", daemon=True)

    def start(self) -> None:
        self._due = time.monotonic() + TICK
        self.loop.call_later(TICK, self._tick)
        self._watchdog.start()

    def _tick(self) -> None:
        now = time.monotonic()
        lag_ms = max(0.0, now - self._due) * 1000
        bucket = int(lag_ms / BUCKET_MS)
        self.histogram[bucket] = self.histogram.get(bucket, 0) + 1
        self.ticks += 1
        self.max_ms = max(self.max_ms, lag_ms)
        if lag_ms >= STALL_MS:
            self.stalls.append((self._due, lag_ms, self._sample or []))
            del self.stalls[:-KEEP_STALLS]
        self._sample = None
        self._beat = now
        self._due = now + TICK
        self.loop.call_later(TICK, self._tick)

    def _watch(self) -> None:
        next_write = time.monotonic()
        while True:
            time.sleep(TICK * 2)
            now = time.monotonic()
            if self._sample is None and now - self._beat > STALL_MS / 1000 + TICK:
                frame = sys._current_frames().get(self._loop_thread)
                if frame is not None:
                    self._sample = _stack(frame)
            if now >= next_write:
                next_write = now + WRITE_EVERY
                self._write()

    def snapshot(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "at": time.monotonic(),
            "ticks": self.ticks,
            "max_ms": self.max_ms,
            "bucket_ms": BUCKET_MS,
            "histogram": {str(k): v for k, v in dict(self.histogram).items()},
            "stalls": list(self.stalls),
        }

    def _write(self) -> None:
        partial = self.path.with_name(self.path.name + ".partial")
        try:
            partial.write_text(json.dumps(self.snapshot()))
            partial.replace(self.path)
        except OSError:
            pass  # a diagnostic never takes the server down
