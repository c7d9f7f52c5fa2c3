"""A novel's written chapters as one file: plain text, Markdown or EPUB 3.

The book is the novel's title, then each volume that has written chapters under
its heading, then those chapters in reading order (volume number, chapter number)
under theirs. A chapter is written when its content holds more than whitespace;
the others are left out. Headings are numbered in the novel's language
("第2卷 风起" / "Volume 2: Rising", "第11章 ..." / "Chapter 11: ...").

Text keeps the author's lines as they are. Markdown makes each non-blank line a
paragraph (a single newline would join lines in Markdown) and escapes a line
start that Markdown would read as structure (``#``, ``>``, a list marker...).
EPUB has one XHTML document per chapter and one navigation entry per chapter, in
the novel's language; characters XML cannot carry (C0 controls) are dropped.
"""

from __future__ import annotations

import asyncio
import html
import io
import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from ebooklib import epub  # type: ignore[import-untyped]

from novawrite.db.engine import Database
from novawrite.db.models import Novel
from novawrite.services.novels import load_novel

Format = Literal["txt", "md", "epub"]

MEDIA_TYPES: dict[str, str] = {
    "txt": "text/plain; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "epub": "application/epub+zip",
}


@dataclass(frozen=True)
class WrittenChapter:
    heading: str
    content: str


@dataclass(frozen=True)
class Part:
    heading: str
    chapters: list[WrittenChapter]


@dataclass(frozen=True)
class Book:
    identifier: str
    title: str
    language: str
    parts: list[Part]


class Exports:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def book(self, user_id: int, novel_id: object) -> Book:
        async with self._db.read_session() as session:
            return book_of(await load_novel(session, user_id, novel_id))

    async def export(self, user_id: int, novel_id: object, fmt: Format) -> tuple[Book, bytes]:
        book = await self.book(user_id, novel_id)
        if fmt == "txt":
            return book, to_text(book).encode()
        if fmt == "md":
            return book, to_markdown(book).encode()
        return book, await asyncio.to_thread(to_epub, book)  # lxml and zlib: off the event loop


def book_of(novel: Novel) -> Book:
    zh = novel.language == "zh"
    parts = []
    for volume in novel.volumes:
        chapters = [
            WrittenChapter(
                _heading(chapter.number, chapter.title, "章" if zh else "Chapter", zh), _lines(chapter.content)
            )
            for chapter in volume.chapters
            if chapter.content.strip()
        ]
        if chapters:
            parts.append(Part(_heading(volume.number, volume.title, "卷" if zh else "Volume", zh), chapters))
    identifier = uuid.uuid5(uuid.NAMESPACE_URL, f"novawrite:novel:{novel.id}:{novel.created_at.isoformat()}")
    return Book(f"urn:uuid:{identifier}", _one_line(novel.title), novel.language, parts)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _heading(number: int, title: str, unit: str, zh: bool) -> str:
    title = _one_line(title)
    label = f"第{number}{unit}" if zh else f"{unit} {number}"
    if not title:
        return label
    return f"{label} {title}" if zh else f"{label}: {title}"


def _lines(content: str) -> str:
    """The text with one kind of line break and no blank lines or trailing space at either end."""
    text = content.replace("\r\n", "\n").replace("\r", "\n")
    return text.strip("\n").rstrip()


# --- Text and Markdown ---------------------------------------------------------------------


def to_text(book: Book) -> str:
    blocks = [book.title]
    for part in book.parts:
        blocks.append(part.heading)
        for chapter in part.chapters:
            blocks += [chapter.heading, chapter.content]
    return "\n\n".join(blocks) + "\n"


_MD_BLOCK_START = re.compile(r"[#>+\-*=`~|<_]")
_MD_ORDERED = re.compile(r"(\d{1,9})([.)])")


def _md_line(line: str) -> str:
    line = line.strip(" \t")  # four spaces would make a code block (a full-width indent stays)
    if _MD_BLOCK_START.match(line):
        return "\\" + line
    ordered = _MD_ORDERED.match(line)
    if ordered:
        return f"{ordered[1]}\\{line[len(ordered[1]) :]}"
    return line


def to_markdown(book: Book) -> str:
    blocks = [f"# {book.title}"]
    for part in book.parts:
        blocks.append(f"## {part.heading}")
        for chapter in part.chapters:
            blocks.append(f"### {chapter.heading}")
            blocks += [_md_line(line) for line in chapter.content.split("\n") if line.strip()]
    return "\n\n".join(blocks) + "\n"


# --- EPUB --------------------------------------------------------------------------------------

# What XML 1.0 cannot hold.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    return html.escape(_NOT_XML.sub("", text), quote=False)


def _document(body: str) -> str:
    return f"<html><body>{body}</body></html>"


def to_epub(book: Book) -> bytes:
    """A valid EPUB 3 (ebooklib): a title page, one document and one navigation entry per chapter."""
    out = epub.EpubBook()
    out.set_identifier(book.identifier)
    out.set_title(_NOT_XML.sub("", book.title))
    out.set_language(book.language)
    lang = book.language
    title_page = epub.EpubHtml(title=_NOT_XML.sub("", book.title), file_name="title.xhtml", lang=lang)
    title_page.content = _document(f"<h1>{_xml(book.title)}</h1>")
    out.add_item(title_page)
    documents: list[Any] = []
    for part in book.parts:
        for index, chapter in enumerate(part.chapters):
            number = len(documents) + 1
            body = f"<h1>{_xml(part.heading)}</h1>" if index == 0 else ""
            body += f"<h2>{_xml(chapter.heading)}</h2>"
            body += "".join(f"<p>{_xml(line.strip())}</p>" for line in chapter.content.split("\n") if line.strip())
            document = epub.EpubHtml(
                uid=f"chapter-{number}",
                title=_NOT_XML.sub("", chapter.heading),
                file_name=f"chapter-{number:04d}.xhtml",
                lang=lang,
            )
            document.content = _document(body)
            out.add_item(document)
            documents.append(document)
    out.toc = documents
    out.add_item(epub.EpubNav())
    out.add_item(epub.EpubNcx())  # the spine names it (and EPUB 2 readers navigate with it)
    out.spine = [title_page, *documents]
    buffer = io.BytesIO()
    epub.write_epub(buffer, out, {"raise_exceptions": True})
    return buffer.getvalue()
