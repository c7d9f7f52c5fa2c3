"""Counting words the way authors of Chinese and English fiction count them."""

from __future__ import annotations

import re

# A CJK ideograph (or kana, hangul syllable) counts one; a run of Latin letters,
# digits and joining apostrophes/hyphens counts one word.
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\U00020000-\U0002fa1f"
_TOKEN = re.compile(rf"[{_CJK}]|[^\s{_CJK}\W]+(?:['’-][^\s{_CJK}\W]+)*")


def count_words(text: str) -> int:
    """Words in ``text``: each CJK character is one, each Latin word is one."""
    return sum(1 for _ in _TOKEN.finditer(text))
