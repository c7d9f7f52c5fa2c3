"""Timeline events: what happens when, continuing after the novel's existing timeline."""

from __future__ import annotations

from pydantic import BaseModel, Field

from novawrite.generators.base import GenerationContext, NovelView
from novawrite.generators.list_kind import ListParams, ListSpec, generate_list
from novawrite.generators.prompts import chapter_total, characters_block, pick, timeline_block
from novawrite.providers.requests import ListRequest, TimelineRequest


class TimelineEventsParams(ListParams):
    count: int = Field(default=8, ge=1, le=100)


class TimelineEventItem(BaseModel):
    position: int = 0
    time_label: str
    title: str
    description: str
    chapter_number: int | None = None


class TimelineEventsResult(BaseModel):
    timeline_events: list[TimelineEventItem]


def _last_position(novel: NovelView) -> int:
    return max((e.position for e in novel.timeline_events), default=0)


def _request(novel: NovelView, request: ListRequest) -> TimelineRequest:
    return {**request, "max_position": _last_position(novel)}


def _describe(novel: NovelView, want: int) -> str:
    start = _last_position(novel) + 1
    chapters = chapter_total(novel)
    where = (
        pick(novel.language, f"（本书共 {chapters} 章）", f" (the book has {chapters} chapters)") if chapters else ""
    )
    return pick(
        novel.language,
        f"请为这部小说续写 {want} 个时间线事件，放在 timeline_events 列表中，按时间先后排列，"
        f"接在已有时间线之后（position 从 {start} 开始递增）。每个事件包括：position、time_label（故事内的时间，"
        f"如“第一年春”“三日后”）、title（事件名称）、description（发生了什么、谁参与、有何后果）、"
        f"chapter_number（发生在第几章{where}，不确定时为 null）。",
        f"Continue this novel's timeline with {want} events in the `timeline_events` list, in chronological order "
        f"after the existing ones (position counting up from {start}). Each has: position, time_label (time inside "
        f"the story, e.g. 'Year 1, spring', 'Three days later'), title, description (what happens, who takes part, "
        f"what follows), chapter_number (the chapter where it happens{where}, or null when unknown).",
    )


SPEC = ListSpec(
    prompt_kind="timeline_events",
    result=TimelineEventsResult,
    items_field="timeline_events",
    key_field="title",
    noun_zh="时间线事件",
    noun_en="timeline events",
    existing_names=lambda novel: [e.title for e in novel.timeline_events],
    describe=_describe,
    background=lambda novel: [timeline_block(novel), characters_block(novel, limit=15)],
    extend_request=_request,
)


async def generate(ctx: GenerationContext) -> TimelineEventsResult:
    result = await generate_list(ctx, SPEC)
    # Batches each count positions from wherever the model liked: number them in the
    # order they arrived, after the timeline the novel had.
    start = _last_position(ctx.novel)
    chapters = chapter_total(ctx.novel)
    events = [
        event.model_copy(
            update={
                "position": start + i,
                "chapter_number": _valid_chapter(event.chapter_number, chapters),
            }
        )
        for i, event in enumerate(result.timeline_events, start=1)
    ]
    return TimelineEventsResult(timeline_events=events)


def _valid_chapter(number: int | None, chapters: int) -> int | None:
    if number is None or number < 1 or (chapters and number > chapters):
        return None
    return number
