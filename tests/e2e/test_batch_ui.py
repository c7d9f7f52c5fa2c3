"""Writing chapters in a batch from the novel page: the dialog, the batch card followed
live ("n of total", each chapter's status, the running chapter's text), a reload
mid-way, Cancel and Retry.

Same server and browser as test_ui.py (demo provider, paced at DEMO_DELAY_MS per
streamed piece, so an English chapter of 1,500 words takes a few seconds). Nothing
sleeps: every wait is an ``expect``.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import Api
from tests.e2e.test_memory_ui import chapters_of, screenshot_of
from tests.e2e.test_ui import novel_with_outline

pytestmark = pytest.mark.browser

SLOW = 60_000


def open_batch_dialog(page: Page) -> Locator:
    page.get_by_role("button", name="Write chapters…").click()
    dialog = page.get_by_role("dialog", name="Write chapters")
    expect(dialog).to_be_visible()
    return dialog


def child(card: Locator, chapter: dict[str, Any]) -> Locator:
    return card.locator(f'.batch-child[data-chapter-id="{chapter["id"]}"]')


def batches(api: Api, novel: dict[str, Any]) -> list[dict[str, Any]]:
    return api.call("GET", f"/api/novels/{novel['id']}/tasks?task_type=write_chapters")["items"]


def test_write_three_chapters_reload_midway(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    chapters = chapters_of(api, novel)
    first, second, third = chapters[:3]
    page.goto(f"/novels/{novel['id']}")

    dialog = open_batch_dialog(page)
    # Defaults: from the first unwritten chapter to the last.
    expect(dialog.get_by_label("From chapter")).to_have_value(str(first["id"]))
    expect(dialog.get_by_label("To chapter")).to_have_value(str(chapters[-1]["id"]))
    dialog.get_by_label("To chapter").select_option(str(third["id"]))
    expect(dialog).to_contain_text("3 chapters in this range.")
    # Out of range words are refused next to the field, before any request.
    words = dialog.get_by_label("Words per chapter")
    words.fill("50")
    dialog.get_by_role("button", name="Write", exact=True).click()
    expect(dialog.locator("#batch-target_words-error")).to_have_text("Words per chapter: 100 to 20,000.")
    expect(words).to_have_attribute("aria-invalid", "true")
    expect(words).to_be_focused()
    words.fill("1500")
    expect(words).not_to_have_attribute("aria-invalid", "true")
    # The API's 422 lands next to its field too (a budget beyond a 64-bit integer).
    budget = dialog.get_by_label("Token budget")
    budget.fill("100000000000000000000")
    dialog.get_by_role("button", name="Write", exact=True).click()
    expect(dialog.locator("#batch-max_tokens-error")).to_be_visible()
    expect(budget).to_have_attribute("aria-invalid", "true")
    budget.fill("")
    expect(dialog.locator("#batch-error")).to_be_hidden()
    screenshot_of(page, dialog, "batch-dialog")
    dialog.get_by_role("button", name="Write", exact=True).click()
    expect(dialog).to_be_hidden()

    card = page.locator("#batch-slot .batch-card")
    expect(card).to_be_visible()
    expect(card.locator(".batch-child")).to_have_count(3)
    # Mid-way: the first chapter is being written, its text streams into the card.
    expect(child(card, first)).to_have_attribute("data-status", "running", timeout=SLOW)
    expect(card.locator(".batch-text p").first).to_be_visible(timeout=SLOW)
    screenshot_of(page, card, "batch-card")

    # A reload while the batch runs: the card comes back and carries on.
    expect(child(card, first)).to_have_attribute("data-status", "completed", timeout=SLOW)
    expect(card.locator(".batch-count")).not_to_have_text("0 of 3")
    page.reload()
    expect(card).to_be_visible()
    expect(child(card, first)).to_have_attribute("data-status", "completed")
    expect(card).to_have_attribute("data-status", "completed", timeout=SLOW)
    expect(card.locator(".batch-count")).to_have_text("3 of 3")
    for chapter in (first, second, third):
        expect(child(card, chapter)).to_have_attribute("data-status", "completed")
        expect(child(card, chapter).get_by_role("link")).to_have_attribute(
            "href", f"/novels/{novel['id']}/chapters/{chapter['id']}"
        )
    expect(card.locator(".batch-result")).to_have_text("Written: 3. Skipped: 0.")
    expect(card.get_by_role("button", name="Retry")).to_be_hidden()
    written = {c["id"]: c for c in chapters_of(api, novel)}
    assert all(written[c["id"]]["has_content"] for c in (first, second, third)), written
    assert not written[chapters[3]["id"]]["has_content"]


def test_cancel_a_batch_midway_and_retry(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    chapters = chapters_of(api, novel)
    fourth, fifth, sixth = chapters[3:6]
    page.goto(f"/novels/{novel['id']}")
    dialog = open_batch_dialog(page)
    dialog.get_by_label("From chapter").select_option(str(fourth["id"]))
    dialog.get_by_label("Words per chapter").fill("2000")
    dialog.get_by_role("button", name="Write", exact=True).click()

    card = page.locator("#batch-slot .batch-card")
    expect(child(card, fifth)).to_have_attribute("data-status", "running", timeout=SLOW)
    card.get_by_role("button", name="Cancel").click()
    expect(card).to_have_attribute("data-status", "cancelled", timeout=SLOW)
    expect(child(card, fourth)).to_have_attribute("data-status", "completed")
    expect(child(card, fifth)).to_have_attribute("data-status", "cancelled")
    expect(child(card, sixth)).to_have_attribute("data-status", "waiting")
    cancelled = batches(api, novel)[0]
    assert cancelled["status"] == "cancelled", cancelled
    children = api.call("GET", f"/api/tasks?parent_id={cancelled['id']}")["items"]
    assert sorted(c["params"]["chapter_id"] for c in children) == [fourth["id"], fifth["id"]], children

    # Retry writes only what the cancelled batch did not.
    card.get_by_role("button", name="Retry").click()
    expect(card).not_to_have_attribute("data-task-id", str(cancelled["id"]))
    expect(card).to_have_attribute("data-status", "completed", timeout=SLOW)
    expect(card.locator(".batch-count")).to_have_text("3 of 3")
    expect(child(card, fourth)).to_have_attribute("data-status", "skipped")
    expect(child(card, fifth)).to_have_attribute("data-status", "completed")
    expect(child(card, sixth)).to_have_attribute("data-status", "completed")
    expect(card.locator(".batch-result")).to_have_text("Written: 2. Skipped: 1.")
    written = {c["id"]: c for c in chapters_of(api, novel)}
    assert all(written[c["id"]]["has_content"] for c in (fourth, fifth, sixth)), written


def test_a_second_batch_attaches_to_the_running_one(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    chapters = chapters_of(api, novel)
    running = api.generate(
        "write-chapters",
        {"novel_id": novel["id"], "chapter_ids": [c["id"] for c in chapters[:2]], "target_words": 1500},
    )
    page.goto(f"/novels/{novel['id']}")
    card = page.locator("#batch-slot .batch-card")
    expect(card).to_have_attribute("data-task-id", str(running["id"]))
    dialog = open_batch_dialog(page)
    dialog.get_by_role("button", name="Write", exact=True).click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_text("A batch is already writing this novel; showing it.")).to_be_visible()
    expect(card).to_have_attribute("data-task-id", str(running["id"]))
    api.call("POST", f"/api/tasks/{running['id']}/cancel")
    expect(card).to_have_attribute("data-status", "cancelled", timeout=SLOW)
