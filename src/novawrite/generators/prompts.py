"""Pieces shared by every kind's prompt: language switches, the novel's brief, name keys.

A prompt is written for the novel's language (zh or en) and carries what the novel
already has, so that new material fits it. Every block here is clipped: a prompt's
size must not grow without bound with the novel (a 2,000-chapter outline, 300
characters), so each block keeps the first entries and says how many it left out.
"""

from __future__ import annotations

from novawrite.generators.base import ForeshadowingView, NovelView


def pick(language: str, zh: str, en: str) -> str:
    return zh if language == "zh" else en


def clip(text: str, limit: int) -> str:
    text = " ".join(text.split()) if "\n" not in text else text.strip()
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def name_key(name: str) -> str:
    """How names compare for duplicates: trimmed, inner whitespace collapsed, case-folded."""
    return " ".join(name.split()).casefold()


def chapter_total(novel: NovelView) -> int:
    return sum(len(v.chapters) for v in novel.volumes)


def system_prompt(language: str, *, json_output: bool) -> str:
    if language == "zh":
        text = (
            "你是一位经验丰富的中文网络小说策划编辑和作者，熟悉长篇连载的节奏、伏笔与人物塑造。所有内容使用简体中文。"
        )
        if json_output:
            text += "只输出一个符合给定 JSON 结构的 JSON 对象，不要输出解释、Markdown 或省略号；每一项都必须完整写出。"
        return text
    text = (
        "You are an experienced fiction editor and author of long serialized novels, "
        "skilled at pacing, foreshadowing and character. Write in English."
    )
    if json_output:
        text += (
            " Answer with one JSON object matching the given schema and nothing else: no prose,"
            " no Markdown, no ellipses; write every item out in full."
        )
    return text


def novel_brief(novel: NovelView, *, outline_chars: int = 1200) -> str:
    lang = novel.language
    lines = [
        pick(lang, f"书名：《{novel.title}》", f"Title: {novel.title}"),
        pick(lang, f"类型：{novel.genre or '未指定'}", f"Genre: {novel.genre or 'unspecified'}"),
        pick(
            lang,
            f"简介：{clip(novel.synopsis, 1500) or '（无）'}",
            f"Synopsis: {clip(novel.synopsis, 1500) or '(none)'}",
        ),
    ]
    if novel.outline and outline_chars > 0:
        lines.append(pick(lang, "总纲：", "Overall outline:") + clip(novel.outline, outline_chars))
    return "\n".join(lines)


def _listed(language: str, heading_zh: str, heading_en: str, rows: list[str], limit: int) -> str:
    if not rows:
        return ""
    shown = rows[:limit]
    more = len(rows) - len(shown)
    text = pick(language, heading_zh, heading_en) + "\n" + "\n".join(f"- {row}" for row in shown)
    if more:
        text += "\n" + pick(language, f"- ……另有 {more} 项", f"- ... and {more} more")
    return text


def characters_block(novel: NovelView, limit: int = 40) -> str:
    rows = [
        f"{c.name}（{c.role}）：{clip(c.description, 80)}"
        if novel.language == "zh"
        else f"{c.name} ({c.role}): {clip(c.description, 120)}"
        for c in novel.characters
    ]
    return _listed(novel.language, "已有人物：", "Existing characters:", rows, limit)


def world_block(novel: NovelView, limit: int = 40) -> str:
    rows = [
        f"{w.name} [{w.category}]：{clip(w.description, 80)}"
        if novel.language == "zh"
        else f"{w.name} [{w.category}]: {clip(w.description, 120)}"
        for w in novel.world_settings
    ]
    return _listed(novel.language, "已有世界设定：", "Existing world settings:", rows, limit)


def timeline_block(novel: NovelView, limit: int = 40) -> str:
    rows = [f"{e.position}. {e.time_label} {e.title}" for e in novel.timeline_events]
    return _listed(novel.language, "已有时间线：", "Existing timeline:", rows, limit)


def foreshadowing_block(novel: NovelView, limit: int = 40) -> str:
    def where(f: ForeshadowingView) -> str:
        return f" ({f.planted_chapter or '?'} -> {f.payoff_chapter or '?'})"

    rows = [f"{f.title} [{f.status}]{where(f)}: {clip(f.description, 80)}" for f in novel.foreshadowings]
    return _listed(novel.language, "已有伏笔：", "Existing foreshadowing:", rows, limit)


def volumes_block(novel: NovelView, limit: int = 30) -> str:
    lang = novel.language
    rows = [
        pick(
            lang,
            f"第{v.number}卷《{v.title}》（{len(v.chapters)} 章）：{clip(v.summary, 100)}",
            f"Volume {v.number}, {v.title} ({len(v.chapters)} chapters): {clip(v.summary, 150)}",
        )
        for v in novel.volumes
    ]
    return _listed(lang, "分卷结构：", "Volumes:", rows, limit)


def instructions_block(language: str, instructions: str) -> str:
    if not instructions.strip():
        return ""
    return pick(language, "作者的额外要求：", "The author's instructions:") + "\n" + instructions.strip()


def names_to_avoid(language: str, names: list[str], limit: int = 200) -> str:
    if not names:
        return ""
    shown = "、".join(names[:limit]) if language == "zh" else ", ".join(names[:limit])
    return pick(language, f"不得重复以下已有名称：{shown}", f"Do not reuse any of these existing names: {shown}")


def join_blocks(*blocks: str) -> str:
    return "\n\n".join(b for b in blocks if b)
