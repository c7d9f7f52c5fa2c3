"""What the four list kinds (characters, world settings, timeline, foreshadowing) share.

Each asks for ``count`` new items in batches of at most ``batch_size`` per call
(a long JSON list is where models truncate), drops every item whose name repeats
one the novel already has or one earlier in the batch (trimmed, case-insensitive),
and asks again for what is still missing, a bounded number of times. Applying a
result checks names again against the database (``novawrite.services.apply.lists``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from novawrite.generators.base import GenerationContext, InvalidModelOutput, NovelView, ask_json
from novawrite.generators.prompts import (
    chapter_total,
    instructions_block,
    join_blocks,
    name_key,
    names_to_avoid,
    novel_brief,
    pick,
    system_prompt,
    volumes_block,
)
from novawrite.providers.base import Prompt
from novawrite.providers.requests import ListRequest

R = TypeVar("R", bound=BaseModel)

# Extra calls allowed beyond the plain number of batches, to replace duplicates.
_SPARE_CALLS = 2


class ListParams(BaseModel):
    """The request body of a list kind; kinds override ``count`` for their own default and range."""

    model_config = ConfigDict(strict=True, extra="ignore")

    novel_id: int
    count: int = Field(default=5, ge=1, le=50)
    instructions: str = Field(default="", max_length=4000)


@dataclass(frozen=True)
class ListSpec(Generic[R]):
    #: ``Prompt.kind``, which the demo provider switches on.
    prompt_kind: str
    #: The result model: one list field (``items_field``) of item models.
    result: type[R]
    items_field: str
    #: The item attribute that must not repeat: ``name`` or ``title``.
    key_field: str
    noun_zh: str
    noun_en: str
    existing_names: Callable[[NovelView], list[str]]
    #: What each item is and how it should fit, in the novel's language.
    describe: Callable[[NovelView, int], str]
    #: The novel's material this kind should build on (blocks from ``prompts``).
    background: Callable[[NovelView], list[str]] = lambda novel: []
    batch_size: int = 10
    #: The request with what this kind adds to ``ListRequest``'s common fields.
    extend_request: Callable[[NovelView, ListRequest], ListRequest] = field(default=lambda novel, request: request)


def build_list_prompt(
    spec: ListSpec[R], novel: NovelView, want: int, avoid: list[str], instructions: str, made: int
) -> Prompt:
    lang = novel.language
    request: ListRequest = {
        **novel.as_context(),
        "count": want,
        "offset": len(spec.existing_names(novel)) + made,
        "exclude": list(avoid),
        "chapter_count": chapter_total(novel),
        "instructions": instructions,
    }
    request = spec.extend_request(novel, request)
    user = join_blocks(
        novel_brief(novel),
        volumes_block(novel),
        *spec.background(novel),
        names_to_avoid(lang, request["exclude"]),
        spec.describe(novel, request["count"]),
        instructions_block(lang, request["instructions"]),
    )
    return Prompt(kind=spec.prompt_kind, system=system_prompt(lang, json_output=True), user=user, context=request)


async def generate_list(ctx: GenerationContext, spec: ListSpec[R]) -> R:
    params = ctx.params
    assert isinstance(params, ListParams)
    novel = ctx.novel
    lang = novel.language
    count = params.count
    existing = spec.existing_names(novel)
    taken = {name_key(n) for n in existing}
    made: list[Any] = []
    calls_left = -(-count // spec.batch_size) + _SPARE_CALLS
    while len(made) < count and calls_left > 0:
        calls_left -= 1
        want = min(spec.batch_size, count - len(made))
        percent = 5 + 90 * len(made) // count
        await ctx.progress.update(
            percent,
            pick(
                lang,
                f"正在生成{spec.noun_zh}（{len(made)}/{count}）",
                f"Creating {spec.noun_en} ({len(made)} of {count})",
            ),
        )
        avoid = existing + [getattr(item, spec.key_field) for item in made]
        prompt = build_list_prompt(spec, novel, want, avoid, params.instructions, len(made))
        batch = await ask_json(ctx, prompt, spec.result, percent=percent)
        for item in getattr(batch, spec.items_field):
            key = name_key(getattr(item, spec.key_field))
            if not key or key in taken:
                continue
            taken.add(key)
            made.append(item)
            if len(made) == count:
                break
    if not made:
        raise InvalidModelOutput(f"The model proposed no {spec.noun_en} with a new name")
    await ctx.progress.update(
        99, pick(lang, f"已生成 {len(made)} 个{spec.noun_zh}", f"Created {len(made)} {spec.noun_en}")
    )
    return spec.result.model_validate({spec.items_field: made})
