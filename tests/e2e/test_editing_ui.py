"""The author's hand in the browser: the chapter editor (autosave with If-Match, drafts,
conflicts, read-only while a generation writes), revisions compared and restored, the
novel page's inline editing with undo, and the export downloads.

Same server and browser as test_ui.py (demo provider); nothing sleeps: every wait is
Playwright's auto-waiting ``expect`` (or ``wait_for_*``) with a timeout. The 10-minute
editing sessions are the API tests' (tests/test_editing.py, with a clock they control);
here, only what a browser shows.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, Request, expect

from tests.e2e.conftest import Api, Server, new_context, screenshot, unique_name
from tests.e2e.test_ui import NO_EVENTSOURCE, first_chapter, novel_with_outline

pytestmark = pytest.mark.browser


def chapter_url(novel: dict[str, Any], chapter: dict[str, Any], *, edit: bool = False) -> str:
    return f"/novels/{novel['id']}/chapters/{chapter['id']}" + ("#edit" if edit else "")


def chapter_path(novel: dict[str, Any], chapter: dict[str, Any]) -> str:
    return f"/api/novels/{novel['id']}/chapters/{chapter['id']}"


def open_editor(page: Page) -> None:
    toggle = page.get_by_role("button", name="Edit", exact=True)
    expect(toggle).to_be_enabled()
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#chapter-editor")).to_be_visible()


def patches(page: Page) -> list[Request]:
    """The chapter PATCH requests the page sends from now on."""
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request) if request.method == "PATCH" else None)
    return sent


def write_chapter(api: Api, novel: dict[str, Any], chapter: dict[str, Any], words: int = 200) -> str:
    task = api.generate(
        "write-chapter-content", {"novel_id": novel["id"], "chapter_id": chapter["id"], "target_words": words}
    )
    api.wait_task(task["id"])
    content: str = api.call("GET", chapter_path(novel, chapter))["content"]
    return content


# --- the chapter editor ----------------------------------------------------------------------


def test_edit_a_chapter_and_reload(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    chapter = first_chapter(api, novel["id"])
    etag = api.request.get(chapter_path(novel, chapter)).headers["etag"]
    page.goto(chapter_url(novel, chapter))
    sent = patches(page)
    open_editor(page)
    text = page.get_by_label("Text", exact=True)
    expect(text).to_be_focused()
    status = page.locator("#save-status")

    # A burst of typing is one save, with the chapter's ETag as If-Match.
    typed = "The river woke before the city did.\nLin counted the bridges: seven, then eight."
    page.keyboard.type(typed)
    expect(status).to_have_text("Saved", timeout=10_000)
    assert len(sent) == 1, [r.post_data for r in sent]
    assert sent[0].headers.get("if-match") == etag
    assert json.loads(sent[0].post_data or "{}") == {"content": typed}
    expect(page.locator("#editor-words")).to_have_text("14 words")
    assert api.call("GET", chapter_path(novel, chapter))["word_count"] == 14

    # The title and summary too; the heading follows.
    page.get_by_label("Chapter title").fill("Dawn on the river")
    page.get_by_label("Summary").fill("Lin maps the bridges at first light.")
    expect(status).to_have_text("Saved", timeout=10_000)
    expect(page.locator("#chapter-heading")).to_have_text("Dawn on the river")
    screenshot(page, "editing-chapter-editor")

    # Reload: still in edit mode (#edit), the text is the server's.
    page.reload()
    expect(page.get_by_role("button", name="Edit", exact=True)).to_have_attribute("aria-pressed", "true")
    expect(text).to_have_value(typed)
    expect(page.get_by_label("Chapter title")).to_have_value("Dawn on the river")
    stored = api.call("GET", chapter_path(novel, chapter))
    assert (stored["content"], stored["title"], stored["summary"]) == (
        typed,
        "Dawn on the river",
        "Lin maps the bridges at first light.",
    )
    expect(page.locator("#kept-text")).to_be_hidden()

    # Reading mode shows the saved text as paragraphs.
    page.get_by_role("button", name="Edit", exact=True).click()
    expect(page.locator("#chapter-editor")).to_be_hidden()
    expect(page.locator("#chapter-text p:not(.word-count)")).to_have_text(typed.split("\n"))
    expect(page).not_to_have_url(re.compile("#edit"))


def test_unsent_text_survives_a_reload_and_leaving_warns(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    chapter = first_chapter(api, novel["id"])
    api.call("PATCH", chapter_path(novel, chapter), {"content": "Saved words."})
    page.goto(chapter_url(novel, chapter, edit=True))
    text = page.get_by_label("Text", exact=True)
    expect(text).to_have_value("Saved words.")

    # The network refuses every save: the text stays unsaved (retrying) but is kept locally.
    page.route(
        re.compile(r"/api/novels/\d+/chapters/\d+$"),
        lambda route: route.abort() if route.request.method == "PATCH" else route.continue_(),
    )
    text.focus()
    page.keyboard.press("End")
    page.keyboard.type(" Unsent words.")
    expect(page.locator("#save-status")).to_have_text("Not saved yet: retrying…", timeout=10_000)

    # Leaving asks first (beforeunload); the author leaves anyway.
    dialogs: list[str] = []

    def leave(dialog: Dialog) -> None:
        dialogs.append(dialog.type)
        dialog.accept()

    page.on("dialog", leave)
    page.reload()
    assert dialogs == ["beforeunload"]
    assert api.call("GET", chapter_path(novel, chapter))["content"] == "Saved words."

    # The draft is offered back beside the editor; put back, it saves.
    page.unroute(re.compile(r"/api/novels/\d+/chapters/\d+$"))
    kept = page.locator("#kept-text")
    expect(kept).to_be_visible()
    expect(page.locator(".toasts")).to_contain_text("Unsaved text from an earlier visit")
    entry = kept.locator(".kept-entry")
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text("newer than the saved text")
    expect(text).to_have_value("Saved words.")
    entry.get_by_role("button", name="Put in the editor").click()
    expect(text).to_have_value("Saved words. Unsent words.")
    expect(kept).to_be_hidden()
    expect(page.locator("#save-status")).to_have_text("Saved", timeout=10_000)
    assert api.call("GET", chapter_path(novel, chapter))["content"] == "Saved words. Unsent words."
    page.reload()
    expect(text).to_have_value("Saved words. Unsent words.")
    expect(kept).to_be_hidden()
    assert dialogs == ["beforeunload"]  # nothing unsaved: no question this time


def test_two_tabs_editing_one_chapter_never_overwrite(context: BrowserContext, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    chapter = first_chapter(api, novel["id"])
    one = context.new_page()
    two = context.new_page()
    for page in (one, two):
        page.goto(chapter_url(novel, chapter, edit=True))
        expect(page.get_by_role("button", name="Edit", exact=True)).to_be_enabled()

    one.get_by_label("Text", exact=True).fill("Tab one wrote this.")
    expect(one.locator("#save-status")).to_have_text("Saved", timeout=10_000)

    two.get_by_label("Text", exact=True).fill("Tab two wrote that.")
    expect(two.locator("#save-status")).to_have_text("Not saved: changed elsewhere", timeout=10_000)
    conflict = two.get_by_role("alert").filter(has_text="This chapter was changed elsewhere")
    expect(conflict).to_be_visible()
    assert api.call("GET", chapter_path(novel, chapter))["content"] == "Tab one wrote this."
    # More typing is not sent either.
    two.get_by_label("Text", exact=True).fill("Tab two wrote that, and more.")
    expect(two.locator("#save-status")).to_have_text("Not saved: changed elsewhere")
    screenshot(two, "editing-conflict")

    conflict.get_by_role("button", name="Load the saved version").click()
    expect(two.get_by_label("Text", exact=True)).to_have_value("Tab one wrote this.")
    expect(conflict).to_be_hidden()
    kept = two.locator("#kept-text .kept-entry")
    expect(kept).to_have_count(1)
    expect(kept).to_contain_text("changed elsewhere")
    expect(two.locator("#kept-heading")).to_be_focused()

    # Compare shows the two texts; the kept copy survives a reload of the tab.
    kept.get_by_role("button", name="Compare").click()
    dialog = two.locator("#diff-dialog")
    expect(dialog.locator("#diff-view del")).to_have_text(["two", "that, and more"])
    expect(dialog.locator("#diff-view ins")).to_have_text(["one", "this"])
    two.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    two.reload()
    expect(two.locator("#kept-text .kept-entry")).to_have_count(1)
    expect(two.locator("#kept-text .kept-snippet")).to_have_text("Tab two wrote that, and more.")
    assert api.call("GET", chapter_path(novel, chapter))["content"] == "Tab one wrote this."

    # Tab one, meanwhile, saves on.
    one.get_by_label("Text", exact=True).fill("Tab one wrote this, twice.")
    expect(one.locator("#save-status")).to_have_text("Saved", timeout=10_000)


def test_restore_a_revision_from_the_diff_view(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    chapter = first_chapter(api, novel["id"])
    generated = write_chapter(api, novel, chapter)
    first_line = generated.split("\n")[0]
    edited = "An author's own opening.\n" + generated.split("\n", 1)[1]

    page.goto(chapter_url(novel, chapter, edit=True))
    text = page.get_by_label("Text", exact=True)
    expect(text).to_have_value(generated)
    text.fill(edited)
    expect(page.locator("#save-status")).to_have_text("Saved", timeout=10_000)
    page.reload()
    revision = page.locator("#revisions details.revision")
    expect(revision).to_have_count(1)
    expect(revision.locator("summary")).to_contain_text("Before your edits")

    revision.locator("summary").click()
    revision.get_by_role("button", name="Compare with current").click()
    dialog = page.locator("#diff-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_contain_text("and the current text")
    # Only the first line differs: the author's words in, the generated ones out, word by word.
    expect(dialog.locator("#diff-view ins")).to_have_count(1)
    expect(dialog.locator("#diff-view ins")).to_contain_text("An author's own opening")
    deleted = "".join(dialog.locator("#diff-view del").all_inner_texts())
    assert deleted and first_line.startswith(deleted), (deleted, first_line)
    expect(dialog.locator("#diff-stats")).to_contain_text("removed")
    expect(dialog.get_by_role("button", name="Restore this version")).to_be_focused()
    screenshot(page, "editing-diff")

    dialog.get_by_role("button", name="Restore this version").click()
    expect(dialog).to_be_hidden()
    expect(text).to_have_value(generated)
    expect(page.locator(".toasts")).to_contain_text("Restored the version of")
    assert api.call("GET", chapter_path(novel, chapter))["content"] == generated
    expect(revision).to_have_count(2)
    expect(revision.first.locator("summary")).to_contain_text("Before a restore")
    # The text the restore replaced is there to compare and restore in turn.
    revision.first.locator("summary").click()
    expect(revision.first.locator(".revision-text")).to_contain_text("An author's own opening.")


def test_the_editor_is_read_only_while_the_chapter_is_written(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    chapter = first_chapter(api, novel["id"])
    api.call("PATCH", chapter_path(novel, chapter), {"content": "An old draft."})
    page.goto(chapter_url(novel, chapter, edit=True))
    text = page.get_by_label("Text", exact=True)
    expect(text).to_have_value("An old draft.")
    expect(text).to_be_editable()

    page.get_by_label("Target length").fill("1500")
    page.get_by_role("button", name="Write this chapter").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Rewrite").click()
    lock = page.locator("#editor-lock")
    expect(lock).to_be_visible()
    expect(lock).to_contain_text("read-only")
    expect(text).not_to_be_editable()
    expect(page.get_by_label("Chapter title")).not_to_be_editable()
    expect(page.locator("#save-status")).to_have_text("Read-only while being written")
    # The text being written streams into the read-only editor.
    page.wait_for_function("() => document.querySelector('#edit-chapter-content').value.length > 200", timeout=30_000)
    screenshot(page, "editing-read-only")

    expect(page.locator("#chapter-task .badge")).to_have_text("Done", timeout=90_000)
    expect(text).to_be_editable()
    expect(lock).to_be_hidden()
    saved = api.call("GET", chapter_path(novel, chapter))
    assert saved["content"] != "An old draft."
    expect(text).to_have_value(saved["content"])
    # And editing goes on from the new text (its ETag).
    text.press("Control+End")
    page.keyboard.type(" The end.")
    expect(page.locator("#save-status")).to_have_text("Saved", timeout=10_000)
    assert api.call("GET", chapter_path(novel, chapter))["content"] == saved["content"] + " The end."


# --- the novel page in edit mode ---------------------------------------------------------------


def items_path(novel: dict[str, Any], segment: str) -> str:
    return f"/api/novels/{novel['id']}/{segment}"


def edit_mode(page: Page) -> None:
    button = page.get_by_role("button", name="Edit mode")
    expect(button).to_be_enabled()
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")


def test_rename_a_character_inline(page: Page, api: Api, signed_in: str) -> None:
    novel = api.novel(unique_name("novel"))
    lin = api.call("POST", items_path(novel, "characters"), {"name": "Lin Feng", "role": "cartographer"}, expect=201)
    api.call("POST", items_path(novel, "characters"), {"name": "Mei", "role": "thief"}, expect=201)
    page.goto(f"/novels/{novel['id']}")
    section = page.locator('[data-section="characters"]')
    expect(section.locator(".item")).to_have_count(2)
    expect(section.get_by_role("button", name="Edit Lin Feng")).to_have_count(0)  # not outside edit mode
    edit_mode(page)

    # Escape cancels and gives focus back.
    section.get_by_role("button", name="Edit Lin Feng").click()
    form = section.get_by_role("form", name="Edit Lin Feng")
    name = form.get_by_label("Name")
    expect(name).to_be_focused()
    expect(name).to_have_value("Lin Feng")
    expect(form.get_by_label("Role")).to_have_value("cartographer")
    name.fill("Something else")
    page.keyboard.press("Escape")
    expect(form).to_have_count(0)
    expect(section.get_by_role("button", name="Edit Lin Feng")).to_be_focused()

    # Another character's name is refused on the field, the text stays.
    page.keyboard.press("Enter")
    name = section.get_by_role("form", name="Edit Lin Feng").get_by_label("Name")
    name.fill("mei ")
    name.press("Enter")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(section.locator(".field-error").first).to_have_text("Another character already has this name.")
    expect(name).to_have_value("mei ")

    # Enter saves (with the item's ETag); focus returns to the renamed item.
    name.fill("Lin Yun")
    with page.expect_request(lambda r: r.method == "PATCH") as patch:
        name.press("Enter")
    assert json.loads(patch.value.post_data or "{}") == {"name": "Lin Yun"}
    assert patch.value.headers.get("if-match", "").startswith('"')
    expect(section.locator(".item strong")).to_have_text(["Lin Yun", "Mei"])
    expect(section.get_by_role("button", name="Edit Lin Yun")).to_be_focused()
    assert api.call("GET", f"{items_path(novel, 'characters')}/{lin['id']}")["name"] == "Lin Yun"


def test_delete_a_world_setting_and_undo(page: Page, api: Api, signed_in: str) -> None:
    novel = api.novel(unique_name("novel"))
    fields = {"name": "The Drowned Library", "category": "place", "description": "Shelves under the river."}
    library = api.call("POST", items_path(novel, "world-settings"), fields, expect=201)
    api.call("POST", items_path(novel, "world-settings"), {"name": "Lantern Order", "category": "faction"}, expect=201)
    page.goto(f"/novels/{novel['id']}")
    section = page.locator('[data-section="world_settings"]')
    edit_mode(page)
    section.get_by_role("button", name="Delete The Drowned Library").click()
    expect(section.locator(".item strong")).to_have_text(["Lantern Order"])
    assert [w["name"] for w in api.call("GET", f"/api/novels/{novel['id']}")["world_settings"]] == ["Lantern Order"]
    toast = page.locator(".toast-action")
    expect(toast).to_contain_text("Deleted “The Drowned Library”. Undo adds it back as a new entry.")
    undo = toast.get_by_role("button", name="Undo")
    expect(undo).to_be_focused()
    screenshot(page, "editing-undo")

    page.keyboard.press("Enter")
    # A new entry, so at the end of the list (only timeline events keep their place: their position is a field).
    expect(section.locator(".item strong")).to_have_text(["Lantern Order", "The Drowned Library"])
    expect(page.locator(".toasts")).to_contain_text("“The Drowned Library” is back.")
    restored = [
        w for w in api.call("GET", f"/api/novels/{novel['id']}")["world_settings"] if w["name"] == fields["name"]
    ]
    assert len(restored) == 1 and restored[0]["id"] != library["id"]  # re-created: a new id, the same fields
    assert {k: restored[0][k] for k in fields} == fields

    # Adding: the form opens under the list, Enter adds, focus returns to Add.
    section.get_by_role("button", name="Add a world setting").click()
    form = section.get_by_role("form", name="Add a world setting")
    expect(form.get_by_label("Name")).to_be_focused()
    form.get_by_label("Name").fill("Sky Docks")
    form.get_by_label("Category").fill("place")
    form.get_by_label("Category").press("Enter")
    expect(section.locator(".item strong")).to_have_text(["Lantern Order", "The Drowned Library", "Sky Docks"])
    expect(section.get_by_role("button", name="Add a world setting")).to_be_focused()


def test_outline_volumes_and_chapters_edited_in_place(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    detail = api.call("GET", f"/api/novels/{novel['id']}")
    first = detail["volumes"][0]["chapters"][0]
    api.call("PATCH", f"/api/novels/{novel['id']}/chapters/{first['id']}", {"content": "One two three four five."})
    page.goto(f"/novels/{novel['id']}")
    edit_mode(page)
    tree = page.locator("#volume-tree")

    # The outline: Ctrl+Enter saves a text area.
    page.get_by_role("button", name="Edit the outline").click()
    outline = page.get_by_role("form", name="Outline").get_by_label("Outline")
    expect(outline).to_be_focused()
    expect(outline).to_have_value(detail["outline"])
    outline.fill("Part one: the city moves.\nPart two: the map holds.")
    outline.press("Control+Enter")
    expect(page.locator("#outline-text")).to_contain_text("the map holds.")
    assert (
        api.call("GET", f"/api/novels/{novel['id']}")["outline"]
        == "Part one: the city moves.\nPart two: the map holds."
    )

    # A volume's title and summary.
    tree.get_by_role("button", name="Edit Volume 1").click()
    form = tree.get_by_role("form", name="Edit Volume 1")
    form.get_by_label("Title").fill("The Moving City")
    form.get_by_label("Summary").fill("Where the streets rearrange.")
    form.get_by_role("button", name="Save").click()
    expect(tree.locator(".volume-title").first).to_contain_text("The Moving City")
    expect(tree.locator(".volume-summary").first).to_have_text("Where the streets rearrange.")

    # A chapter's title; Add a chapter at the end of volume 1 (volume 2's numbers move up).
    tree.get_by_role("button", name="Edit Chapter 2").click()
    form = tree.get_by_role("form", name="Edit Chapter 2")
    form.get_by_label("Chapter title").fill("The Eighth Bridge")
    form.get_by_label("Chapter title").press("Enter")
    expect(tree.locator(".chapter-item .chapter-title").nth(1)).to_have_text("The Eighth Bridge")
    tree.get_by_role("button", name="Add a chapter to Volume 1").click()
    form = tree.get_by_role("form", name="Add a chapter to Volume 1")
    form.get_by_label("Chapter title").fill("An Added Chapter")
    form.get_by_label("Summary").fill("Written by hand.")
    screenshot(page, "editing-novel-edit-mode")
    form.get_by_role("button", name="Add").click()
    volume_one = tree.locator(".volume").first
    expect(volume_one.locator(".chapter-item")).to_have_count(4)
    expect(volume_one.locator(".chapter-item").last).to_contain_text("Chapter 4")
    expect(volume_one.locator(".chapter-item").last).to_contain_text("An Added Chapter")
    expect(tree.locator(".volume").nth(1).locator(".chapter-number").first).to_have_text("Chapter 5")

    # Deleting a chapter with text says so, and sends force=true; Cancel keeps it.
    tree.get_by_role("button", name="Delete Chapter 1").click()
    confirm = page.locator("#confirm-dialog")
    expect(confirm).to_contain_text("It holds 5 words of text")
    confirm.get_by_role("button", name="Cancel").click()
    expect(volume_one.locator(".chapter-item")).to_have_count(4)
    tree.get_by_role("button", name="Delete Chapter 1").click()
    with page.expect_request(lambda r: r.method == "DELETE") as delete:
        confirm.get_by_role("button", name="Delete").click()
    assert delete.value.url.endswith(f"/chapters/{first['id']}?force=true")
    expect(volume_one.locator(".chapter-item")).to_have_count(3)
    expect(volume_one.locator(".chapter-number")).to_have_text(["Chapter 1", "Chapter 2", "Chapter 3"])
    expect(volume_one.locator(".chapter-title").first).to_have_text("The Eighth Bridge")
    # A chapter without text: a plain confirm, no force.
    tree.get_by_role("button", name="Delete Chapter 3").click()
    expect(confirm).to_contain_text("The chapters after it move up by one.")
    expect(confirm).not_to_contain_text("holds")
    with page.expect_request(lambda r: r.method == "DELETE") as delete:
        confirm.get_by_role("button", name="Delete").click()
    assert "force" not in delete.value.url
    expect(volume_one.locator(".chapter-item")).to_have_count(2)


def test_export_downloads_an_epub(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    write_chapter(api, novel, first_chapter(api, novel["id"]))
    page.goto(f"/novels/{novel['id']}")
    exports = page.get_by_role("group", name="Export")
    expect(exports.get_by_role("link")).to_have_text(["TXT", "Markdown", "EPUB"])
    with page.expect_download() as download:
        exports.get_by_role("link", name="Download as EPUB").click()
    path = download.value.path()
    assert download.value.suggested_filename.endswith(".epub")
    data = open(path, "rb").read()
    # An EPUB is a zip whose first entry is the uncompressed "mimetype" file.
    assert data[:4] == b"PK\x03\x04"
    assert data[30:38] == b"mimetype" and data[38:58] == b"application/epub+zip"
    with zipfile.ZipFile(io.BytesIO(data)) as epub:
        assert epub.namelist()[0] == "mimetype"
        assert epub.read("mimetype") == b"application/epub+zip"
        assert any(name.endswith(".opf") for name in epub.namelist())
    with page.expect_download() as download:
        exports.get_by_role("link", name="Download as TXT").click()
    assert novel["title"] in open(download.value.path(), encoding="utf-8").read()


def test_editing_in_chinese(browser: Browser, server: Server) -> None:
    context = new_context(browser, server, locale="zh-CN")
    try:
        api = Api(context.request, context)
        api.register_and_login(unique_name())
        novel = api.novel("青云志", language="zh", genre="仙侠", synopsis="山村少年拜入青云门。")
        api.call("POST", items_path(novel, "characters"), {"name": "张小凡", "role": "主角"}, expect=201)
        page = context.new_page()
        page.goto(f"/novels/{novel['id']}")
        page.get_by_role("button", name="编辑模式").click()
        section = page.locator('[data-section="characters"]')
        section.get_by_role("button", name="编辑张小凡").click()
        name = section.get_by_role("form", name="编辑张小凡").get_by_label("名称")
        name.fill("林惊羽")
        name.press("Enter")
        expect(section.locator(".item strong")).to_have_text(["林惊羽"])
        expect(page.get_by_role("group", name="导出").get_by_role("link", name="下载 EPUB 格式")).to_be_visible()
        screenshot(page, "editing-novel-zh")
    finally:
        context.close()


def test_a_save_refused_by_a_running_generation_locks_the_editor(page: Page, api: Api, signed_in: str) -> None:
    # Polling only (no EventSource): the page does not hear of the task the API starts, so
    # its next save meets the 409 task_conflict, which must lock the editor as a known task does.
    page.add_init_script(NO_EVENTSOURCE)
    novel = novel_with_outline(api)
    chapter = first_chapter(api, novel["id"])
    with page.expect_response(re.compile(r"/api/tasks/active$")):  # the page's last look for tasks
        page.goto(chapter_url(novel, chapter, edit=True))
    text = page.get_by_label("Text", exact=True)
    expect(text).to_be_editable()
    task = api.generate(
        "write-chapter-content", {"novel_id": novel["id"], "chapter_id": chapter["id"], "target_words": 1500}
    )
    text.fill("Typed while a generation had already begun.")
    expect(page.locator("#editor-lock")).to_be_visible(timeout=10_000)
    expect(text).not_to_be_editable()
    expect(page.locator(f'#chapter-task .task-card[data-task-id="{task["id"]}"]')).to_be_visible()
    kept = page.locator("#kept-text .kept-entry")
    expect(kept).to_have_count(1)
    expect(kept.locator(".kept-snippet")).to_have_text("Typed while a generation had already begun.")
    expect(kept).to_contain_text("Set aside when a generation started writing this chapter.")

    expect(page.locator("#chapter-task .badge")).to_have_text("Done", timeout=90_000)
    expect(text).to_be_editable()
    saved = api.call("GET", chapter_path(novel, chapter))
    assert saved["content"] and saved["content"] != "Typed while a generation had already begun."
    expect(text).to_have_value(saved["content"])
    expect(kept).to_have_count(1)  # still offered
