"""The registry of generation kinds: task_type -> how to validate, run and apply it.

It lives among the services because it pairs each generator (``novawrite.generators``,
which knows no database) with the function that writes its result
(``novawrite.services.apply``). The HTTP route of each kind is the web layer's
(``novawrite.web.api_tasks.submit_route``).
"""

from __future__ import annotations

from functools import partial

from novawrite.generators import (
    batch,
    chapter,
    characters,
    foreshadowings,
    outline,
    recap_chapters,
    timeline_events,
    world_settings,
)
from novawrite.generators.chapter_context import CONTEXT_BUDGET
from novawrite.generators.kind import TaskKind
from novawrite.services.apply.chapter import apply_chapter
from novawrite.services.apply.lists import (
    apply_characters,
    apply_foreshadowings,
    apply_timeline_events,
    apply_world_settings,
)
from novawrite.services.apply.memory import apply_recaps
from novawrite.services.apply.outline import apply_outline


def default_kinds(chapter_context_tokens: int = CONTEXT_BUDGET) -> dict[str, TaskKind]:
    """``chapter_context_tokens``: the chapter prompt's budget (``NOVAWRITE_CHAPTER_CONTEXT_TOKENS``)."""
    kinds = [
        TaskKind(
            task_type="generate_outline",
            params=outline.OutlineParams,
            result=outline.OutlineResult,
            generate=outline.generate,
            apply=apply_outline,
        ),
        TaskKind(
            task_type="generate_characters",
            params=characters.CharactersParams,
            result=characters.CharactersResult,
            generate=characters.generate,
            apply=apply_characters,
        ),
        TaskKind(
            task_type="generate_world_settings",
            params=world_settings.WorldSettingsParams,
            result=world_settings.WorldSettingsResult,
            generate=world_settings.generate,
            apply=apply_world_settings,
        ),
        TaskKind(
            task_type="generate_timeline_events",
            params=timeline_events.TimelineEventsParams,
            result=timeline_events.TimelineEventsResult,
            generate=timeline_events.generate,
            apply=apply_timeline_events,
        ),
        TaskKind(
            task_type="generate_foreshadowings",
            params=foreshadowings.ForeshadowingsParams,
            result=foreshadowings.ForeshadowingsResult,
            generate=foreshadowings.generate,
            apply=apply_foreshadowings,
        ),
        TaskKind(
            task_type="write_chapter_content",
            params=chapter.ChapterParams,
            result=chapter.ChapterResult,
            generate=partial(chapter.generate, budget=chapter_context_tokens),
            apply=apply_chapter,
            streams_text=True,
            per_chapter=True,
        ),
        TaskKind(
            task_type="recap_chapters",
            params=recap_chapters.RecapChaptersParams,
            result=recap_chapters.RecapChaptersResult,
            generate=recap_chapters.generate,
            apply=apply_recaps,
            reads_chapters=recap_chapters.chapters_read,
        ),
        TaskKind(
            task_type=batch.TASK_TYPE,
            params=batch.WriteChaptersParams,
            result=batch.WriteChaptersResult,
            generate=batch.generate,
            apply=None,  # its children applied their chapters
            names_chapters=batch.chapters_named,
            batch=True,
        ),
    ]
    return {kind.task_type: kind for kind in kinds}
