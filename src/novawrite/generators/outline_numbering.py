"""Numbering the entries of a model's outline answer: the numbers are ours, not the model's.

Asked for chapters 14-16 (volume 2 of 10-chapter volumes starts at 11), a model
may number them 14-16 as asked, 4-6 within the volume, 1-3 within the list it
was asked for, in another order, not at all, or repeat a number. ``place``
decides which of the asked numbers each answered entry fills:

- The model's numbers are a hint, used only when they read consistently: every
  entry has one, no two name the same entry, and all of them read the same way,
  as written (14, 15, 16), within the volume (4, 5, 6) or as positions in the
  list asked for (1, 2, 3), each landing in the step (the batch's chapters, the
  book's volumes). A reading that fills every asked number wins (the first of
  those three, in that order); it orders the entries whatever order they came in.
- Otherwise, when the answer has as many entries as were asked, they fill the
  asked numbers by position, in the order listed: a batch returning the asked
  count is complete whatever numbers the model wrote.
- Otherwise a consistent reading still says which entries arrived: the model
  left some out (or sent again some already settled, which are ignored), and
  only the rest is asked for again.
- Otherwise by position: an answer as long as the whole step when only part of
  it was asked again is the whole step again; a shorter one fills the first
  asked numbers, and entries beyond the asked count fill nothing.

An entry with an empty (or placeholder) title or summary fills its number with
nothing, so only that number is asked for again; that check is the caller's.
``Draft`` is an answered entry as the model wrote it: a missing or unreadable
number is no number, and a missing, null or non-text title or summary is empty,
so one bad entry never sinks the rest of the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, WithJsonSchema, model_validator


def read_number(value: object) -> int | None:
    """The number a model wrote, when one can be read: 4, 4.0, "4", "Chapter 4", "第4章"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        digits = re.findall(r"\d+", value)
        return int(digits[0]) if len(digits) == 1 else None
    return None


def read_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # a title such as 1984
    return ""


class Draft(BaseModel):
    # The schema asks for all three; reading the answer tolerates any of them missing.
    number: Annotated[int | None, WithJsonSchema({"type": "integer"})]
    title: str
    summary: str

    @model_validator(mode="before")
    @classmethod
    def _lenient(cls, data: Any) -> dict[str, Any]:
        entry = data if isinstance(data, dict) else {}
        return {
            "number": read_number(entry.get("number")),
            "title": read_text(entry.get("title")),
            "summary": read_text(entry.get("summary")),
        }


def place(
    asked: Sequence[int],
    hints: Sequence[int | None],
    *,
    scope: Sequence[int] | None = None,
    volume_start: int | None = None,
) -> list[int | None]:
    """For each answered entry (its number as the model wrote it, or None), the asked number it fills, or None.

    ``scope`` is every number of the step (the whole batch, every volume), of
    which ``asked`` may be only the part asked again; ``volume_start`` is the
    first chapter number of the volume, for models that number within it.
    """
    everything = list(scope) if scope is not None else list(asked)
    known, wanted = set(everything) | set(asked), set(asked)
    readings: list[Callable[[int], int | None]] = [lambda n: n]
    if volume_start is not None:
        start = volume_start
        readings.append(lambda n: start + n - 1)
    readings.append(lambda n: asked[n - 1] if 1 <= n <= len(asked) else None)

    consistent: list[list[int | None]] = []
    written = [n for n in hints if n is not None]
    if len(written) == len(hints):
        for read in readings:
            slots = [read(n) for n in written]
            if all(s in known for s in slots) and len(set(slots)) == len(slots):
                consistent.append([s if s in wanted else None for s in slots])
    for slots in consistent:
        if wanted <= set(slots):
            return slots
    if len(hints) == len(asked):
        return list(asked)
    if consistent:
        return max(consistent, key=lambda slots: sum(s is not None for s in slots))
    order = everything if len(hints) == len(everything) else list(asked)
    return [order[i] if i < len(order) and order[i] in wanted else None for i in range(len(hints))]
