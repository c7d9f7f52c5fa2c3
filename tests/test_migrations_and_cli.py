"""Migrations on both databases, the CLI's db commands, and start-up rules."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from novawrite.app import SchemaBehind, prepare_schema, secret_path
from novawrite.db import migrate
from novawrite.db.engine import null_pool_engine
from novawrite.db.models import Base
from novawrite.security import load_or_create_secret
from novawrite.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


async def _tables(url: str) -> set[str]:
    engine = null_pool_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def _diff(url: str) -> list[object]:
    engine = null_pool_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()


def test_upgrade_downgrade_upgrade_and_no_autogenerate_diff(database_url: str) -> None:
    assert asyncio.run(_diff(database_url)) == []
    migrate.downgrade(database_url, "base")
    assert asyncio.run(_tables(database_url)) <= {"alembic_version"}
    migrate.upgrade(database_url)
    assert {"users", "novels", "tasks", "task_events"} <= asyncio.run(_tables(database_url))
    assert asyncio.run(migrate.current_revision(database_url)) == migrate.head_revision(database_url)
    assert asyncio.run(_diff(database_url)) == []


def test_alembic_command_line_from_the_repo_root(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env = {**os.environ, "NOVAWRITE_DATABASE_URL": url}
    alembic = Path(sys.executable).with_name("alembic")
    subprocess.run([str(alembic), "upgrade", "head"], cwd=ROOT, env=env, check=True, capture_output=True)
    assert asyncio.run(migrate.current_revision(url)) == migrate.head_revision(url)


def test_a_checkout_runs_the_scripts_in_alembic() -> None:
    # Only a built package has novawrite/migrations/ (setup.py copies alembic/ into it; the copy is
    # checked in test_installed_package.py): an editable install, and so this suite, runs alembic/ itself.
    assert migrate.script_location() == ROOT / "alembic"
    assert not (ROOT / "src" / "novawrite" / "migrations").exists()


def test_novawrite_db_upgrade_and_backup(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    env = {**os.environ, "NOVAWRITE_DATABASE_URL": f"sqlite+aiosqlite:///{db}"}
    run = [sys.executable, "-m", "novawrite"]
    subprocess.run([*run, "db", "upgrade"], env=env, check=True, capture_output=True)
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO users (username, password_hash, created_at) VALUES ('keep', 'x', '2026-01-01')")
    backup = tmp_path / "copies" / "backup.db"
    done = subprocess.run([*run, "db", "backup", str(backup)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(backup) as conn:
        assert conn.execute("SELECT username FROM users").fetchall() == [("keep",)]
    again = subprocess.run([*run, "db", "backup", str(backup)], env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "exists" in again.stderr


def test_serve_refuses_a_postgres_schema_that_is_behind(postgres_url: str) -> None:
    database_url = postgres_url
    migrate.downgrade(database_url, "base")
    with pytest.raises(SchemaBehind, match="novawrite db upgrade"):
        asyncio.run(prepare_schema(Settings(database_url=database_url)))
    env = {**os.environ, "NOVAWRITE_DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "novawrite", "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "db upgrade" in done.stderr


def test_sqlite_is_migrated_on_start(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'new.db'}"
    asyncio.run(prepare_schema(Settings(database_url=url)))
    assert asyncio.run(migrate.current_revision(url)) == migrate.head_revision(url)


def test_secret_is_random_kept_and_private(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    path = secret_path(settings)
    assert path == tmp_path / "a.db.secret"
    first = load_or_create_secret(path)
    assert len(first) >= 40 and load_or_create_secret(path) == first
    assert path.stat().st_mode & 0o077 == 0
    other = load_or_create_secret(tmp_path / "b.secret")
    assert other != first


def test_settings_from_env() -> None:
    s = Settings.from_env({})
    assert s.provider == "demo" and s.max_concurrency == 5 and s.max_unfinished_per_user == 50
    s = Settings.from_env({"GEMINI_API_KEY": "k"})
    assert s.provider == "gemini" and s.gemini_model == "gemini-3.8-flash"
    s = Settings.from_env({"GOOGLE_API_KEY": "k", "NOVAWRITE_MAX_CONCURRENCY": "7"})
    assert s.gemini_api_key == "k" and s.max_concurrency == 7
    assert Settings.from_env({"NOVAWRITE_PROVIDER_MAX_RETRIES": "9"}).provider_max_retries == 9
    assert Settings.from_env({"NOVAWRITE_ARGON2_TIME_COST": "1"}).argon2_time_cost == 1
    from novawrite.settings import SettingsError

    for env in (
        {"NOVAWRITE_MAX_CONCURRENCY": "many"},
        {"NOVAWRITE_MAX_CONCURRENCY": "0"},
        {"NOVAWRITE_PROVIDER": "gpt"},
        {"NOVAWRITE_PROVIDER": "gemini"},
        {"NOVAWRITE_PROVIDER": "openai"},
        {"NOVAWRITE_PROVIDER_MAX_RETRIES": "-1"},
    ):
        with pytest.raises(SettingsError):
            Settings.from_env(env)


def test_processes_starting_at_once_share_one_whole_secret(tmp_path: Path) -> None:
    # `serve --workers N` starts N processes that may all make the secret at once:
    # each must get the same, complete one (never the empty file another has just made).
    with ProcessPoolExecutor(max_workers=4) as pool:
        for round_ in range(10):
            path = tmp_path / f"{round_}.secret"
            secrets = set(pool.map(load_or_create_secret, [path] * 8))
            assert len(secrets) == 1 and len(secrets.pop()) >= 40
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no drafts left behind
