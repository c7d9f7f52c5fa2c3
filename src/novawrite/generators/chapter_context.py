"""What a chapter's prompt tells the model about the rest of the novel, within a token budget.

The context must not grow with the novel: chapter 150 of a 200-chapter novel gets
the same budget as chapter 2 (``NOVAWRITE_CHAPTER_CONTEXT_TOKENS``, for the whole
prompt). Each section has a cap. Always present: this chapter's plan, the end of
the chapter before it (in reading order) and the foreshadowing due here, with the
instruction to pay off the threads whose payoff chapter this is. Then the novel's
brief, its volume, the next chapter's plan, the characters and world settings it
involves (named in its plan, the previous ending or the recent recaps; else the
main cast); when the budget is small these go first, least important first.

What is left goes to the story so far, nearest first, in three grains:

- the ``_FULL_RECAPS`` nearest earlier chapters: their whole recap;
- older chapters: one line each, the first sentence of their recap;
- older still: one line per volume (its title, chapter range and summary), for the
  volumes whose chapters no longer fit one by one; the oldest are dropped last of all.

A chapter without a recap stands in with its plan summary.

Tokens are estimated, not counted (no tokenizer is shared by every provider): a
CJK character is about one token, other text about four characters a token.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

from novawrite.generators.base import ChapterView, CharacterView, ForeshadowingView, NovelView
from novawrite.generators.prompts import pick

#: The default budget of a chapter's prompt, in estimated tokens.
CONTEXT_BUDGET = 8000

# Section caps, in estimated tokens.
_BRIEF = 600
_OUTLINE = 300
_VOLUME = 200
_THIS_CHAPTER = 500
_NEXT_CHAPTER = 200
_ENDING = 800
_CHARACTER = 100
_MAX_CHARACTERS = 8
_THREAD = 120
_MAX_THREADS = 10
_WORLD = 100
_MAX_WORLD = 6
_FULL_RECAP = 700  # a recap is at most 600 Chinese characters or 300 English words
_FULL_RECAPS = 5
_RECAP_LINE = 80
_VOLUME_LINE = 80
# Foreshadowing whose payoff is due this many chapters ahead is worth preparing now.
PAYOFF_AHEAD = 5
OPEN_STATUSES = ("planted", "hinted")

_CJK = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\uac00-\ud7af]")
_FIRST_SENTENCE = re.compile(r"^[^。！？!?]*?(?:[。！？!?]|\.(?=\s|$))[”\"’')）」』]*")


#: Runs of CJK characters: a Chinese text is a few long runs, counted far faster than its characters
#: (written "[...][...]*", not "[...]+", so that the search skips other text as fast as for one character).
_CJK_RUN = re.compile(_CJK.pattern + _CJK.pattern + "*")


def _cjk_count(text: str, start: int = 0, end: int = sys.maxsize) -> int:
    """How many of ``text[start:end]``'s characters are CJK (each a whole token)."""
    return sum(m.end() - m.start() for m in _CJK_RUN.finditer(text, start, end))


def estimate_tokens(text: str) -> int:
    cjk = _cjk_count(text)
    return cjk + -(-(len(text) - cjk) // 4)


def fit_tokens(text: str, budget: int, *, keep: str = "start") -> str:
    """``text`` cut to at most ``budget`` tokens, keeping its start (or its end) and marking the cut."""
    text = text.strip()
    # A character is at most one token and at least a quarter of one: most texts need no count.
    if len(text) <= budget or (len(text) <= 4 * budget and estimate_tokens(text) <= budget):
        return text

    def part(n: int) -> str:
        return text[:n] if keep == "start" else text[len(text) - n :]

    # Every part of up to budget - 1 characters fits (a character is at most a token), none longer
    # than 4 x budget does, and a part's estimate grows with its length: the longest part that fits
    # is found by bisection in between, counting the CJK characters (whole tokens) of each step's
    # new stretch only, from the kept end.
    longest = max(0, min(len(text), 4 * budget))
    window = text[:longest] if keep == "start" else text[len(text) - longest :][::-1]
    lo, hi = max(0, min(budget - 1, longest)), longest
    cjk_lo = _cjk_count(window, 0, lo)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        cjk = cjk_lo + _cjk_count(window, lo, mid)
        if cjk + -(-(mid - cjk) // 4) <= budget - 1:  # estimate_tokens(part(mid)); a token for the ellipsis
            lo, cjk_lo = mid, cjk
        else:
            hi = mid - 1
    if lo == 0:
        return ""
    return part(lo).rstrip() + "…" if keep == "start" else "…" + part(lo).lstrip()


def first_sentence(text: str) -> str:
    text = text.strip()
    match = _FIRST_SENTENCE.match(text)
    return match.group(0).strip() if match else text


@dataclass(frozen=True)
class ChapterContext:
    text: str
    characters: tuple[str, ...]
    plant: tuple[str, ...]
    payoff: tuple[str, ...]
    next_title: str
    tokens: int


@dataclass
class _Section:
    text: str
    #: Dropped first (highest) when the sections together pass the budget; 0 is never dropped.
    drop_order: int = 0


def ordered_chapters(novel: NovelView) -> list[tuple[int, ChapterView]]:
    """(volume number, chapter) in reading order."""
    return sorted(((v.number, c) for v in novel.volumes for c in v.chapters), key=lambda vc: (vc[0], vc[1].number))


def _present(novel: NovelView, haystack: str) -> list[CharacterView]:
    named = [c for c in novel.characters if c.name.strip() and c.name.strip() in haystack]
    if len(named) < 2:
        # Nobody named: the main cast (the first characters the author made) is the best guess.
        named += [c for c in novel.characters[:3] if c not in named]
    return named[:_MAX_CHARACTERS]


def chapter_context(novel: NovelView, budget: int = CONTEXT_BUDGET) -> ChapterContext:
    """The context of ``novel.target`` within ``budget`` estimated tokens."""
    target = novel.target
    assert target is not None
    lang = novel.language
    chapter = target.chapter
    number = chapter.number
    ordered = ordered_chapters(novel)
    index = next((i for i, (_, c) in enumerate(ordered) if c.id == chapter.id), len(ordered))
    earlier = ordered[:index]
    following = ordered[index + 1][1] if index + 1 < len(ordered) else None
    volume = next((v for v in novel.volumes if v.number == target.volume_number), None)

    def block(heading: str, body: str, cap: int, drop_order: int = 0, *, keep: str = "start") -> _Section | None:
        body = fit_tokens(body, cap, keep=keep)
        return _Section(f"{heading}\n{body}", drop_order) if body else None

    brief = block(pick(lang, "【作品】", "[The novel]"), _brief(novel), _BRIEF, 6)
    overall = block(pick(lang, "【总纲】", "[Overall outline]"), novel.outline or "", _OUTLINE, 3)
    this_volume = (
        block(
            pick(lang, "【本卷】", "[This volume]"),
            _entry(lang, volume.number, volume.title, volume.summary, "卷", "Volume"),
            _VOLUME,
            5,
        )
        if volume is not None
        else None
    )
    plan = block(
        pick(lang, "【本章大纲】", "[This chapter's plan]"),
        _entry(lang, number, chapter.title, chapter.summary, "章", "Chapter"),
        _THIS_CHAPTER,
    )
    next_plan = (
        block(
            pick(lang, "【下一章大纲】", "[The next chapter's plan]"),
            _entry(lang, following.number, following.title, following.summary, "章", "Chapter"),
            _NEXT_CHAPTER,
            4,
        )
        if following is not None
        else None
    )
    ending = (
        block(
            pick(lang, "【上一章结尾】", "[How the previous chapter ends]"),
            target.previous_ending,
            _ENDING,
            keep="end",
        )
        if target.previous_ending.strip()
        else None
    )
    threads = _threads(lang, novel.foreshadowings, number)

    recent = " ".join(c.recap for _, c in earlier[-_FULL_RECAPS:])
    haystack = " ".join(
        [chapter.title, chapter.summary, target.previous_ending[-2000:], following.summary if following else "", recent]
    )
    cast = _present(novel, haystack)
    characters = (
        _Section(
            pick(lang, "【出场人物】", "[Characters involved]")
            + "\n"
            + "\n".join(
                fit_tokens(
                    pick(lang, f"- {c.name}（{c.role}）：{c.description}", f"- {c.name} ({c.role}): {c.description}"),
                    _CHARACTER,
                )
                for c in cast
            ),
            2,
        )
        if cast
        else None
    )
    places = [w for w in novel.world_settings if w.name.strip() and w.name.strip() in haystack][:_MAX_WORLD]
    world = (
        _Section(
            pick(lang, "【相关设定】", "[World settings involved]")
            + "\n"
            + "\n".join(fit_tokens(f"- {w.name} [{w.category}]: {w.description}", _WORLD) for w in places),
            1,
        )
        if places
        else None
    )

    before = [s for s in (brief, overall, this_volume) if s is not None]
    after = [s for s in (plan, next_plan, ending, threads.section, threads.extra, characters, world) if s]
    _fit_sections(before + after, budget)
    before = [s for s in before if s.text]
    after = [s for s in after if s.text]
    used = estimate_tokens("\n\n".join(s.text for s in before + after)) + 2
    history = _history(lang, novel, earlier, budget - used)
    sections = [s.text for s in before] + ([history] if history else []) + [s.text for s in after]
    text = "\n\n".join(sections)
    return ChapterContext(
        text=text,
        characters=tuple(c.name for c in cast) if characters is not None and characters.text else (),
        plant=tuple(f.title for f in threads.plant),
        payoff=tuple(f.title for f in threads.payoff),
        next_title=following.title if following else "",
        tokens=estimate_tokens(text),
    )


def _fit_sections(sections: list[_Section], budget: int) -> None:
    """Empty the droppable sections, highest ``drop_order`` first, until the rest fits ``budget``."""
    for section in sorted((s for s in sections if s.drop_order), key=lambda s: -s.drop_order):
        if estimate_tokens("\n\n".join(s.text for s in sections)) <= budget:
            return
        section.text = ""


@dataclass(frozen=True)
class _Threads:
    #: The threads to pay off or plant here (never dropped) and those due soon or overdue.
    section: _Section | None
    extra: _Section | None
    plant: list[ForeshadowingView]
    payoff: list[ForeshadowingView]


def _threads(lang: str, foreshadowings: tuple[ForeshadowingView, ...], number: int) -> _Threads:
    """The open threads paid off here, planted here, due within ``PAYOFF_AHEAD`` chapters, or overdue."""
    live = [f for f in foreshadowings if f.status in OPEN_STATUSES]
    payoff = [f for f in live if f.payoff_chapter == number]
    plant = [f for f in live if f.planted_chapter == number and f not in payoff]
    soon = [
        f
        for f in live
        if f.payoff_chapter is not None and number < f.payoff_chapter <= number + PAYOFF_AHEAD and f not in plant
    ]
    soon.sort(key=lambda f: f.payoff_chapter or 0)
    late = [f for f in live if f.payoff_chapter is not None and f.payoff_chapter < number and f not in plant]
    late.sort(key=lambda f: -(f.payoff_chapter or 0))

    def rows(items: list[ForeshadowingView], label: Callable[[ForeshadowingView], str]) -> list[str]:
        return [fit_tokens(f"- {label(f)}{f.title}: {f.description}", _THREAD) for f in items]

    heading = pick(lang, "【伏笔】", "[Foreshadowing]")
    parts: list[str] = []
    if payoff:
        parts.append(
            pick(
                lang,
                "本章是以下伏笔的回收章，必须在本章中揭晓并回收它们：",
                "This chapter is where these threads pay off: resolve each of them in this chapter.",
            )
        )
        parts += rows(payoff[:_MAX_THREADS], lambda f: "")
    if plant:
        parts.append(pick(lang, "在本章埋下：", "Plant in this chapter:"))
        parts += rows(plant[: max(1, _MAX_THREADS - len(payoff))], lambda f: "")
    room = _MAX_THREADS - len(payoff) - len(plant)
    more: list[str] = []
    if soon and room > 0:
        more.append(pick(lang, "即将回收，可以铺垫：", "Due soon, worth preparing:"))
        more += rows(soon[:room], lambda f: pick(lang, f"（第{f.payoff_chapter}章）", f"(ch. {f.payoff_chapter}) "))
        room -= len(soon)
    if late and room > 0:
        more.append(pick(lang, "已过计划的回收章仍未回收，宜尽快回收：", "Past their planned payoff, still open:"))
        more += rows(late[:room], lambda f: "")
    return _Threads(
        _Section(heading + "\n" + "\n".join(parts)) if parts else None,
        _Section(("" if parts else heading + "\n") + "\n".join(more), 4) if more else None,
        plant,
        payoff,
    )


def _brief(novel: NovelView) -> str:
    return pick(
        novel.language,
        f"《{novel.title}》，{novel.genre or '小说'}。{novel.synopsis}",
        f"{novel.title}, {novel.genre or 'a novel'}. {novel.synopsis}",
    )


def _entry(lang: str, number: int, title: str, summary: str, unit_zh: str, unit_en: str) -> str:
    return pick(lang, f"第{number}{unit_zh}《{title}》：{summary}", f"{unit_en} {number}, {title}: {summary}")


def _history(lang: str, novel: NovelView, earlier: list[tuple[int, ChapterView]], budget: int) -> str:
    """The story so far within ``budget``: nearest recaps in full, older ones a line each, oldest by volume."""
    heading = pick(lang, "【前情提要】", "[The story so far]")
    budget -= estimate_tokens(heading) + 1
    if not earlier or budget <= 0:
        return ""
    volumes = {v.number: v for v in novel.volumes}

    def volume_line(number: int, chapters: list[ChapterView]) -> str:
        v = volumes.get(number)
        span = f"{chapters[0].number}-{chapters[-1].number}"
        title, summary = (v.title, v.summary) if v is not None else ("", "")
        return "- " + fit_tokens(
            pick(
                lang,
                f"第{number}卷《{title}》（第{span}章）：{summary}",
                f"Volume {number}, {title} (chapters {span}): {summary}",
            ),
            _VOLUME_LINE,
        )

    by_volume: dict[int, list[ChapterView]] = {}
    for vn, c in earlier:
        by_volume.setdefault(vn, []).append(c)
    # What one line per volume would cost for the volumes before each one, so that the
    # chapter lines always leave room for the volumes they cannot cover.
    line_cost = {vn: estimate_tokens(volume_line(vn, cs)) + 1 for vn, cs in by_volume.items()}

    def reserve(upto_volume: int) -> int:
        # At most a quarter of the budget: past that, the oldest volumes' lines are the ones dropped.
        return min(sum(cost for vn, cost in line_cost.items() if vn <= upto_volume), cap)

    cap = budget // 4

    chapter_rows: list[str] = []
    covered = 0
    for vn, c in reversed(earlier):
        told = c.recap or c.summary
        if covered < _FULL_RECAPS:
            row = "- " + fit_tokens(_entry(lang, c.number, c.title, told, "章", "Chapter"), _FULL_RECAP)
        else:
            row = "- " + fit_tokens(_entry(lang, c.number, c.title, first_sentence(told), "章", "Chapter"), _RECAP_LINE)
        cost = estimate_tokens(row) + 1
        if cost + reserve(vn) > budget:
            break
        budget -= cost
        chapter_rows.append(row)
        covered += 1
    rest = earlier[: len(earlier) - covered]
    volume_rows: list[str] = []
    for vn in sorted({vn for vn, _ in rest}, reverse=True):
        row = volume_line(vn, [c for n, c in rest if n == vn])
        cost = estimate_tokens(row) + 1
        if cost > budget:
            break
        budget -= cost
        volume_rows.append(row)
    rows = list(reversed(volume_rows)) + list(reversed(chapter_rows))
    return heading + "\n" + "\n".join(rows) if rows else ""
