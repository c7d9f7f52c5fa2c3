"""Bad input: a table of malformed requests against every route, on both databases.

Wrong types, numbers out of range or past 64 bits, nulls, arrays for objects,
10,000-character strings, odd Unicode, ids that cannot exist (and another user's),
bad cursors and filters, bad credentials and CSRF headers, bodies that are not JSON
or are over 1 MiB, methods a path does not take, unknown paths, and Last-Event-ID
values that are not event ids.

Each request must get the error API.md names for it (status and code) in API.md's
shape ``{"error": {"code", "message", "details"?}}``, never a 5xx or a dropped
connection; and every table of the database must read the same afterwards. The
routes come from one table here, checked against ``/openapi.json`` so that a new
route cannot go untested.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import pytest

from tests.reliability.inputs import (
    BAD_IDS,
    BAD_TASK_IDS,
    LONG_ASCII,
    LONG_TEXT,
    NOT_AN_EVENT_ID,
    PAST_EVERY_EVENT_ID,
    Ids,
    World,
    stored_rows,
    world,  # noqa: F401 (fixture)
)
from tests.server import parse_sse

pytestmark = pytest.mark.server

STATUS = {
    "invalid_json": 400,
    "unauthorized": 401,
    "csrf_failed": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "validation_error": 422,
}
NO_BODY = object()
MIB = 1024 * 1024

#: Every /api route, named as in /openapi.json, and the methods it takes.
ROUTES: dict[str, frozenset[str]] = {
    path: frozenset(methods.split())
    for path, methods in {
        "/api/auth/register": "POST",
        "/api/auth/login": "POST",
        "/api/auth/logout": "POST",
        "/api/auth/password": "POST",
        "/api/auth/me": "GET",
        "/api/novels": "GET POST",
        "/api/novels/{novel_id}": "GET PATCH DELETE",
        "/api/novels/{novel_id}/tasks": "GET",
        "/api/novels/{novel_id}/chapters/{chapter_id}": "GET PATCH DELETE",
        "/api/novels/{novel_id}/chapters/{chapter_id}/revisions": "GET",
        "/api/novels/{novel_id}/chapters/{chapter_id}/revisions/{revision_id}/restore": "POST",
        "/api/novels/{novel_id}/volumes/{volume_id}": "GET PATCH",
        "/api/novels/{novel_id}/volumes/{volume_id}/chapters": "POST",
        "/api/novels/{novel_id}/characters": "POST",
        "/api/novels/{novel_id}/characters/{character_id}": "GET PATCH DELETE",
        "/api/novels/{novel_id}/world-settings": "POST",
        "/api/novels/{novel_id}/world-settings/{world_setting_id}": "GET PATCH DELETE",
        "/api/novels/{novel_id}/timeline-events": "POST",
        "/api/novels/{novel_id}/timeline-events/{timeline_event_id}": "GET PATCH DELETE",
        "/api/novels/{novel_id}/foreshadowings": "POST",
        "/api/novels/{novel_id}/foreshadowings/{foreshadowing_id}": "GET PATCH DELETE",
        "/api/novels/{novel_id}/export": "GET",
        "/api/ai/generate-outline": "POST",
        "/api/ai/generate-characters": "POST",
        "/api/ai/generate-world-settings": "POST",
        "/api/ai/generate-timeline-events": "POST",
        "/api/ai/generate-foreshadowings": "POST",
        "/api/ai/write-chapter-content": "POST",
        "/api/ai/recap-chapters": "POST",
        "/api/ai/write-chapters": "POST",
        "/api/tasks": "GET",
        "/api/tasks/active": "GET",
        "/api/tasks/{task_id}": "GET",
        "/api/tasks/{task_id}/output": "GET",
        "/api/tasks/{task_id}/events": "GET",
        "/api/tasks/{task_id}/cancel": "POST",
        "/api/tasks/{task_id}/retry": "POST",
        "/api/events": "GET",
    }.items()
}
PUBLIC = frozenset({"/api/auth/register", "/api/auth/login", "/api/auth/logout"})
UNKNOWN_PATHS = (
    "/api",
    "/api/",
    "/api/nope",
    "/api/novels/{novel_id}/chapters",
    "/api/novels/{novel_id}/volumes",
    "/api/tasks/{task_id}/events/1",
    "/api/ai/generate-everything",
    "/api/%00",
)


@dataclass(frozen=True)
class Probe:
    """One malformed request and the error code API.md gives it."""

    what: str
    method: str
    path: str
    code: str
    json: Any = NO_BODY
    content: bytes | None = None
    params: dict[str, str] | None = None
    headers: dict[str, str | bytes] = field(default_factory=dict)
    #: Send the user's bearer token (``headers`` may bring other credentials).
    bearer: bool = True
    #: For a 405: the methods the ``Allow`` header must list.
    allow: frozenset[str] | None = None


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text)} chars)"


def fill(template: str, ids: Ids, **overrides: str) -> str:
    return template.format_map({**asdict(ids), **overrides})


# --- Bad values of a body's members ------------------------------------------------------

#: Stands for an array nested 1,000 deep (``encode`` writes it out; json.dumps would run out of stack).
DEEP = "\x01deep"
NOT_TEXT = (None, 1, 1.5, True, [], ["x"], {}, {"x": "y"}, DEEP)
NOT_INT = (None, "5", "abc", "", 1.5, True, False, [], [5], {}, {"n": 5}, DEEP)
NOT_BOOL = (None, "true", 1, 0, "", [], {})
PAST_64_BITS = (2**63, -(2**63) - 1, 10**30, -(10**30))
ODD_USERNAMES = ("al ice", "ålice", "alice\u202e", "😀😀😀", "a/b", "alice\n", "ａｌｉｃｅ", "al\u200bice")
NOT_A_LANGUAGE = (None, 1, [], {}, "", "fr", "ZH", "zh ", "ｚｈ", LONG_TEXT)
#: (what is wrong, the value, the error code)
Bad = tuple[str, Any, str]


@dataclass(frozen=True)
class Text:
    name: str
    low: int
    high: int

    def bad(self) -> Iterator[Bad]:
        for value in NOT_TEXT:
            yield f"{self.name} not a string: {short(value)}", value, "validation_error"
        if self.low > 0:
            yield f"{self.name} shorter than {self.low}", "x" * (self.low - 1), "validation_error"
        yield f"{self.name} longer than {self.high}", "x" * (self.high + 1), "validation_error"
        if self.high < len(LONG_TEXT):
            yield f"{self.name} of 10,000 characters", LONG_TEXT, "validation_error"
        yield f"{self.name} with a NUL", "a\x00b", "validation_error"


@dataclass(frozen=True)
class Username(Text):
    def bad(self) -> Iterator[Bad]:
        yield from super().bad()
        for value in ODD_USERNAMES:
            yield f"{self.name} {value!r}", value, "validation_error"


@dataclass(frozen=True)
class Language:
    name: str = "language"

    def bad(self) -> Iterator[Bad]:
        for value in NOT_A_LANGUAGE:
            yield f"{self.name} {short(value)}", value, "validation_error"


@dataclass(frozen=True)
class Int:
    name: str
    low: int
    high: int

    def bad(self) -> Iterator[Bad]:
        for value in NOT_INT:
            yield f"{self.name} not an integer: {short(value)}", value, "validation_error"
        for value in sorted({self.low - 1, self.high + 1, -1, 0} - set(range(self.low, self.high + 1))):
            yield f"{self.name} out of range: {value}", value, "validation_error"
        for value in PAST_64_BITS:
            yield f"{self.name} past 64 bits: {value}", value, "validation_error"


@dataclass(frozen=True)
class Id:
    """A novel or chapter id in a body: not an integer is a 422; an integer that is no id of the user's, a 404."""

    name: str
    theirs: str

    def bad(self) -> Iterator[Bad]:
        for value in NOT_INT:
            yield f"{self.name} not an integer: {short(value)}", value, "validation_error"
        for value in PAST_64_BITS:
            yield f"{self.name} past 64 bits: {value}", value, "validation_error"
        for value in (-1, 0, 2**63 - 1, int(self.theirs)):
            yield f"{self.name} {value}, not the user's", value, "not_found"


@dataclass(frozen=True)
class Bool:
    name: str

    def bad(self) -> Iterator[Bad]:
        for value in NOT_BOOL:
            yield f"{self.name} not a boolean: {short(value)}", value, "validation_error"


Member = Text | Language | Int | Id | Bool


# --- The table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BodyRoute:
    """A route with a JSON body: a valid body, its members, and which of them it requires."""

    method: str
    path: str
    valid: dict[str, Any]
    members: tuple[Member, ...]
    required: tuple[str, ...]
    bearer: bool = True


def body_routes(w: World) -> list[BodyRoute]:
    novel, chapter = int(w.mine.novel_id), int(w.mine.chapter_id)
    instructions = Text("instructions", 0, 4000)
    novel_id = Id("novel_id", w.theirs.novel_id)
    novel_members = (Text("title", 1, 200), Text("genre", 0, 100), Text("synopsis", 0, 20_000), Language())

    def generate_list(kind: str, count_high: int) -> BodyRoute:
        return BodyRoute(
            "POST",
            f"/api/ai/generate-{kind}",
            {"novel_id": novel, "count": 2},
            (novel_id, Int("count", 1, count_high), instructions),
            ("novel_id",),
        )

    return [
        BodyRoute(
            "POST",
            "/api/auth/register",
            {"username": "newcomer", "password": "correct horse"},
            (Username("username", 3, 64), Text("password", 8, 256)),
            ("username", "password"),
            bearer=False,
        ),
        BodyRoute(
            "POST",
            "/api/auth/login",
            {"username": "author", "password": "correct horse battery"},
            (Text("username", 0, 256), Text("password", 0, 256)),
            ("username", "password"),
            bearer=False,
        ),
        BodyRoute(
            "POST",
            "/api/auth/password",
            {"current_password": "correct horse battery", "new_password": "a new password"},
            (Text("current_password", 0, 256), Text("new_password", 8, 256)),
            ("current_password", "new_password"),
        ),
        BodyRoute(
            "POST",
            "/api/novels",
            {"title": "New", "genre": "", "synopsis": "", "language": "en"},
            novel_members,
            ("title",),
        ),
        BodyRoute(
            "PATCH",
            fill("/api/novels/{novel_id}", w.mine),
            {"title": "Renamed"},
            (*novel_members, Text("outline", 0, 100_000)),
            (),
        ),
        *authoring_routes(w),
        BodyRoute(
            "POST",
            "/api/ai/generate-outline",
            {"novel_id": novel, "volumes": 1, "chapters_per_volume": 1},
            (novel_id, Int("volumes", 1, 20), Int("chapters_per_volume", 1, 100), instructions),
            ("novel_id",),
        ),
        generate_list("characters", 50),
        generate_list("world-settings", 50),
        generate_list("timeline-events", 100),
        generate_list("foreshadowings", 50),
        BodyRoute(
            "POST",
            "/api/ai/write-chapter-content",
            {"novel_id": novel, "chapter_id": chapter, "target_words": 100, "overwrite": True},
            (
                novel_id,
                Id("chapter_id", w.theirs.chapter_id),
                Int("target_words", 100, 20_000),
                Bool("overwrite"),
                instructions,
            ),
            ("novel_id", "chapter_id"),
        ),
        BodyRoute(
            "POST",
            "/api/ai/recap-chapters",
            {"novel_id": novel, "chapter_ids": [chapter]},
            (novel_id,),
            ("novel_id", "chapter_ids"),
        ),
        BodyRoute(
            "POST",
            "/api/ai/write-chapters",
            {"novel_id": novel, "chapter_ids": [chapter]},
            (novel_id, Int("target_words", 100, 20_000), Bool("overwrite"), instructions),
            ("novel_id", "chapter_ids"),
        ),
    ]


def authoring_routes(w: World) -> list[BodyRoute]:
    """The author's hand: volumes, chapters and the four lists (API.md)."""
    chapter = (Text("title", 1, 500), Text("summary", 0, 5_000))
    volume = fill("/api/novels/{novel_id}/volumes/{volume_id}", w.mine)
    routes = [
        BodyRoute("PATCH", volume, {"title": "Renamed"}, chapter, ()),
        BodyRoute("POST", volume + "/chapters", {"title": "New"}, chapter, ("title",)),
        BodyRoute(
            "PATCH",
            fill("/api/novels/{novel_id}/chapters/{chapter_id}", w.mine),
            {"title": "Renamed"},
            (*chapter, Text("content", 0, 200_000)),
            (),
        ),
    ]
    text = Text("description", 0, 5_000)
    lists: tuple[tuple[str, str, tuple[Member, ...], tuple[Member, ...]], ...] = (
        ("characters", "name", (text, Text("role", 0, 5_000), Text("arc", 0, 5_000)), ()),
        ("world-settings", "name", (text, Text("category", 0, 5_000)), ()),
        ("timeline-events", "title", (text, Text("time_label", 0, 5_000)), (Int("position", 1, 1_000_000),)),
        ("foreshadowings", "title", (text,), ()),
    )
    for segment, key, members, patch_only in lists:
        collection = fill("/api/novels/{novel_id}/" + segment, w.mine)
        item = w.mine[segment.replace("-", "_").removesuffix("s") + "_id"]
        named = (Text(key, 1, 200), *members)
        routes += [
            BodyRoute("POST", collection, {key: "New"}, named, (key,)),
            BodyRoute("PATCH", f"{collection}/{item}", {key: "Renamed"}, (*named, *patch_only), ()),
        ]
    return routes


#: Bodies that are not JSON, or not a JSON object (API.md: 400).
NOT_A_JSON_OBJECT = (
    b"",
    b" ",
    b"{",
    b"nul",
    b"{'title': 'x'}",
    b'{"title": "x",}',
    b'{"title": NaN}',
    b'{"title": Infinity}',
    b"\xff\xfe{}",
    b'{"title": "\xff"}',
    b'{"title": "\\ud800"}',
    b"[]",
    b'[{"title": "x"}]',
    b'"title"',
    b"1",
    b"null",
    b"true",
    b"title=x",
    b"[" * 2000 + b"]" * 2000,
    # Valid JSON, but past what a double holds: refused as JSON (RFC 8259 section 9 allows the limit).
    b'{"count": 1e400}',
    b'{"count": ' + b"9" * 10_000 + b"}",
)


def body_probes(route: BodyRoute) -> Iterator[Probe]:
    def probe(what: str, code: str, **request: Any) -> Probe:
        return Probe(what, route.method, route.path, code, bearer=route.bearer, **request)

    for member in route.members:
        for what, value, code in member.bad():
            yield probe(what, code, json={**route.valid, member.name: value})
    for name in route.required:
        yield probe(f"{name} missing", "validation_error", json={k: v for k, v in route.valid.items() if k != name})
    json_type: dict[str, str | bytes] = {"Content-Type": "application/json"}
    for raw in NOT_A_JSON_OBJECT:
        yield probe(f"not a JSON object: {short(raw)}", "invalid_json", content=raw, headers=json_type)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        form: dict[str, str | bytes] = {} if content_type is None else {"Content-Type": content_type}
        yield probe(f"a body of type {content_type}", "unsupported_media_type", content=b"title=x", headers=form)
    yield probe("an array of the valid body", "invalid_json", json=[route.valid])
    if route.path.startswith("/api/ai/"):
        for key in ("", "k" * 201, LONG_ASCII):
            yield probe(
                f"Idempotency-Key of {len(key)} characters",
                "validation_error",
                json=route.valid,
                headers={"Idempotency-Key": key},
            )


def id_probes(w: World) -> Iterator[Probe]:
    """Every route with an id in its path, with ids that cannot be the user's in each place."""
    bad_ids = {
        "novel_id": (*BAD_IDS, w.theirs.novel_id),
        "chapter_id": (*BAD_IDS, w.theirs.chapter_id),
        **{
            name: (*BAD_IDS, w.theirs[name])
            for name in (
                "volume_id",
                "revision_id",
                "character_id",
                "world_setting_id",
                "timeline_event_id",
                "foreshadowing_id",
            )
        },
        "task_id": (*BAD_TASK_IDS, w.mine.task_id.upper(), w.theirs.task_id),
    }
    for template, methods in ROUTES.items():
        names = [name for name in bad_ids if "{" + name + "}" in template]
        if not names:
            continue
        paths = [
            (f"{name} {short(value)}", fill(template, w.mine, **{name: value}))
            for name in names
            for value in bad_ids[name]
        ]
        paths.append(("another user's ids", fill(template, w.theirs)))
        for what, path in paths:
            for method in sorted(methods):
                # A valid body where the route takes one (bodies are validated before ids are looked up).
                body = {"title": "Renamed", "name": "Renamed"} if method in ("PATCH", "POST") else NO_BODY
                yield Probe(what, method, path, "not_found", json=body)


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


BAD_QUERIES: dict[str, tuple[str, ...]] = {
    "status": ("done", "", "PENDING", "pending ", "ｐending", LONG_ASCII),
    "task_type": ("nope", "", "GENERATE_OUTLINE", "generate-outline", LONG_ASCII),
    "limit": ("0", "101", "-1", "abc", "1.5", "", "9" * 25, "9" * 10_000),
    "cursor": (
        "bad",
        "",
        "%%%",
        "é",
        "\x00",
        LONG_ASCII,
        b64("t0"),
        b64("t-1"),
        b64("x1"),
        b64("t" + "9" * 30),
        b64("t1.5"),
        b64("t１"),
    ),
}


def query_probes(w: World) -> Iterator[Probe]:
    for path in ("/api/tasks", fill("/api/novels/{novel_id}/tasks", w.mine)):
        for name, values in BAD_QUERIES.items():
            for value in values:
                yield Probe(f"{name}={short(value)}", "GET", path, "validation_error", params={name: value})
    for value in ("abc", "-1", "1.5", "", "9" * 10_000):  # (a large one is just no novel of the user's: no items)
        yield Probe(f"novel_id={short(value)}", "GET", "/api/tasks", "validation_error", params={"novel_id": value})


def auth_probes(w: World) -> Iterator[Probe]:
    tampered = w.token[:-4] + ("BBBB" if w.token.endswith("AAAA") else "AAAA")
    credentials: dict[str, dict[str, str | bytes]] = {
        "no credentials": {},
        "Bearer and no token": {"Authorization": "Bearer"},
        "a token that is not one": {"Authorization": "Bearer abc"},
        "a tampered token": {"Authorization": f"Bearer {tampered}"},
        "a token of 10,000 characters": {"Authorization": f"Bearer {LONG_ASCII}"},
        "Basic credentials": {"Authorization": "Basic YXV0aG9yOmNvcnJlY3QgaG9yc2UgYmF0dGVyeQ=="},
        "a token that is not ASCII": {"Authorization": "Bearer é😀".encode()},
        "a session cookie that is not one": {"Cookie": "nw_session=abc"},
        "an empty session cookie": {"Cookie": "nw_session="},
    }
    for template, methods in ROUTES.items():
        if template in PUBLIC:
            continue
        for method in sorted(methods):
            # The body is wrong too: credentials are checked before the body (API.md).
            body = {"title": None} if method in ("POST", "PATCH") else NO_BODY
            for what, headers in credentials.items():
                yield Probe(
                    what, method, fill(template, w.mine), "unauthorized", json=body, headers=headers, bearer=False
                )
    for what, username, password in (
        ("wrong password", "author", "not the password"),
        ("unknown user", "nobody", "correct horse battery"),
    ):
        yield Probe(
            what,
            "POST",
            "/api/auth/login",
            "unauthorized",
            json={"username": username, "password": password},
            bearer=False,
        )


def route_probes(w: World) -> Iterator[Probe]:
    for template, methods in ROUTES.items():
        allow = methods | ({"HEAD"} if "GET" in methods else set())
        for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} - methods):
            yield Probe(f"{method} not taken", method, fill(template, w.mine), "method_not_allowed", allow=allow)
    for template in UNKNOWN_PATHS:
        yield Probe("no such route", "GET", fill(template, w.mine), "not_found")


def csrf_probes(w: World, session: str, csrf: str) -> Iterator[Probe]:
    """The session cookie alone on a POST, PATCH or DELETE, without the matching X-CSRF-Token: 403."""
    cookie = f"nw_session={session}; nw_csrf={csrf}"
    novel = fill("/api/novels/{novel_id}", w.mine)
    unsafe = (
        ("POST", "/api/novels", {"title": "New"}),
        ("PATCH", novel, {"title": "Renamed"}),
        ("DELETE", novel, NO_BODY),
        ("POST", "/api/ai/generate-characters", {"novel_id": int(w.mine.novel_id)}),
        ("POST", fill("/api/tasks/{task_id}/retry", w.mine), NO_BODY),
    )
    for method, path, body in unsafe:
        for what, token in (("no", None), ("a wrong", "wrong"), ("an empty", ""), ("a long", LONG_ASCII)):
            headers: dict[str, str | bytes] = {"Cookie": cookie}
            if token is not None:
                headers["X-CSRF-Token"] = token
            yield Probe(
                f"session cookie with {what} CSRF header",
                method,
                path,
                "csrf_failed",
                json=body,
                headers=headers,
                bearer=False,
            )


def table(w: World) -> list[Probe]:
    return [
        *(probe for route in body_routes(w) for probe in body_probes(route)),
        *id_probes(w),
        *query_probes(w),
        *auth_probes(w),
        *route_probes(w),
    ]


# --- Sending it -------------------------------------------------------------------------------


def shape_problem(response: httpx.Response, code: str, allow: frozenset[str] | None = None) -> str | None:
    """What is wrong with an error response, against API.md's status, code and shape; None if nothing."""
    if response.status_code != STATUS[code]:
        return f"status {response.status_code}, expected {STATUS[code]}"
    if allow is not None and {m.strip() for m in response.headers.get("allow", "").split(",")} != allow:
        return f"Allow: {response.headers.get('allow')!r}, expected {sorted(allow)}"
    if response.headers.get("content-type", "").split(";")[0] != "application/json":
        return f"content-type {response.headers.get('content-type')!r}"
    try:
        body = response.json()
    except ValueError:
        return "body is not JSON"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or set(body) != {"error"}:
        return 'body is not {"error": {...}}'
    if error.get("code") != code:
        return f"code {error.get('code')!r}, expected {code!r}"
    if not isinstance(error.get("message"), str) or not error["message"] or "Traceback" in error["message"]:
        return f"message {error.get('message')!r}"
    if set(error) - {"code", "message", "details"}:
        return f"unexpected members {sorted(set(error) - {'code', 'message', 'details'})}"
    if code == "validation_error":
        details = error.get("details")
        if not details or not all(isinstance(d, dict) and set(d) == {"field", "message"} for d in details):
            return f"details {details!r}"
    return None


def encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode().replace(b'"\\u0001deep"', b"[" * 1000 + b"]" * 1000)


async def send(client: httpx.AsyncClient, w: World, probe: Probe) -> httpx.Response:
    headers = {**(w.auth if probe.bearer else {}), **probe.headers}
    content = probe.content
    if probe.json is not NO_BODY:
        content = encode(probe.json)
        headers.setdefault("Content-Type", "application/json")
    return await client.request(probe.method, probe.path, content=content, params=probe.params, headers=headers)


async def run(w: World, probes: list[Probe]) -> list[str]:
    """Send every probe; what went wrong."""
    failures: list[str] = []
    async with httpx.AsyncClient(base_url=w.url, timeout=30) as client:
        for probe in probes:
            where = f"{probe.method} {short(probe.path)} [{probe.what}]"
            try:
                response = await send(client, w, probe)
            except httpx.TransportError:
                # uvicorn closes a kept-alive connection after a 500: blame the probe only if a new one fails too.
                try:
                    response = await send(client, w, probe)
                except httpx.TransportError as error:
                    failures.append(f"{where}: {error!r}")
                    continue
            problem = shape_problem(response, probe.code, probe.allow)
            if problem is not None:
                failures.append(f"{where}: {problem}: {response.text[:300]}")
    return failures


async def assert_answered_and_nothing_changes(w: World, probes: list[Probe]) -> None:
    before = await stored_rows(w.database_url)
    failures = await run(w, probes)
    after = await stored_rows(w.database_url)
    assert not failures, f"{len(failures)} of {len(probes)} requests not answered as API.md says:\n" + "\n".join(
        failures[:60]
    )
    # A failed login is recorded for the throttle (API.md): bookkeeping, not stored data.
    changed = [name for name in before if before[name] != after[name] and name != "login_failures"]
    assert changed == [], "malformed requests changed these tables"


# --- Tests ----------------------------------------------------------------------------------------


async def test_the_table_has_every_route(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.url) as client:
        document = (await client.get("/openapi.json")).json()
    documented = {path: frozenset(m.upper() for m in ops) for path, ops in document["paths"].items()}
    assert documented == ROUTES
    with_body = {
        (m.upper(), fill(path, world.mine))
        for path, ops in document["paths"].items()
        for m, op in ops.items()
        if "requestBody" in op
    }
    assert {(r.method, r.path) for r in body_routes(world)} == with_body


async def test_malformed_requests_get_their_error_and_change_nothing(world: World) -> None:
    await assert_answered_and_nothing_changes(world, table(world))


async def test_a_session_cookie_without_its_csrf_header_changes_nothing(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.url) as client:
        r = await client.post("/api/auth/login", json={"username": "author", "password": "correct horse battery"})
        assert r.status_code == 200, r.text
        session, csrf = r.cookies["nw_session"], r.cookies["nw_csrf"]
    await assert_answered_and_nothing_changes(world, list(csrf_probes(world, session, csrf)))


async def chunked(size: int) -> AsyncIterator[bytes]:
    piece = b" " * 65536
    for _ in range(size // len(piece) + 1):
        yield piece


async def test_bodies_over_one_mib_are_refused(world: World) -> None:
    before = await stored_rows(world.database_url)
    failures = []
    for route in body_routes(world):
        headers = {**(world.auth if route.bearer else {}), "Content-Type": "application/json"}
        oversized = encode({**route.valid, "instructions": "x" * MIB})
        for what, content in (("with its length", oversized), ("chunked, no length", chunked(MIB))):
            # A new connection each: the server may close one whose body it did not read.
            async with httpx.AsyncClient(base_url=world.url, timeout=30) as client:
                response = await client.request(route.method, route.path, headers=headers, content=content)
            problem = shape_problem(response, "payload_too_large")
            if problem is not None:
                failures.append(f"{route.method} {route.path} [{what}]: {problem}: {response.text[:200]}")
    assert not failures, "\n".join(failures)
    assert await stored_rows(world.database_url) == before


async def read_seqs(client: httpx.AsyncClient, path: str, **request: Any) -> tuple[int, list[int]]:
    """A stream's status and the ids of the events it sent before closing."""
    async with client.stream("GET", path, **request) as response:
        if response.status_code != 200:
            return response.status_code, []
        return 200, [int(e.id) async for e in parse_sse(response.aiter_lines()) if e.comment is None and e.id]


async def test_last_event_ids_that_are_no_event_ids(world: World) -> None:
    """Not a non-negative integer: a replay from 0; past every seq: nothing. A 200 either way."""
    everything = list(range(1, world.last_seq + 1))
    path = fill("/api/tasks/{task_id}/events", world.mine)
    cases = [(value, everything) for value in NOT_AN_EVENT_ID] + [(value, []) for value in PAST_EVERY_EVENT_ID]
    before = await stored_rows(world.database_url)
    failures = []
    async with httpx.AsyncClient(base_url=world.url, headers=world.auth, timeout=30) as client:
        for value, expected in cases:
            for how, request in (
                ("header", {"headers": {"Last-Event-ID": value.encode()}}),
                ("query", {"params": {"last_event_id": value}}),
            ):
                got = await read_seqs(client, path, **request)
                if got != (200, expected):
                    failures.append(f"{how} {short(value)}: {got}, expected {(200, expected)}")
        # The header wins over the query, even when it is no event id.
        got = await read_seqs(client, path, headers={"Last-Event-ID": "abc"}, params={"last_event_id": "3"})
        if got != (200, everything):
            failures.append(f"header 'abc' and query 3: {got}, expected {(200, everything)}")
        for value in (*NOT_AN_EVENT_ID, *PAST_EVERY_EVENT_ID):  # the user's stream replays nothing at all
            async with client.stream("GET", "/api/events", headers={"Last-Event-ID": value.encode()}) as response:
                first = await anext(parse_sse(response.aiter_lines()), None)
                if response.status_code != 200 or first is None or first.kind != "snapshot":
                    failures.append(f"/api/events, Last-Event-ID {short(value)}: {response.status_code} {first}")
    assert not failures, "\n".join(failures)
    assert await stored_rows(world.database_url) == before
