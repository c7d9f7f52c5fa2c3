"""The application factory and its lifespan.

``create_app(settings)`` only assembles; the lifespan builds the database, the
provider, the event bus and the supervisor, exposes them as
``app.state.novawrite`` (a ``Services``), and tears them down in reverse.

``novawrite.app:app`` (for ``uvicorn novawrite.app:app``) is made on first access
from the environment, so importing this module reads nothing.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from novawrite import __version__
from novawrite.db import migrate
from novawrite.db.engine import Database
from novawrite.engine.bus import EventBus
from novawrite.engine.supervisor import Supervisor
from novawrite.errors import Unauthorized
from novawrite.generators.base import RetryPolicy
from novawrite.generators.registry import TaskKind, default_kinds
from novawrite.metrics import CONTENT_TYPE, MeteredProvider, Metrics
from novawrite.providers.base import Provider
from novawrite.security import Passwords, TokenSigner, load_or_create_secret
from novawrite.services.novels import Novels
from novawrite.services.tasks import Tasks
from novawrite.services.users import Users
from novawrite.settings import Settings
from novawrite.web import api_auth, api_novels, api_tasks
from novawrite.web.errors import EXCEPTION_HANDLERS
from novawrite.web.http import JSON
from novawrite.web.routing import ApiRouter, openapi_document
from novawrite.web.sse import end_streams_on_server_exit, quiet_cut_streams

log = logging.getLogger("novawrite")


class SchemaBehind(RuntimeError):
    """The PostgreSQL schema is older than this code: run ``novawrite db upgrade``."""


@dataclass
class Services:
    settings: Settings
    db: Database
    signer: TokenSigner
    provider: Provider
    bus: EventBus
    supervisor: Supervisor
    users: Users
    novels: Novels
    tasks: Tasks
    kinds: Mapping[str, TaskKind]
    metrics: Metrics


def secret_path(settings: Settings) -> Path:
    database = settings.sqlite_path
    return database.with_name(database.name + ".secret") if database is not None else Path("novawrite.secret")


async def prepare_schema(settings: Settings) -> None:
    """SQLite: migrate to head. PostgreSQL: refuse to start while the schema is behind."""
    if settings.is_sqlite:
        path = settings.sqlite_path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(migrate.upgrade, settings.database_url)
        return
    current = await migrate.current_revision(settings.database_url)
    head = migrate.head_revision(settings.database_url)
    if current != head:
        raise SchemaBehind(
            f"The database schema is at {current or 'nothing'}, this NovaWrite needs {head}: "
            "run `novawrite db upgrade` (back up first), then start again."
        )


def _build_provider(settings: Settings) -> Provider:
    from novawrite.providers.factory import build_provider

    return build_provider(settings)


def create_app(
    settings: Settings,
    *,
    provider: Provider | None = None,
    kinds: Mapping[str, TaskKind] | None = None,
    retry: RetryPolicy | None = None,
) -> Starlette:
    kinds = dict(kinds if kinds is not None else default_kinds())
    # The task routes first: Starlette matches routes in order, and the polling route is the hottest.
    quiet_cut_streams()
    routers: list[ApiRouter] = [
        api_tasks.router,
        api_auth.router,
        api_novels.router,
        api_tasks.generation_router(kinds),
    ]
    endpoints = [e for r in routers for e in r.endpoints]
    openapi = openapi_document(endpoints, title="NovaWrite", version=__version__)

    async def healthz(request: Request) -> Response:
        return JSON({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ok = await request.app.state.novawrite.db.ping()
        return JSON({"status": "ok" if ok else "unavailable"}, status_code=200 if ok else 503)

    async def openapi_json(request: Request) -> Response:
        return JSON(openapi)

    async def metrics(request: Request) -> Response:
        services = request.app.state.novawrite
        token = settings.metrics_token
        if token is not None:
            scheme, _, sent = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
                raise Unauthorized("The metrics need NOVAWRITE_METRICS_TOKEN as a Bearer token")
        body = services.metrics.render(await services.supervisor.store.counts())
        return Response(body, media_type=CONTENT_TYPE)

    routes: list[BaseRoute] = [route for router in routers for route in router.routes()]
    routes += [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
    ]
    if settings.metrics_enabled:
        routes.append(Route("/metrics", metrics, methods=["GET"]))
    routes.extend(_ui_routes())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await prepare_schema(settings)
        secret = settings.secret_key or load_or_create_secret(secret_path(settings))
        db = Database(settings.database_url)
        model = provider if provider is not None else _build_provider(settings)
        bus = EventBus(settings.stream_queue_size)
        metrics = Metrics()
        supervisor = Supervisor(settings, db, bus, MeteredProvider(model, metrics), kinds, retry=retry, metrics=metrics)
        metrics.watch(bus, lambda: len(supervisor.runners))
        services = Services(
            settings=settings,
            db=db,
            signer=TokenSigner(secret, settings.token_ttl_seconds),
            provider=model,
            bus=bus,
            supervisor=supervisor,
            users=Users(db, Passwords(settings.argon2_time_cost, settings.argon2_memory_kib)),
            novels=Novels(db),
            tasks=Tasks(supervisor.store, supervisor, kinds, settings.max_unfinished_per_user),
            kinds=kinds,
            metrics=metrics,
        )
        app.state.novawrite = services
        if settings.gc_tuning:
            tune_gc()
        await supervisor.start()
        undo_exit_hook = end_streams_on_server_exit(bus.close_all)
        log.info("NovaWrite %s ready: provider=%s database=%s", __version__, model.name, db.dialect)
        try:
            yield {"novawrite": services}
        finally:
            undo_exit_hook()
            bus.close_all()
            await supervisor.stop()
            if provider is None:
                await model.aclose()
            await db.dispose()

    return Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)


_gc_tuned = False


def tune_gc() -> None:
    """Keep the cyclic garbage collector's full passes off the streams' latency (once per process).

    A full pass walks every tracked object and stops the event loop meanwhile: with
    1,000 open streams (about 150 objects each) that is 50 to 170 ms, measured, every
    time the heap has grown by a quarter. So the objects made at start-up (imported
    modules, the app: about 120,000) are frozen out of every pass, and a full pass
    comes after 100 middle-generation passes instead of 10. Memory freed by reference
    counting, which is nearly all of it, is unaffected. ``NOVAWRITE_GC_TUNING=false``
    keeps Python's defaults.
    """
    global _gc_tuned
    if _gc_tuned:
        return
    _gc_tuned = True
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 100)


def _ui_routes() -> list[BaseRoute]:
    try:
        from novawrite.web.ui import ui_routes
    except ImportError:
        return []
    return ui_routes()


app: Starlette  # made on first use, below


def __getattr__(name: str) -> Any:
    # `uvicorn novawrite.app:app`: build the app from the environment on first use.
    if name == "app":
        global app
        app = create_app(Settings.from_env())
        return app
    raise AttributeError(name)
