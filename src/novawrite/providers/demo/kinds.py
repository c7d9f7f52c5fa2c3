"""What the demo writes for each prompt kind, from the prompt's structured request (``providers.requests``).

Each JSON kind returns its answer and how many items it made (the provider
pauses once per item); ``chapter_text`` writes a whole chapter of about the
target length, the same every time for the same chapter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from novawrite.providers.demo.recap import chapter_recap
from novawrite.providers.demo.story import Story, fill, name_key
from novawrite.providers.requests import (
    ChapterRequest,
    ListRequest,
    OutlineChaptersRequest,
    OutlinePlanRequest,
    OutlineRequest,
    TimelineRequest,
)
from novawrite.text import count_words

Answer = tuple[dict[str, object], int]


# --- The outline ----------------------------------------------------------------------


def _phase(volume: int, volumes: int) -> int:
    """Where a volume stands in the book's arc: 0 opening ... 4 ending."""
    if volumes <= 1:
        return 0
    if volume == volumes:
        return 4
    return min(3, 4 * (volume - 1) // (volumes - 1))


def _volume_entry(story: Story, number: int, volumes: int) -> dict[str, object]:
    rng = story.dice("volume", number)
    phase = _phase(number, volumes)
    values = story.fills(rng, place=story.bank.places[(number - 1) % len(story.bank.places)])
    return {
        "number": number,
        "title": fill(rng.choice(story.text.volume_titles[phase]), values),
        "summary": fill(rng.choice(story.text.volume_summaries[phase]), values),
    }


def _shape(request: OutlineRequest) -> tuple[int, int]:
    return request.get("volumes") or 3, request.get("chapters_per_volume") or 10


def outline_plan(request: OutlinePlanRequest) -> Answer:
    story = Story(request)
    volumes, per_volume = _shape(request)
    wanted = list(request.get("volume_numbers") or range(1, volumes + 1))
    entries = [_volume_entry(story, n, volumes) for n in wanted]
    every = [_volume_entry(story, n, volumes) for n in range(1, volumes + 1)]
    values = story.fills(story.dice("overall"), volumes=volumes, chapters=volumes * per_volume)
    parts = [fill(story.text.overall_intro, values)]
    parts += [fill(story.text.overall_volume, {**values, **v}) for v in every[:12]]
    parts.append(fill(story.text.overall_close, values))
    return {"outline": "".join(parts) if story.lang == "zh" else " ".join(parts), "volumes": entries}, len(entries)


def _chapter_entry(story: Story, number: int, per_volume: int, volume_title: str) -> dict[str, object]:
    rng = story.dice("chapter", number)
    index = (number - 1) % per_volume
    beat = min(4, 5 * index // per_volume)
    values = story.fills(rng, volume_title=volume_title)
    summary = fill(rng.choice(story.text.chapter_summaries[beat]), values)
    if rng.random() < 0.6:
        summary += (" " if story.lang == "en" else "") + fill(rng.choice(story.text.codas), values)
    return {"number": number, "title": fill(rng.choice(story.text.chapter_titles[beat]), values), "summary": summary}


def outline_chapters(request: OutlineChaptersRequest) -> Answer:
    story = Story(request)
    _, per_volume = _shape(request)
    title = request.get("volume_title") or ""
    chapters = [_chapter_entry(story, n, per_volume, title) for n in request.get("chapter_numbers") or []]
    return {"chapters": chapters}, len(chapters)


# --- The lists ------------------------------------------------------------------------


def _list(request: ListRequest, default_count: int = 5) -> tuple[Story, int, int]:
    story = Story(request, exclude=request.get("exclude") or [])
    return story, request.get("count") or default_count, request.get("offset") or 0


def characters(request: ListRequest) -> Answer:
    story, count, offset = _list(request)
    names = (n for n in story.name_sequence() if name_key(n) not in story.taken)
    text = story.text
    items = []
    for i in range(count):
        name = next(names)
        story.taken.add(name_key(name))
        role = min(offset + i, len(text.roles) - 1)
        rng = story.dice("character", name)
        values = story.fills(rng, name=name, job=rng.choice(text.jobs))
        items.append(
            {
                "name": name,
                "role": text.roles[role],
                "description": fill(text.character_descriptions[role], values),
                "traits": rng.sample(text.traits, 3),
                "arc": fill(text.arcs[role], values),
                "relationships": fill(text.relationships[role], values),
            }
        )
    return {"characters": items}, len(items)


_CATEGORIES = ("location", "faction", "rule", "item", "culture")


def world_settings(request: ListRequest) -> Answer:
    story, count, offset = _list(request)
    bank, text = story.bank, story.text
    pools = {
        "location": story.unique(list(bank.places), text.place_suffixes),
        "faction": story.unique(list(bank.factions), text.faction_suffixes),
        "rule": story.unique([r[0] for r in bank.rules], text.rule_suffixes),
        "item": story.unique(list(bank.items), text.item_suffixes),
        "culture": story.unique([c[0] for c in bank.customs], text.rule_suffixes),
    }
    known = dict(bank.rules) | dict(bank.customs)
    items = []
    for i in range(count):
        category = _CATEGORIES[(offset + i) % len(_CATEGORIES)]
        name = next(pools[category])
        rng = story.dice("world", name)
        values = story.fills(rng, name=name)  # drawn even when unused: the dice stay as they were
        if name in known:
            description = known[name]
        else:
            description = fill(rng.choice(text.world_descriptions[category]), values)
        items.append({"name": name, "category": category, "description": description})
    return {"world_settings": items}, len(items)


def _titles(story: Story, salt: str, templates: list[str]) -> Iterator[str]:
    """Titles from ``templates``, filled once each, never one already taken."""
    rng = story.dice(salt)
    return story.unique([fill(t, story.fills(rng)) for t in templates], story.text.event_suffixes)


def timeline_events(request: TimelineRequest) -> Answer:
    story, count, offset = _list(request, default_count=8)
    start = (request.get("max_position") or 0) + 1
    chapters = request.get("chapter_count") or 0
    text = story.text
    titles = _titles(story, "event-titles", text.event_titles)
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
                "description": fill(rng.choice(text.event_descriptions), values),
                "chapter_number": chapter,
            }
        )
    return {"timeline_events": items}, len(items)


def foreshadowings(request: ListRequest) -> Answer:
    story, count, offset = _list(request)
    chapters = request.get("chapter_count") or 0
    text = story.text
    titles = _titles(story, "foreshadow-titles", text.foreshadow_titles)
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
                "description": fill(rng.choice(text.foreshadow_descriptions), story.fills(rng)),
                "planted_chapter": planted,
                "payoff_chapter": payoff,
                "status": "planted",
            }
        )
    return {"foreshadowings": items}, len(items)


#: The JSON kinds by ``Prompt.kind``; each takes the request its kind's generator builds.
JSON_KINDS: dict[str, Callable[[Any], Answer]] = {
    "outline_plan": outline_plan,
    "outline_chapters": outline_chapters,
    "characters": characters,
    "world_settings": world_settings,
    "timeline_events": timeline_events,
    "foreshadowings": foreshadowings,
    "chapter_recap": chapter_recap,
}


# --- Chapter text ---------------------------------------------------------------------


def chapter_text(request: ChapterRequest) -> str:
    """A whole chapter of about ``target_words`` words, the same every time for the same chapter."""
    story = Story(request)
    number = request.get("chapter_number") or 1
    target = request.get("target_words") or 2000
    present = [str(n) for n in request.get("characters_present") or []]
    cast = present + [n for n in story.cast if n not in present]
    rng = story.dice("chapter-text", number)
    text = story.text
    summary = str(request.get("chapter_summary") or "").strip()
    values = story.fills(
        rng,
        hero=cast[0] if cast else text.someone,
        ally=cast[1] if len(cast) > 1 else text.someone,
        foe=cast[2] if len(cast) > 2 else text.someone,
        chapter_title=request.get("chapter_title") or "",
    )
    paragraphs = [fill(rng.choice(text.openings if request.get("previous_ending") else text.first_openings), values)]
    if summary:
        paragraphs.append(fill(text.summary_bridge, {**values, "summary": summary}))
    for title in request.get("foreshadow_plant") or []:
        paragraphs.append(fill(text.plant_line, {**values, "clue": title}))
    for title in request.get("foreshadow_payoff") or []:
        paragraphs.append(fill(text.payoff_line, {**values, "clue": title}))
    words = count_words("\n\n".join(paragraphs))
    closing = fill(rng.choice(text.closings), values)
    budget = target - count_words(closing)
    while words < budget:
        values = story.fills(rng, hero=values["hero"], ally=values["ally"], foe=values["foe"])
        paragraph = fill(rng.choice(text.body), values)
        if rng.random() < 0.5:
            paragraph += "\n\n" + fill(rng.choice(text.dialogue), values)
        paragraphs.append(paragraph)
        words += count_words(paragraph)
    paragraphs.append(closing)
    return "\n\n".join(paragraphs)
