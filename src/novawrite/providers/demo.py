"""The offline demo provider: plausible, deterministic content from the novel's own fields.

It reads ``Prompt.kind`` and ``Prompt.context`` (never the prose prompt) and writes
what a model would: outline plans and chapter batches, characters, world
settings, timeline events, foreshadowing and chapter text, in Chinese or English.
Everything is seeded by a hash of the novel's title, genre, synopsis and
language, so the same novel always gets the same plan, and the names it invents
are the ones its outline already talks about (the outline's hero is the first
character it creates). It is what a new user sees first, so it writes from
genre-flavoured phrase banks and the synopsis' first sentence, not lorem ipsum.

Pacing: it sleeps ``delay_ms`` once per generated item (a volume, a chapter
entry, a character...) and between streamed text pieces, so progress is real
and a cancel lands mid-way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from pydantic import BaseModel

from novawrite.providers.base import Completion, Prompt, ProviderError, Usage
from novawrite.providers.demo_text import BANKS, EN, ZH, Phrases

_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")


def _estimate_tokens(text: str) -> int:
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk) // 4


class _Story:
    """The novel as the demo sees it: its phrase bank, its seeded dice and its cast."""

    def __init__(self, context: Mapping[str, Any]) -> None:
        self.title = str(context.get("title") or "")
        self.genre = str(context.get("genre") or "")
        self.synopsis = str(context.get("synopsis") or "")
        self.lang = "en" if context.get("language") == "en" else "zh"
        self.text: Phrases = EN if self.lang == "en" else ZH
        self.bank = _bank(self.lang, self.genre)
        self._seed = hashlib.sha256(
            "\x00".join([self.title, self.genre, self.synopsis, self.lang]).encode()
        ).hexdigest()
        existing = [str(n) for n in context.get("character_names") or []]
        exclude = [str(n) for n in context.get("exclude") or []]
        self.taken = {_key(n) for n in existing + exclude}
        # The outline's people: the author's characters first, then the ones the
        # demo would create next, in the order it would create them.
        fresh = [n for n in self.name_sequence() if _key(n) not in {_key(e) for e in existing}]
        self.cast = (existing + fresh)[:8]

    def dice(self, *salt: object) -> random.Random:
        return random.Random(f"{self._seed}:{':'.join(map(str, salt))}")

    def name_sequence(self) -> Iterator[str]:
        rng = self.dice("names")
        seen: set[str] = set()
        named = _synopsis_hero(self.synopsis) if self.lang == "zh" else ""
        if named:
            # The hero the synopsis names is the hero of the plan, and the first character made.
            seen.add(named)
            yield named
        first, last = self.text.given_names, self.text.surnames
        for _ in range(2000):
            if self.lang == "zh":
                given = rng.choice(first) + (rng.choice(first) if rng.random() < 0.6 else "")
                name = rng.choice(last) + given
            else:
                name = f"{rng.choice(first)} {rng.choice(last)}"
            if name not in seen:
                seen.add(name)
                yield name

    def hook(self) -> str:
        first = re.split(r"(?<=[。！？!?])|(?<=\.)\s", self.synopsis.strip(), maxsplit=1)[0].strip()
        first = first.rstrip("。！？!?.")
        if not first:
            return self.text.default_hook.format(item=self.bank["items"][0])
        return first if len(first) <= 80 else first[:79] + "…"

    def fills(self, rng: random.Random, **extra: object) -> dict[str, object]:
        cast = self.cast + [self.text.someone] * 4
        bank = self.bank
        values: dict[str, object] = {
            "title": self.title or self.text.untitled,
            "genre": (self.genre.lower() if self.lang == "en" else self.genre) or self.text.a_novel,
            "hero": cast[0],
            "ally": cast[1],
            "foe": cast[2],
            "mentor": cast[3],
            "place": rng.choice(bank["places"]),
            "place2": rng.choice(bank["places"]),
            "faction": rng.choice(bank["factions"]),
            "item": rng.choice(bank["items"]),
            "rule": rng.choice(bank["rules"])[0],
            "hook": self.hook(),
        }
        values.update(extra)
        return values


_HERO = re.compile(r"(?:少年|少女|青年|主角|女主|男主|名叫|叫做|^)([\u4e00-\u9fff]{2,3})")
_SURNAMES = set(
    "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜谢邹喻苏潘葛范彭鲁韦马苗方任袁柳唐罗薛雷贺倪汤殷滕毕郝安常乐于傅齐康余顾孟黄穆萧尹姚邵汪毛狄米宋庞熊纪舒屈项祝董梁杜阮蓝季贾江郭林钟徐邱骆高夏蔡田胡霍叶白温楚宁程陆凌"
)
# Characters that end a name when a three-character match runs into the sentence.
_AFTER_NAME = set("在是的了和与被把从向对为将却便就也又才都已说拿捡得来去本自因于")


def _synopsis_hero(synopsis: str) -> str:
    """A Chinese synopsis' hero, when it opens with one ("少年林远在山村……"); else ""."""
    for match in _HERO.finditer(synopsis.strip()[:60]):
        name = match.group(1)
        if name[0] not in _SURNAMES:
            continue
        return name[:2] if name[-1] in _AFTER_NAME or len(name) == 2 else name
    return ""


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _bank(lang: str, genre: str) -> dict[str, Any]:
    banks = BANKS[lang]
    genre_key = genre.casefold()
    for bank in banks:
        if any(word in genre_key for word in bank["match"]):
            return bank
    return banks[-1]  # the last bank is the everyday one, for any other genre


_SENTENCE_START = re.compile(r"(^|[.!?]\s+|\n)([a-z])")


def _fill(template: str, values: Mapping[str, object]) -> str:
    # Bank phrases ("the Ninefold Court") may open a sentence: capitalise sentence starts.
    return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), template.format_map(dict(values)))


# --- JSON kinds -----------------------------------------------------------------------


def _phase(volume: int, volumes: int) -> int:
    """Where a volume stands in the book's arc: 0 opening ... 4 ending."""
    if volumes <= 1:
        return 0
    if volume == volumes:
        return 4
    return min(3, 4 * (volume - 1) // (volumes - 1))


def _volume_entry(story: _Story, number: int, volumes: int) -> dict[str, object]:
    rng = story.dice("volume", number)
    phase = _phase(number, volumes)
    values = story.fills(rng, place=story.bank["places"][(number - 1) % len(story.bank["places"])])
    return {
        "number": number,
        "title": _fill(rng.choice(story.text.volume_titles[phase]), values),
        "summary": _fill(rng.choice(story.text.volume_summaries[phase]), values),
    }


def outline_plan(story: _Story, context: Mapping[str, Any]) -> tuple[dict[str, object], int]:
    volumes = int(context.get("volumes") or 3)
    per_volume = int(context.get("chapters_per_volume") or 10)
    wanted = [int(n) for n in context.get("volume_numbers") or range(1, volumes + 1)]
    entries = [_volume_entry(story, n, volumes) for n in wanted]
    every = [_volume_entry(story, n, volumes) for n in range(1, volumes + 1)]
    values = story.fills(story.dice("overall"), volumes=volumes, chapters=volumes * per_volume)
    parts = [_fill(story.text.overall_intro, values)]
    parts += [_fill(story.text.overall_volume, {**values, **v}) for v in every[:12]]
    parts.append(_fill(story.text.overall_close, values))
    return {"outline": "".join(parts) if story.lang == "zh" else " ".join(parts), "volumes": entries}, len(entries)


def _chapter_entry(story: _Story, number: int, volume: int, per_volume: int, volume_title: str) -> dict[str, object]:
    rng = story.dice("chapter", number)
    index = (number - 1) % per_volume
    beat = min(4, 5 * index // per_volume)
    values = story.fills(rng, volume_title=volume_title)
    summary = _fill(rng.choice(story.text.chapter_summaries[beat]), values)
    if rng.random() < 0.6:
        summary += (" " if story.lang == "en" else "") + _fill(rng.choice(story.text.codas), values)
    return {"number": number, "title": _fill(rng.choice(story.text.chapter_titles[beat]), values), "summary": summary}


def outline_chapters(story: _Story, context: Mapping[str, Any]) -> tuple[dict[str, object], int]:
    per_volume = int(context.get("chapters_per_volume") or 10)
    volume = int(context.get("volume_number") or 1)
    title = str(context.get("volume_title") or "")
    numbers = [int(n) for n in context.get("chapter_numbers") or []]
    chapters = [_chapter_entry(story, n, volume, per_volume, title) for n in numbers]
    return {"chapters": chapters}, len(chapters)


def _unique(story: _Story, candidates: list[str], suffixes: list[str]) -> Iterator[str]:
    """Candidate names not yet taken; then the same with suffixes, so it never runs dry."""
    for suffix in ["", *suffixes]:
        for name in candidates:
            full = f"{name[:1].upper()}{name[1:]}{suffix}"
            if _key(full) not in story.taken:
                story.taken.add(_key(full))
                yield full
    n = 2
    while True:
        full = f"{candidates[0]} {n}"
        n += 1
        if _key(full) not in story.taken:
            story.taken.add(_key(full))
            yield full


def characters(story: _Story, context: Mapping[str, Any]) -> tuple[dict[str, object], int]:
    count = int(context.get("count") or 5)
    offset = int(context.get("offset") or 0)
    names = (n for n in story.name_sequence() if _key(n) not in story.taken)
    text = story.text
    items = []
    for i in range(count):
        name = next(names)
        story.taken.add(_key(name))
        role = min(offset + i, len(text.roles) - 1)
        rng = story.dice("character", name)
        values = story.fills(rng, name=name, job=rng.choice(text.jobs))
        items.append(
            {
                "name": name,
                "role": text.roles[role],
                "description": _fill(text.character_descriptions[role], values),
                "traits": rng.sample(text.traits, 3),
                "arc": _fill(text.arcs[role], values),
                "relationships": _fill(text.relationships[role], values),
            }
        )
    return {"characters": items}, len(items)


_CATEGORIES = ("location", "faction", "rule", "item", "culture")


def world_settings(story: _Story, context: Mapping[str, Any]) -> tuple[dict[str, object], int]:
    count = int(context.get("count") or 5)
    offset = int(context.get("offset") or 0)
    bank, text = story.bank, story.text
    pools = {
        "location": _unique(story, list(bank["places"]), text.place_suffixes),
        "faction": _unique(story, list(bank["factions"]), text.faction_suffixes),
        "rule": _unique(story, [r[0] for r in bank["rules"]], text.rule_suffixes),
        "item": _unique(story, list(bank["items"]), text.item_suffixes),
        "culture": _unique(story, [c[0] for c in bank["customs"]], text.rule_suffixes),
    }
    known = {r[0]: r[1] for r in bank["rules"]} | {c[0]: c[1] for c in bank["customs"]}
    items = []
    for i in range(count):
        category = _CATEGORIES[(offset + i) % len(_CATEGORIES)]
        name = next(pools[category])
        rng = story.dice("world", name)
        values = story.fills(rng, name=name)
        if name in known:
            description = known[name]
        else:
            description = _fill(rng.choice(text.world_descriptions[category]), values)
        items.append({"name": name, "category": category, "description": description})
    return {"world_settings": items}, len(items)


def timeline_events(story: _Story, context: Mapping[str, Any]) -> tuple[dict[str, object], int]:
    count = int(context.get("count") or 8)
    offset = int(context.get("offset") or 0)
    start = int(context.get("max_position") or 0) + 1
    chapters = int(context.get("chapter_count") or 0)
    text = story.text
    rng0 = story.dice("event-titles")
    titles = _unique(story, [_fill(t, story.fills(rng0)) for t in text.event_titles], text.event_suffixes)
    items = []
    for i in range(count):
        step = offset + i
        rng = story.dice("event", step)
        values = story.fills(rng)
        title = next(titles)
        chapter = None
        if chapters:
            # Spread the events over the book in order, so the timeline reads forward.
            chapter = min(chapters, 1 + (step * chapters) // max(count + offset, 1))
        items.append(
            {
                "position": start + i,
                "time_label": text.time_labels[min(step, len(text.time_labels) - 1)].format(n=step + 1),
                "title": title,
                "description": _fill(rng.choice(text.event_descriptions), values),
                "chapter_number": chapter,
            }
        )
    return {"timeline_events": items}, len(items)


def foreshadowings(story: _Story, context: Mapping[str, Any]) -> tuple[dict[str, object], int]:
    count = int(context.get("count") or 5)
    offset = int(context.get("offset") or 0)
    chapters = int(context.get("chapter_count") or 0)
    text = story.text
    rng0 = story.dice("foreshadow-titles")
    candidates = [_fill(t, story.fills(rng0)) for t in text.foreshadow_titles]
    titles = _unique(story, candidates, text.event_suffixes)
    items = []
    for i in range(count):
        step = offset + i
        rng = story.dice("foreshadow", step)
        planted = payoff = None
        if chapters:
            planted = 1 + rng.randrange(max(1, chapters // 2))
            payoff = min(chapters, planted + max(1, chapters // 3) + rng.randrange(max(1, chapters // 4)))
        items.append(
            {
                "title": next(titles),
                "description": _fill(rng.choice(text.foreshadow_descriptions), story.fills(rng)),
                "planted_chapter": planted,
                "payoff_chapter": payoff,
                "status": "planted",
            }
        )
    return {"foreshadowings": items}, len(items)


_JSON_KINDS = {
    "outline_plan": outline_plan,
    "outline_chapters": outline_chapters,
    "characters": characters,
    "world_settings": world_settings,
    "timeline_events": timeline_events,
    "foreshadowings": foreshadowings,
}


# --- Chapter text ---------------------------------------------------------------------


def chapter_text(story: _Story, context: Mapping[str, Any]) -> str:
    """A whole chapter of about ``target_words`` words, the same every time for the same chapter."""
    from novawrite.text import count_words

    number = int(context.get("chapter_number") or 1)
    target = int(context.get("target_words") or 2000)
    present = [str(n) for n in context.get("characters_present") or []]
    cast = present + [n for n in story.cast if n not in present]
    rng = story.dice("chapter-text", number)
    text = story.text
    summary = str(context.get("chapter_summary") or "").strip()
    values = story.fills(
        rng,
        hero=cast[0] if cast else text.someone,
        ally=cast[1] if len(cast) > 1 else text.someone,
        foe=cast[2] if len(cast) > 2 else text.someone,
        chapter_title=context.get("chapter_title") or "",
    )
    paragraphs = [_fill(rng.choice(text.openings if context.get("previous_ending") else text.first_openings), values)]
    if summary:
        paragraphs.append(_fill(text.summary_bridge, {**values, "summary": summary}))
    for title in context.get("foreshadow_plant") or []:
        paragraphs.append(_fill(text.plant_line, {**values, "clue": title}))
    for title in context.get("foreshadow_payoff") or []:
        paragraphs.append(_fill(text.payoff_line, {**values, "clue": title}))
    words = count_words("\n\n".join(paragraphs))
    closing = _fill(rng.choice(text.closings), values)
    budget = target - count_words(closing)
    while words < budget:
        values = story.fills(rng, hero=values["hero"], ally=values["ally"], foe=values["foe"])
        paragraph = _fill(rng.choice(text.body), values)
        if rng.random() < 0.5:
            paragraph += "\n\n" + _fill(rng.choice(text.dialogue), values)
        paragraphs.append(paragraph)
        words += count_words(paragraph)
    paragraphs.append(closing)
    return "\n\n".join(paragraphs)


def _pieces(text: str, lang: str) -> Iterator[str]:
    """Small pieces as a model streams them: a clause or so at a time."""
    size = 24 if lang == "zh" else 80
    for start in range(0, len(text), size):
        yield text[start : start + size]


class DemoProvider:
    """Offline, deterministic, paced; labelled as demo content by ``is_demo``."""

    name = "demo"
    is_demo = True

    def __init__(self, delay_ms: int = 30) -> None:
        self.delay_ms = max(0, delay_ms)

    async def _pause(self) -> None:
        # sleep(0) still yields, so even an unpaced demo task can be cancelled.
        await asyncio.sleep(self.delay_ms / 1000)

    async def generate_json(self, prompt: Prompt, schema: type[BaseModel]) -> Completion:
        make = _JSON_KINDS.get(prompt.kind)
        if make is None:
            raise ProviderError(f"The demo provider cannot write {prompt.kind!r}", transient=False, status=400)
        data, items = make(_Story(prompt.context), prompt.context)
        for _ in range(max(1, items)):
            await self._pause()
        text = json.dumps(data, ensure_ascii=False)
        return Completion(text=text, usage=Usage(_estimate_tokens(prompt.system + prompt.user), _estimate_tokens(text)))

    async def stream_text(self, prompt: Prompt) -> AsyncIterator[Completion]:
        if prompt.kind != "chapter":
            raise ProviderError(f"The demo provider cannot stream {prompt.kind!r}", transient=False, status=400)
        story = _Story(prompt.context)
        text = chapter_text(story, prompt.context)
        # A continuation after a cut stream picks up where the text stopped.
        text = text[int(prompt.context.get("written_chars") or 0) :]
        for piece in _pieces(text, story.lang):
            await self._pause()
            yield Completion(text=piece)
        yield Completion(text="", usage=Usage(_estimate_tokens(prompt.system + prompt.user), _estimate_tokens(text)))

    async def aclose(self) -> None:
        return None
