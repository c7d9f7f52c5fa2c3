"""Query parameters: a repeated known one or a malformed value is 422 on every route (both databases).

API.md: 422 ``validation_error`` for "a field or query parameter missing, of the wrong
type or out of range, an unknown filter value, a bad cursor", with ``details`` naming
the field. The long-form fuzz found ``?chapter_id=true&chapter_id=0.0`` answered 200
with no items. Decisions (README): a known parameter given twice is 422 even with equal
values; unknown parameters are ignored; the event streams' ``last_event_id`` keeps
API.md's rule that a value which is not one non-negative integer counts as 0, and a
repeated one counts as 0 too (a stream never fails on it).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import Api
from tests.engine_kit import wait_for_status

OTHER_PATH_PARAM = re.compile(r"{(?!novel_id}|task_id})\w+}")
TASK_LISTS = ("/api/tasks", "/api/novels/{novel_id}/tasks")
NOT_INTEGERS = ["true", "0.0", "1.5", "1e2", "+3", " 3", "3 ", "", "0x10", "1_000", "٣", "３", "abc", "--1", "3-"]


@pytest.fixture
async def world(api: Api) -> dict[str, Any]:
    """A user with a novel and one finished outline task (demo provider): something for every list to find."""
    headers = await api.register()
    novel = await api.novel(headers)
    r = await api.client.post(
        "/api/ai/generate-outline",
        json={"novel_id": novel["id"], "volumes": 1, "chapters_per_volume": 2},
        headers=headers,
    )
    assert r.status_code == 202, r.text
    task = await wait_for_status(api, headers, r.json()["id"], {"completed"})
    return {"headers": headers, "novel": novel, "task": task}


async def _get(api: Api, world: dict[str, Any], path: str, query: str, method: str = "GET") -> Any:
    url = path.format(novel_id=world["novel"]["id"], task_id=world["task"]["id"]) + "?" + query
    return await api.client.request(method, url, headers=world["headers"])


def _assert_422(r: Any, *fields: str) -> list[dict[str, str]]:
    assert r.status_code == 422, (r.request.url, r.status_code, r.text)
    error = r.json()["error"]
    assert error["code"] == "validation_error", error
    details: list[dict[str, str]] = error["details"]
    assert all(set(d) == {"field", "message"} and d["message"] for d in details), details
    assert sorted(d["field"] for d in details) == sorted(fields), (r.request.url, details)
    return details


async def test_the_fuzz_case_is_422_with_the_field(api: Api, world: dict[str, Any]) -> None:
    r = await _get(api, world, "/api/novels/{novel_id}/tasks", "chapter_id=true&chapter_id=0.0")
    _assert_422(r, "query.chapter_id")


@pytest.mark.parametrize("path", TASK_LISTS)
async def test_the_lists_still_answer_good_queries(api: Api, world: dict[str, Any], path: str) -> None:
    for query in ("", "limit=1", "limit=0001", "status=completed", "task_type=generate_outline", "limit=100"):
        r = await _get(api, world, path, query)
        assert r.status_code == 200, (query, r.text)
        assert [t["id"] for t in r.json()["items"]] == [world["task"]["id"]], query
    r = await _get(api, world, path, "status=failed")
    assert r.status_code == 200 and r.json()["items"] == []
    # A filter id of no task of the user's (zero, past 64 bits, 7 with leading zeros) finds nothing.
    name = "chapter_id" if "novel_id}" in path else "novel_id"
    for value in ("0", "9" * 25, "9" * 4300, "0" * 5000 + "7"):
        r = await _get(api, world, path, f"{name}={value}")
        assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}, (value[:30], r.text)


@pytest.mark.parametrize("path", TASK_LISTS)
async def test_malformed_integers_are_422(api: Api, world: dict[str, Any], path: str) -> None:
    names = ["limit", "chapter_id" if "novel_id}" in path else "novel_id"]
    for name in names:
        for value in NOT_INTEGERS:
            r = await _get(api, world, path, f"{name}={quote(value)}")
            _assert_422(r, f"query.{name}")


@pytest.mark.parametrize("path", TASK_LISTS)
async def test_out_of_range_unknown_values_and_bad_cursors_are_422(api: Api, world: dict[str, Any], path: str) -> None:
    id_name = "chapter_id" if "novel_id}" in path else "novel_id"
    cases = {
        "limit=0": "query.limit",
        "limit=101": "query.limit",
        "limit=-1": "query.limit",
        "limit=" + "9" * 5000: "query.limit",
        f"{id_name}=" + "9" * 4301: f"query.{id_name}",  # more digits than an integer is read from
        f"{id_name}=-1": f"query.{id_name}",
        "status=done": "query.status",
        "status=": "query.status",
        "status=COMPLETED": "query.status",
        "task_type=nothing": "query.task_type",
        "cursor=not-a-cursor": "query.cursor",
    }
    for query, field in cases.items():
        _assert_422(await _get(api, world, path, query), field)


@pytest.mark.parametrize("path", TASK_LISTS)
async def test_a_repeated_known_parameter_is_422_even_with_equal_values(
    api: Api, world: dict[str, Any], path: str
) -> None:
    id_name = "chapter_id" if "novel_id}" in path else "novel_id"
    for query, field in {
        "limit=5&limit=5": "query.limit",
        "limit=5&limit=6": "query.limit",
        "limit=abc&limit=5": "query.limit",
        "status=completed&status=completed": "query.status",
        "status=completed&status=failed": "query.status",
        "task_type=generate_outline&task_type=generate_outline": "query.task_type",
        f"{id_name}=1&{id_name}=1": f"query.{id_name}",
        f"{id_name}=&{id_name}=": f"query.{id_name}",
        "cursor=a&cursor=a": "query.cursor",
        "limit=1&li%6Dit=1": "query.limit",  # the same name once decoded
    }.items():
        details = _assert_422(await _get(api, world, path, query), field)
        assert "more than once" in details[0]["message"], details


@pytest.mark.parametrize("path", TASK_LISTS)
async def test_every_problem_is_reported_at_once(api: Api, world: dict[str, Any], path: str) -> None:
    r = await _get(api, world, path, "limit=0&status=x&task_type=a&task_type=b&unknown=1&unknown=2")
    _assert_422(r, "query.limit", "query.status", "query.task_type")


@pytest.mark.parametrize("path", TASK_LISTS)
async def test_unknown_parameters_are_ignored(api: Api, world: dict[str, Any], path: str) -> None:
    for query in ("foo=1", "foo=1&foo=2", "LIMIT=0&Status=x", "limit[]=1&limit[]=2", "=1&=2", "&&&"):
        r = await _get(api, world, path, query)
        assert r.status_code == 200, (query, r.text)
        assert [t["id"] for t in r.json()["items"]] == [world["task"]["id"]], query


async def test_every_route_with_query_parameters_rejects_repeats_and_malformed_values(
    api: Api, world: dict[str, Any]
) -> None:
    """Whatever query parameters the OpenAPI document lists, on whichever route: a repeat is 422, and so is
    a value that is not of the parameter's type. The query is read before the handler runs, so a path id
    that does not exist cannot hide it, and nothing is changed (the DELETE below deletes nothing)."""
    doc = (await api.client.get("/openapi.json")).json()
    seen: list[str] = []
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            params = [p for p in operation.get("parameters", []) if p["in"] == "query"]
            if not params:
                continue
            seen.append(path)
            url = OTHER_PATH_PARAM.sub("1", path)  # the novel and the task are real ones
            for param in params:
                name = param["name"]
                sample = _valid_sample(param["schema"])
                _assert_422(
                    await _get(api, world, url, f"{name}={sample}&{name}={sample}", method.upper()), f"query.{name}"
                )
                kinds = _schema_types(param["schema"])
                if "integer" in kinds:
                    _assert_422(await _get(api, world, url, f"{name}=0.0", method.upper()), f"query.{name}")
                if "boolean" in kinds:
                    for bad in ("yes", "1", "True", ""):
                        _assert_422(await _get(api, world, url, f"{name}={bad}", method.upper()), f"query.{name}")
    assert set(TASK_LISTS) <= set(seen), seen
    assert (await api.client.get(f"/api/novels/{world['novel']['id']}", headers=world["headers"])).status_code == 200


def _schema_types(schema: dict[str, Any]) -> set[str]:
    found = {schema["type"]} if isinstance(schema.get("type"), str) else set(schema.get("type", []))
    for sub in schema.get("anyOf", []) + schema.get("oneOf", []):
        found |= _schema_types(sub)
    return found


def _valid_sample(schema: dict[str, Any]) -> str:
    for sub in [schema, *schema.get("anyOf", [])]:
        if sub.get("enum"):
            return str(sub["enum"][0])
        if sub.get("type") == "integer":
            return str(max(1, sub.get("minimum", 1)))
        if sub.get("type") == "boolean":
            return "true"
    return "x"


# --- the event streams' last_event_id ----------------------------------------------------------


async def _replayed(api: Api, world: dict[str, Any], query: str) -> list[int]:
    r = await _get(api, world, "/api/tasks/{task_id}/events", query)
    assert r.status_code == 200, (query, r.text)
    return [int(line[3:]) for line in r.text.splitlines() if line.startswith("id:")]


async def test_a_streams_last_event_id_is_never_a_422(api: Api, world: dict[str, Any]) -> None:
    everything = await _replayed(api, world, "")
    assert everything == list(range(1, len(everything) + 1)) and len(everything) >= 4
    assert await _replayed(api, world, "last_event_id=2") == everything[2:]
    assert await _replayed(api, world, "last_event_id=0002") == everything[2:]
    # Not one non-negative integer: 0, as API.md says; repeated (equal or not) counts as 0 too.
    for query in (
        "last_event_id=abc",
        "last_event_id=0.0",
        "last_event_id=-1",
        "last_event_id=2&last_event_id=2",
        "last_event_id=2&last_event_id=3",
        "last_event_id=x&last_event_id=2",
    ):
        assert await _replayed(api, world, query) == everything, query
    # The header still wins over the query parameter, repeated or not.
    r = await api.client.get(
        f"/api/tasks/{world['task']['id']}/events?last_event_id=1&last_event_id=1",
        headers={**world["headers"], "Last-Event-ID": str(everything[-2])},
    )
    assert [int(line[3:]) for line in r.text.splitlines() if line.startswith("id:")] == everything[-1:]
