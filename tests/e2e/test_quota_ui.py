"""A task waiting for the model's quota, in the browser: its task card says until when (English and
Chinese), and Cancel, from the keyboard, ends it while it waits.

Each test has a server of its own on Gemini, which is the fake Gemini (tests/fakes) behind the
real google-genai SDK. The author starts the generation from the page, so the card is there from
the submit on; the fake answers the first call with a 503 (retried in the task after about a
second, the card showing it running) and the second with the 429 Gemini sends when the day's
quota is used up (a RetryInfo of two hours and a QuotaFailure naming a per-day quota). The task
goes back to pending with ``resume_at`` two hours ahead, which the card learns from the live
``status`` event (its attempt and resume_at), and the provider is held back until then. The
browser runs in UTC so the time the card shows can be read off ``resume_at``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Api, Server, new_context, running_server, unique_name
from tests.e2e.test_memory_ui import screenshot_of
from tests.fakes import Fail
from tests.fakes.fake_gemini import FakeGemini, quota_error_body

pytestmark = pytest.mark.browser

GEMINI_KEY = "e2e-quota-key"
GEMINI_MODEL = "gemini-e2e-quota"
TWO_HOURS = "7200s"
WAITING = {"en": "Waiting for the model's quota until {time}", "zh": "等待模型配额，{time} 继续"}
CANCEL = {"en": "Cancel", "zh": "取消任务"}
NOVEL = {
    "en": {"title": "The Tide Clock", "genre": "Fantasy", "synopsis": "A clockmaker winds the sea."},
    "zh": {"title": "潮汐之钟", "genre": "奇幻", "synopsis": "钟表匠为大海上发条。"},
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=GEMINI_KEY, models=[GEMINI_MODEL]) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def gemini_server(fake: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "NOVAWRITE_PROVIDER": "gemini",
        "GEMINI_API_KEY": GEMINI_KEY,
        "NOVAWRITE_GEMINI_BASE_URL": fake.base_url,
        "NOVAWRITE_GEMINI_MODEL": GEMINI_MODEL,
        "NOVAWRITE_PROVIDER_TIMEOUT_SECONDS": "10",
    }
    with running_server(tmp_path_factory.mktemp("e2e-quota"), **env) as server:
        yield server


def model_calls(fake: FakeGemini) -> int:
    return sum(1 for r in fake.requests if "generatecontent" in r.path.lower())


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_task_waiting_for_the_quota_says_until_when_and_can_be_cancelled(
    browser: Browser, gemini_server: Server, fake: FakeGemini, language: str
) -> None:
    locale = "zh-CN" if language == "zh" else "en-US"
    context = new_context(browser, gemini_server, locale=locale, timezone_id="UTC")
    try:
        api = Api(context.request, context)
        api.register_and_login(unique_name())
        novel = api.novel(language=language, **NOVEL[language])
        page: Page = context.new_page()
        page.goto(f"/novels/{novel['id']}")
        fake.push(Fail(503), Fail(429, body=quota_error_body(TWO_HOURS)))
        calls = model_calls(fake)

        section = page.locator('[data-section="characters"]')
        generate = section.locator(".section-head button")
        expect(generate).to_be_enabled()
        generate.focus()
        page.keyboard.press("Enter")
        dialog = page.locator("#generate-dialog")
        expect(dialog).to_be_visible()
        page.locator("#generate-submit").focus()
        page.keyboard.press("Enter")
        expect(dialog).to_be_hidden()

        # The card follows the task live: running (a 503, retried), then back to pending until when.
        card = section.locator(".task-card")
        expect(card).to_have_attribute("data-status", "running")
        message = card.locator(".task-message")
        expect(message).to_have_text(re.compile(WAITING[language].format(time=r"\d\d:\d\d")), timeout=20_000)
        expect(card).to_have_attribute("data-status", "pending")
        task_id = card.get_attribute("data-task-id")
        waiting = api.call("GET", f"/api/tasks/{task_id}")
        assert waiting["status"] == "pending" and waiting["resume_at"] is not None and waiting["attempt"] == 2, waiting
        resume_at = datetime.fromisoformat(waiting["resume_at"])
        expect(message).to_have_text(WAITING[language].format(time=f"{resume_at.hour:02d}:{resume_at.minute:02d}"))
        screenshot_of(page, card, f"quota-wait-{language}")
        assert model_calls(fake) == calls + 2, "the 503 and the 429; the provider is held back since"

        cancel = card.get_by_role("button", name=CANCEL[language])
        cancel.focus()
        page.keyboard.press("Enter")
        expect(card).to_have_attribute("data-status", "cancelled")
        done = api.call("GET", f"/api/tasks/{task_id}")
        assert done["status"] == "cancelled" and done["resume_at"] is None, done
        assert model_calls(fake) == calls + 2
    finally:
        context.close()
