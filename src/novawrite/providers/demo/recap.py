"""What the demo writes for ``chapter_recap``: a recap from the chapter's plan and its text, and
deterministic thread changes.

The recap names the chapter, retells its plan, the characters the text mentions
and the sentence it ends on, within the recap's limit. Threads move by a rule a
reader can predict: the chapter after a thread's planting hints at it, its payoff
chapter resolves it, and a payoff chapter written late still resolves it.
"""

from __future__ import annotations

import re

from novawrite.providers.demo.story import Story
from novawrite.providers.requests import RecapRequest

_SENTENCE = re.compile(r"[^。！？!?.]+[。！？!?.]+[”\"’')）」』]*")


def _last_sentence(text: str) -> str:
    sentences = [s.strip() for s in _SENTENCE.findall(text.strip()) if s.strip()]
    return sentences[-1] if sentences else ""


def chapter_recap(request: RecapRequest) -> tuple[dict[str, object], int]:
    story = Story(request)
    number = request.get("chapter_number") or 1
    title = request.get("chapter_title") or ""
    summary = (request.get("chapter_summary") or "").strip()
    text = request.get("text") or ""
    names = [n for n in (request.get("character_names") or []) + story.cast if n and n in text]
    names = list(dict.fromkeys(names))[:3]
    ending = _last_sentence(text)
    if story.lang == "zh":
        who = "、".join(names)
        parts = [f"第{number}章《{title}》。{summary}"]
        if who:
            parts.append(f"本章出场的有{who}。")
        if ending:
            parts.append(f"章末：{ending}")
        recap = "".join(parts)[:580]
    else:
        who = ", ".join(names)
        parts = [f"Chapter {number}, {title}: {summary}"]
        if who:
            parts.append(f"It follows {who}.")
        if ending:
            parts.append(f"It ends: {ending}")
        recap = " ".join(" ".join(parts).split()[:280])
    changes = []
    for thread in request.get("open_threads") or []:
        if thread["payoff_chapter"] is not None and thread["payoff_chapter"] <= number:
            changes.append({"id": thread["id"], "change": "resolved"})
        elif thread["planted_chapter"] is not None and number == thread["planted_chapter"] + 1:
            changes.append({"id": thread["id"], "change": "hinted"})
    return {"recap": recap, "foreshadowing": changes}, 1
