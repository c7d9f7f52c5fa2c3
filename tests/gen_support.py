"""Fakes for the generator tests: a recording progress reporter and a scripted provider.

The scripted provider is a real implementation of the Provider protocol: by
default it delegates to the demo provider (so answers fit every kind), and a
test bends it with ``edit`` (change an answer), ``answers`` (queued raw texts)
or ``fail`` (raise on a given call).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel

from novawrite.generators.base import (
    ChapterView,
    CharacterView,
    ForeshadowingView,
    GenerationContext,
    NovelView,
    TargetChapter,
    VolumeView,
)
from novawrite.generators.recap import RECAP_CHARS
from novawrite.providers.base import Completion, Prompt, ProviderError, Usage
from novawrite.providers.demo import DemoProvider


class Recorder:
    """A ProgressReporter that keeps everything it is told."""

    def __init__(self) -> None:
        self.updates: list[tuple[int, str]] = []
        self.chunks: list[str] = []

    async def update(self, percent: int, message: str) -> None:
        self.updates.append((percent, message))

    async def chunk(self, text: str) -> None:
        self.chunks.append(text)

    @property
    def percents(self) -> list[int]:
        return [p for p, _ in self.updates]


@dataclass
class ScriptedProvider:
    name: str = "scripted"
    is_demo: bool = False
    delegate: DemoProvider = field(default_factory=lambda: DemoProvider(delay_ms=0))
    #: Raw answers to hand out first, in order, before delegating.
    answers: list[str] = field(default_factory=list)
    #: edit(prompt, data) -> data: bends the demo's answer.
    edit: Callable[[Prompt, dict[str, Any]], dict[str, Any]] | None = None
    #: fail(prompt, call_number) -> an error to raise, or None.
    fail: Callable[[Prompt, int], ProviderError | None] | None = None
    #: Pieces to stream instead of the demo's chapter.
    pieces: list[str] | None = None
    prompts: list[Prompt] = field(default_factory=list)

    def calls(self, kind: str) -> list[Prompt]:
        return [p for p in self.prompts if p.kind == kind]

    async def generate_json(self, prompt: Prompt, schema: type[BaseModel]) -> Completion:
        self.prompts.append(prompt)
        if self.fail is not None and (error := self.fail(prompt, len(self.prompts))) is not None:
            raise error
        if self.answers:
            return Completion(self.answers.pop(0), Usage(3, 5))
        answer = await self.delegate.generate_json(prompt, schema)
        if self.edit is None:
            return answer
        return Completion(json.dumps(self.edit(prompt, json.loads(answer.text)), ensure_ascii=False), answer.usage)

    async def stream_text(self, prompt: Prompt) -> AsyncIterator[Completion]:
        self.prompts.append(prompt)
        if self.pieces is None:
            async for piece in self.delegate.stream_text(prompt):
                yield piece
            return
        for piece in self.pieces:
            yield Completion(piece)
        yield Completion("", Usage(10, len(self.pieces)))

    async def aclose(self) -> None:
        return None


def make_novel(language: str = "zh", **changes: Any) -> NovelView:
    if language == "zh":
        novel = NovelView(
            id=1,
            title="青岚剑歌",
            genre="仙侠",
            synopsis="少年林远在山村捡到一枚会发光的玉简，从此卷入宗门与妖族的千年恩怨。",
            language="zh",
            outline=None,
        )
    else:
        novel = NovelView(
            id=1,
            title="The Lantern Keeper",
            genre="Fantasy",
            synopsis="A lighthouse keeper finds a map whose ink moves. She follows it north, into a war she thought was a legend.",
            language="en",
            outline=None,
        )
    return replace(novel, **changes)


def context(novel: NovelView, params: BaseModel, provider: Any, **kwargs: Any) -> tuple[GenerationContext, Recorder]:
    recorder = Recorder()
    return GenerationContext(novel=novel, params=params, progress=recorder, provider=provider, **kwargs), recorder


def big_novel(chapters: int = 200, per_volume: int = 20, language: str = "zh", target: int = 150) -> NovelView:
    """A long novel with long summaries everywhere, for the chapter prompt's budget."""
    filler = "风雨" * 150 if language == "zh" else "storm and rain " * 60
    volumes = []
    chapter_views: dict[int, ChapterView] = {}
    for v in range(1, chapters // per_volume + 1):
        views = []
        for n in range((v - 1) * per_volume + 1, v * per_volume + 1):
            view = ChapterView(
                id=n,
                number=n,
                title=f"Chapter title {n}",
                summary=f"outline {n} {filler}",
                word_count=3000 if n < target else 0,
                recap=f"summary {n} {filler}" if n < target else "",
                has_content=n < target,
            )
            views.append(view)
            chapter_views[n] = view
        volumes.append(VolumeView(number=v, title=f"Volume {v}", summary=filler, chapters=tuple(views)))
    chars = tuple(CharacterView(name=f"Person{i}", role="supporting", description=filler) for i in range(60))
    foreshadow = tuple(
        ForeshadowingView(
            title=f"Clue {i}",
            description=filler,
            status="planted",
            planted_chapter=i,
            payoff_chapter=i + 3,
            id=i,
        )
        for i in range(1, 200)
    )
    the_target = TargetChapter(
        chapter=chapter_views[target],
        volume_number=(target - 1) // per_volume + 1,
        previous_ending=(filler * 10)[-1500:],
        existing_content="",
    )
    return replace(
        make_novel(language),
        outline=filler * 20,
        volumes=tuple(volumes),
        characters=chars,
        foreshadowings=foreshadow,
        synopsis=filler * 30,
        target=the_target,
    )


def long_recap(language: str) -> str:
    """A recap at (or just under) its length limit."""
    return ("阿岚沿着海岸一路向北，数着钟声。" * 40)[:RECAP_CHARS] if language == "zh" else "Mara walks north. " * 75


def novel_at_150(language: str) -> NovelView:
    """``big_novel`` at chapter 150 with every earlier recap ``R<n> long_recap`` and a long previous ending
    (ending "THE END OF 149"): the chapter context's worst case (tests/test_memory.py, bench/batch.py)."""
    novel = big_novel(language=language)
    recap = long_recap(language)
    volumes = tuple(
        replace(
            v,
            chapters=tuple(replace(c, recap=f"R{c.number} {recap}" if c.number < 150 else "") for c in v.chapters),
        )
        for v in novel.volumes
    )
    assert novel.target is not None
    target = replace(novel.target, previous_ending="……" + "雨" * 2000 + "THE END OF 149")
    return replace(novel, volumes=volumes, target=target)
