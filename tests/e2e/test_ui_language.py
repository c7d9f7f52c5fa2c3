"""How the UI picks its language (no browser needed)."""

from __future__ import annotations

import pytest

from novawrite.web.ui import pick_language


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        (None, None, "zh"),
        (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "fr-FR,fr;q=0.9", "en"),
        (None, "fr;q=0.9,zh-TW;q=0.8,en;q=0.5", "zh"),
        (None, "en;q=0.3,zh;q=0.7", "zh"),
        (None, "zh;q=0,en", "en"),
        (None, "en;q=abc,zh;q=0.5", "zh"),
        ("en", "zh-CN", "en"),
        ("zh", "en-US", "zh"),
        ("xx", "en-US", "en"),
    ],
)
def test_pick_language(cookie: str | None, header: str | None, expected: str) -> None:
    assert pick_language(cookie, header) == expected
