"""The ``novawrite`` command: serve, and database upkeep (upgrade, backup)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from novawrite.settings import Settings, SettingsError


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from novawrite.db import migrate

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
        access_log=settings.access_log,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 5,
        log_level="info",
    )
    return 0


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
