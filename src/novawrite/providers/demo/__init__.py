"""The offline demo provider: plausible, deterministic content from the novel's own fields.

It reads a prompt's structured request (``Prompt.context``, typed in
``providers.requests``: the data the generators write their prose prompts from)
and never the prose, and writes what a model would: outline plans and chapter
batches, characters, world settings, timeline events, foreshadowing and chapter
text, in Chinese or English. It is what a new user sees first, so it writes from
genre-flavoured phrase banks and the synopsis' first sentence, not lorem ipsum.

- ``story``: the novel as the demo sees it (seeded dice, cast, template values);
- ``kinds``: what it writes for each prompt kind;
- ``phrases``, ``zh``, ``en``: a phrase bank per language.

Pacing: it sleeps ``delay_ms`` once per generated item (a volume, a chapter
entry, a character...) and between streamed text pieces, so progress is real
and a cancel lands mid-way.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import cast

from pydantic import BaseModel

from novawrite.providers.base import Completion, Prompt, ProviderError, Usage
from novawrite.providers.demo.kinds import JSON_KINDS, chapter_text
from novawrite.providers.requests import ChapterRequest

_CJK = r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]"
#: Runs of CJK characters: a Chinese prompt is a few long runs, counted far faster than its characters
#: (as chapter_context counts them).
_CJK_RUN = re.compile(_CJK + _CJK + "*")


def _estimate_tokens(text: str) -> int:
    cjk = sum(m.end() - m.start() for m in _CJK_RUN.finditer(text))
    return cjk + (len(text) - cjk) // 4


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
        make = JSON_KINDS.get(prompt.kind)
        if make is None:
            raise ProviderError(f"The demo provider cannot write {prompt.kind!r}", transient=False, status=400)
        data, items = make(prompt.context)
        for _ in range(max(1, items)):
            await self._pause()
        text = json.dumps(data, ensure_ascii=False)
        return Completion(text=text, usage=Usage(_estimate_tokens(prompt.system + prompt.user), _estimate_tokens(text)))

    async def stream_text(self, prompt: Prompt) -> AsyncIterator[Completion]:
        if prompt.kind != "chapter":
            raise ProviderError(f"The demo provider cannot stream {prompt.kind!r}", transient=False, status=400)
        request = cast(ChapterRequest, prompt.context)
        text = chapter_text(request)
        # A continuation after a cut stream picks up where the text stopped.
        text = text[request.get("written_chars") or 0 :]
        for piece in _pieces(text, "en" if request.get("language") == "en" else "zh"):
            await self._pause()
            yield Completion(text=piece)
        yield Completion(text="", usage=Usage(_estimate_tokens(prompt.system + prompt.user), _estimate_tokens(text)))

    async def aclose(self) -> None:
        return None


__all__ = ["DemoProvider"]
