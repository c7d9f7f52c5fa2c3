"""What the tests of the author's hand share: a novel's structure made directly, a clock, a held provider."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from novawrite.db.models import Chapter, Volume
from novawrite.providers.base import Completion, Prompt
from novawrite.providers.demo import DemoProvider
from novawrite.text import count_words
from tests.conftest import Api
from tests.waiting import until

#: (volume title, [(chapter title, content), ...]) per volume.
Outline = list[tuple[str, list[tuple[str, str]]]]


async def build(api: Api, novel_id: int, outline: Outline) -> dict[str, Any]:
    """Volumes and chapters as an outline would make them (numbers through the whole novel); the Novel after."""
    number = 0
    async with api.services.db.session() as session:
        for v, (volume_title, chapters) in enumerate(outline, start=1):
            volume = Volume(novel_id=novel_id, number=v, title=volume_title, summary=f"summary of {volume_title}")
            session.add(volume)
            await session.flush()
            for title, content in chapters:
                number += 1
                session.add(
                    Chapter(
                        novel_id=novel_id,
                        volume_id=volume.id,
                        number=number,
                        title=title,
                        summary=f"plan of {title}",
                        content=content,
                        word_count=count_words(content),
                    )
                )
    return await novel(api, novel_id)


async def novel(api: Api, novel_id: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = await api.client.get(f"/api/novels/{novel_id}", headers=headers or api.client.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def chapters(detail: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for v in detail["volumes"] for c in v["chapters"]]


@dataclass
class Clock:
    """The editing clock, moved by the test."""

    now: datetime = field(default_factory=lambda: datetime(2030, 1, 1, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class HeldProvider:
    """The demo provider, except that a chapter's text waits until the test releases it."""

    name: str = "held"
    is_demo: bool = True
    delegate: DemoProvider = field(default_factory=lambda: DemoProvider(delay_ms=0))
    released: asyncio.Event = field(default_factory=asyncio.Event)
    streaming: asyncio.Event = field(default_factory=asyncio.Event)

    async def generate_json(self, prompt: Prompt, schema: type[BaseModel]) -> Completion:
        return await self.delegate.generate_json(prompt, schema)

    async def stream_text(self, prompt: Prompt) -> AsyncIterator[Completion]:
        self.streaming.set()
        await asyncio.wait_for(self.released.wait(), 30)
        async for piece in self.delegate.stream_text(prompt):
            yield piece

    async def aclose(self) -> None:
        return None


async def wait_task(api: Api, headers: dict[str, str], task_id: str, status: str = "completed") -> dict[str, Any]:
    task: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal task
        task = (await api.client.get(f"/api/tasks/{task_id}", headers=headers)).json()
        return task["status"] == status

    await until(reached, 30, f"task {task_id} {status}")
    return task
