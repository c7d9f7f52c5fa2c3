"""The web UI end to end: a real server with the demo provider, a real headless Chromium.

Nothing here sleeps: every wait is Playwright's auto-waiting ``expect`` (or
``wait_for_function``) with a timeout, or the API's event stream, which closes
when a task finishes.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, expect

from tests.e2e.conftest import Api, Server, new_context, screenshot, unique_name

pytestmark = pytest.mark.browser

# Records every value a progress bar on the page shows, to prove it moved live.
RECORD_PROGRESS = """
window.__progress = [];
new MutationObserver((records) => {
  for (const r of records) window.__progress.push(Number(r.target.getAttribute("aria-valuenow")));
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["aria-valuenow"] });
"""

NO_EVENTSOURCE = "delete window.EventSource;"

# The page believes it is hidden, and every Notification it makes is kept.
CAPTURE_NOTIFICATIONS = """
window.__notifications = [];
const RealNotification = window.Notification;
class RecordingNotification extends RealNotification {
  constructor(title, options) {
    super(title, options);
    window.__notifications.push({ title, body: options && options.body });
  }
}
window.Notification = RecordingNotification;
Object.defineProperty(document, "visibilityState", { get: () => "hidden" });
Object.defineProperty(document, "hidden", { get: () => true });
"""


def first_chapter(api: Api, novel_id: int) -> dict[str, Any]:
    novel = api.call("GET", f"/api/novels/{novel_id}")
    chapter: dict[str, Any] = novel["volumes"][0]["chapters"][0]
    return chapter


def novel_with_outline(api: Api, language: str = "en") -> dict[str, Any]:
    novel = api.novel(unique_name("novel"), language=language)
    task = api.generate("generate-outline", {"novel_id": novel["id"], "volumes": 2, "chapters_per_volume": 3})
    api.wait_task(task["id"])
    return novel


def progress_value(page: Page, selector: str) -> int:
    return int(page.locator(selector).first.get_attribute("aria-valuenow") or 0)


# --- register, create, generate -----------------------------------------------------


def test_register_create_novel_and_generate_outline(page: Page) -> None:
    page.add_init_script(RECORD_PROGRESS)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    screenshot(page, "login")
    page.get_by_role("link", name="Create an account").click()
    expect(page).to_have_url(re.compile(r"/register"))
    screenshot(page, "register")

    page.get_by_label("Username").fill(unique_name())
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#auth-error")).to_contain_text("8 to 256")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("#novel-list")).to_contain_text("No novels yet")
    expect(page.locator(".demo-notice")).to_contain_text("GEMINI_API_KEY")

    page.get_by_label("Title").fill("The Cartographer")
    page.get_by_label("Genre").fill("fantasy")
    page.get_by_label("Language").select_option("en")
    page.get_by_label("Synopsis").fill("A mapmaker charts a city that redraws itself every night.")
    page.get_by_role("button", name="Create novel").click()
    expect(page).to_have_url(re.compile(r"/novels/\d+$"))
    expect(page.locator("#novel-title")).to_have_text("The Cartographer")
    expect(page.locator("#outline-text")).to_contain_text("No outline yet")

    section = page.locator('[data-section="outline"]')
    section.get_by_role("button", name="Generate").click()
    dialog = page.locator("#generate-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Volumes").fill("6")
    dialog.get_by_label("Chapters per volume").fill("10")
    dialog.get_by_role("button", name="Start").click()
    expect(dialog).to_be_hidden()

    bar = section.locator(".task-card [role=progressbar]")
    expect(bar).to_be_visible()
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=30_000)
    expect(section.locator(".task-card .badge")).to_have_text("Done")
    expect(page.locator("#outline-text")).not_to_contain_text("No outline yet")
    expect(page.locator("#volume-tree .volume")).to_have_count(6)
    expect(page.locator("#volume-tree .chapter-item")).to_have_count(60)
    seen = page.evaluate("window.__progress")
    assert any(0 < value < 100 for value in seen), f"the bar never showed progress in between: {seen}"
    assert seen == sorted(seen), f"progress went backwards: {seen}"

    # A list kind too, so the workspace is full for its screenshot.
    chars = page.locator('[data-section="characters"]')
    chars.get_by_role("button", name="Generate").click()
    dialog.get_by_label("How many").fill("4")
    dialog.get_by_role("button", name="Start").click()
    expect(chars.locator(".item")).to_have_count(4, timeout=30_000)
    expect(page.locator(".toasts")).to_contain_text("Characters: done.")
    screenshot(page, "novel")

    page.goto("/")
    expect(page.locator(".novel-card")).to_have_count(1)
    screenshot(page, "novels")


def test_generate_dialog_validates_and_keyboard_works(page: Page, api: Api, signed_in: str) -> None:
    novel = api.novel("Keyboard")
    page.goto(f"/novels/{novel['id']}")
    button = page.locator('[data-section="timeline_events"]').get_by_role("button", name="Generate")
    expect(button).to_be_enabled()  # once the novel has loaded
    button.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#generate-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("How many")).to_be_focused()
    dialog.get_by_label("How many").fill("500")
    page.keyboard.press("Enter")
    expect(page.locator("#generate-error")).to_contain_text("between 1 and 100")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(button).to_be_focused()


# --- live: reload, chapter streaming, cancel, retry --------------------------------------


def test_reload_mid_task_continues(page: Page, api: Api, signed_in: str) -> None:
    novel = api.novel("Long plan")
    task = api.generate("generate-outline", {"novel_id": novel["id"], "volumes": 20, "chapters_per_volume": 10})
    page.goto(f"/novels/{novel['id']}")
    card = page.locator(f'.task-card[data-task-id="{task["id"]}"]')
    expect(card).to_be_visible()
    page.wait_for_function(
        "id => Number(document.querySelector(`.task-card[data-task-id='${id}'] [role=progressbar]`)"
        "?.getAttribute('aria-valuenow')) >= 10",
        arg=task["id"],
        timeout=30_000,
    )
    before = progress_value(page, f'.task-card[data-task-id="{task["id"]}"] [role=progressbar]')

    page.reload()
    expect(card).to_be_visible()
    expect(card).to_have_attribute("data-status", re.compile("running|completed"))
    after = progress_value(page, f'.task-card[data-task-id="{task["id"]}"] [role=progressbar]')
    assert after >= before, (before, after)
    expect(card.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100", timeout=60_000)
    expect(page.locator("#volume-tree .volume")).to_have_count(20)


def test_write_chapter_streams_text_and_keeps_revisions(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    chapter = first_chapter(api, novel["id"])
    page.goto(f"/novels/{novel['id']}")
    page.locator(".chapter-item a").first.click()
    expect(page).to_have_url(re.compile(rf"/novels/{novel['id']}/chapters/{chapter['id']}$"))
    expect(page.locator("#chapter-text")).to_contain_text("no text yet")
    expect(page.locator("#revisions")).to_contain_text("No earlier versions")

    page.get_by_label("Target length").fill("3000")
    page.get_by_label("Instructions (optional)").fill("Open on the river at dawn.")
    page.get_by_role("button", name="Write this chapter").click()
    text = page.locator("#chapter-text")
    expect(text).to_have_class(re.compile("streaming"))
    # Streaming: text is on the page while the task is still running.
    page.wait_for_function(
        "() => { const el = document.querySelector('#chapter-text.streaming');"
        " return el && el.innerText.length > 200; }",
        timeout=30_000,
    )
    expect(page.locator("#chapter-task .badge")).to_have_text("Running")
    screenshot(page, "chapter-streaming")
    expect(page.locator("#chapter-task .badge")).to_have_text("Done", timeout=60_000)
    expect(text).not_to_have_class(re.compile("streaming"))
    expect(text.locator(".word-count")).to_contain_text("words")
    saved = api.call("GET", f"/api/novels/{novel['id']}/chapters/{chapter['id']}")
    assert saved["content"] and saved["word_count"] > 1000
    expect(text).to_contain_text(saved["content"].split("\n")[0][:60])
    screenshot(page, "chapter")

    # Rewriting asks first, and keeps the old text as a revision.
    page.get_by_label("Target length").fill("200")
    page.get_by_role("button", name="Write this chapter").click()
    confirm = page.locator("#confirm-dialog")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("Rewrite this chapter?")
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    expect(page.locator("#chapter-task .badge")).to_have_text("Done")  # nothing new started
    page.get_by_role("button", name="Write this chapter").click()
    confirm.get_by_role("button", name="Rewrite").click()
    expect(page.locator("#chapter-task .badge")).to_have_text("Done", timeout=60_000)
    expect(page.locator("#revisions details")).to_have_count(1)
    page.locator("#revisions summary").first.click()
    expect(page.locator("#revisions .revision-text")).to_contain_text(saved["content"].split("\n")[0][:60])


def test_reload_while_chapter_streams_continues_the_text(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    chapter = first_chapter(api, novel["id"])
    task = api.generate(
        "write-chapter-content", {"novel_id": novel["id"], "chapter_id": chapter["id"], "target_words": 6000}
    )
    page.goto(f"/novels/{novel['id']}/chapters/{chapter['id']}")
    page.wait_for_function(
        "() => document.querySelector('#chapter-text.streaming')?.innerText.length > 300", timeout=30_000
    )
    page.reload()
    # The text so far comes back at once from /output, then grows from chunk events.
    page.wait_for_function(
        "() => document.querySelector('#chapter-text.streaming')?.innerText.length > 300", timeout=10_000
    )
    expect(page.locator("#chapter-task .badge")).to_have_text("Done", timeout=90_000)
    saved = api.call("GET", f"/api/novels/{novel['id']}/chapters/{chapter['id']}")
    output = api.call("GET", f"/api/tasks/{task['id']}/output")
    assert output["complete"] and output["text"] == saved["content"]
    shown = page.locator("#chapter-text p:not(.word-count)").all_inner_texts()
    assert [p.strip() for p in shown] == [p.strip() for p in saved["content"].split("\n") if p.strip()]


def test_cancel_then_retry_from_the_task_page(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    chapter = first_chapter(api, novel["id"])
    task = api.generate(
        "write-chapter-content", {"novel_id": novel["id"], "chapter_id": chapter["id"], "target_words": 20000}
    )
    page.goto(f"/tasks/{task['id']}")
    expect(page.locator("#task-heading")).to_have_text("Chapter text")
    page.wait_for_function("() => document.querySelector('#task-output')?.innerText.length > 200", timeout=30_000)
    expect(page.locator("#event-log .log-chunk").first).to_be_visible()
    screenshot(page, "task-running")

    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#task-status")).to_have_text("Cancelled", timeout=10_000)
    expect(page.locator("#task-output")).to_contain_text("not saved")
    expect(page.locator("#event-log .log-cancelled")).to_have_count(1)
    expect(page.get_by_role("button", name="Cancel")).to_be_hidden()
    assert api.call("GET", f"/api/novels/{novel['id']}/chapters/{chapter['id']}")["word_count"] == 0

    page.get_by_role("button", name="Retry").click()
    expect(page).not_to_have_url(re.compile(task["id"]))
    expect(page.locator("#task-status")).to_have_text(re.compile("Queued|Running"))
    expect(page.locator("#task-facts")).to_contain_text(task["id"][:8])  # retry of
    page.wait_for_function("() => document.querySelector('#task-output')?.innerText.length > 100", timeout=30_000)
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#task-status")).to_have_text("Cancelled", timeout=10_000)
    screenshot(page, "task")


def test_cancel_and_retry_in_the_workspace(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    chapter = first_chapter(api, novel["id"])
    page.goto(f"/novels/{novel['id']}/chapters/{chapter['id']}")
    page.get_by_label("Target length").fill("20000")
    page.get_by_role("button", name="Write this chapter").click()
    card = page.locator("#chapter-task .task-card")
    expect(card).to_have_attribute("data-status", "running")
    card.get_by_role("button", name="Cancel").click()
    expect(card).to_have_attribute("data-status", "cancelled", timeout=10_000)
    expect(page.locator("#chapter-text")).to_contain_text("no text yet")
    expect(page.locator(".toasts")).to_contain_text("cancelled")
    card.get_by_role("button", name="Retry").click()
    new_card = page.locator("#chapter-task .task-card")
    expect(new_card).to_have_attribute("data-status", "running")
    expect(page.get_by_role("button", name="Write this chapter")).to_be_disabled()
    new_card.get_by_role("button", name="Cancel").click()
    expect(new_card).to_have_attribute("data-status", "cancelled", timeout=10_000)


# --- the tasks pages --------------------------------------------------------------------


def test_tasks_page_filters_and_live_rows(page: Page, api: Api, signed_in: str) -> None:
    first = novel_with_outline(api)
    second = api.novel("Second book")
    chars = api.generate("generate-characters", {"novel_id": second["id"], "count": 3})
    api.wait_task(chars["id"])

    page.goto("/tasks")
    rows = page.locator(".task-row")
    expect(rows).to_have_count(2)
    page.get_by_label("Kind").select_option("generate_characters")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Characters")
    expect(page).to_have_url(re.compile(r"task_type=generate_characters"))
    page.get_by_label("Kind").select_option("")
    page.get_by_label("Novel").select_option(str(first["id"]))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Outline")
    page.get_by_label("Status").select_option("failed")
    expect(page.locator("#task-list")).to_contain_text("No tasks match")
    page.get_by_label("Status").select_option("")
    page.get_by_label("Novel").select_option("")
    expect(rows).to_have_count(2)

    # A task started elsewhere appears and finishes live.
    task = api.generate("generate-world-settings", {"novel_id": second["id"], "count": 3})
    row = page.locator(f'.task-row[data-task-id="{task["id"]}"]')
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-status", "completed", timeout=30_000)
    expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    screenshot(page, "tasks")

    row.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/tasks/{task['id']}$"))
    expect(page.locator("#task-status")).to_have_text("Done")
    expect(page.locator("#task-progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#result-card")).to_be_visible()
    expect(page.locator("#event-log .log-completed")).to_have_count(1)
    expect(page.locator("#task-facts")).to_contain_text("count: 3")
    screenshot(page, "task-done")


# --- fallbacks, languages, notifications --------------------------------------------------


def test_polling_fallback_without_eventsource(page: Page, api: Api, signed_in: str) -> None:
    page.add_init_script(NO_EVENTSOURCE)
    polls: list[Request] = []
    page.on("request", lambda r: polls.append(r) if re.search(r"/api/tasks/[0-9a-f-]{36}$", r.url) else None)
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if r.url.endswith("/api/events") else None)
    novel = api.novel("Polling")
    page.goto(f"/novels/{novel['id']}")
    expect(page.locator("body")).to_have_attribute("data-live-mode", "polling")
    expect(page.locator("#live-indicator")).to_contain_text("Polling")

    section = page.locator('[data-section="outline"]')
    section.get_by_role("button", name="Generate").click()
    page.locator("#generate-dialog").get_by_label("Volumes").fill("8")
    page.locator("#generate-dialog").get_by_role("button", name="Start").click()
    card = section.locator(".task-card")
    expect(card).to_have_attribute("data-status", "completed", timeout=30_000)
    expect(page.locator("#volume-tree .volume")).to_have_count(8)
    assert not streams
    assert polls, "no GET /api/tasks/{id} polls"
    assert any("if-none-match" in r.headers for r in polls[1:]), "polls did not send If-None-Match"

    # The chapter text also arrives by polling /output.
    chapter = first_chapter(api, novel["id"])
    page.goto(f"/novels/{novel['id']}/chapters/{chapter['id']}")
    expect(page.locator("body")).to_have_attribute("data-live-mode", "polling")
    page.get_by_label("Target length").fill("3000")
    page.get_by_role("button", name="Write this chapter").click()
    page.wait_for_function(
        "() => document.querySelector('#chapter-text.streaming')?.innerText.length > 200", timeout=30_000
    )
    expect(page.locator("#chapter-task .badge")).to_have_text("Done", timeout=60_000)
    expect(page.locator("#chapter-text .word-count")).to_be_visible()

    # Nothing polls once everything is finished and the page is left.
    count = len(polls)
    page.goto("about:blank")
    assert len(polls) == count


def test_chinese_ui_and_language_switch(browser: Browser, server: Server) -> None:
    context = new_context(browser, server, locale="zh-CN")
    try:
        page = context.new_page()
        api = Api(context.request, context)
        page.goto("/login")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.get_by_role("heading", name="登录")).to_be_visible()
        screenshot(page, "login-zh")
        api.register_and_login(unique_name())
        novel = api.novel("青云志", language="zh", genre="仙侠", synopsis="山村少年拜入青云门，卷入正魔之争。")
        page.goto(f"/novels/{novel['id']}")
        expect(page.get_by_role("heading", name="大纲")).to_be_visible()
        section = page.locator('[data-section="outline"]')
        section.get_by_role("button", name="生成").click()
        page.locator("#generate-dialog").get_by_label("卷数").fill("3")
        page.locator("#generate-dialog").get_by_role("button", name="开始生成").click()
        card = section.locator(".task-card")
        expect(card).to_have_attribute("data-status", "completed", timeout=30_000)
        expect(card.locator(".badge")).to_have_text("已完成")
        expect(page.locator("#volume-tree")).to_contain_text("第1卷")
        # Progress messages come from the server in the novel's language.
        task_id = card.get_attribute("data-task-id")
        page.goto(f"/tasks/{task_id}")
        expect(page.locator("#event-log")).to_contain_text(re.compile(r"[\u4e00-\u9fff]"))
        expect(page.locator("#task-status")).to_have_text("已完成")
        screenshot(page, "task-zh")
        page.goto(f"/novels/{novel['id']}")
        expect(page.locator("#volume-tree .chapter-item").first).to_be_visible()
        screenshot(page, "novel-zh")

        page.get_by_role("button", name="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.get_by_role("heading", name="Outline")).to_be_visible()
        expect(page.get_by_role("button", name="中文")).to_be_visible()
        page.get_by_role("button", name="中文").click()
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    finally:
        context.close()


def test_english_from_accept_language(page: Page) -> None:
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_login_logout_and_wrong_password(page: Page, api: Api) -> None:
    username = unique_name()
    api.call("POST", "/api/auth/register", {"username": username, "password": "a good password"}, expect=201)
    page.goto("/tasks")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Ftasks"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("the wrong one")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#auth-error")).to_have_text("Wrong username or password.")
    page.get_by_label("Password").fill("a good password")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/tasks$"))
    expect(page.locator("#current-user")).to_contain_text(username)
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))


def test_notification_when_hidden(browser: Browser, server: Server) -> None:
    context = new_context(browser, server, permissions=["notifications"])
    try:
        context.add_init_script(CAPTURE_NOTIFICATIONS)
        api = Api(context.request, context)
        api.register_and_login(unique_name())
        novel = api.novel("Notify me")
        page = context.new_page()
        page.goto(f"/novels/{novel['id']}")
        expect(page.locator("body")).to_have_attribute("data-live-mode", "stream")
        expect(page.locator("#notify-button")).to_be_hidden()  # already granted: nothing to ask
        api.generate("generate-foreshadowings", {"novel_id": novel["id"], "count": 2})
        page.wait_for_function("() => window.__notifications.length > 0", timeout=30_000)
        notes = page.evaluate("window.__notifications")
        assert notes[0]["title"] == "NovaWrite"
        assert "Foreshadowing" in notes[0]["body"]
        # Started elsewhere (here: the API), its result still shows up in the open workspace.
        expect(page.locator('[data-section="foreshadowings"] .item')).to_have_count(2)
    finally:
        context.close()


def test_notification_permission_is_asked_from_a_click(browser: Browser, server: Server) -> None:
    context = new_context(browser, server)
    try:
        context.add_init_script(
            "window.__asked = 0; Object.defineProperty(Notification, 'permission', {get: () => 'default'});"
            "Notification.requestPermission = async () => { window.__asked += 1; return 'default'; };"
        )
        api = Api(context.request, context)
        api.register_and_login(unique_name())
        page = context.new_page()
        page.goto("/")
        button = page.get_by_role("button", name="Enable notifications")
        expect(button).to_be_visible()
        assert page.evaluate("window.__asked") == 0  # never on load
        button.click()
        page.wait_for_function("() => window.__asked === 1")
    finally:
        context.close()


def test_missing_novel_and_task(page: Page, api: Api, signed_in: str) -> None:
    page.goto("/novels/999999")
    expect(page.locator("#novel-missing")).to_be_visible()
    page.goto("/tasks/00000000-0000-4000-8000-000000000000")
    expect(page.locator("#task-missing")).to_be_visible()


def test_delete_a_novel(page: Page, api: Api, signed_in: str) -> None:
    api.novel("Keep me")
    doomed = api.novel("Delete me")
    page.goto("/")
    expect(page.locator(".novel-card")).to_have_count(2)
    page.get_by_role("button", name="Delete “Delete me”").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
    expect(page.locator(".novel-card")).to_have_count(1)
    expect(page.locator(".novel-card")).to_contain_text("Keep me")
    api.call("GET", f"/api/novels/{doomed['id']}", expect=404)
