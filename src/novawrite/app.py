"""The application factory and its lifespan.

``create_app(settings)`` only assembles; the lifespan builds the database, the
provider, the event bus and the supervisor, exposes them as
``app.state.novawrite`` (a ``Services``: handlers reach it typed, as
``Call.services``), and tears them down in reverse.

``novawrite.app:app`` (for ``uvicorn novawrite.app:app``) is made on first access
from the environment, so importing this module reads nothing.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from novawrite import __version__, looplag
from novawrite.db import migrate
from novawrite.db.engine import Database
from novawrite.engine.bus import EventBus
from novawrite.engine.streams import EventStreams
from novawrite.engine.supervisor import Supervisor
from novawrite.errors import Unauthorized
from novawrite.generators.base import RetryPolicy
from novawrite.generators.kind import TaskKind
from novawrite.metrics import CONTENT_TYPE, MeteredProvider, Metrics
from novawrite.providers.base import Provider
from novawrite.security import Passwords, TokenSigner, load_or_create_secret
from novawrite.services.account_events import AccountListener
from novawrite.services.editing import Editing
from novawrite.services.export import Exports
from novawrite.services.items import Items
from novawrite.services.kinds import default_kinds
from novawrite.services.login_throttle import LoginThrottle
from novawrite.services.novels import Novels
from novawrite.services.tasks import Tasks
from novawrite.services.users import Users
from novawrite.settings import Settings
from novawrite.web import api_auth, api_export, api_items, api_novels, api_tasks
from novawrite.web.errors import EXCEPTION_HANDLERS
from novawrite.web.http import JSON
from novawrite.web.routing import ApiRouter, openapi_document
from novawrite.web.security_headers import SecurityHeaders

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
    login_throttle: LoginThrottle
    novels: Novels
    editing: Editing
    items: Items
    exports: Exports
    tasks: Tasks
    streams: EventStreams
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
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """``clock`` (Unix seconds) is the accounts' clock: token expiry and the login throttle's window."""
    kinds = dict(kinds if kinds is not None else default_kinds(settings.chapter_context_tokens))
    # The task routes first: Starlette matches routes in order, and the polling route is the hottest.
    routers: list[ApiRouter] = [
        api_tasks.router,
        api_auth.router,
        api_novels.router,
        api_items.router,
        api_export.router,
        api_tasks.generation_router(kinds),
    ]
    endpoints = [e for r in routers for e in r.endpoints]
    openapi = openapi_document(endpoints, title="NovaWrite", version=__version__)

    async def healthz(request: Request) -> Response:
        return JSON({"status": "ok"})

    async def readyz(request: Request) -> Response:
        services: Services = request.app.state.novawrite
        ok = await services.db.ping()
        return JSON({"status": "ok" if ok else "unavailable"}, status_code=200 if ok else 503)

    async def openapi_json(request: Request) -> Response:
        return JSON(openapi)

    async def metrics(request: Request) -> Response:
        services: Services = request.app.state.novawrite
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
        metrics.watch(bus, lambda: len(supervisor.runners), lambda: db.write_transactions)
        tasks = Tasks(supervisor.store, supervisor, kinds, settings.max_unfinished_per_user)
        passwords = Passwords(
            settings.argon2_time_cost, settings.argon2_memory_kib, threads=settings.password_hash_threads
        )
        users = Users(db, passwords, clock=clock, cache_seconds=settings.auth_cache_seconds)
        account_listener = None if db.is_sqlite else AccountListener(db.url, users)
        services = Services(
            settings=settings,
            db=db,
            signer=TokenSigner(secret, settings.token_ttl_seconds, clock=clock),
            provider=model,
            bus=bus,
            supervisor=supervisor,
            users=users,
            login_throttle=LoginThrottle(
                db,
                per_username=settings.login_failures_per_username,
                per_address=settings.login_failures_per_address,
                window_seconds=settings.login_window_seconds,
                clock=clock,
            ),
            novels=Novels(db),
            editing=Editing(db),
            items=Items(db),
            exports=Exports(db),
            tasks=tasks,
            streams=EventStreams(
                bus,
                tasks,
                ping_seconds=settings.stream_ping_seconds,
                max_seconds=settings.stream_max_seconds,
                per_user=settings.max_streams_per_user,
            ),
            kinds=kinds,
            metrics=metrics,
        )
        app.state.novawrite = services
        if settings.gc_tuning:
            tune_gc()
        await supervisor.start()
        looplag.start(settings.looplag_file)  # opt-in (NOVAWRITE_LOOPLAG_FILE): scripts/bench looplag
        app.state.account_listener = account_listener
        if account_listener is not None:
            account_listener.start()
        log.info("NovaWrite %s ready: provider=%s database=%s", __version__, model.name, db.dialect)
        try:
            yield {"novawrite": services}
        finally:
            bus.close_all()
            await supervisor.stop()
            if account_listener is not None:
                await account_listener.stop()
            passwords.close()
            if provider is None:
                await model.aclose()
            await db.dispose()

    return NovaWrite(routes=routes, exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)


class NovaWrite(Starlette):
    """Starlette, with the security headers outside everything (a 500 gets them too)."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


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
