"""What a prompt asks, as data: the structured request each prompt carries in ``Prompt.context``.

A generator builds one of these from the same values it writes its prose prompt
from; a real model reads the prose, the offline demo provider reads this, and
tests read it to see what was asked. One TypedDict per prompt kind, so that the
type checker holds the generators and the demo to the same fields.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict


class NovelRequest(TypedDict):
    """The novel's own fields, which every request carries (``NovelView.as_context``)."""

    title: str
    genre: str
    synopsis: str
    language: str
    character_names: list[str]
    world_setting_names: list[str]
    #: Set on the one repair call after an answer that did not parse or fit its schema.
    repair: NotRequired[bool]


class OutlineRequest(NovelRequest):
    volumes: int
    chapters_per_volume: int
    instructions: str


class OutlinePlanRequest(OutlineRequest):
    """``outline_plan``: the overall outline and the volumes ``volume_numbers``."""

    step: Literal["plan"]
    volume_numbers: list[int]


class OutlineChaptersRequest(OutlineRequest):
    """``outline_chapters``: the chapters ``chapter_numbers`` of one volume."""

    step: Literal["chapters"]
    volume_number: int
    volume_title: str
    volume_summary: str
    chapter_numbers: list[int]


class ListRequest(NovelRequest):
    """``characters``, ``world_settings``, ``timeline_events``, ``foreshadowings``: ``count`` new items."""

    count: int
    #: Items of this kind the novel has plus those made earlier in this task, so the
    #: demo continues its sequence instead of starting over.
    offset: int
    #: Names (or titles) that must not be used again.
    exclude: list[str]
    chapter_count: int
    instructions: str


class TimelineRequest(ListRequest):
    #: The last position the novel's timeline has: the new events come after it.
    max_position: int


class ChapterRequest(NovelRequest):
    """``chapter``: the text of one chapter, streamed."""

    chapter_number: int
    chapter_title: str
    chapter_summary: str
    volume_number: int
    target_words: int
    characters_present: list[str]
    foreshadow_plant: list[str]
    foreshadow_payoff: list[str]
    previous_ending: str
    next_title: str
    instructions: str
    #: After a cut stream, how much of the text was already sent: the demo skips it.
    written_chars: int


class ThreadRequest(TypedDict):
    """An open foreshadowing thread as a recap prompt lists it."""

    id: int
    title: str
    description: str
    status: str
    planted_chapter: int | None
    payoff_chapter: int | None


class RecapRequest(NovelRequest):
    """``chapter_recap``: what happens in a written chapter, and which open threads it touched."""

    chapter_number: int
    chapter_title: str
    chapter_summary: str
    #: The chapter's text (its start and end when it is very long).
    text: str
    open_threads: list[ThreadRequest]
    #: The recap's limit: words (English) or characters (Chinese).
    max_length: int
