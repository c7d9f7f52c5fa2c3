"""The web UI's edits end to end: a novel's fields edited in place, and the unsaved
text of a cancelled chapter task shown on the chapter page.

Same server and browser as test_ui.py; nothing sleeps: every wait is Playwright's
auto-waiting ``expect`` (or ``wait_for_function``) with a timeout.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Api, Server, new_context, screenshot, unique_name
from tests.e2e.test_ui import first_chapter, novel_with_outline

pytestmark = pytest.mark.browser


def paragraphs(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


# --- the novel's fields ------------------------------------------------------------------


def test_edit_novel_fields(page: Page, api: Api, signed_in: str) -> None:
    novel = api.novel("The Old Title", language="en", genre="fantasy", synopsis="An old synopsis.")
    page.goto(f"/novels/{novel['id']}")
    edit = page.get_by_role("button", name="Edit details")
    expect(edit).to_be_enabled()  # once the novel has loaded
    form = page.locator("#novel-edit")
    expect(form).to_be_hidden()
    edit.click()
    expect(form).to_be_visible()
    expect(edit).to_have_attribute("aria-expanded", "true")
    expect(form.get_by_label("Title")).to_have_value("The Old Title")
    expect(form.get_by_label("Title")).to_be_focused()
    expect(form.get_by_label("Synopsis")).to_have_value("An old synopsis.")

    form.get_by_label("Title").fill("  The New Title  ")
    form.get_by_label("Genre").fill("science fiction")
    form.get_by_label("Synopsis").fill("A new synopsis:\nthe city stops moving.")
    screenshot(page, "novel-edit")
    with page.expect_request(lambda request: request.method == "PATCH") as patch:
        form.get_by_role("button", name="Save").click()
    # Only what changed is sent, trimmed as the create form trims.
    assert json.loads(patch.value.post_data or "{}") == {
        "title": "The New Title",
        "genre": "science fiction",
        "synopsis": "A new synopsis:\nthe city stops moving.",
    }
    expect(form).to_be_hidden()
    expect(edit).to_be_focused()
    expect(page.locator(".toasts")).to_contain_text("Saved.")
    expect(page.locator("#novel-title")).to_have_text("The New Title")
    expect(page.locator("#crumb-novel")).to_have_text("The New Title")
    expect(page.locator("#novel-meta")).to_contain_text("science fiction")
    expect(page.locator("#novel-synopsis")).to_contain_text("the city stops moving.")
    screenshot(page, "novel-edited")

    # The language too; Cancel drops what was typed.
    edit.click()
    form.get_by_label("Language").select_option("zh")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#novel-meta")).to_contain_text("中文")
    edit.click()
    form.get_by_label("Title").fill("Not saved")
    form.get_by_role("button", name="Cancel").click()
    expect(form).to_be_hidden()

    page.reload()
    expect(page.locator("#novel-title")).to_have_text("The New Title")
    expect(page.locator("#novel-meta")).to_contain_text("science fiction")
    expect(page.locator("#novel-meta")).to_contain_text("中文")
    expect(page.locator("#novel-synopsis")).to_contain_text("the city stops moving.")
    stored = api.call("GET", f"/api/novels/{novel['id']}")
    assert (stored["title"], stored["genre"], stored["language"]) == ("The New Title", "science fiction", "zh")


def test_edit_novel_shows_the_apis_validation_errors(browser: Browser, server: Server) -> None:
    context = new_context(browser, server, locale="zh-CN")
    try:
        api = Api(context.request, context)
        api.register_and_login(unique_name())
        novel = api.novel("青云志", language="zh", genre="仙侠", synopsis="山村少年拜入青云门。")
        page = context.new_page()
        page.goto(f"/novels/{novel['id']}")
        page.get_by_role("button", name="编辑信息").click()
        form = page.locator("#novel-edit")
        expect(form.get_by_role("heading", name="编辑小说信息")).to_be_visible()
        title = form.get_by_label("书名")
        title.fill("   ")  # trimmed to "": the API's 422, not a check of the page's own
        with page.expect_response(lambda response: response.request.method == "PATCH") as patch:
            form.get_by_role("button", name="保存").click()
        assert patch.value.status == 422
        detail = patch.value.json()["error"]["details"][0]
        assert detail["field"] == "title"
        expect(page.locator("#edit-title-error")).to_have_text(detail["message"])
        expect(page.locator("#edit-error")).to_have_text("请检查下方标出的字段。")
        expect(title).to_have_attribute("aria-invalid", "true")
        expect(title).to_have_attribute("aria-describedby", "edit-title-error")
        expect(title).to_be_focused()
        expect(form).to_be_visible()
        expect(page.locator("#novel-title")).to_have_text("青云志")
        screenshot(page, "novel-edit-invalid-zh")

        title.fill("诛仙")
        form.get_by_role("button", name="保存").click()
        expect(form).to_be_hidden()
        expect(page.locator("#novel-title")).to_have_text("诛仙")
        page.get_by_role("button", name="编辑信息").click()
        expect(page.locator("#edit-title-error")).to_be_hidden()
        expect(page.locator("#edit-error")).to_be_hidden()
        expect(title).not_to_have_attribute("aria-invalid", "true")
        assert api.call("GET", f"/api/novels/{novel['id']}")["title"] == "诛仙"
    finally:
        context.close()


# --- a chapter task's unsaved text ----------------------------------------------------------


def test_cancelled_chapter_task_leaves_its_text_on_the_chapter_page(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    chapter = first_chapter(api, novel["id"])
    task = api.generate(
        "write-chapter-content", {"novel_id": novel["id"], "chapter_id": chapter["id"], "target_words": 20000}
    )
    page.goto(f"/novels/{novel['id']}/chapters/{chapter['id']}")
    page.wait_for_function(
        "() => document.querySelector('#chapter-text.streaming')?.innerText.length > 200", timeout=30_000
    )
    partial = page.locator("#chapter-partial")
    expect(partial).to_be_hidden()

    # Cancelled while the page watches: the text so far stays, marked as not saved.
    card = page.locator(f'#chapter-task .task-card[data-task-id="{task["id"]}"]')
    card.get_by_role("button", name="Cancel").click()
    expect(card).to_have_attribute("data-status", "cancelled", timeout=10_000)
    expect(partial).to_be_visible()
    expect(partial.get_by_role("heading")).to_have_text("Unsaved text of the cancelled task")
    expect(partial.locator(".notice")).to_contain_text("not saved")
    expect(page.locator("#chapter-text")).to_contain_text("no text yet")
    expect(card.get_by_role("button", name="Retry")).to_be_visible()
    output = api.call("GET", f"/api/tasks/{task['id']}/output")
    assert not output["complete"] and len(output["text"]) > 200
    expect(partial.locator("#partial-text p")).to_have_text(paragraphs(output["text"]))
    assert api.call("GET", f"/api/novels/{novel['id']}/chapters/{chapter['id']}")["word_count"] == 0
    screenshot(page, "chapter-partial")

    # A reload finds it again: the chapter's last task, with its Retry.
    page.reload()
    expect(partial).to_be_visible()
    expect(partial.locator("#partial-text p")).to_have_text(paragraphs(output["text"]))
    expect(card).to_have_attribute("data-status", "cancelled")
    expect(page.get_by_role("button", name="Write this chapter")).to_be_enabled()
    screenshot(page, "chapter-partial-reloaded")

    # Retry: the new attempt streams in place of the old text; its own stop shows its own text.
    card.get_by_role("button", name="Retry").click()
    retry = page.locator("#chapter-task .task-card")
    expect(retry).not_to_have_attribute("data-task-id", task["id"])
    expect(retry).to_have_attribute("data-status", "running")
    expect(partial).to_be_hidden()
    page.wait_for_function(
        "() => document.querySelector('#chapter-text.streaming')?.innerText.length > 100", timeout=30_000
    )
    retry.get_by_role("button", name="Cancel").click()
    expect(retry).to_have_attribute("data-status", "cancelled", timeout=10_000)
    expect(partial).to_be_visible()
    # Dismissing the card puts its text away with it.
    retry.get_by_role("button", name="Dismiss").click()
    expect(partial).to_be_hidden()

    # Once a newer task has saved the chapter, no old unsaved text is offered.
    page.get_by_label("Target length").fill("200")
    page.get_by_role("button", name="Write this chapter").click()
    expect(page.locator("#chapter-task .badge")).to_have_text("Done", timeout=60_000)
    expect(partial).to_be_hidden()
    with page.expect_response(re.compile(r"/tasks\?task_type=write_chapter_content")) as lookup:
        page.reload()
    assert lookup.value.ok
    expect(page.locator("#chapter-text .word-count")).to_be_visible()
    expect(page.locator("#chapter-task .task-card")).to_have_count(0)
    expect(partial).to_be_hidden()
