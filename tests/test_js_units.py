"""The browser's pure modules under node: the diff, the autosave and the word count.

``node --test tests/js`` runs the JavaScript unit tests (diff.js, autosave.js). The
word count the chapter editor shows (wordcount.js) is checked here against the
server's own count (``novawrite.text.count_words``) on the same strings. Without
node the tests skip, except in CI, where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from novawrite.text import count_words

REPO = Path(__file__).resolve().parents[1]
NODE = shutil.which("node")


@pytest.fixture
def node() -> str:
    if NODE is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the JavaScript unit tests need node in CI")
        pytest.skip("no node")
    return NODE


def test_javascript_unit_tests(node: str) -> None:
    done = subprocess.run(
        [node, "--test", "tests/js/"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# fail 0" in done.stdout, done.stdout


SAMPLES = [
    "",
    "   ",
    "The quick brown fox.",
    "Don't stop; well-known rock’n’roll - a dash, 42 and 3.14.",
    "少年拜入青云门，修行三年。",
    "他说：“hello world”，然后走了。",
    "カタカナとひらがな、한국어 문장.",
    "𠀀𠀁 rare ideographs",
    "snake_case and CamelCase and naïve café",
    "Ελληνικά κείμενα and кириллица",
    "emoji 😀 are not words 🎉",
    "trailing-hyphen- and 'quoted' words",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    "x²  and ½ and Ⅻ",
    "tab\tseparated\nnew line\r\nwindows",
]


def test_the_editor_counts_words_as_the_server_does(node: str) -> None:
    script = (
        "import { countWords } from './src/novawrite/static/js/wordcount.js';"
        "let input = ''; process.stdin.on('data', (d) => (input += d));"
        "process.stdin.on('end', () => console.log(JSON.stringify(JSON.parse(input).map(countWords))));"
    )
    done = subprocess.run(
        [node, "--input-type=module", "-e", script],
        cwd=REPO,
        input=json.dumps(SAMPLES),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    counts = json.loads(done.stdout)
    assert counts == [count_words(text) for text in SAMPLES]
    assert counts[4] == 11 and counts[2] == 4  # and the samples do count something
