"""``write_chapters``: a batch that writes chapters one after another, each as a child task.

A batch is a task kind whose generator runs children: for each chapter in reading
order (volume number, chapter number) it queues an ordinary ``write_chapter_content``
task (``parent_id`` = the batch), waits for its end and goes on. It holds no
generation slot while it waits (``TaskKind.batch``); the children queue like any
task, so fairness applies to them. It reaches its children only through
``ctx.children`` (the engine's ``ChildTasks``), so it knows no SQL.

Its checkpoint is the list of chapters done (``written``, ``skipped``) and the usage
of their children: a requeued batch carries on with the next chapter, and a child
an interrupted attempt made (found by its chapter) is awaited, not made again. A
retry inherits the checkpoint of the batch it retries: the chapters written before
are not written again (this batch lists them under ``skipped``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from novawrite.generators.base import ChapterIds, ChapterView, ChildEnd, GenerationContext, NovelGone, TaskStopped
from novawrite.generators.chapter_context import ordered_chapters
from novawrite.generators.prompts import pick
from novawrite.providers.base import Usage

TASK_TYPE = "write_chapters"
CHILD_TYPE = "write_chapter_content"
CHAPTER_FAILED = "chapter_failed"
BUDGET_EXCEEDED = "budget_exceeded"


class WriteChaptersParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    novel_id: int
    chapter_ids: ChapterIds
    target_words: int = Field(default=2000, ge=100, le=20000)
    overwrite: bool = False
    instructions: str = Field(default="", max_length=4000)
    #: A budget for the whole batch, in tokens (prompt and output): no chapter starts once it is reached.
    max_tokens: int | None = Field(default=None, ge=1, le=2**63 - 1)


class WriteChaptersResult(BaseModel):
    #: The chapters this batch wrote, in reading order.
    written: list[int] = Field(default_factory=list)
    #: The chapters it did not write: with text already (and no ``overwrite``), written by the
    #: batch a retry retries, or no longer in the novel.
    skipped: list[int] = Field(default_factory=list)


def chapters_named(params: Any) -> list[int]:
    """The chapters a batch names (``TaskKind.names_chapters``: each must be the novel's)."""
    assert isinstance(params, WriteChaptersParams)
    return list(params.chapter_ids)


def _tokens(usage: Usage) -> int:
    return usage.prompt_tokens + usage.output_tokens


def _name(lang: str, chapter: ChapterView) -> str:
    return chapter.title.strip() or pick(lang, f"第 {chapter.number} 章", f"Chapter {chapter.number}")


async def generate(ctx: GenerationContext) -> WriteChaptersResult:
    params = ctx.params
    assert isinstance(params, WriteChaptersParams)
    children = ctx.children
    assert children is not None, "a batch runs with ctx.children"
    lang = ctx.language
    wanted = set(params.chapter_ids)
    todo = [c for _, c in ordered_chapters(ctx.novel) if c.id in wanted]
    present = {c.id for c in todo}

    saved = ctx.checkpoint or {}
    own = saved.get("batch") == children.batch_id
    written: list[int] = [int(i) for i in saved.get("written", [])] if own else []
    skipped: list[int] = [int(i) for i in saved.get("skipped", [])] if own else []
    if own:
        ctx.usage = Usage(**{k: int(v) for k, v in (saved.get("usage") or {}).items()})
    else:  # a retry: what the batch it retries wrote is done
        skipped += [int(i) for i in saved.get("written", []) if int(i) in present]
    skipped += [cid for cid in params.chapter_ids if cid not in present and cid not in skipped]

    async def save() -> None:
        await ctx.checkpoint_save(
            {"batch": children.batch_id, "written": written, "skipped": skipped, "usage": ctx.usage.as_dict()}
        )

    total = len(todo)
    for position, chapter in enumerate(todo, start=1):
        if chapter.id in written or chapter.id in skipped:
            continue
        name = _name(lang, chapter)
        child_id = await children.find(chapter.id)  # made by an interrupted attempt: adopt it
        if child_id is None:
            if chapter.has_content and not params.overwrite:
                skipped.append(chapter.id)
                await save()
                continue
            if params.max_tokens is not None and _tokens(ctx.usage) >= params.max_tokens:
                raise TaskStopped(
                    BUDGET_EXCEEDED,
                    pick(
                        lang,
                        f"已用 {_tokens(ctx.usage)} 个 token，达到预算 {params.max_tokens}；未开始写「{name}」",
                        f"{_tokens(ctx.usage)} tokens used, the budget of {params.max_tokens} is reached; "
                        f'"{name}" was not started',
                    ),
                )
        finished = sum(1 for c in todo if c.id in written or c.id in skipped)
        await ctx.progress.update(
            min(99, 100 * finished // total),
            pick(lang, f"正在写第 {position} 章（共 {total} 章）：{name}", f"Chapter {position} of {total}: {name}"),
        )
        if child_id is None:
            child = {
                "chapter_id": chapter.id,
                "target_words": params.target_words,
                "overwrite": params.overwrite,
                "instructions": params.instructions,
            }
            child_id = await children.submit(CHILD_TYPE, chapter.id, child)
        end = await children.wait(child_id)
        ctx.usage = ctx.usage + end.usage
        if end.status == "completed":
            written.append(chapter.id)
            await save()
            continue
        if end.status == "failed" and (end.error or {}).get("code") == NovelGone.code:
            skipped.append(chapter.id)  # deleted while the batch ran, like one deleted before it started
            await save()
            continue
        await save()
        _stop(lang, name, end)
    return WriteChaptersResult(written=written, skipped=skipped)


def _stop(lang: str, name: str, end: ChildEnd) -> None:
    if end.status == "cancelled":
        raise TaskStopped(None, pick(lang, f"「{name}」的写作已取消", f'Writing "{name}" was cancelled'))
    error = (end.error or {}).get("message") or end.status
    raise TaskStopped(CHAPTER_FAILED, pick(lang, f"「{name}」写作失败：{error}", f'Chapter "{name}" failed: {error}'))
