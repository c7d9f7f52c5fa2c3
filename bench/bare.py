"""The polling benchmark's baseline: a bare Starlette app that answers with fixed JSON bytes.

``GET /api/tasks/{task_id}`` returns, for each task id it was given, the very
bytes NovaWrite sent for that task (the JSON file named by ``BENCH_BARE_BODIES``
maps ids to body text, read once at import), so both servers send bodies of the
same size through the same kind of route, a path with one parameter. It has no
authentication, no database and no ETag: it is the ceiling the polling goal is a
fraction of. Run it with the same uvicorn settings as NovaWrite
(``uvicorn bench.bare:app``; bench/common.py starts it).
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODIES: dict[str, bytes] = {
    task_id: body.encode() for task_id, body in orjson.loads(Path(os.environ["BENCH_BARE_BODIES"]).read_bytes()).items()
}
NOT_FOUND = b'{"error": {"code": "not_found", "message": "Task not found"}}'


async def task(request: Request) -> Response:
    body = BODIES.get(request.path_params["task_id"])
    if body is None:
        return Response(NOT_FOUND, status_code=404, media_type="application/json")
    return Response(body, media_type="application/json")


async def healthz(request: Request) -> Response:
    return Response(b'{"status": "ok"}', media_type="application/json")


app = Starlette(
    routes=[Route("/api/tasks/{task_id}", task, methods=["GET"]), Route("/healthz", healthz, methods=["GET"])]
)
