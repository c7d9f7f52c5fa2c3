"""Fuzz: schemathesis against ``/openapi.json``, every operation, authenticated.

Every case goes to a real server (``world``: one per database) with the seeded
user's bearer token, and schemathesis' checks apply: no 5xx, status codes,
content types and bodies (errors included) as the document says, schema-valid
requests accepted, schema-invalid ones rejected. Two cases in three put the ids
of real objects in the path (the user's own, or another user's), and half of the
schema-valid bodies name the user's real novel and chapter, so generation is
submitted, not only refused. The event streams get ``Last-Event-ID`` and
``last_event_id`` values of every kind as well (API.md's, not in the document).

The schema is what the app serves at ``/openapi.json``, read in-process at import
so that pytest can make one test per operation; the server serves the same one
(``test_served_document_is_the_fuzzed_one``).

Short form: a few examples per operation after schemathesis' own example and
coverage cases; the long form many more.
"""

from __future__ import annotations

import zlib
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig
from starlette.testclient import TestClient

from novawrite.app import create_app
from novawrite.settings import Settings
from tests.reliability.conftest import scale
from tests.reliability.inputs import World, world  # noqa: F401 (fixture)

pytestmark = pytest.mark.server

EXAMPLES = int(scale(8, 300))


def served_document() -> dict[str, Any]:
    # Without a lifespan: /openapi.json needs no database.
    with_no_lifespan = TestClient(create_app(Settings(database_url="sqlite+aiosqlite:///:memory:")))
    return dict(with_no_lifespan.get("/openapi.json").json())


DOCUMENT = served_document()
#: An invalid body may also be too large to read at all: 413 (API.md), which the
#: document lists but schemathesis' rejection check does not expect by default.
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}}}),
)

#: Last-Event-ID values: seqs, past-the-end, and what is not a non-negative integer.
LAST_EVENT_IDS = (
    "1",
    "2",
    "0",
    "-1",
    "",
    "abc",
    "1.5",
    "+1",
    "0x10",
    "١",
    "é",
    "1e3",
    "9" * 25,
    str(2**31),
    str(2**63),
    "-" + "9" * 20,
)
#: Whose ids go in the path: schemathesis' own strings, the user's, or another user's.
WHOSE = ("generated", "mine", "theirs")
NOVEL_PATH = "/api/novels/{novel_id}"


def pick(case: Any, options: tuple[Any, ...], salt: str) -> Any:
    """One of ``options``, chosen by the case's content: varied, and the same on a replay.

    (``@schema.given`` would draw it, but turns off schemathesis' coverage phase.)
    """
    content = repr((salt, case.method, case.path_parameters, case.query, case.body)).encode()
    return options[zlib.crc32(content) % len(options)]


def new_novel(world: World) -> str:
    r = httpx.post(f"{world.url}/api/novels", json={"title": "To delete"}, headers=world.auth)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def aim_path(case: Any, world: World, whose: str) -> None:
    if whose == "generated" or not case.path_parameters:
        return
    ids = world.mine if whose == "mine" else world.theirs
    if case.method == "DELETE" and case.path == NOVEL_PATH and whose == "mine":
        # Deleting the seeded novel would leave nothing real for the operations after it.
        case.path_parameters = {"novel_id": new_novel(world)}
        return
    case.path_parameters = {name: ids[name] for name in case.path_parameters}


def aim_body(case: Any, world: World) -> None:
    """Point a schema-valid body at the user's novel and chapter, so that it is accepted."""
    if not (case.meta and case.meta.generation.mode.is_positive and isinstance(case.body, dict)):
        return
    for name in ("novel_id", "chapter_id"):
        if name in case.body:
            case.body[name] = int(world.mine[name])
    for name in CHAPTER_REFERENCES:
        if case.body.get(name) is not None:
            case.body[name] = int(world.mine["chapter_id"])
    if isinstance(case.body.get("chapter_ids"), list):
        case.body["chapter_ids"] = [int(world.mine["chapter_id"])]


#: Body members naming a chapter of the path's novel: any other id is 422 (validation_error).
CHAPTER_REFERENCES = ("planted_chapter_id", "payoff_chapter_id")


def names_a_chapter(case: Any) -> bool:
    """Whether the body names a chapter: even the seeded one may be gone (a fuzzed DELETE), so 422 is fair."""
    body = case.body if isinstance(case.body, dict) else {}
    return any(body.get(name) is not None for name in CHAPTER_REFERENCES)


def stream_resume(case: Any) -> dict[str, Any]:
    """Extra request arguments: where to resume an event stream from, by header, query or not at all."""
    if not case.path.endswith("/events"):
        return {}
    last_event_id = pick(case, LAST_EVENT_IDS, "last-event-id")
    how = pick(case, ("header", "query", "none"), "how")
    if how == "header":
        return {"headers": {"Last-Event-ID": last_event_id.encode()}}
    if how == "query":
        return {"params": {"last_event_id": last_event_id}}
    return {}


def test_served_document_is_the_fuzzed_one(world: World) -> None:
    assert httpx.get(f"{world.url}/openapi.json").json() == DOCUMENT


@hypothesis.settings(max_examples=EXAMPLES, database=None, deadline=None)
@schema.parametrize()
def test_fuzz(case: Any, world: World) -> None:
    aim_path(case, world, pick(case, WHOSE, "whose"))
    if pick(case, (True, False), "body"):
        aim_body(case, world)
    extra = stream_resume(case)
    headers = {**world.auth, **extra.pop("headers", {})}
    # A cursor is opaque: only the API can make a valid one, so a schema-valid
    # string may still be refused (422), as API.md says.
    # So may a chapter reference that names no chapter of the novel.
    refused = (case.query and case.query.get("cursor") is not None) or names_a_chapter(case)
    excluded = [positive_data_acceptance] if refused else []
    case.call_and_validate(base_url=world.url, headers=headers, excluded_checks=excluded, **extra)
