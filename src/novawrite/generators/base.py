"""What a generator sees, and the shared ways it talks to a provider.

A generator is a coroutine ``generate(ctx) -> result model``. It imports neither
Starlette nor SQLAlchemy: it reads the novel from ``ctx.novel`` (a read-only
snapshot taken when the task started), reports through ``ctx.progress`` and asks
the model through ``ask_json`` / ``stream_with_retries`` below, which retry
transient provider errors with backoff and repair invalid JSON once.

Writing a result into the novel is not a generator's business: each kind's
``apply`` lives in ``novawrite.services.apply``.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, TypeVar

from pydantic import AfterValidator, BaseModel, Field, ValidationError

from novawrite.providers.base import Completion, Prompt, Provider, ProviderError, Usage
from novawrite.providers.requests import NovelRequest

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


class InvalidModelOutput(Exception):
    """The model's answer did not parse or fit the schema, even after one repair."""

    code = "invalid_model_output"


class QuotaExhausted(Exception):
    """A 429 that is the provider's quota, not a passing limit: its delay is longer than the
    policy retries within a task, or it names a per-day quota. The task waits ``delay``
    seconds off its slot (the supervisor requeues it) instead of retrying or failing."""

    def __init__(self, error: ProviderError, delay: float) -> None:
        super().__init__(error.message)
        self.error = error
        self.delay = delay


class NovelGone(Exception):
    """What the task works on (its novel, its chapter, a batch's child) was deleted while it ran.
    The task fails with ``code`` (when its row is still there: a deleted novel takes its tasks)."""

    code = "not_found"


class TaskStopped(Exception):
    """A generator ends its task without a result: failed with ``code``, or cancelled when ``code`` is None."""

    def __init__(self, code: str | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ChildEnd:
    """How a batch's child task ended (or stands): its status and what it stored."""

    status: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    usage: Usage = field(default_factory=Usage)


class ChildTasks(Protocol):
    """A batch's way to its children (implemented by the engine; a generator knows no SQL)."""

    #: The batch's own task id.
    batch_id: str

    async def find(self, scope: int) -> str | None:
        """The id of the child this batch already made for ``scope`` (a chapter), newest first."""
        ...

    async def submit(self, task_type: str, scope: int, params: dict[str, Any]) -> str:
        """Queue a child task like any submit (``params`` as stored); its id. Raises ``TaskStopped`` on a conflict."""
        ...

    async def wait(self, child_id: str) -> ChildEnd:
        """Wait for the child's terminal status and return it."""
        ...

    async def read(self, child_id: str) -> ChildEnd:
        """The child as it stands now."""
        ...


class ProgressReporter(Protocol):
    async def update(self, percent: int, message: str) -> None:
        """Set progress (never lower than before within an attempt) and the message."""
        ...

    async def chunk(self, text: str) -> None:
        """Add generated text; pieces are coalesced before they become events."""
        ...


# --- Parameters shared by kinds -------------------------------------------------------


def _distinct(value: list[int]) -> list[int]:
    if len(set(value)) != len(value):
        raise ValueError("chapter ids must be distinct")
    return value


#: The chapters a batch kind works through: 1 to 200 ids, none twice.
ChapterIds = Annotated[
    list[int],
    Field(min_length=1, max_length=200, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_distinct),
]


# --- The novel as a generator sees it -------------------------------------------------


@dataclass(frozen=True)
class ChapterView:
    id: int
    number: int
    title: str
    summary: str
    word_count: int
    #: What happens in the written text ("" when it has no recap yet).
    recap: str
    has_content: bool


@dataclass(frozen=True)
class VolumeView:
    number: int
    title: str
    summary: str
    chapters: tuple[ChapterView, ...] = ()


@dataclass(frozen=True)
class CharacterView:
    name: str
    role: str
    description: str


@dataclass(frozen=True)
class WorldSettingView:
    name: str
    category: str
    description: str


@dataclass(frozen=True)
class TimelineEventView:
    position: int
    time_label: str
    title: str
    description: str


@dataclass(frozen=True)
class ForeshadowingView:
    title: str
    description: str
    status: str
    #: Chapter numbers (the chapters the thread names by id, as they are numbered now).
    planted_chapter: int | None = None
    payoff_chapter: int | None = None
    id: int = 0


@dataclass(frozen=True)
class TargetChapter:
    """For chapter tasks: the chapter being written and what leads into it."""

    chapter: ChapterView
    volume_number: int
    previous_ending: str  # the last part of the previous chapter's text, or ""
    existing_content: str


@dataclass(frozen=True)
class NovelView:
    id: int
    title: str
    genre: str
    synopsis: str
    language: str  # "zh" or "en"
    outline: str | None
    volumes: tuple[VolumeView, ...] = ()
    characters: tuple[CharacterView, ...] = ()
    world_settings: tuple[WorldSettingView, ...] = ()
    timeline_events: tuple[TimelineEventView, ...] = ()
    foreshadowings: tuple[ForeshadowingView, ...] = ()
    target: TargetChapter | None = None
    #: The text of the chapters a kind reads whole (``TaskKind.reads_chapters``), by chapter id.
    texts: Mapping[int, str] = field(default_factory=dict)

    def as_context(self) -> NovelRequest:
        """The novel's own fields, which every prompt's request (``Prompt.context``) starts with."""
        return {
            "title": self.title,
            "genre": self.genre,
            "synopsis": self.synopsis,
            "language": self.language,
            "character_names": [c.name for c in self.characters],
            "world_setting_names": [w.name for w in self.world_settings],
        }


# --- The context ----------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for transient provider errors: ``base`` seconds doubling, capped, jittered;
    a server's Retry-After is honoured up to ``retry_after_cap``."""

    max_retries: int = 4
    base: float = 1.0
    cap: float = 30.0
    retry_after_cap: float = 60.0
    #: How long a per-day quota's 429 that gives no delay waits before the task tries again.
    per_day_wait: float = 3600.0

    def quota_wait(self, error: ProviderError) -> float | None:
        """Seconds a quota 429 makes the task wait off its slot; None when ``error`` is retried in the task.

        A 429 is a quota when its delay is longer than ``retry_after_cap`` or it names a per-day quota.
        """
        if not error.rate_limited:
            return None
        if error.retry_after is not None and error.retry_after > self.retry_after_cap:
            return error.retry_after
        if error.quota == "per_day":
            return error.retry_after if error.retry_after is not None else self.per_day_wait
        return None

    def check_quota(self, error: ProviderError) -> None:
        """Raise ``QuotaExhausted`` when ``error`` is a quota 429."""
        wait = self.quota_wait(error)
        if wait is not None:
            raise QuotaExhausted(error, wait) from error

    def delay(self, retry: int, error: ProviderError) -> float:
        if error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.retry_after_cap)
        backoff = min(self.base * (2 ** (retry - 1)), self.cap)
        return float(backoff * random.uniform(0.8, 1.2))


@dataclass
class GenerationContext:
    novel: NovelView
    params: BaseModel
    progress: ProgressReporter
    provider: Provider
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: What an earlier attempt (or the task this one retries) saved, or None.
    checkpoint: dict[str, Any] | None = None
    save_checkpoint: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    usage: Usage = field(default_factory=Usage)
    #: For streaming kinds: text an interrupted earlier attempt of this task already
    #: streamed (its chunk events are out); the generator continues after it.
    resume_text: str = ""
    #: For batch kinds (``TaskKind.batch``): the way to their children.
    children: ChildTasks | None = None
    #: Awaited before every model call; raises the ``ProviderError`` the call would meet (a used-up
    #: quota another task met) instead of making it.
    before_call: Callable[[], Awaitable[None]] | None = None

    @property
    def language(self) -> str:
        return self.novel.language

    def add_usage(self, usage: Usage) -> None:
        self.usage = self.usage + usage

    async def checkpoint_save(self, data: dict[str, Any]) -> None:
        self.checkpoint = data
        if self.save_checkpoint is not None:
            await self.save_checkpoint(data)


def _retry_message(ctx: GenerationContext, error: ProviderError, delay: float) -> str:
    seconds = max(1, round(delay))
    if ctx.language == "zh":
        reason = "模型限流" if error.rate_limited else "模型暂时不可用"
        return f"{reason}，{seconds} 秒后重试"
    reason = "Rate limited" if error.rate_limited else "Model unavailable"
    return f"{reason}; retrying in {seconds} s"


async def retry_transient(ctx: GenerationContext, call: Callable[[], Awaitable[R]], *, percent: int | None = None) -> R:
    """Run ``call``, retrying transient provider errors by ``ctx.retry``.

    Fatal errors and the last transient one propagate as ``ProviderError``; a quota
    429 (``RetryPolicy.quota_wait``) as ``QuotaExhausted``, at once.
    While waiting, the progress message says why and for how long.
    """
    retry = 0
    while True:
        try:
            if ctx.before_call is not None:
                await ctx.before_call()
            return await call()
        except ProviderError as error:
            ctx.retry.check_quota(error)
            if not error.transient or retry >= ctx.retry.max_retries:
                raise
            retry += 1
            delay = ctx.retry.delay(retry, error)
            await ctx.progress.update(percent or 0, _retry_message(ctx, error, delay))
            await asyncio.sleep(delay)


def _strip_fences(text: str) -> str:
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        if text.rstrip().endswith("```"):
            text = text.rstrip()[:-3]
    return text.strip()


def parse_model_json(text: str, schema: type[M]) -> M:
    """Parse and validate a model's JSON answer; raises ValueError with a readable reason."""
    try:
        data = json.loads(_strip_fences(text))
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"does not fit the schema: {exc}") from None


def _repair_prompt(prompt: Prompt, answer: str, reason: str) -> Prompt:
    user = (
        f"{prompt.user}\n\n"
        f"Your previous answer could not be used because it {reason}.\n"
        f"Previous answer:\n{answer[:4000]}\n\n"
        "Answer again with only the corrected JSON, complete and matching the schema."
    )
    return Prompt(kind=prompt.kind, system=prompt.system, user=user, context={**prompt.context, "repair": True})


async def ask_json(ctx: GenerationContext, prompt: Prompt, schema: type[M], *, percent: int | None = None) -> M:
    """Ask for JSON fitting ``schema``; one repair round on invalid output, then
    ``InvalidModelOutput``. Transient provider errors are retried around each call."""

    async def call(p: Prompt) -> Completion:
        completion = await retry_transient(ctx, lambda: ctx.provider.generate_json(p, schema), percent=percent)
        ctx.add_usage(completion.usage)
        return completion

    first = await call(prompt)
    try:
        return parse_model_json(first.text, schema)
    except ValueError as exc:
        reason = str(exc)
    second = await call(_repair_prompt(prompt, first.text, reason))
    try:
        return parse_model_json(second.text, schema)
    except ValueError as exc:
        raise InvalidModelOutput(f"The model's answer {exc} (after one repair attempt)") from None


async def stream_with_retries(
    ctx: GenerationContext,
    make_prompt: Callable[[str], Prompt],
    *,
    on_text: Callable[[str], Awaitable[None]],
    initial: str = "",
) -> str:
    """Stream text, retrying transient errors by asking to continue from the text so far.

    ``make_prompt(text_so_far)`` builds the prompt for the first call ("" so far)
    and for continuations. Every piece goes to ``on_text`` once, in order, so the
    pieces always add up to the returned text. ``initial`` is text an interrupted
    attempt already streamed: the result starts with it and the first call
    already continues after it.
    """
    text = initial
    retry = 0
    while True:
        before = len(text)
        try:
            if ctx.before_call is not None:
                await ctx.before_call()
            stream: AsyncIterator[Completion] = ctx.provider.stream_text(make_prompt(text))
            async for piece in stream:
                ctx.add_usage(piece.usage)
                if piece.text:
                    text += piece.text
                    await on_text(piece.text)
            return text
        except ProviderError as error:
            if len(text) > before:
                retry = 0  # a cut after progress: the budget is for failures in a row
            ctx.retry.check_quota(error)  # the text so far is out as chunks: the next attempt continues it
            if not error.transient or retry >= ctx.retry.max_retries:
                raise
            retry += 1
            delay = ctx.retry.delay(retry, error)
            await ctx.progress.update(0, _retry_message(ctx, error, delay))
            await asyncio.sleep(delay)
