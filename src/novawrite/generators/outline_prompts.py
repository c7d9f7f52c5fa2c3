"""The outline's two prompts: the plan (overall outline and volumes), and one batch of chapters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from novawrite.generators.base import NovelView
from novawrite.generators.prompts import (
    characters_block,
    clip,
    foreshadowing_block,
    instructions_block,
    join_blocks,
    novel_brief,
    pick,
    system_prompt,
    timeline_block,
    world_block,
)
from novawrite.providers.base import Prompt
from novawrite.providers.requests import OutlineChaptersRequest, OutlinePlanRequest, OutlineRequest

if TYPE_CHECKING:
    from novawrite.generators.outline import BookPlan, ChapterOutline, OutlineParams, VolumePlan

# How many earlier chapters a batch sees, for continuity across batch borders (and,
# when a re-ask fills a gap, how many of the chapters after it).
_LEAD_IN = 5


def written_block(novel: NovelView, limit: int = 30) -> str:
    """Chapters that already have text: a new outline must stay consistent with them."""
    lang = novel.language
    rows = [
        pick(
            lang,
            f"第{c.number}章《{c.title}》：{clip(c.recap or c.summary, 100)}",
            f"Chapter {c.number}, {c.title}: {clip(c.recap or c.summary, 160)}",
        )
        for v in novel.volumes
        for c in v.chapters
        if c.has_content
    ]
    if not rows:
        return ""
    shown = rows[-limit:]  # the latest written chapters matter most for what follows
    return pick(
        lang,
        "已写成的章节（新大纲须与之一致）：\n",
        "Chapters already written (keep the outline consistent with them):\n",
    ) + "\n".join(f"- {row}" for row in shown)


def _background(novel: NovelView) -> list[str]:
    return [
        novel_brief(novel, outline_chars=0),
        characters_block(novel, limit=25),
        world_block(novel, limit=20),
        timeline_block(novel, limit=20),
        foreshadowing_block(novel, limit=20),
        written_block(novel),
    ]


def _request(novel: NovelView, params: OutlineParams) -> OutlineRequest:
    return {
        **novel.as_context(),
        "volumes": params.volumes,
        "chapters_per_volume": params.chapters_per_volume,
        "instructions": params.instructions,
    }


def plan_prompt(
    novel: NovelView,
    params: OutlineParams,
    volume_numbers: list[int],
    overall: str,
    settled: Sequence[VolumePlan] = (),
) -> Prompt:
    """The planning step; a re-ask passes the overall outline and the volumes already ``settled``."""
    lang = novel.language
    request: OutlinePlanRequest = {**_request(novel, params), "step": "plan", "volume_numbers": list(volume_numbers)}
    v, c = params.volumes, params.chapters_per_volume
    listed = ", ".join(str(n) for n in volume_numbers)
    task = pick(
        lang,
        f"请为这部小说规划全书：共 {v} 卷，每卷 {c} 章，全书 {v * c} 章，章节全书连续编号。"
        "输出 outline（全书总纲，300-800 字：主线、核心冲突、主要转折和结局走向）"
        f"和 volumes 列表（第 {listed} 卷，每卷包括 number、title（卷名）、summary（本卷的主要情节、冲突、"
        "人物变化和结尾钩子，100-200 字））。各卷要层层推进，前后呼应。",
        f"Plan this novel: {v} volumes of {c} chapters each, {v * c} chapters numbered through the whole book. "
        "Give `outline` (the overall outline, 200-500 words: main line, central conflict, major turns, where it "
        f"ends) and the `volumes` list (volumes {listed}; each with number, title and summary: its main events, "
        "conflicts, how the characters change and the hook it ends on, 80-150 words). Each volume must raise the "
        "stakes of the one before.",
    )
    if overall:
        task += (
            "\n"
            + pick(lang, "全书总纲已定，照抄即可：", "The overall outline is settled; repeat it as is: ")
            + clip(overall, 1500)
        )
    if settled:
        task += (
            "\n"
            + pick(lang, "已经定好的卷：\n", "The volumes already settled:\n")
            + "\n".join(
                pick(
                    lang,
                    f"- 第{p.number}卷《{p.title}》：{clip(p.summary, 120)}",
                    f"- Volume {p.number}, {p.title}: {clip(p.summary, 200)}",
                )
                for p in settled
            )
        )
    if not volume_numbers:
        task += "\n" + pick(
            lang,
            "各卷已经写好，上一次回答缺少全书总纲：只需写出 outline，volumes 留空列表。",
            "Every volume is settled but the previous answer left out the overall outline: write only "
            "`outline`, with an empty `volumes` list.",
        )
    elif len(volume_numbers) < v:
        task += "\n" + pick(
            lang,
            f"上一次回答缺少或未写完这些卷，只需写出第 {listed} 卷。",
            f"The previous answer left these volumes out or unfinished; write only volumes {listed}.",
        )
    user = join_blocks(*_background(novel), task, instructions_block(lang, params.instructions))
    return Prompt(kind="outline_plan", system=system_prompt(lang, json_output=True), user=user, context=request)


def batch_prompt(
    novel: NovelView,
    params: OutlineParams,
    plan: BookPlan,
    volume: int,
    numbers: list[int],
    done: Mapping[int, ChapterOutline],
    *,
    retry: bool,
) -> Prompt:
    lang = novel.language
    this = next((p for p in plan.volumes if p.number == volume), None)
    request: OutlineChaptersRequest = {
        **_request(novel, params),
        "step": "chapters",
        "volume_number": volume,
        "volume_title": this.title if this else "",
        "volume_summary": this.summary if this else "",
        "chapter_numbers": list(numbers),
    }
    title, summary = request["volume_title"], request["volume_summary"]
    plan_text = pick(lang, "全书总纲：", "Overall outline: ") + clip(plan.outline, 1500)
    volumes_text = "\n".join(
        pick(
            lang,
            f"- 第{p.number}卷《{p.title}》：{clip(p.summary, 120)}",
            f"- Volume {p.number}, {p.title}: {clip(p.summary, 200)}",
        )
        for p in plan.volumes
    )
    before = [done[n] for n in sorted(done) if n < numbers[0]][-_LEAD_IN:]
    # A re-ask fills gaps between chapters already outlined: the model must fit them.
    after = [done[n] for n in sorted(done) if n > numbers[0] and n not in numbers][:_LEAD_IN]
    lead_in = _chapter_list(lang, "紧接在前的章节：\n", "The chapters just before:\n", before)
    lead_out = _chapter_list(lang, "已经定好的后续章节：\n", "The chapters after them, already settled:\n", after)
    listed = ", ".join(str(n) for n in numbers)
    task = pick(
        lang,
        f"请写出第 {volume} 卷《{title}》（{clip(summary, 200)}）中以下章节的大纲：第 {listed} 章。"
        "chapters 列表必须恰好包含这些章节号，每章包括 number、title（章节标题，不要写“第X章”）、"
        "summary（80-200 字：本章的事件、冲突、人物行动和结尾钩子），按章节号顺序排列。"
        "每一章都要写完整，不得省略，不要写“略”“同上”或省略号。",
        f"Outline these chapters of volume {volume}, {title} ({clip(summary, 300)}): chapters {listed}. "
        "The `chapters` list must hold exactly these numbers, in this order; each with number, title (the "
        "chapter's title, without 'Chapter N') and summary (50-150 words: the events, the conflict, what the "
        "characters do, the hook it ends on). Write every chapter in full: never 'omitted', 'same as above' or an ellipsis.",
    )
    if retry:
        task += "\n" + pick(
            lang,
            "上一次回答缺少这些章节或内容为空，请只补写它们。",
            "The previous answer left these chapters out or empty; write only them.",
        )
    user = join_blocks(
        *_background(novel),
        plan_text,
        volumes_text,
        lead_in,
        lead_out,
        task,
        instructions_block(lang, params.instructions),
    )
    return Prompt(kind="outline_chapters", system=system_prompt(lang, json_output=True), user=user, context=request)


def _chapter_list(lang: str, zh_heading: str, en_heading: str, chapters: list[ChapterOutline]) -> str:
    if not chapters:
        return ""
    return pick(lang, zh_heading, en_heading) + "\n".join(
        pick(
            lang,
            f"- 第{ch.number}章《{ch.title}》：{clip(ch.summary, 120)}",
            f"- Chapter {ch.number}, {ch.title}: {clip(ch.summary, 200)}",
        )
        for ch in chapters
    )
