"""What a chapter's prompt tells the model about the rest of the novel, within a token budget.

The context must not grow with the novel: chapter 150 of a 200-chapter novel gets
the same budget as chapter 2. Each section has a cap; in order of importance:
the novel's brief, the volume, this chapter's outline entry (and the next one's,
so this chapter leads into it), the previous chapter's ending, the characters
present (named in the outline entries or the ending, else the main cast), the
foreshadowing to plant here or pay off here or soon, the world settings named in
the outline entry. What is left of ``CONTEXT_BUDGET`` goes to short summaries of
earlier chapters, nearest first, so the oldest are the ones dropped.

Tokens are estimated, not counted (no tokenizer is shared by every provider): a
CJK character is about one token, other text about four characters a token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from novawrite.generators.base import ChapterView, CharacterView, NovelView
from novawrite.generators.prompts import pick

CONTEXT_BUDGET = 6000

# Section caps, in estimated tokens.
_BRIEF = 700
_OUTLINE = 400
_VOLUME = 200
_THIS_CHAPTER = 500
_NEXT_CHAPTER = 200
_ENDING = 800
_CHARACTER = 100
_MAX_CHARACTERS = 8
_FORESHADOWING = 100
_MAX_FORESHADOWINGS = 8
_WORLD = 100
_MAX_WORLD = 6
_SUMMARY = 150
# Foreshadowing whose payoff is due this many chapters ahead is worth preparing now.
_PAYOFF_AHEAD = 3

_CJK = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\uac00-\ud7af]")


def estimate_tokens(text: str) -> int:
    cjk = len(_CJK.findall(text))
    return cjk + -(-(len(text) - cjk) // 4)


def fit_tokens(text: str, budget: int, *, keep: str = "start") -> str:
    """``text`` cut to at most ``budget`` tokens, keeping its start (or its end) and marking the cut."""
    text = text.strip()
    if estimate_tokens(text) <= budget:
        return text

    def part(n: int) -> str:
        return text[:n] if keep == "start" else text[len(text) - n :]

    # The estimate grows with the length, so the longest part that fits is found by bisection.
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if estimate_tokens(part(mid)) <= budget - 1:  # one token for the ellipsis
            lo = mid
        else:
            hi = mid - 1
    if lo == 0:
        return ""
    return part(lo).rstrip() + "…" if keep == "start" else "…" + part(lo).lstrip()


@dataclass(frozen=True)
class ChapterContext:
    text: str
    characters: tuple[str, ...]
    plant: tuple[str, ...]
    payoff: tuple[str, ...]
    next_title: str
    tokens: int


def _ordered_chapters(novel: NovelView) -> list[tuple[int, ChapterView]]:
    return sorted(((v.number, c) for v in novel.volumes for c in v.chapters), key=lambda vc: (vc[0], vc[1].number))


def _present(novel: NovelView, haystack: str) -> list[CharacterView]:
    named = [c for c in novel.characters if c.name.strip() and c.name.strip() in haystack]
    if len(named) < 2:
        # Nobody named: the main cast (the first characters the author made) is the best guess.
        named += [c for c in novel.characters[:3] if c not in named]
    return named[:_MAX_CHARACTERS]


def chapter_context(novel: NovelView) -> ChapterContext:
    target = novel.target
    assert target is not None
    lang = novel.language
    chapter = target.chapter
    number = chapter.number
    ordered = _ordered_chapters(novel)
    index = next((i for i, (_, c) in enumerate(ordered) if c.id == chapter.id), len(ordered))
    earlier = [c for _, c in ordered[:index]]
    following = ordered[index + 1][1] if index + 1 < len(ordered) else None
    volume = next((v for v in novel.volumes if v.number == target.volume_number), None)

    sections: list[str] = []

    def add(heading: str, body: str, cap: int, *, keep: str = "start") -> None:
        body = fit_tokens(body, cap, keep=keep)
        if body:
            sections.append(f"{heading}\n{body}")

    add(pick(lang, "【作品】", "[The novel]"), _brief(novel), _BRIEF)
    if novel.outline:
        add(pick(lang, "【总纲】", "[Overall outline]"), novel.outline, _OUTLINE)
    if volume is not None:
        add(
            pick(lang, "【本卷】", "[This volume]"),
            _entry(lang, volume.number, volume.title, volume.summary, "卷", "Volume"),
            _VOLUME,
        )
    anchor = len(sections)  # earlier chapters' summaries go before this chapter's own material
    add(
        pick(lang, "【本章大纲】", "[This chapter's outline]"),
        _entry(lang, number, chapter.title, chapter.summary, "章", "Chapter"),
        _THIS_CHAPTER,
    )
    if following is not None:
        add(
            pick(lang, "【下一章大纲】", "[Next chapter's outline]"),
            _entry(lang, following.number, following.title, following.summary, "章", "Chapter"),
            _NEXT_CHAPTER,
        )
    if target.previous_ending.strip():
        add(
            pick(lang, "【上一章结尾】", "[How the previous chapter ends]"), target.previous_ending, _ENDING, keep="end"
        )

    haystack = " ".join(
        [chapter.title, chapter.summary, target.previous_ending[-2000:], following.summary if following else ""]
    )
    cast = _present(novel, haystack)
    if cast:
        rows = [
            fit_tokens(
                f"- {c.name}（{c.role}）：{c.description}"
                if lang == "zh"
                else f"- {c.name} ({c.role}): {c.description}",
                _CHARACTER,
            )
            for c in cast
        ]
        sections.append(pick(lang, "【出场人物】", "[Characters present]") + "\n" + "\n".join(rows))

    plant = [f for f in novel.foreshadowings if f.planted_chapter == number]
    payoff = [
        f
        for f in novel.foreshadowings
        if f.status != "resolved"
        and f.payoff_chapter is not None
        and number <= f.payoff_chapter <= number + _PAYOFF_AHEAD
        and f not in plant
    ]
    rows = [
        fit_tokens(
            pick(lang, f"- 埋下：{f.title}：{f.description}", f"- Plant: {f.title}: {f.description}"), _FORESHADOWING
        )
        for f in plant
    ]
    rows += [
        fit_tokens(
            pick(
                lang,
                f"- {'回收' if f.payoff_chapter == number else '为回收铺垫'}：{f.title}：{f.description}",
                f"- {'Pay off' if f.payoff_chapter == number else 'Prepare the payoff of'}: {f.title}: {f.description}",
            ),
            _FORESHADOWING,
        )
        for f in payoff
    ]
    if rows:
        sections.append(pick(lang, "【伏笔】", "[Foreshadowing]") + "\n" + "\n".join(rows[:_MAX_FORESHADOWINGS]))

    places = [w for w in novel.world_settings if w.name.strip() and w.name.strip() in haystack][:_MAX_WORLD]
    if places:
        rows = [fit_tokens(f"- {w.name} [{w.category}]: {w.description}", _WORLD) for w in places]
        sections.append(pick(lang, "【相关设定】", "[World settings involved]") + "\n" + "\n".join(rows))

    used = estimate_tokens("\n\n".join(sections))
    history = _history(lang, earlier, CONTEXT_BUDGET - used)
    if history:
        sections.insert(anchor, history)
    text = "\n\n".join(sections)
    return ChapterContext(
        text=text,
        characters=tuple(c.name for c in cast),
        plant=tuple(f.title for f in plant),
        payoff=tuple(f.title for f in payoff if f.payoff_chapter == number),
        next_title=following.title if following else "",
        tokens=estimate_tokens(text),
    )


def _brief(novel: NovelView) -> str:
    return pick(
        novel.language,
        f"《{novel.title}》，{novel.genre or '小说'}。{novel.synopsis}",
        f"{novel.title}, {novel.genre or 'a novel'}. {novel.synopsis}",
    )


def _entry(lang: str, number: int, title: str, summary: str, unit_zh: str, unit_en: str) -> str:
    return pick(lang, f"第{number}{unit_zh}《{title}》：{summary}", f"{unit_en} {number}, {title}: {summary}")


def _history(lang: str, earlier: list[ChapterView], budget: int) -> str:
    heading = pick(lang, "【前情提要】", "[Earlier chapters]")
    budget -= estimate_tokens(heading) + 2
    rows: list[str] = []
    for chapter in reversed(earlier):  # nearest first: the oldest are dropped when over budget
        row = fit_tokens(
            _entry(lang, chapter.number, chapter.title, chapter.content_summary or chapter.summary, "章", "Chapter"),
            _SUMMARY,
        )
        cost = estimate_tokens(row) + 1
        if cost > budget:
            break
        budget -= cost
        rows.append("- " + row)
    if not rows:
        return ""
    return heading + "\n" + "\n".join(reversed(rows))
