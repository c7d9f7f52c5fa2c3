"""World settings: places, factions, rules and items that widen the novel's world."""

from __future__ import annotations

from pydantic import BaseModel, Field

from novawrite.generators.base import GenerationContext, NovelView
from novawrite.generators.list_kind import ListParams, ListSpec, generate_list
from novawrite.generators.prompts import characters_block, pick, world_block

CATEGORIES = ("location", "faction", "rule", "item", "culture", "history")


class WorldSettingsParams(ListParams):
    count: int = Field(default=5, ge=1, le=50)


class WorldSettingItem(BaseModel):
    name: str
    category: str
    description: str


class WorldSettingsResult(BaseModel):
    world_settings: list[WorldSettingItem]


def _describe(novel: NovelView, want: int) -> str:
    categories = ", ".join(CATEGORIES)
    return pick(
        novel.language,
        f"请为这部小说新增 {want} 条世界设定，放在 world_settings 列表中。每条包括：name（名称）、"
        f"category（类别，用英文小写取值之一：{categories}，分别表示地点、势力、规则、物品、风俗、历史）、"
        "description（具体描述：它是什么、如何运作、与主线和人物的关系）。新设定要与已有设定一致且不重复，"
        "能为后续情节制造冲突或提供解决之道。",
        f"Add {want} new world settings for this novel in the `world_settings` list. Each has: name, category "
        f"(one of: {categories}), description (what it is, how it works, how it ties into the plot and the "
        "characters). They must agree with the existing settings, not repeat them, and create conflicts or "
        "means of resolution for later chapters.",
    )


SPEC = ListSpec(
    prompt_kind="world_settings",
    result=WorldSettingsResult,
    items_field="world_settings",
    key_field="name",
    noun_zh="世界设定",
    noun_en="world settings",
    existing_names=lambda novel: [w.name for w in novel.world_settings],
    describe=_describe,
    background=lambda novel: [world_block(novel), characters_block(novel, limit=15)],
)


async def generate(ctx: GenerationContext) -> WorldSettingsResult:
    return await generate_list(ctx, SPEC)
