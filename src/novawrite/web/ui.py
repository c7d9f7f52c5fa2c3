"""The browser UI: HTML pages rendered from Jinja2 templates, and the static files.

Pages carry no data of their own: each renders a shell (layout, translated
labels, the ids from its path) and its ES module fetches everything from the
JSON API, so the API stays the one contract. Pages only decide two things on
the server: the language (the ``nw_lang`` cookie, else Accept-Language) and
whether to send a visitor without a session cookie to the login page. The
cookie's presence is a hint, not a check: an expired session still gets the
page, whose script is sent to /login by the API's 401. Every page carries a
Content-Security-Policy that allows nothing inline and no framing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
MESSAGES_FILE = STATIC_DIR / "i18n" / "messages.json"

SESSION_COOKIE = "nw_session"
LANG_COOKIE = "nw_lang"
LANGUAGES = ("zh", "en")
HTML_LANG = {"zh": "zh-CN", "en": "en"}

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

# Every page's policy: scripts, styles, fonts and requests only from this origin,
# no inline script, style attribute or event handler (the templates and the ES
# modules have none; element.style from a module is CSSOM, which CSP allows), no
# plugins, no <base> or form posts elsewhere, and no framing by any page at all.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


@lru_cache(maxsize=1)
def _messages() -> dict[str, dict[str, str]]:
    # The one table of UI strings: templates use it through t(), and each page
    # embeds its language's half for the scripts.
    data: dict[str, dict[str, str]] = json.loads(MESSAGES_FILE.read_text(encoding="utf-8"))
    return data


def pick_language(cookie: str | None, accept_language: str | None) -> str:
    """The UI language: the switch's cookie, else the first of zh/en the browser
    prefers. Chinese-first: no header at all means zh; a browser that asks for
    neither (say, French only) reads English more likely than Chinese."""
    if cookie in LANGUAGES:
        return cookie
    if not accept_language:
        return "zh"
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, index, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return "en"


def _is_demo(request: Request) -> bool:
    state = getattr(request.app.state, "novawrite", None)
    provider = getattr(state, "provider", None)
    return bool(getattr(provider, "is_demo", False))


def _render(request: Request, template: str, title_key: str, **context: Any) -> Response:
    lang = pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    messages = _messages()[lang]

    def t(key: str) -> str:
        return messages.get(key, key)

    response = templates.TemplateResponse(
        request,
        template,
        {
            "lang": lang,
            "html_lang": HTML_LANG[lang],
            "messages": messages,
            "t": t,
            "title": t(title_key),
            "is_demo": _is_demo(request),
            **context,
        },
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Vary"] = "Cookie, Accept-Language"
    return response


def _login_redirect(request: Request) -> Response | None:
    if request.cookies.get(SESSION_COOKIE):
        return None
    # The page asked for, always a path of this site; the login page checks it again.
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _page(
    template: str, title_key: str, *, page: str, public: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if not public:
            redirect = _login_redirect(request)
            if redirect is not None:
                return redirect
        ids = {key: str(value) for key, value in request.path_params.items()}
        return _render(request, template, title_key, page=page, ids=ids)

    endpoint.__name__ = f"page_{page}"
    return endpoint


def ui_routes() -> list[BaseRoute]:
    return [
        Route("/", _page("novels.html", "novels.title", page="novels"), name="ui_novels"),
        Route("/login", _page("auth.html", "auth.login", page="login", public=True), name="ui_login"),
        Route("/register", _page("auth.html", "auth.register", page="register", public=True), name="ui_register"),
        Route("/novels/{novel_id}", _page("novel.html", "novel.title", page="novel"), name="ui_novel"),
        Route(
            "/novels/{novel_id}/chapters/{chapter_id}",
            _page("chapter.html", "chapter.title", page="chapter"),
            name="ui_chapter",
        ),
        Route("/tasks", _page("tasks.html", "tasks.title", page="tasks"), name="ui_tasks"),
        Route("/tasks/{task_id}", _page("task.html", "task.title", page="task"), name="ui_task"),
        Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]
