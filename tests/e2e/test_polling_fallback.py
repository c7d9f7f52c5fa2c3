"""The polling fallback sends one request per task at a time.

Without EventSource the pages poll ``GET /api/tasks/{id}``. Whatever else on the page
wants the task (the finished-task toast, the page's own reads) goes through the same
reader as the poller: no two requests for one task are ever in flight together, and
each comes a poll interval after the last answer (before the fix, the toast's read went
out the instant the last poll answered). With the stream, the page and the toast both
read a task when it finishes: one request serves both (before, two were in flight).

Every request for a task is recorded from Playwright's ``request`` event to its
``requestfinished`` (or ``requestfailed``) event, which the browser reports in the
order things happened on its network stack.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Request, expect

from tests.e2e.conftest import Api
from tests.e2e.test_ui import NO_EVENTSOURCE, first_chapter, novel_with_outline

pytestmark = pytest.mark.browser

TASK_PATH = re.compile(r"^/api/tasks/([0-9a-f-]{36})$")
MIN_GAP_S = 1.0


@dataclass
class TaskRequests:
    """Every GET /api/tasks/{id} a page makes: per task, the order of starts and ends."""

    log: list[tuple[str, str, float]] = field(default_factory=list)  # (task id, "start" | "end", monotonic)
    open: dict[Request, str] = field(default_factory=dict)

    def attach(self, page: Page) -> None:
        page.on("request", self._start)
        page.on("requestfinished", self._end)
        page.on("requestfailed", self._end)

    def _start(self, request: Request) -> None:
        match = TASK_PATH.match(urlsplit(request.url).path)
        if request.method == "GET" and match:
            self.open[request] = match.group(1)
            self.log.append((match.group(1), "start", time.monotonic()))

    def _end(self, request: Request) -> None:
        task_id = self.open.pop(request, None)
        if task_id is not None:
            self.log.append((task_id, "end", time.monotonic()))

    def count(self, task_id: str) -> int:
        return sum(1 for tid, what, _ in self.log if tid == task_id and what == "start")

    def overlaps(self) -> list[str]:
        """Each moment a request for a task started while another for the same task was in flight."""
        in_flight: dict[str, int] = {}
        found = []
        start = self.log[0][2] if self.log else 0.0
        for task_id, what, at in self.log:
            if what == "start":
                if in_flight.get(task_id, 0):
                    found.append(f"task {task_id}: a second request at +{at - start:.3f} s")
                in_flight[task_id] = in_flight.get(task_id, 0) + 1
            else:
                in_flight[task_id] -= 1
        return found

    def gaps(self, task_id: str) -> list[float]:
        """Seconds from the end of each request for a task to the start of the next one."""
        times = [(what, at) for tid, what, at in self.log if tid == task_id]
        return [
            start - end
            for (w1, end), (w2, start) in zip(times, times[1:], strict=False)
            if (w1, w2) == ("end", "start")
        ]

    def timeline(self, task_id: str) -> list[str]:
        origin = self.log[0][2] if self.log else 0.0
        return [f"{what} +{at - origin:.3f}" for tid, what, at in self.log if tid == task_id]

    def settle(self, page: Page, timeout_s: float = 10.0) -> None:
        """Wait (polling, with a deadline) until no recorded request is in flight.

        Playwright delivers events while it talks to the browser, so each round asks
        the page something trivial."""
        deadline = time.monotonic() + timeout_s
        while self.open:
            assert time.monotonic() < deadline, f"requests still in flight after {timeout_s} s: {self.open}"
            page.evaluate("() => new Promise((resolve) => requestAnimationFrame(() => resolve(true)))")


def assert_one_poller(requests: TaskRequests, task_id: str) -> None:
    """No two requests for the task in flight at once, and each one a poll interval after the last answer
    (2 s; 1 s leaves room for timer slack): one poller, and nothing else asking beside it."""
    assert requests.count(task_id) >= 2, requests.log
    assert not requests.overlaps(), requests.overlaps()
    gaps = requests.gaps(task_id)
    assert min(gaps) >= MIN_GAP_S, f"requests for {task_id} {min(gaps):.3f} s apart: {requests.timeline(task_id)}"


def test_task_page_polls_one_request_at_a_time(page: Page, api: Api, signed_in: str) -> None:
    page.add_init_script(NO_EVENTSOURCE)
    requests = TaskRequests()
    requests.attach(page)
    novel = api.novel("Polling one at a time")
    task = api.generate("generate-outline", {"novel_id": novel["id"], "volumes": 6, "chapters_per_volume": 10})

    page.goto(f"/tasks/{task['id']}")
    expect(page.locator("body")).to_have_attribute("data-live-mode", "polling")
    expect(page.locator("#task-status")).to_have_text("Done", timeout=60_000)
    expect(page.locator("#task-pct")).to_have_text("100%")
    expect(page.locator("#result-card")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_be_hidden()
    expect(page.locator(".toasts")).to_contain_text("Outline: done.")
    requests.settle(page)
    assert_one_poller(requests, task["id"])


def test_chapter_page_polls_one_request_at_a_time(page: Page, api: Api, signed_in: str) -> None:
    novel = novel_with_outline(api)
    chapter = first_chapter(api, novel["id"])
    page.add_init_script(NO_EVENTSOURCE)
    requests = TaskRequests()
    requests.attach(page)

    page.goto(f"/novels/{novel['id']}/chapters/{chapter['id']}")
    expect(page.locator("body")).to_have_attribute("data-live-mode", "polling")
    page.get_by_label("Target length").fill("3000")
    page.get_by_role("button", name="Write this chapter").click()
    expect(page.locator("#chapter-task .badge")).to_have_text("Done", timeout=60_000)
    expect(page.locator("#chapter-text .word-count")).to_be_visible()
    expect(page.locator(".toasts")).to_contain_text("Chapter text: done.")
    requests.settle(page)

    task_ids = {task_id for task_id, _, _ in requests.log}
    assert len(task_ids) == 1, requests.log
    assert_one_poller(requests, task_ids.pop())
    saved = api.call("GET", f"/api/novels/{novel['id']}/chapters/{chapter['id']}")
    assert saved["word_count"] > 0
    expect(page.locator("#chapter-text")).to_contain_text(saved["content"].split("\n")[0][:60])


def test_with_the_stream_a_finished_task_is_read_once_by_the_whole_page(page: Page, api: Api, signed_in: str) -> None:
    """The task page and the finished-task toast both want the finished task: one request serves both."""
    requests = TaskRequests()
    requests.attach(page)
    novel = api.novel("Streaming, one read")
    task = api.generate("generate-outline", {"novel_id": novel["id"], "volumes": 6, "chapters_per_volume": 10})

    page.goto(f"/tasks/{task['id']}")
    expect(page.locator("body")).to_have_attribute("data-live-mode", "stream")
    expect(page.locator("#task-status")).to_have_text("Done", timeout=60_000)
    expect(page.locator("#result-card")).to_be_visible()
    expect(page.locator(".toasts")).to_contain_text("Outline: done.")
    requests.settle(page)
    assert not requests.overlaps(), requests.overlaps()
