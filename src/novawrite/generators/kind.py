"""What a task kind is: the engine's view of one kind of generation.

The registry of the product's kinds is ``novawrite.services.kinds.default_kinds``;
tests and benchmarks plug in kinds of their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel

from novawrite.generators.base import GenerationContext

# apply(session, novel_id, params, result): an AsyncSession inside the completing
# transaction (novawrite.services.apply). Typed loosely here so that generators
# need no SQLAlchemy import.
ApplyFn = Callable[[Any, int, Any, Any], Awaitable[None]]


@dataclass(frozen=True)
class TaskKind:
    task_type: str
    #: The request body model; has ``novel_id`` (and ``chapter_id`` for chapter kinds).
    params: type[BaseModel]
    result: type[BaseModel]
    generate: Callable[[GenerationContext], Awaitable[BaseModel]]
    #: None: nothing to apply (the result is kept on the task), so no ORM session is opened.
    apply: ApplyFn | None
    #: Streams text as ``chunk`` events (chapters).
    streams_text: bool = False
    #: True when a task is scoped to one chapter (params.chapter_id).
    per_chapter: bool = False
    #: The chapters whose whole text the generator reads (``NovelView.texts``); a submit
    #: naming a chapter that is not the novel's is 404.
    reads_chapters: Callable[[Any], Sequence[int]] | None = None
    #: Other chapters the params name (checked like ``reads_chapters`` at submit, not read whole).
    names_chapters: Callable[[Any], Sequence[int]] | None = None
    #: A batch runs child tasks and holds no generation slot while it waits for them
    #: (``engine.queries.BATCH_TYPES`` names the batch types for the dispatcher's SQL).
    batch: bool = False

    def texts_of(self, params: BaseModel) -> Sequence[int]:
        return self.reads_chapters(params) if self.reads_chapters is not None else ()

    def chapters_named(self, params: BaseModel) -> Sequence[int]:
        """Every chapter the params name: a submit naming one that is not the novel's is 404."""
        return [*self.texts_of(params), *(self.names_chapters(params) if self.names_chapters is not None else ())]

    def scope(self, params: BaseModel) -> int:
        return int(cast(Any, params).chapter_id) if self.per_chapter else 0
