"""The registry of generation kinds: task_type -> how to validate, run and apply it.

Each kind lives in its own module beside this one and exports ``KIND``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel

from novawrite.generators.base import GenerationContext

# apply(session, novel_id, params, result): an AsyncSession inside the completing
# transaction. Typed loosely here so that this module needs no SQLAlchemy import.
ApplyFn = Callable[[Any, int, Any, Any], Awaitable[None]]


@dataclass(frozen=True)
class TaskKind:
    task_type: str
    #: The submit route, e.g. "/api/ai/generate-outline".
    route: str
    #: The request body model; has ``novel_id`` (and ``chapter_id`` for chapter kinds).
    params: type[BaseModel]
    result: type[BaseModel]
    generate: Callable[[GenerationContext], Awaitable[BaseModel]]
    apply: ApplyFn
    #: Streams text as ``chunk`` events (chapters).
    streams_text: bool = False
    #: True when a task is scoped to one chapter (params.chapter_id).
    per_chapter: bool = False

    def scope(self, params: BaseModel) -> int:
        return int(cast(Any, params).chapter_id) if self.per_chapter else 0


def default_kinds() -> Mapping[str, TaskKind]:
    from novawrite.generators import (
        chapter,
        characters,
        foreshadowings,
        outline,
        timeline_events,
        world_settings,
    )

    kinds = [
        outline.KIND,
        characters.KIND,
        world_settings.KIND,
        timeline_events.KIND,
        foreshadowings.KIND,
        chapter.KIND,
    ]
    return {kind.task_type: kind for kind in kinds}
