"""GET /api/novels/{id}/export: text, Markdown and EPUB 3 (checked by the real epubcheck)."""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.authoring_kit import build
from tests.conftest import IN_CI, Api

EPUBCHECK = shutil.which("epubcheck") or ("/usr/bin/epubcheck" if os.path.exists("/usr/bin/epubcheck") else None)


def epubcheck_command(path: str) -> list[str]:
    """Debian's epubcheck is the jar itself (run through binfmt_misc where that is set up): run it with java."""
    with open(path, "rb") as file:
        is_jar = file.read(2) == b"PK"
    java = shutil.which("java")
    return [java, "-jar", path] if is_jar and java is not None else [path]


ZH_OUTLINE = [
    ("起", [("开端", "第一段。\n第二段。\n"), ("相遇", "")]),
    ("承", [("风起", "  \n"), ("云涌", "Hello world.\r\n\r\nSecond line.")]),
    ("空", [("未写", "")]),
]
EN_OUTLINE = [
    ("Rising", [("Map", "She ran.\n# not a heading\n1. not a list\n    not code")]),
    ("", [("", "Untitled words.")]),
]


async def export(api: Api, novel_id: int, fmt: str) -> Any:
    return await api.client.get(f"/api/novels/{novel_id}/export", params={"format": fmt})


async def a_novel(api: Api, outline: Any, **fields: Any) -> int:
    headers = await api.register()
    api.client.headers.update(headers)
    made = await api.novel(headers, **fields)
    await build(api, made["id"], outline)
    return int(made["id"])


async def test_text_and_markdown_of_a_chinese_novel(api: Api) -> None:
    nid = await a_novel(api, ZH_OUTLINE)
    r = await export(api, nid, "txt")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-disposition"] == (
        "attachment; filename=\"novel.txt\"; filename*=UTF-8''%E6%98%9F%E6%B2%B3.txt"
    )
    assert r.text == (
        "星河\n\n第1卷 起\n\n第1章 开端\n\n第一段。\n第二段。\n\n第2卷 承\n\n第4章 云涌\n\nHello world.\n\nSecond line.\n"
    )
    r = await export(api, nid, "md")
    assert r.headers["content-type"] == "text/markdown; charset=utf-8"
    assert r.headers["content-disposition"].endswith("filename*=UTF-8''%E6%98%9F%E6%B2%B3.md")
    assert r.text == (
        "# 星河\n\n## 第1卷 起\n\n### 第1章 开端\n\n第一段。\n\n第二段。\n\n"
        "## 第2卷 承\n\n### 第4章 云涌\n\nHello world.\n\nSecond line.\n"
    )


async def test_text_and_markdown_of_an_english_novel(api: Api) -> None:
    nid = await a_novel(api, EN_OUTLINE, title="The Lantern Keeper", language="en")
    r = await export(api, nid, "txt")
    assert r.headers["content-disposition"] == 'attachment; filename="The Lantern Keeper.txt"'
    assert r.text == (
        "The Lantern Keeper\n\nVolume 1: Rising\n\nChapter 1: Map\n\n"
        "She ran.\n# not a heading\n1. not a list\n    not code\n\nVolume 2\n\nChapter 2\n\nUntitled words.\n"
    )
    r = await export(api, nid, "md")
    assert r.headers["content-disposition"] == 'attachment; filename="The Lantern Keeper.md"'
    assert r.text == (
        "# The Lantern Keeper\n\n## Volume 1: Rising\n\n### Chapter 1: Map\n\n"
        "She ran.\n\n\\# not a heading\n\n1\\. not a list\n\nnot code\n\n## Volume 2\n\n### Chapter 2\n\nUntitled words.\n"
    )


async def test_file_names_of_mixed_and_awkward_titles(api: Api) -> None:
    nid = await a_novel(api, ZH_OUTLINE, title='星河 "Stars"/2')
    r = await export(api, nid, "txt")
    assert r.headers["content-disposition"] == (
        "attachment; filename=\"Stars 2.txt\"; filename*=UTF-8''%E6%98%9F%E6%B2%B3%20Stars%202.txt"
    )


async def test_a_novel_without_written_chapters_is_its_title(api: Api) -> None:
    nid = await a_novel(api, [("起", [("开端", "")])], title="Empty", language="en")
    assert (await export(api, nid, "txt")).text == "Empty\n"
    assert (await export(api, nid, "md")).text == "# Empty\n"
    assert (await export(api, nid, "epub")).status_code == 200


def nav_entries(epub: bytes) -> tuple[list[str], str, list[str]]:
    """The navigation's link texts in order, the package's dc:language, and the spine's documents' text."""
    with zipfile.ZipFile(io.BytesIO(epub)) as archive:
        names = archive.namelist()
        assert names[0] == "mimetype" and archive.read("mimetype") == b"application/epub+zip"
        nav = archive.read(next(n for n in names if n.endswith("nav.xhtml"))).decode()
        opf = archive.read(next(n for n in names if n.endswith(".opf"))).decode()
        documents = [archive.read(n).decode() for n in sorted(names) if re.search(r"chapter-\d+\.xhtml$", n)]
    toc = nav[nav.index('epub:type="toc"') :]
    toc = toc[: toc.index("</nav>")]
    links = re.findall(r"<a [^>]*>([^<]*)</a>", toc)
    language = re.search(r"<dc:language>([^<]*)</dc:language>", opf)
    assert language is not None
    return links, language[1], documents


@pytest.mark.parametrize(
    ("outline", "fields", "expected"),
    [
        (ZH_OUTLINE, {}, ("zh", ["第1章 开端", "第4章 云涌"])),
        (EN_OUTLINE, {"title": "The Lantern Keeper", "language": "en"}, ("en", ["Chapter 1: Map", "Chapter 2"])),
    ],
    ids=["zh", "en"],
)
async def test_epub_is_valid_and_navigates_the_chapters_in_reading_order(
    api: Api, tmp_path: Path, outline: Any, fields: dict[str, Any], expected: tuple[str, list[str]]
) -> None:
    nid = await a_novel(api, outline, **fields)
    r = await export(api, nid, "epub")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/epub+zip"
    assert r.headers["content-disposition"].startswith("attachment; filename=")
    links, language, documents = nav_entries(r.content)
    assert (language, links) == expected
    assert "Second line." in documents[-1] if fields == {} else "Untitled words." in documents[-1]
    await epubcheck(r.content, tmp_path)


async def test_epub_drops_what_xml_cannot_hold(api: Api, tmp_path: Path) -> None:
    outline = [("卷\x01", [("<章> & \x0b", "a < b & c\x07\n\U0001f600 emoji")])]
    nid = await a_novel(api, outline, title="<标题> & \x1f")
    r = await export(api, nid, "epub")
    assert r.status_code == 200
    links, _, documents = nav_entries(r.content)
    assert links == ["第1章 &lt;章&gt; &amp;"]
    assert "a &lt; b &amp; c" in documents[0] and "\U0001f600 emoji" in documents[0]
    await epubcheck(r.content, tmp_path)


async def epubcheck(epub: bytes, tmp_path: Path) -> None:
    if EPUBCHECK is None:
        if IN_CI:
            pytest.fail("epubcheck is required in CI (apt-get install epubcheck)")
        pytest.skip("epubcheck is not installed")
    path = tmp_path / "book.epub"
    path.write_bytes(epub)
    process = await asyncio.create_subprocess_exec(
        *epubcheck_command(EPUBCHECK), str(path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    report = output.decode(errors="replace")
    assert process.returncode == 0, report
    assert "No errors or warnings detected" in report, report


async def test_bad_formats_and_other_users_novels(api: Api) -> None:
    nid = await a_novel(api, ZH_OUTLINE)
    r = await api.client.get(f"/api/novels/{nid}/export")
    assert r.status_code == 200 and r.headers["content-type"] == "text/plain; charset=utf-8"
    for params in ({"format": "pdf"}, {"format": ""}, {"format": "TXT"}, {"format": "x" * 5000}):
        r = await api.client.get(f"/api/novels/{nid}/export", params=params)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", params
    for bad in ("abc", "-1", "0", "9" * 25):
        assert (await export(api, bad, "txt")).status_code == 404  # type: ignore[arg-type]
    api.client.headers.clear()
    stranger = await api.register("stranger")
    api.client.headers.update(stranger)
    for fmt in ("txt", "md", "epub"):
        r = await export(api, nid, fmt)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
