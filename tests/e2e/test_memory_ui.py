"""Memory and foreshadowing in the browser: a chapter's recap (stale after an edit,
updated by a recap task followed live), and the novel page's threads with their
planted and payoff chapters, status and overdue badge, edited in edit mode.

Same server and browser as test_ui.py (demo provider, whose recap ends on the
chapter's last sentence and resolves a thread when its payoff chapter is written).
The novel is set up through the API; nothing sleeps: every wait is an ``expect``.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import SCREENSHOTS, Api
from tests.e2e.test_editing_ui import chapter_path, chapter_url, open_editor, write_chapter
from tests.e2e.test_ui import novel_with_outline

pytestmark = pytest.mark.browser


def screenshot_of(page: Page, target: Locator, name: str) -> None:
    """artifacts/screenshots/<name>-1280.png and <name>-390.png, each scrolled to ``target``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1280, 800), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        target.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), animations="disabled")
    page.set_viewport_size({"width": 1280, "height": 800})


def chapters_of(api: Api, novel: dict[str, Any]) -> list[dict[str, Any]]:
    full = api.call("GET", f"/api/novels/{novel['id']}")
    return [chapter for volume in full["volumes"] for chapter in volume["chapters"]]


def test_chapter_recap_goes_stale_and_is_updated(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    chapter = chapters_of(api, novel)[0]
    content = write_chapter(api, novel, chapter)
    saved = api.call("GET", chapter_path(novel, chapter))
    assert saved["recap"] and not saved["recap_stale"], saved

    page.goto(chapter_url(novel, chapter))
    panel = page.get_by_role("region", name="What happens in this chapter")
    expect(panel).to_be_visible()
    recap_text = panel.locator("#recap-text")
    expect(recap_text).to_contain_text(saved["recap"].split(":")[0])
    expect(panel.get_by_text("Written before your last edit.")).to_be_hidden()
    expect(panel.get_by_role("button", name="Update recap")).to_be_visible()
    screenshot_of(page, panel, "chapter-recap")

    # The author's edit (through the API) keeps the recap but marks it stale.
    added = "The lamps of the lower city went out one by one."
    api.call("PATCH", chapter_path(novel, chapter), {"content": f"{content}\n{added}"})
    page.reload()
    expect(panel.get_by_text("Written before your last edit.")).to_be_visible()
    expect(recap_text).not_to_contain_text(added)

    # Update recap: a recap task, followed live; the new recap ends on the added sentence.
    panel.get_by_role("button", name="Update recap").click()
    expect(panel.locator(".task-card")).to_be_visible()
    expect(recap_text).to_contain_text(added, timeout=30_000)
    expect(panel.get_by_text("Written before your last edit.")).to_be_hidden()
    expect(panel.get_by_role("button", name="Update recap")).to_be_enabled()
    assert api.call("GET", chapter_path(novel, chapter))["recap_stale"] is False

    # The recap changed the chapter's ETag; the editor took the new one, so typing saves.
    open_editor(page)
    page.get_by_label("Text", exact=True).press("Control+End")
    page.keyboard.type(" Then dawn.")
    expect(page.locator("#save-status")).to_have_text("Saved", timeout=10_000)
    expect(page.locator("#editor-conflict")).to_be_hidden()
    expect(panel.get_by_text("Written before your last edit.")).to_be_visible()


def test_chapter_without_recap_offers_to_write_one(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    chapter = chapters_of(api, novel)[1]
    page.goto(chapter_url(novel, chapter))
    panel = page.get_by_role("region", name="What happens in this chapter")
    expect(panel).to_contain_text("A recap comes once the chapter has text.")
    expect(panel.get_by_role("button")).to_have_count(0)

    # Hand-written text has no recap: the button writes one.
    api.call("PATCH", chapter_path(novel, chapter), {"content": "Lin found the ninth bridge at dusk."})
    page.reload()
    expect(panel).to_contain_text("No recap yet.")
    panel.get_by_role("button", name="Write recap").click()
    expect(panel.locator("#recap-text")).to_contain_text("Lin found the ninth bridge at dusk.", timeout=30_000)
    expect(panel.get_by_role("button", name="Update recap")).to_be_visible()


def test_foreshadowing_threads_with_chapters_status_and_overdue(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    api.wait_task(api.generate("generate-foreshadowings", {"novel_id": novel["id"], "count": 2})["id"])
    first, second, third = chapters_of(api, novel)[:3]
    write_chapter(api, novel, first)
    write_chapter(api, novel, second)
    thread = api.call("GET", f"/api/novels/{novel['id']}")["foreshadowings"][0]
    path = f"/api/novels/{novel['id']}/foreshadowings/{thread['id']}"
    # Paid off in a chapter that has text, and not resolved: overdue.
    thread = api.call(
        "PATCH", path, {"planted_chapter_id": first["id"], "payoff_chapter_id": second["id"], "status": "hinted"}
    )
    assert thread["overdue"] is True, thread

    page.goto(f"/novels/{novel['id']}")
    item = page.locator("#list-foreshadowings .item").filter(has_text=thread["title"])
    expect(item).to_contain_text("Planted in Chapter 1 → payoff in Chapter 2")
    expect(item.get_by_role("link", name="Chapter 1")).to_have_attribute("href", chapter_url(novel, first))
    expect(item.get_by_role("link", name="Chapter 2")).to_have_attribute("href", chapter_url(novel, second))
    expect(item.locator(".tag")).to_have_text("hinted")
    expect(item.locator(".badge-overdue")).to_contain_text("overdue")
    screenshot_of(page, item, "foreshadowing-overdue")

    # Edit mode: the payoff moves to chapter 3 (not written): no longer overdue.
    page.get_by_role("button", name="Edit mode").click()
    item.get_by_role("button", name=f"Edit {thread['title']}").click()
    form = page.locator("#list-foreshadowings form.inline-form")
    expect(form.get_by_label("Planted in chapter")).to_have_value(str(first["id"]))
    payoff = form.get_by_label("Paid off in chapter")
    expect(payoff).to_have_value(str(second["id"]))
    payoff.select_option(str(third["id"]))
    form.get_by_role("button", name="Save").click()
    expect(form).to_have_count(0)
    expect(item).to_contain_text("Planted in Chapter 1 → payoff in Chapter 3")
    expect(item.locator(".badge-overdue")).to_have_count(0)
    saved = api.call("GET", path)
    assert saved["payoff_chapter_id"] == third["id"] and saved["status"] == "hinted", saved

    # "None" clears a chapter.
    item.get_by_role("button", name=f"Edit {thread['title']}").click()
    form.get_by_label("Planted in chapter").select_option(label="None")
    form.get_by_role("button", name="Save").click()
    expect(item).to_contain_text("Planted in — → payoff in Chapter 3")
    assert api.call("GET", path)["planted_chapter_id"] is None


def test_recap_all_written_chapters(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    first, second = chapters_of(api, novel)[:2]
    content = write_chapter(api, novel, first)
    api.call("PATCH", chapter_path(novel, second), {"content": "Lin found the ninth bridge at dusk."})
    page.goto(f"/novels/{novel['id']}")
    button = page.get_by_role("button", name="Recap all written chapters")
    # The first chapter's recap is up to date; the second has none: one task recaps only the second.
    button.click()
    card = page.locator('.task-slot[data-kind="recap_chapters"] .task-card')
    expect(card).to_have_attribute("data-status", "completed", timeout=30_000)
    assert api.call("GET", chapter_path(novel, second))["recap"]
    # Now every written chapter has a fresh recap; an edit makes the first one stale again.
    button.click()
    expect(page.get_by_text("Every written chapter has an up-to-date recap.")).to_be_visible()
    api.call("PATCH", chapter_path(novel, first), {"content": f"{content}\nThe bells rang twice."})
    page.reload()
    button.click()
    expect(card).to_have_attribute("data-status", "completed", timeout=30_000)
    assert api.call("GET", chapter_path(novel, first))["recap_stale"] is False
