"""The provider protocol: the one seam between NovaWrite and a language model.

A provider does exactly two things: answer a prompt with JSON text meant to fit a
pydantic schema, and stream free text. It neither retries nor validates: the
engine retries transient errors (honouring ``retry_after``) and the generators
validate and repair model output, the same way for every provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.output_tokens + other.output_tokens)

    def as_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "output_tokens": self.output_tokens}


@dataclass(frozen=True)
class Prompt:
    """What to ask a model.

    ``system`` and ``user`` are the text a real model reads. ``kind`` and
    ``context`` carry the same request as data for the offline demo provider,
    which writes from the novel's fields instead of reading prose:
    ``kind`` is e.g. ``"outline"``, ``"characters"``, ``"chapter"``;
    ``context`` holds the novel (title, genre, synopsis, language, ...) and the
    request's parameters (e.g. which volume and chapters this batch covers).
    """

    kind: str
    system: str
    user: str
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Completion:
    """A JSON answer (or, from ``stream_text``, one piece of text) and the tokens it cost."""

    text: str
    usage: Usage = Usage()


class ProviderError(Exception):
    """A model call failed.

    ``transient`` errors (429, 5xx, timeouts, cut connections) are worth retrying,
    after ``retry_after`` seconds when the server said so; the others (bad key,
    unknown model, bad request) fail the task at once. ``code`` is the task error
    code the failure ends in: ``provider_rate_limited`` or ``provider_error``.
    ``quota`` is ``"per_day"`` when a 429 names a per-day quota (Gemini's
    ``google.rpc.QuotaFailure``), else None.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        retry_after: float | None = None,
        status: int | None = None,
        rate_limited: bool = False,
        quota: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.retry_after = retry_after
        self.status = status
        self.rate_limited = rate_limited
        self.quota = quota

    @property
    def code(self) -> str:
        return "provider_rate_limited" if self.rate_limited else "provider_error"


class Provider(Protocol):
    """A language model behind one small interface."""

    name: str
    #: True for the offline demo provider, whose output the UI labels as demo content.
    is_demo: bool

    async def generate_json(self, prompt: Prompt, schema: type[BaseModel]) -> Completion:
        """Answer with JSON text meant to validate against ``schema`` (not validated here)."""
        ...

    def stream_text(self, prompt: Prompt) -> AsyncIterator[Completion]:
        """Stream text pieces in order; a piece's ``usage`` is what to add (usually
        zero until the piece that carries the call's usage). Cancelling the task
        that iterates must close the upstream connection."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
