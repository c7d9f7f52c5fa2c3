"""The outline: the novel's overall plan, its volumes and every chapter's title and summary.

Long outlines are where models silently drop chapters or cut their JSON short, so
the outline is built in steps: first the plan (the overall outline and one entry
per volume), then the chapters in batches of at most ``MAX_BATCH`` of one volume.
Every step is checked for completeness (each asked entry present, nothing empty
or a placeholder such as "omitted" or "略") and only what is missing is asked for
again; ``invalid_model_output`` comes only when ``MAX_FILL_ROUNDS`` follow-ups do
not fill it. After each step the work so far is saved as the task's checkpoint,
so a retry after a failure in batch 4 of 5 starts at batch 4.

Chapters are numbered through the whole novel (volume 2 of 10-chapter volumes
holds chapters 11-20), as web novels number them; timeline events and
foreshadowing refer to these numbers. The numbers are ours: the model's answer
fills the numbers asked for by position, its own numbers being at most a hint to
their order (``outline_numbering``), so a model that numbers chapters within the
volume, within the batch, out of order or not at all still gives a complete outline.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from novawrite.generators.base import GenerationContext, InvalidModelOutput, ask_json
from novawrite.generators.outline_numbering import Draft, place
from novawrite.generators.outline_prompts import batch_prompt, plan_prompt
from novawrite.generators.prompts import pick

MAX_BATCH = 20
#: Follow-up calls per step for items the model left out, before giving up.
MAX_FILL_ROUNDS = 2
CHECKPOINT_VERSION = 1


class OutlineParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    novel_id: int
    volumes: int = Field(default=3, ge=1, le=20)
    chapters_per_volume: int = Field(default=10, ge=1, le=100)
    instructions: str = Field(default="", max_length=4000)


# --- The model's answers: entries as written, numbered by us afterwards ------------------


class VolumeDraft(Draft):
    pass


class ChapterDraft(Draft):
    pass


class OutlinePlan(BaseModel):
    """The model's answer to the planning step."""

    outline: str
    volumes: list[VolumeDraft]


class ChapterBatch(BaseModel):
    """The model's answer to one batch of chapters."""

    chapters: list[ChapterDraft]


# --- The outline as settled: our numbers ----------------------------------------------


class ChapterOutline(BaseModel):
    number: int
    title: str
    summary: str


class VolumePlan(BaseModel):
    number: int
    title: str
    summary: str


class BookPlan(BaseModel):
    """The planning step's result: the overall outline and every volume."""

    outline: str
    volumes: list[VolumePlan]


class VolumeOutline(BaseModel):
    number: int
    title: str
    summary: str
    chapters: list[ChapterOutline]


class OutlineResult(BaseModel):
    outline: str
    volumes: list[VolumeOutline]


# --- Completeness ---------------------------------------------------------------------

_PLACEHOLDERS = {
    "略",
    "省略",
    "同上",
    "待定",
    "待补充",
    "暂无",
    "无",
    "等等",
    "此处省略",
    "omitted",
    "tbd",
    "todo",
    "n/a",
    "na",
    "same as above",
    "etc",
    "to be written",
    "placeholder",
}
_TRIM = " \t\r\n.。…·,，;；:：-—_*#()（）[]【】<>《》\"'“”‘’"


def is_placeholder(text: str) -> bool:
    """True for an empty entry or one that stands in for content ("...", "略", "omitted")."""
    core = text.strip().strip(_TRIM).casefold()
    if not core or core in _PLACEHOLDERS:
        return True
    # "chapters omitted for brevity", "(remaining chapters omitted)", "此处省略若干章"
    return bool(re.search(r"\bomitted\b|此处省略|以下省略|其余.*略", core))


def _complete(title: str, summary: str) -> bool:
    return not is_placeholder(title) and not is_placeholder(summary)


def chapter_numbers(volume: int, per_volume: int) -> list[int]:
    first = (volume - 1) * per_volume + 1
    return list(range(first, first + per_volume))


def batches(volumes: int, per_volume: int) -> list[tuple[int, list[int]]]:
    """(volume number, chapter numbers) for every batch, in order."""
    out = []
    for volume in range(1, volumes + 1):
        numbers = chapter_numbers(volume, per_volume)
        out += [(volume, numbers[i : i + MAX_BATCH]) for i in range(0, len(numbers), MAX_BATCH)]
    return out


# --- Checkpoint -----------------------------------------------------------------------


class _OutlineWork:
    """The steps done so far, as saved in (and restored from) the task's checkpoint."""

    def __init__(self, params: OutlineParams, saved: dict[str, Any] | None) -> None:
        self.params = params
        self.plan: BookPlan | None = None
        self.chapters: dict[int, ChapterOutline] = {}
        if saved and self._matches(saved):
            try:
                if saved.get("plan") is not None:
                    self.plan = BookPlan.model_validate(saved["plan"])
                self.chapters = {
                    int(n): ChapterOutline.model_validate(c) for n, c in (saved.get("chapters") or {}).items()
                }
            except (ValueError, TypeError):
                # A checkpoint we cannot read is only lost time: start over.
                self.plan, self.chapters = None, {}

    def _matches(self, saved: dict[str, Any]) -> bool:
        p = self.params
        return (
            saved.get("version") == CHECKPOINT_VERSION
            and saved.get("volumes") == p.volumes
            and saved.get("chapters_per_volume") == p.chapters_per_volume
            and saved.get("instructions", "") == p.instructions
        )

    def dump(self) -> dict[str, Any]:
        p = self.params
        return {
            "version": CHECKPOINT_VERSION,
            "volumes": p.volumes,
            "chapters_per_volume": p.chapters_per_volume,
            "instructions": p.instructions,
            "plan": self.plan.model_dump() if self.plan else None,
            "chapters": {str(n): c.model_dump() for n, c in sorted(self.chapters.items())},
        }


# --- Generation -----------------------------------------------------------------------


def _messages(lang: str, volume: int, volumes: int, numbers: list[int], per_volume: int) -> str:
    if len(numbers) == per_volume:
        return pick(lang, f"正在规划第 {volume} 卷（共 {volumes} 卷）", f"Outlining volume {volume} of {volumes}")
    span = f"{numbers[0]}-{numbers[-1]}" if len(numbers) > 1 else str(numbers[0])
    return pick(
        lang,
        f"正在规划第 {volume} 卷第 {span} 章（共 {volumes} 卷）",
        f"Outlining volume {volume} of {volumes}, chapters {span}",
    )


async def _plan(ctx: GenerationContext, params: OutlineParams, percent: int) -> BookPlan:
    wanted = list(range(1, params.volumes + 1))
    overall = ""
    got: dict[int, VolumePlan] = {}
    for _ in range(1 + MAX_FILL_ROUNDS):
        missing = [n for n in wanted if n not in got]
        prompt = plan_prompt(ctx.novel, params, missing, overall if got else "", [got[n] for n in sorted(got)])
        answer = await ask_json(ctx, prompt, OutlinePlan, percent=percent)
        if not is_placeholder(answer.outline) and not overall:
            overall = answer.outline.strip()
        hints = [v.number for v in answer.volumes]
        for number, volume in zip(place(missing, hints, scope=wanted), answer.volumes, strict=True):
            if number is not None and _complete(volume.title, volume.summary):
                got[number] = VolumePlan(number=number, title=volume.title.strip(), summary=volume.summary.strip())
        if overall and len(got) == len(wanted):
            return BookPlan(outline=overall, volumes=[got[n] for n in wanted])
    lost = [n for n in wanted if n not in got]
    raise InvalidModelOutput(f"The model's outline plan left out volumes {lost} or the overall outline")


async def _batch(
    ctx: GenerationContext, params: OutlineParams, state: _OutlineWork, volume: int, numbers: list[int], percent: int
) -> None:
    assert state.plan is not None
    volume_start = chapter_numbers(volume, params.chapters_per_volume)[0]
    for _ in range(1 + MAX_FILL_ROUNDS):
        missing = [n for n in numbers if n not in state.chapters]
        if not missing:
            return
        prompt = batch_prompt(ctx.novel, params, state.plan, volume, missing, state.chapters, retry=missing != numbers)
        answer = await ask_json(ctx, prompt, ChapterBatch, percent=percent)
        hints = [c.number for c in answer.chapters]
        for number, chapter in zip(
            place(missing, hints, scope=numbers, volume_start=volume_start), answer.chapters, strict=True
        ):
            if number is not None and _complete(chapter.title, chapter.summary):
                state.chapters[number] = ChapterOutline(
                    number=number, title=chapter.title.strip(), summary=chapter.summary.strip()
                )
    lost = [n for n in numbers if n not in state.chapters]
    if lost:
        raise InvalidModelOutput(f"The model's outline left out chapters {lost} after {MAX_FILL_ROUNDS} follow-ups")


async def generate(ctx: GenerationContext) -> OutlineResult:
    params = ctx.params
    assert isinstance(params, OutlineParams)
    lang = ctx.language
    state = _OutlineWork(params, ctx.checkpoint)
    steps = batches(params.volumes, params.chapters_per_volume)
    total = 1 + len(steps)

    def percent(done: int) -> int:
        return min(98, 2 + 96 * done // total)

    if state.plan is not None:
        # Progress resumes just before the first batch still to do.
        first = next((i for i, (_, ns) in enumerate(steps, 1) if not all(n in state.chapters for n in ns)), total)
        await ctx.progress.update(
            percent(first - 1), pick(lang, "从上次保存的进度继续", "Resuming from the batches saved earlier")
        )
    else:
        await ctx.progress.update(
            percent(0),
            pick(lang, f"正在规划全书结构（共 {params.volumes} 卷）", f"Planning the book in {params.volumes} volumes"),
        )
        state.plan = await _plan(ctx, params, percent(0))
        await ctx.checkpoint_save(state.dump())
    for index, (volume, numbers) in enumerate(steps, start=1):
        if all(n in state.chapters for n in numbers):
            continue  # done by an earlier attempt
        await ctx.progress.update(
            percent(index), _messages(lang, volume, params.volumes, numbers, params.chapters_per_volume)
        )
        await _batch(ctx, params, state, volume, numbers, percent(index))
        await ctx.checkpoint_save(state.dump())
    await ctx.progress.update(99, pick(lang, "大纲已完成", "Outline complete"))
    return _assemble(params, state)


def _assemble(params: OutlineParams, state: _OutlineWork) -> OutlineResult:
    assert state.plan is not None
    plans = {v.number: v for v in state.plan.volumes}
    volumes = [
        VolumeOutline(
            number=n,
            title=plans[n].title.strip(),
            summary=plans[n].summary.strip(),
            chapters=[state.chapters[c] for c in chapter_numbers(n, params.chapters_per_volume)],
        )
        for n in range(1, params.volumes + 1)
    ]
    return OutlineResult(outline=state.plan.outline, volumes=volumes)
