"""What a fake model server should do next: the script of steps both fakes understand.

A test pushes steps; each incoming model call takes the next one, and when the
script is empty the fake answers with its default. The same steps read the same
way for Gemini and for an OpenAI-compatible server; each fake renders them in
its own protocol. A streamed call given a ``Text`` sends it as one piece, and a
whole-answer call given a ``Stream`` joins its pieces.

Steps can also be sent as JSON (``{"type": "Fail", "status": 503}``) to
``POST /_fake/script`` of a fake running in another process.

``Faults`` makes a fake fail a fraction of its model calls at random (429 with
Retry-After, 503, a stream cut mid-way), reproducibly from a seed, on top of the
script: a failed call leaves the script's next step for the next call.
"""

from __future__ import annotations

import collections
import json
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tests.fakes.http_server import FakeHTTPServer, Reply, Request, Response


@dataclass(frozen=True)
class Text:
    """Answer with this text and this usage."""

    text: str
    prompt_tokens: int = 7
    output_tokens: int = 11


@dataclass(frozen=True)
class Piece:
    """One streamed piece, sent after ``delay`` seconds."""

    text: str
    delay: float = 0.0


@dataclass(frozen=True)
class Stream:
    """Stream these pieces.

    ``output_tokens`` defaults to one per piece. ``cut_after=N`` drops the
    connection after N pieces (a broken body); ``hang_after=N`` goes silent after
    N pieces and keeps the connection open; ``unfinished`` ends the body cleanly
    but without the protocol's end marker (no finish reason, no ``[DONE]``).
    """

    pieces: Sequence[str | Piece]
    delay: float = 0.0
    prompt_tokens: int = 7
    output_tokens: int | None = None
    cut_after: int | None = None
    hang_after: int | None = None
    unfinished: bool = False

    def normalized(self) -> list[Piece]:
        return [p if isinstance(p, Piece) else Piece(p, self.delay) for p in self.pieces]

    @property
    def total_output_tokens(self) -> int:
        return len(self.pieces) if self.output_tokens is None else self.output_tokens


@dataclass(frozen=True)
class Fail:
    """Answer with an HTTP error in the protocol's error shape.

    ``retry_delay`` (Gemini only) adds a ``google.rpc.RetryInfo`` detail such as
    ``"7s"``; ``body`` replaces the whole body with raw bytes.
    """

    status: int
    message: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    retry_delay: str | None = None
    body: bytes | None = None


@dataclass(frozen=True)
class Hang:
    """Accept the call and never answer."""


Step = Text | Stream | Fail | Hang

_STEP_TYPES: dict[str, type[Step]] = {"Text": Text, "Stream": Stream, "Fail": Fail, "Hang": Hang}  # type: ignore[dict-item]


def step_from_json(data: Mapping[str, Any]) -> Step:
    fields = dict(data)
    kind = _STEP_TYPES[fields.pop("type")]
    if kind is Stream:
        fields["pieces"] = [Piece(**p) if isinstance(p, dict) else p for p in fields.get("pieces", [])]
    if kind is Fail and isinstance(fields.get("body"), str):
        fields["body"] = fields["body"].encode()
    return kind(**fields)


def one_conversation(request: Request) -> str:
    """``Faults``' default key: every call belongs to the same conversation."""
    return ""


@dataclass(frozen=True)
class Faults:
    """Fail about ``rate`` of the model calls: a 429 with ``Retry-After: retry_after``,
    a 503, or (streamed calls only) a stream cut after some but not all of its pieces.

    ``key(request)`` names the conversation a call belongs to (one task's calls,
    say); the n-th call of a key is decided by an RNG seeded with (seed, key, n),
    so a seed gives every key the same faults however the calls of different keys
    interleave. ``max_run`` bounds the faults in a row for one key: a client that
    retries that many times always gets through.
    """

    rate: float
    seed: int
    key: Callable[[Request], str] = one_conversation
    retry_after: int = 1
    max_run: int | None = None

    def draw(self, key: str, n: int, run: int, streaming: bool) -> str:
        """``"ok"``, ``"429"``, ``"503"`` or ``"cut"`` for the n-th call of ``key``, ``run`` faults in a row so far."""
        rng = random.Random(f"{self.seed}:{key}:{n}")
        if rng.random() >= self.rate or (self.max_run is not None and run >= self.max_run):
            return "ok"
        return rng.choice(("429", "503", "cut") if streaming else ("429", "503"))

    def cut_point(self, key: str, n: int, pieces: int) -> int:
        """How many of ``pieces`` a cut stream delivers: at least one when there are two or more, never all."""
        return random.Random(f"{self.seed}:{key}:{n}:cut").randint(1, pieces - 1) if pieces > 1 else 0


@dataclass(frozen=True)
class Draw:
    """One model call made while ``Faults`` were on: its key, its number within the key,
    what it got, when it arrived (``time.monotonic()``), and for a cut stream how many pieces it delivered."""

    key: str
    n: int
    outcome: str
    at: float
    delivered: int | None = None


def _as_stream(step: Text | Stream) -> Stream:
    if isinstance(step, Stream):
        return step
    return Stream([step.text], prompt_tokens=step.prompt_tokens, output_tokens=step.output_tokens)


class ScriptedServer(FakeHTTPServer):
    """A fake whose model calls follow a script; subclasses render steps in their protocol."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._script: collections.deque[Step] = collections.deque()
        self._script_lock = threading.Lock()
        self.default: Step = Text('{"ok": true}')
        self.faults: Faults | None = None
        self._draws: list[Draw] = []
        self._runs: dict[str, tuple[int, int]] = {}  # key -> (calls so far, faults in a row)

    def push(self, *steps: Step) -> None:
        """Queue steps for the next calls, in order."""
        with self._script_lock:
            self._script.extend(steps)

    def next_step(self) -> Step:
        with self._script_lock:
            return self._script.popleft() if self._script else self.default

    def step_for(self, request: Request, *, streaming: bool) -> Step:
        """The next step, unless ``faults`` make this call fail (then the step waits for the next call)."""
        faults = self.faults
        if faults is None:
            return self.next_step()
        key = faults.key(request)
        with self._script_lock:
            n, run = self._runs.get(key, (0, 0))
            outcome = faults.draw(key, n, run, streaming)
            upcoming = self._script[0] if self._script else self.default
            step: Step
            delivered = None
            if outcome == "ok":
                step = self._script.popleft() if self._script else self.default
            elif outcome == "cut" and isinstance(upcoming, Text | Stream):
                whole = _as_stream(upcoming)
                delivered = faults.cut_point(key, n, len(whole.pieces))
                step = replace(whole, cut_after=delivered)
            elif outcome == "429":
                step = Fail(
                    429,
                    "Resource has been exhausted (e.g. check quota).",
                    headers={"Retry-After": str(faults.retry_after)},
                )
            else:  # a 503, also in place of a cut when the script's next step has no pieces to cut
                outcome = "503"
                step = Fail(503, "The model is overloaded. Please try again later.")
            self._runs[key] = (n + 1, 0 if outcome == "ok" else run + 1)
            self._draws.append(Draw(key, n, outcome, time.monotonic(), delivered))
        return step

    @property
    def draws(self) -> list[Draw]:
        """Every call decided by ``faults``, in arrival order."""
        with self._script_lock:
            return list(self._draws)

    @property
    def model_calls(self) -> list[Request]:
        """The recorded requests, without the control endpoints."""
        return [r for r in self.requests if not r.path.startswith("/_fake/")]

    def respond(self, request: Request) -> Response:
        if request.path.startswith("/_fake/"):
            return self._control(request)
        return self.respond_model(request)

    def respond_model(self, request: Request) -> Response:
        raise NotImplementedError

    def _control(self, request: Request) -> Response:
        if request.path == "/_fake/script" and request.method == "POST":
            self.push(*(step_from_json(item) for item in request.json()))
            return Reply(204, b"")
        if request.path == "/_fake/requests":
            calls = [
                {
                    "method": r.method,
                    "path": r.path,
                    "query": dict(r.query),
                    "headers": dict(r.headers),
                    "body": r.body.decode("utf-8", "replace"),
                }
                for r in self.model_calls
            ]
            return Reply(200, json.dumps(calls).encode())
        if request.path == "/_fake/stats":
            # Counts include the control requests; "open" leaves out this one.
            stats = {
                "open": self.open_connections - 1,
                "opened": self.connections_opened,
                "closed": self.connections_closed,
                "abandoned": self.abandoned,
            }
            return Reply(200, json.dumps(stats).encode())
        return Reply(404, b'{"error": "unknown control endpoint"}')
