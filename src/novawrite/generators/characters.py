"""Characters: new people for the novel, who fit its story and never repeat a name."""

from __future__ import annotations

from pydantic import BaseModel, Field

from novawrite.generators.base import GenerationContext, NovelView
from novawrite.generators.list_kind import ListParams, ListSpec, generate_list
from novawrite.generators.prompts import characters_block, pick, world_block


class CharactersParams(ListParams):
    count: int = Field(default=5, ge=1, le=50)


class CharacterItem(BaseModel):
    name: str
    role: str
    description: str
    traits: list[str] = Field(default_factory=list)
    arc: str = ""
    relationships: str = ""


class CharactersResult(BaseModel):
    characters: list[CharacterItem]


def _describe(novel: NovelView, want: int) -> str:
    return pick(
        novel.language,
        f"请为这部小说新设计 {want} 个人物，放在 characters 列表中。每个人物包括：name（姓名，符合小说的世界观与时代）、"
        "role（在故事中的作用，如主角、反派、导师、同伴）、description（外貌、身份与背景）、traits（3-5 个性格特点）、"
        "arc（人物在全书中的成长或转变）、relationships（与已有人物的关系）。新人物要补足故事所缺的角色，"
        "与已有人物形成冲突或互补。",
        f"Create {want} new characters for this novel in the `characters` list. Each has: name (fitting the "
        "setting), role (their function: protagonist, antagonist, mentor, ally...), description (looks, position, "
        "background), traits (3-5 personality traits), arc (how they change over the book), relationships (to the "
        "existing characters). Fill the roles the story still lacks; give them conflicts with, or complements to, "
        "the existing cast.",
    )


SPEC = ListSpec(
    prompt_kind="characters",
    result=CharactersResult,
    items_field="characters",
    key_field="name",
    noun_zh="人物",
    noun_en="characters",
    existing_names=lambda novel: [c.name for c in novel.characters],
    describe=_describe,
    background=lambda novel: [characters_block(novel), world_block(novel, limit=15)],
)


async def generate(ctx: GenerationContext) -> CharactersResult:
    return await generate_list(ctx, SPEC)
