"""The browser side of the account hardening (issue 13), in a real Chromium against a real server.

- After login the page follows ``?next=`` only to a page of its own origin, however
  the target is disguised (tabs and newlines a URL parser drops, backslashes it
  reads as slashes, other schemes).
- Every page sends a Content-Security-Policy the UI lives with: visiting each page
  records no violation and no console error, an inline script is refused, and a
  page of another origin cannot frame the UI.
- The account menu changes the password (errors in both languages), and the login
  form says how long to wait once failed logins are throttled (429).

Nothing sleeps: waits are Playwright's ``expect``/``wait_for_*`` with timeouts, or
the API's event stream, which closes when a task finishes.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page, Route, expect

from tests.e2e.conftest import Api, Server, new_context, screenshot, unique_name

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"

# Records every CSP violation the page reports, from before its first script runs.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def _register(api: Api, password: str = PASSWORD) -> str:
    username = unique_name()
    api.call("POST", "/api/auth/register", {"username": username, "password": password}, expect=201)
    return username


def _log_in_through_form(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


# --- the redirect after login ---------------------------------------------------------------

# The query strings as an attacker would write them in a link.
FOREIGN_NEXT = [
    "/%09/evil.example",
    "/%0A/evil.example",
    "/%0D/evil.example",
    "/%09%5Cevil.example",
    "%2F%2Fevil.example",
    "//evil.example",
    "%2F%5Cevil.example",
    "/%5Cevil.example",
    "https%3A%2F%2Fevil.example",
    "https://evil.example/novels/1",
    "javascript%3Aalert(1)",
    "javascript:alert(document.domain)",
    "%0A%0Djavascript:alert(1)",
    "%20%2F%2Fevil.example",
    "%2F%2F%2Fevil.example",
    "%2F%09%2Fevil.example%2Fnovels",
]


@pytest.fixture
def foreign_requests(context: BrowserContext) -> list[str]:
    """Every request the browser tries to make to evil.example (none reach it: they are aborted)."""
    seen: list[str] = []

    def refuse(route: Route) -> None:
        seen.append(route.request.url)
        route.abort()

    context.route(lambda url: urlsplit(url).hostname == "evil.example", refuse)
    return seen


@pytest.mark.parametrize("next_param", FOREIGN_NEXT)
def test_login_never_follows_next_to_another_origin(
    page: Page, api: Api, server: Server, foreign_requests: list[str], next_param: str
) -> None:
    dialogs: list[str] = []

    def record_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record_dialog)
    username = _register(api)
    page.goto(f"/login?next={next_param}")
    _log_in_through_form(page, username, PASSWORD)
    expect(page).to_have_url(f"{server.url}/")
    expect(page.locator("#current-user")).to_have_text(username)
    assert foreign_requests == []
    assert dialogs == []


@pytest.mark.parametrize(
    ("next_param", "expected"),
    [
        ("%2Fnovels%2F{id}", "/novels/{id}"),
        ("%2Fnovels%2F{id}%3Ffrom%3Dmail%23h-characters", "/novels/{id}?from=mail#h-characters"),
        ("{origin}%2Ftasks", "/tasks"),
    ],
)
def test_login_follows_next_on_the_same_origin(
    page: Page, api: Api, server: Server, next_param: str, expected: str
) -> None:
    username = _register(api)
    # The novel belongs to the user about to log in; the API context logs in as them first.
    api.call("POST", "/api/auth/login", {"username": username, "password": PASSWORD}, expect=200)
    novel = api.novel("Where next leads")
    api.call("POST", "/api/auth/logout", expect=204)
    page.context.clear_cookies()
    target = next_param.format(id=novel["id"], origin=server.url.replace(":", "%3A").replace("/", "%2F"))
    page.goto(f"/login?next={target}")
    _log_in_through_form(page, username, PASSWORD)
    expect(page).to_have_url(server.url + expected.format(id=novel["id"]))
    if "novels" in expected:
        expect(page.locator("#novel-title")).to_have_text("Where next leads")


def test_a_signed_out_visit_comes_back_after_login(page: Page, api: Api, server: Server) -> None:
    username = _register(api)
    page.goto("/tasks?status=failed")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Ftasks%3Fstatus%3Dfailed$"))
    _log_in_through_form(page, username, PASSWORD)
    expect(page).to_have_url(f"{server.url}/tasks?status=failed")


# --- Content-Security-Policy ----------------------------------------------------------------


def _csp_directives(header: str) -> dict[str, str]:
    directives = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            directives[name] = value.strip()
    return directives


class PageWatch:
    """CSP violations (from the page's own listener) and console errors of one page."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console_errors: list[str] = []
        page.add_init_script(RECORD_CSP_VIOLATIONS)
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{self.page.url}: {message.text}")

    def visit(self, path: str, ready: str) -> None:
        response = self.page.goto(path)
        assert response is not None and response.status == 200, path
        assert "text/html" in response.headers["content-type"]
        policy = _csp_directives(response.headers.get("content-security-policy", ""))
        assert policy.get("script-src") == "'self'", (path, policy)
        assert policy.get("frame-ancestors") == "'none'", (path, policy)
        assert policy.get("style-src") == "'self'", (path, policy)
        assert policy.get("object-src") == "'none'", (path, policy)
        expect(self.page.locator(ready).first).to_be_visible()
        # Everything the page loads on arrival has loaded; its modules have run.
        self.page.wait_for_load_state("networkidle")
        self.assert_clean(path)

    def violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__cspViolations")
        return found

    def assert_clean(self, where: str) -> None:
        assert self.violations() == [], where
        assert self.console_errors == [], where


def _novel_with_everything(api: Api) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A novel with an outline, characters and one written chapter; returns (novel, chapter, task id)."""
    novel = api.novel(unique_name("novel"))
    task = api.generate("generate-outline", {"novel_id": novel["id"], "volumes": 2, "chapters_per_volume": 2})
    api.wait_task(task["id"])
    api.wait_task(api.generate("generate-characters", {"novel_id": novel["id"], "count": 3})["id"])
    api.wait_task(api.generate("generate-foreshadowings", {"novel_id": novel["id"], "count": 2})["id"])
    chapter = api.call("GET", f"/api/novels/{novel['id']}")["volumes"][0]["chapters"][0]
    write = api.generate(
        "write-chapter-content", {"novel_id": novel["id"], "chapter_id": chapter["id"], "target_words": 800}
    )
    api.wait_task(write["id"])
    return novel, chapter, write["id"]


def test_every_page_lives_with_the_content_security_policy(page: Page, api: Api) -> None:
    watch = PageWatch(page)
    watch.visit("/login", "#auth-form")
    watch.visit("/register", "#auth-form")
    api.register_and_login(unique_name())
    novel, chapter, task_id = _novel_with_everything(api)

    watch.visit("/", "#novel-list .novel-card")
    watch.visit(f"/novels/{novel['id']}", "#volume-tree .chapter-item")
    expect(page.locator("#list-characters .item")).to_have_count(3)
    # The dialogs and panels the page builds are part of it too.
    page.locator('[data-section="characters"]').get_by_role("button", name="Generate").click()
    expect(page.locator("#generate-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Write chapters…").click()
    expect(page.locator("#batch-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Account").click()
    expect(page.locator("#account-menu")).to_be_visible()
    watch.assert_clean("novel page with its dialogs and account menu")

    # Edit mode with an inline editor open, and the export links.
    page.get_by_role("button", name="Edit mode").click()
    page.locator('[data-section="characters"] .tool-edit').first.click()
    expect(page.locator('[data-section="characters"] .inline-form')).to_be_visible()
    watch.assert_clean("novel page in edit mode with an inline editor")
    # A foreshadowing thread (its chapters linked, status) edited with its chapter selects.
    expect(page.locator("#list-foreshadowings .thread-chapters").first).to_be_visible()
    page.locator('[data-section="foreshadowings"] .tool-edit').first.click()
    expect(page.locator('[data-section="foreshadowings"] .inline-form select')).to_have_count(3)
    watch.assert_clean("novel page with a foreshadowing editor")

    watch.visit(f"/novels/{novel['id']}/chapters/{chapter['id']}", "#chapter-text")
    expect(page.locator("#chapter-text")).not_to_contain_text("no text yet")
    expect(page.locator("#recap-text p").first).not_to_be_empty()
    # The editor (an edit makes a revision), then the revision compared in the diff dialog.
    page.get_by_role("button", name="Edit", exact=True).click()
    page.get_by_label("Text", exact=True).press("Control+End")
    page.keyboard.type(" An edit.")
    expect(page.locator("#save-status")).to_have_text("Saved", timeout=10_000)
    watch.visit(f"/novels/{novel['id']}/chapters/{chapter['id']}", "#revisions details")
    page.locator("#revisions summary").first.click()
    page.get_by_role("button", name="Compare with current").click()
    expect(page.locator("#diff-view ins")).to_have_text([" An edit."])
    watch.assert_clean("chapter editor and the diff dialog")
    watch.visit("/tasks", ".task-row")
    watch.visit(f"/tasks/{task_id}", "#main h1")
    # A live generation on the task page (progress bar, streamed text) too.
    live = api.generate("generate-characters", {"novel_id": novel["id"], "count": 2})
    watch.visit(f"/tasks/{live['id']}", "#main h1")
    api.wait_task(live["id"])
    expect(page.locator(".badge").first).to_have_text("Done", timeout=30_000)
    watch.assert_clean("task page after its task finished")

    # The listener works and the policy holds: an inline script is refused and reported.
    page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.__inlineRan = true";
        document.head.append(script);
    }""")
    page.wait_for_function("() => window.__cspViolations.length > 0")
    assert page.evaluate("window.__inlineRan === undefined")
    assert any(v.startswith("script-src") for v in watch.violations()), watch.violations()


# A page of another origin (another port) that frames a NovaWrite page, and beside
# it, as a control, a file of NovaWrite that carries no frame-ancestors policy.
FRAMER = """<!doctype html><html><body>
<iframe name="framed" src="{page}"></iframe>
<iframe name="control" src="{control}"></iframe>
</body></html>"""


@pytest.fixture
def other_origin(server: Server) -> Iterator[str]:
    def serve(path: str) -> str:
        return FRAMER.format(page=f"{server.url}{path}", control=f"{server.url}/static/favicon.svg")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = serve(self.path).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, name="framer", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_another_origin_cannot_frame_the_ui(
    page: Page, api: Api, server: Server, signed_in: str, other_origin: str
) -> None:
    novel = api.novel("Not in a frame")
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    # goto waits for the load event, which waits for both frames to load.
    page.goto(f"{other_origin}/novels/{novel['id']}")

    control = page.frame(name="control")
    assert control is not None and control.url == f"{server.url}/static/favicon.svg"
    assert control.evaluate("document.documentElement.nodeName") == "svg"  # framing as such works here

    framed = page.frame(name="framed")
    assert framed is not None
    # Chromium refused the page and put its own error page in the frame.
    assert framed.url == "chrome-error://chromewebdata/", framed.url
    assert framed.evaluate("document.body.dataset.page") is None
    assert any("frame-ancestors 'none'" in text for text in console), console


# --- the account menu: change the password --------------------------------------------------

NEW_PASSWORD = "a brand new passphrase"


def _open_account_menu_by_keyboard(page: Page) -> None:
    button = page.locator("#account-button")
    expect(button).to_be_visible()
    button.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#account-menu")).to_be_visible()
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#current-password")).to_be_focused()


def _fill_password_form(page: Page, current: str, new: str, repeat: str | None = None) -> None:
    menu = page.locator("#account-menu")
    menu.get_by_label("Current password").fill(current)
    menu.get_by_label("New password", exact=True).fill(new)
    menu.get_by_label("Repeat the new password").fill(new if repeat is None else repeat)
    menu.get_by_label("Repeat the new password").press("Enter")


def test_change_password_from_the_account_menu(browser: Browser, page: Page, server: Server, signed_in: str) -> None:
    elsewhere = new_context(browser, server)  # the same author signed in on another device
    Api(elsewhere.request, elsewhere).call(
        "POST", "/api/auth/login", {"username": signed_in, "password": PASSWORD}, expect=200
    )
    page.goto("/")
    expect(page.get_by_role("button", name=f"Account: {signed_in}")).to_be_visible()
    _open_account_menu_by_keyboard(page)
    menu = page.locator("#account-menu")
    expect(menu).to_contain_text(f"Signed in as {signed_in}")
    expect(menu.get_by_role("heading", name="Change password")).to_be_visible()
    screenshot(page, "account-password")

    # Escape closes the menu and gives the focus back to its button.
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(page.locator("#account-button")).to_be_focused()
    expect(page.locator("#account-button")).to_have_attribute("aria-expanded", "false")
    _open_account_menu_by_keyboard(page)

    # Checked here: the current password is needed, the two new ones must agree.
    _fill_password_form(page, "", NEW_PASSWORD)
    expect(page.locator("#current-password-error")).to_have_text("Enter your current password.")
    expect(page.locator("#current-password")).to_be_focused()
    _fill_password_form(page, PASSWORD, NEW_PASSWORD, repeat=NEW_PASSWORD + "!")
    expect(page.locator("#repeat-password-error")).to_have_text("The two new passwords differ.")
    expect(page.locator("#current-password-error")).to_be_hidden()

    # Answered by the server: 401 for a wrong current password, 422 for a short new one.
    _fill_password_form(page, "not my password", NEW_PASSWORD)
    expect(page.locator("#current-password-error")).to_have_text("The current password is wrong.")
    expect(page.locator("#current-password")).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_url(f"{server.url}/")  # a wrong password is not a lost session
    _fill_password_form(page, PASSWORD, "short")
    expect(page.locator("#new-password-error")).to_have_text("The new password needs 8 to 256 characters.")
    expect(page.locator("#new-password")).to_be_focused()
    screenshot(page, "account-password-error")

    _fill_password_form(page, PASSWORD, NEW_PASSWORD)
    expect(page.locator("#password-done")).to_have_text("Password changed.")
    expect(page.locator("#new-password-error")).to_be_hidden()
    expect(page.locator("#current-password")).to_have_value("")
    screenshot(page, "account-password-changed")

    # This browser got fresh cookies: it is still signed in, and can still write.
    page.reload()
    expect(page.locator("#current-user")).to_have_text(signed_in)
    page.get_by_label("Title").fill("After the change")
    page.get_by_role("button", name="Create novel").click()
    expect(page).to_have_url(re.compile(r"/novels/\d+$"))

    # The other device's session was revoked: its next page goes to the login form.
    other = elsewhere.new_page()
    other.goto("/tasks")
    expect(other).to_have_url(re.compile(r"/login\?next=%2Ftasks$"))
    elsewhere.close()

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{server.url}/login")
    _log_in_through_form(page, signed_in, PASSWORD)
    expect(page.locator("#auth-error")).to_have_text("Wrong username or password.")
    _log_in_through_form(page, signed_in, NEW_PASSWORD)
    expect(page).to_have_url(f"{server.url}/")
    expect(page.locator("#current-user")).to_have_text(signed_in)


def test_change_password_errors_in_chinese(browser: Browser, server: Server) -> None:
    context = new_context(browser, server, locale="zh-CN")
    try:
        api = Api(context.request, context)
        username = unique_name()
        api.register_and_login(username, PASSWORD)
        page = context.new_page()
        page.goto("/")
        expect(page.get_by_role("button", name=f"账户：{username}")).to_be_visible()
        page.get_by_role("button", name=f"账户：{username}").click()
        menu = page.locator("#account-menu")
        expect(menu.get_by_role("heading", name="修改密码")).to_be_visible()
        menu.get_by_label("当前密码").fill("not my password")
        menu.get_by_label("新密码", exact=True).fill(NEW_PASSWORD)
        menu.get_by_label("再次输入新密码").fill(NEW_PASSWORD)
        menu.get_by_role("button", name="保存新密码").click()
        expect(page.locator("#current-password-error")).to_have_text("当前密码不正确。")
        menu.get_by_label("当前密码").fill(PASSWORD)
        menu.get_by_label("新密码", exact=True).fill("short")
        menu.get_by_label("再次输入新密码").fill("short")
        menu.get_by_role("button", name="保存新密码").click()
        expect(page.locator("#new-password-error")).to_have_text("新密码须为 8 到 256 个字符。")
        screenshot(page, "account-password-zh")
        menu.get_by_label("新密码", exact=True).fill(NEW_PASSWORD)
        menu.get_by_label("再次输入新密码").fill(NEW_PASSWORD)
        menu.get_by_role("button", name="保存新密码").click()
        expect(page.locator("#password-done")).to_have_text("密码已修改。")
        # A click outside closes the menu.
        page.locator("#main h1").click()
        expect(menu).to_be_hidden()
    finally:
        context.close()


# --- the login form once failed logins are throttled ----------------------------------------


def _fail_logins_until_throttled(api: Api, username: str) -> None:
    for _ in range(10):
        api.call("POST", "/api/auth/login", {"username": username, "password": "not the password"}, expect=401)


def test_login_form_says_how_long_to_wait_when_throttled(page: Page, api: Api, server: Server) -> None:
    username = _register(api)
    _fail_logins_until_throttled(api, username)
    page.goto("/login")
    _log_in_through_form(page, username, "not the password")
    error = page.locator("#auth-error")
    expect(error).to_have_text(re.compile(r"^Too many failed attempts\. Try again in \d+ (minutes?|seconds?)\.$"))
    expect(page.get_by_role("button", name="Log in")).to_be_enabled()
    screenshot(page, "login-throttled")
    # The right password does not get through either while the window lasts.
    _log_in_through_form(page, username, PASSWORD)
    expect(error).to_have_text(re.compile(r"^Too many failed attempts\."))
    expect(page).to_have_url(f"{server.url}/login")


def test_login_form_says_how_long_to_wait_in_chinese(browser: Browser, server: Server) -> None:
    context = new_context(browser, server, locale="zh-CN")
    try:
        api = Api(context.request, context)
        username = _register(api)
        _fail_logins_until_throttled(api, username)
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("用户名").fill(username)
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        expect(page.locator("#auth-error")).to_have_text(
            re.compile(r"^登录失败次数过多，请\d+\s?(分钟|秒钟?)后再试。$")
        )
    finally:
        context.close()
