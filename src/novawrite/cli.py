"""The ``novawrite`` command: serve, and database upkeep (upgrade, backup).

``serve --workers N`` runs N uvicorn worker processes on one listening socket
(uvicorn's own process manager: it restarts a worker that dies and passes
SIGTERM on to every worker). Each worker builds the whole application, so each
has its own supervisor, owner id, pools and event listener, exactly as N
separate ``novawrite serve`` processes would; that needs PostgreSQL, and SQLite
(one writing process by design) is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
import sys
from pathlib import Path
from typing import Any

from novawrite.settings import Settings, SettingsError


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from novawrite.db import migrate

    if args.workers > 1 and (settings.is_sqlite or args.reload):
        why = (
            "SQLite has one writing process: serve it with one worker, or use PostgreSQL"
            if settings.is_sqlite
            else "--reload runs one process"
        )
        print(f"novawrite: --workers {args.workers} is refused: {why}.", file=sys.stderr)
        return 2
    if not settings.is_sqlite and not migrate.schema_is_current(settings.database_url):
        print(
            "novawrite: the PostgreSQL schema is behind this version. Back up the database, "
            "run `novawrite db upgrade`, then start again.",
            file=sys.stderr,
        )
        return 2
    uvicorn.run(
        "novawrite.app:app",
        host=args.host,
        port=args.port,
        reload=args.reload,
        # Each worker imports the app anew (an import string is what uvicorn's workers need).
        workers=args.workers,
        log_config=_log_config(),
        access_log=settings.access_log,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 5,
        log_level="info",
        # Bounds on what one client can hold (docs/deploy.md says what a proxy in front adds).
        http=_http_protocol(),
        limit_concurrency=settings.limit_concurrency,
        timeout_keep_alive=settings.keep_alive_seconds,
        h11_max_incomplete_event_size=settings.max_header_bytes,
    )
    return 0


def _http_protocol() -> type[asyncio.Protocol] | str:
    """httptools with a bound on request heads (novawrite.web.protocol); h11, bounded by uvicorn, without it."""
    try:
        from novawrite.web.protocol import LimitedHttpToolsProtocol
    except ImportError:
        return "h11"
    return LimitedHttpToolsProtocol


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus NovaWrite's own lines (task transitions) with the process id.

    Given to uvicorn rather than set up here because uvicorn applies it again in every
    worker process, which starts with Python's default logging.
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["novawrite"] = {"format": "%(asctime)s %(levelname)s [%(process)d] %(name)s %(message)s"}
    config["handlers"]["novawrite"] = {
        "formatter": "novawrite",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["root"] = {"handlers": ["novawrite"], "level": "INFO"}
    return config


def _workers(value: str) -> int:
    try:
        workers = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if workers < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return workers


def _upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from novawrite.db import migrate

    migrate.upgrade(settings.database_url, args.revision)
    print(f"database at {args.revision}")
    return 0


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    from novawrite.db import migrate

    database = settings.sqlite_path
    if database is None:
        print("novawrite: `db backup` copies a SQLite database; for PostgreSQL use pg_dump.", file=sys.stderr)
        return 2
    destination = Path(args.path)
    if destination.exists():
        print(f"novawrite: {destination} exists; choose a new path", file=sys.stderr)
        return 2
    migrate.backup_sqlite(database, destination)
    print(f"backed up {database} to {destination}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="novawrite", description="NovaWrite: AI novel-writing assistant")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the service and the web UI")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--reload", action="store_true", help="restart on code changes (development)")
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="worker processes, each with its own supervisor (PostgreSQL only; see docs/deploy.md)",
    )
    serve.set_defaults(run=_serve)
    db = commands.add_parser("db", help="database upkeep")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply migrations")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(run=_upgrade)
    backup = db_commands.add_parser("backup", help="a consistent copy of the SQLite database")
    backup.add_argument("path")
    backup.set_defaults(run=_backup)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"novawrite: {exc}", file=sys.stderr)
        return 2
    return int(args.run(args, settings))


if __name__ == "__main__":
    raise SystemExit(main())
