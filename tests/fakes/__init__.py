"""The project's own fake model servers: real HTTP servers on 127.0.0.1, scripted by tests.

``FakeGemini`` speaks the Gemini REST protocol, ``FakeOpenAI`` the OpenAI chat
completions protocol. Both take the same script steps (``Text``, ``Stream``,
``Fail``, ``Hang``), record every request and count connections, so a test can
check what a real client sent and that it hung up after a cancel.

The names are imported lazily so that ``python -m tests.fakes.fake_gemini``
does not import its own module twice.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.fake_gemini import FakeGemini
    from tests.fakes.fake_openai import FakeOpenAI
    from tests.fakes.http_server import FakeHTTPServer, Request
    from tests.fakes.script import Fail, Hang, Piece, Stream, Text

_HOMES = {
    "FakeGemini": "tests.fakes.fake_gemini",
    "FakeOpenAI": "tests.fakes.fake_openai",
    "FakeHTTPServer": "tests.fakes.http_server",
    "Request": "tests.fakes.http_server",
    "Fail": "tests.fakes.script",
    "Hang": "tests.fakes.script",
    "Piece": "tests.fakes.script",
    "Stream": "tests.fakes.script",
    "Text": "tests.fakes.script",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'tests.fakes' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
