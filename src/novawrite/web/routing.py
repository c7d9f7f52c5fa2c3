"""Declaring API endpoints once: the route, its models, and its OpenAPI entry.

``ApiRouter.route`` wraps a handler so that authentication (checked before the
body is looked at), body and query validation happen the same way everywhere,
and records the models so ``openapi_document`` is generated from the very
models that validate requests.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from novawrite.web.auth import CurrentUser, authenticate, public_request
from novawrite.web.http import BODY_STRING_PATTERN, parse_body, require_json_body
from novawrite.web.query import parse_query

if TYPE_CHECKING:  # novawrite.app imports the web package: no cycle at run time
    from novawrite.app import Services


@dataclass
class Call:
    """What a handler receives: the request, the user and the validated input."""

    request: Request
    user: CurrentUser
    body: Any = None
    query: Any = None

    @property
    def services(self) -> Services:
        """The lifespan's state (``novawrite.app.Services``)."""
        services: Services = self.request.app.state.novawrite
        return services

    def path_param(self, name: str) -> str:
        return str(self.request.path_params[name])


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    auth: bool
    extra_statuses: tuple[int, ...]
    #: The response's media type, or several when a query chooses (an export's formats).
    media_type: str | tuple[str, ...]


class ApiRouter:
    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        auth: bool = True,
        errors: tuple[int, ...] = (),
        media_type: str | tuple[str, ...] = "application/json",
    ) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method, path, handler, summary, self.tag, body, query, response, status, auth, errors, media_type
                )
            )
            return handler

        return decorate

    def routes(self) -> list[Route]:
        """One route per path, taking all of that path's methods, so that a 405 lists them all in ``Allow``."""
        by_path: dict[str, dict[str, Endpoint]] = {}
        for e in self.endpoints:
            by_path.setdefault(e.path, {})[e.method] = e
        return [Route(path, _dispatch(specs), methods=list(specs), name=path) for path, specs in by_path.items()]


def _dispatch(specs: dict[str, Endpoint]) -> Callable[[Request], Awaitable[Response]]:
    endpoints = {method: _endpoint(spec) for method, spec in specs.items()}
    if "GET" in endpoints:
        endpoints["HEAD"] = endpoints["GET"]  # Starlette routes HEAD wherever GET goes

    async def dispatch(request: Request) -> Response:
        return await endpoints[request.method](request)

    return dispatch


def _endpoint(spec: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        user = await authenticate(request) if spec.auth else public_request(request)
        require_json_body(request)  # after 401 and 403, before anything reads the body
        body = await parse_body(request, spec.body) if spec.body is not None else None
        query = parse_query(request.query_params, spec.query) if spec.query is not None else None
        return await spec.handler(Call(request, user, body, query))

    endpoint.__name__ = spec.handler.__name__
    return endpoint


# --- OpenAPI ------------------------------------------------------------------------

_PARAM = re.compile(r"{(\w+)(?::\w+)?}")

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
        }
    },
}


def openapi_document(endpoints: list[Endpoint], *, title: str, version: str) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    ref = "#/components/schemas/{model}"

    def schema_ref(model: type[BaseModel], mode: str, *, storable: bool = False) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template=ref, mode=mode)  # type: ignore[arg-type]
        if storable:
            _storable(schema)
        for name, sub in schema.pop("$defs", {}).items():
            schemas.setdefault(name, sub)
        schemas.setdefault(model.__name__, schema)
        return {"$ref": ref.format(model=model.__name__)}

    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        path = _PARAM.sub(r"{\1}", e.path)
        operation: dict[str, Any] = {
            "summary": e.summary,
            "tags": [e.tag],
            "operationId": f"{e.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_')}",
        }
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(path)
        ]
        if e.query is not None:
            for name, prop in e.query.model_json_schema(ref_template=ref).get("properties", {}).items():
                parameters.append({"name": name, "in": "query", "required": False, "schema": prop})
        if parameters:
            operation["parameters"] = parameters
        if e.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_ref(e.body, "validation", storable=True)}},
            }
        responses: dict[str, Any] = {}
        if e.status == 204:
            responses["204"] = {"description": "No content"}
        elif e.response is not None:
            responses[str(e.status)] = {
                "description": e.summary,
                "content": {e.media_type: {"schema": schema_ref(e.response, "serialization")}},
            }
        else:
            media_types = (e.media_type,) if isinstance(e.media_type, str) else e.media_type
            responses[str(e.status)] = {"description": e.summary, "content": {m: {"schema": {}} for m in media_types}}
        statuses = set(e.extra_statuses) | {404, 405, 500}
        if e.auth:
            statuses |= {401}
        if e.method in {"POST", "PUT", "PATCH", "DELETE"}:
            statuses |= {403, 415}  # CSRF token or same-origin check; a body that is not JSON
        if e.body is not None:
            statuses |= {400, 413, 422}
        if e.query is not None:
            statuses |= {422}
        for status in sorted(statuses):
            responses[str(status)] = {
                "description": "Error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        operation["responses"] = responses
        if e.auth:
            operation["security"] = [{"bearer": []}, {"cookie": []}]
        paths.setdefault(path, {})[e.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "nw_session"},
            },
        },
    }


def _storable(schema: dict[str, Any]) -> None:
    """Publish what ``parse_body`` enforces on a body: 64-bit integers and strings without NUL."""
    for sub in _subschemas(schema):
        types = _types(sub)
        if "integer" in types:
            sub.setdefault("format", "int64")
        if "string" in types and not {"pattern", "enum", "const"} & sub.keys():
            sub["pattern"] = BODY_STRING_PATTERN


def _types(schema: dict[str, Any]) -> list[str]:
    declared = schema.get("type", [])
    return [declared] if isinstance(declared, str) else list(declared)


def _subschemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """``schema`` and every schema nested in it."""
    found = [schema]
    for keyword, value in schema.items():
        if keyword in ("properties", "$defs") and isinstance(value, dict):
            children = list(value.values())
        elif keyword in ("anyOf", "oneOf", "allOf", "prefixItems") and isinstance(value, list):
            children = value
        elif keyword in ("items", "additionalProperties", "not") and isinstance(value, dict):
            children = [value]
        else:
            continue
        found += [sub for child in children for sub in _subschemas(child)]
    return found
