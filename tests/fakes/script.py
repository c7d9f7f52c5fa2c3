"""What a fake model server should do next: the script of steps both fakes understand.

A test pushes steps; each incoming model call takes the next one, and when the
script is empty the fake answers with its default. The same steps read the same
way for Gemini and for an OpenAI-compatible server; each fake renders them in
its own protocol. A streamed call given a ``Text`` sends it as one piece, and a
whole-answer call given a ``Stream`` joins its pieces.

Steps can also be sent as JSON (``{"type": "Fail", "status": 503}``) to
``POST /_fake/script`` of a fake running in another process.
"""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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


class ScriptedServer(FakeHTTPServer):
    """A fake whose model calls follow a script; subclasses render steps in their protocol."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._script: collections.deque[Step] = collections.deque()
        self._script_lock = threading.Lock()
        self.default: Step = Text('{"ok": true}')

    def push(self, *steps: Step) -> None:
        """Queue steps for the next calls, in order."""
        with self._script_lock:
            self._script.extend(steps)

    def next_step(self) -> Step:
        with self._script_lock:
            return self._script.popleft() if self._script else self.default

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
                {"method": r.method, "path": r.path, "query": dict(r.query), "headers": dict(r.headers),
                 "body": r.body.decode("utf-8", "replace")}
                for r in self.model_calls
            ]
            return Reply(200, json.dumps(calls).encode())
        if request.path == "/_fake/stats":
            # Counts include the control requests; "open" leaves out this one.
            stats = {"open": self.open_connections - 1, "opened": self.connections_opened,
                     "closed": self.connections_closed, "abandoned": self.abandoned}
            return Reply(200, json.dumps(stats).encode())
        return Reply(404, b'{"error": "unknown control endpoint"}')
