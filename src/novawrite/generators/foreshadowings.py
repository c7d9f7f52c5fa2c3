"""Foreshadowing: clues planted in one chapter and paid off in a later one."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from novawrite.generators.base import GenerationContext, NovelView
from novawrite.generators.list_kind import ListParams, ListSpec, generate_list
from novawrite.generators.prompts import chapter_total, characters_block, foreshadowing_block, pick, world_block


class ForeshadowingsParams(ListParams):
    count: int = Field(default=5, ge=1, le=50)


class ForeshadowingItem(BaseModel):
    title: str
    description: str
    planted_chapter: int | None = None
    payoff_chapter: int | None = None
    status: Literal["planted", "resolved"] = "planted"

    @field_validator("status", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        # "Planted" or " resolved " mean the same; anything else still fails validation.
        return value.strip().lower() if isinstance(value, str) else value


class ForeshadowingsResult(BaseModel):
    foreshadowings: list[ForeshadowingItem]


def _describe(novel: NovelView, want: int) -> str:
    chapters = chapter_total(novel)
    span = pick(novel.language, f"（本书共 {chapters} 章）", f" (the book has {chapters} chapters)") if chapters else ""
    return pick(
        novel.language,
        f"请为这部小说设计 {want} 条新伏笔，放在 foreshadowings 列表中。每条包括：title（伏笔名称）、"
        f"description（埋下什么线索、读者最初如何理解、最终揭示的真相）、planted_chapter（埋下的章节号{span}）、"
        "payoff_chapter（计划回收的章节号，须晚于埋下的章节）、status（planted 表示已埋下待回收，resolved 表示已回收）。"
        "伏笔要与主线、人物和世界设定紧密相关，回收时能带来反转或情感冲击。",
        f"Design {want} new pieces of foreshadowing for this novel in the `foreshadowings` list. Each has: title, "
        "description (the clue planted, how readers first read it, the truth it finally reveals), planted_chapter "
        f"(chapter number where it is planted{span}), payoff_chapter (the planned payoff, after the planting), "
        "status ('planted' while it waits for its payoff, 'resolved' once paid off). Tie each to the main plot, "
        "the characters or the world, so that its payoff lands as a twist or an emotional blow.",
    )


SPEC = ListSpec(
    prompt_kind="foreshadowings",
    result=ForeshadowingsResult,
    items_field="foreshadowings",
    key_field="title",
    noun_zh="伏笔",
    noun_en="foreshadowing",
    existing_names=lambda novel: [f.title for f in novel.foreshadowings],
    describe=_describe,
    background=lambda novel: [
        foreshadowing_block(novel),
        characters_block(novel, limit=15),
        world_block(novel, limit=15),
    ],
)


async def generate(ctx: GenerationContext) -> ForeshadowingsResult:
    return await generate_list(ctx, SPEC)
