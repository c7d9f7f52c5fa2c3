"""The shape of a phrase bank, one per language (``zh``, ``en``), and the choice of a genre bank.

The templates are filled by ``story.fill`` with ``{hero}``, ``{ally}``, ``{foe}``,
``{mentor}``, ``{place}``, ``{place2}``, ``{faction}``, ``{item}``, ``{rule}``,
``{hook}`` (the synopsis' first sentence), ``{title}``, ``{genre}`` and a few
per-kind names. Lists of lists are indexed by where the story stands (a volume's
phase, a chapter's beat, a character's role) and then drawn from by the dice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GenreBank:
    """A genre's own places, factions, items, rules and customs (a rule or custom is (name, description))."""

    #: Words of a novel's genre that pick this bank.
    match: tuple[str, ...]
    places: list[str]
    factions: list[str]
    items: list[str]
    rules: list[tuple[str, str]]
    customs: list[tuple[str, str]]


@dataclass(frozen=True)
class Phrases:
    given_names: list[str]
    surnames: list[str]
    someone: str
    untitled: str
    a_novel: str
    default_hook: str
    volume_titles: list[list[str]]
    volume_summaries: list[list[str]]
    overall_intro: str
    overall_volume: str
    overall_close: str
    chapter_titles: list[list[str]]
    chapter_summaries: list[list[str]]
    codas: list[str]
    roles: list[str]
    jobs: list[str]
    character_descriptions: list[str]
    traits: list[str]
    arcs: list[str]
    relationships: list[str]
    place_suffixes: list[str]
    faction_suffixes: list[str]
    rule_suffixes: list[str]
    item_suffixes: list[str]
    world_descriptions: dict[str, list[str]]
    event_titles: list[str]
    event_suffixes: list[str]
    time_labels: list[str]
    event_descriptions: list[str]
    foreshadow_titles: list[str]
    foreshadow_descriptions: list[str]
    first_openings: list[str]
    openings: list[str]
    summary_bridge: str
    plant_line: str
    payoff_line: str
    body: list[str]
    dialogue: list[str]
    closings: list[str]
