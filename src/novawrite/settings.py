"""Settings, read once from the environment into one frozen object.

Nothing else in NovaWrite reads ``os.environ``: the object built here is passed
explicitly to ``create_app`` and from there to whatever needs it, so tests build
their own without touching the process environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_GEMINI_MODEL = "gemini-3.8-flash"


class SettingsError(ValueError):
    """An environment variable holds a value NovaWrite cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _optional_int(env: Mapping[str, str], name: str, minimum: int = 0) -> int | None:
    """An integer when the variable is set (and valid), None when it is unset or empty."""
    if not env.get(name, "").strip():
        return None
    return _int(env, name, 0, minimum)


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///novawrite.db"
    secret_key: str | None = None

    max_concurrency: int = 5
    #: Generations running at once over every process on the database (None: only each process's cap).
    max_concurrency_global: int | None = None
    #: None: no per-user cap, a lone author may use every slot (fairness orders users, see Supervisor._pick).
    max_running_per_user: int | None = None
    max_unfinished_per_user: int = 50
    max_attempts: int = 3
    lease_seconds: float = 30.0
    sweep_seconds: float = 10.0
    shutdown_grace_seconds: float = 5.0

    provider: str = "demo"
    gemini_api_key: str | None = None
    gemini_model: str = DEFAULT_GEMINI_MODEL
    gemini_base_url: str | None = None
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    openai_model: str | None = None
    demo_delay_ms: int = 30
    provider_timeout_seconds: float = 120.0
    provider_max_retries: int = 4
    # A task waiting for a provider's quota (a long or per-day 429) fails after this much waiting in total.
    quota_max_wait_seconds: float = 86400.0
    # A chapter prompt's size in estimated tokens (generators.chapter_context.estimate_tokens).
    chapter_context_tokens: int = 8000

    token_ttl_seconds: int = 24 * 3600
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    cookie_secure: bool = False
    # Password hashes computed at once (a dedicated thread pool): a burst of logins queues there.
    password_hash_threads: int = 1
    login_failures_per_username: int = 10
    login_failures_per_address: int = 100
    login_window_seconds: int = 15 * 60
    # How long a process trusts its cached copy of an account's token state when it has
    # heard no change (PostgreSQL NOTIFY says so at once; this bounds a lost notification).
    auth_cache_seconds: float = 30.0

    # novawrite serve's HTTP limits (uvicorn; see docs/deploy.md)
    limit_concurrency: int = 10_000
    keep_alive_seconds: int = 5
    max_header_bytes: int = 64 * 1024
    header_timeout_seconds: float = 10.0

    stream_ping_seconds: float = 15.0
    stream_max_seconds: float = 300.0
    max_streams_per_user: int = 20
    stream_queue_size: int = 256
    chunk_flush_seconds: float = 0.25
    chunk_flush_bytes: int = 2048

    access_log: bool = False
    metrics_enabled: bool = True
    metrics_token: str | None = None
    gc_tuning: bool = True
    #: Diagnostics (scripts/bench looplag): measure the event loop's lag into this file.
    looplag_file: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        gemini_key = env.get("GEMINI_API_KEY") or env.get("GOOGLE_API_KEY") or None
        provider = (env.get("NOVAWRITE_PROVIDER") or ("gemini" if gemini_key else "demo")).strip()
        if provider not in {"gemini", "openai", "demo"}:
            raise SettingsError(f"NOVAWRITE_PROVIDER must be gemini, openai or demo, got {provider!r}")
        if provider == "gemini" and not gemini_key:
            raise SettingsError("NOVAWRITE_PROVIDER=gemini needs GEMINI_API_KEY (or GOOGLE_API_KEY)")
        if provider == "openai" and not env.get("NOVAWRITE_OPENAI_BASE_URL"):
            raise SettingsError("NOVAWRITE_PROVIDER=openai needs NOVAWRITE_OPENAI_BASE_URL")
        return cls(
            database_url=env.get("NOVAWRITE_DATABASE_URL") or cls.database_url,
            secret_key=env.get("NOVAWRITE_SECRET_KEY") or None,
            max_concurrency=_int(env, "NOVAWRITE_MAX_CONCURRENCY", 5, minimum=1),
            max_concurrency_global=_optional_int(env, "NOVAWRITE_MAX_CONCURRENCY_GLOBAL", minimum=1),
            max_running_per_user=_optional_int(env, "NOVAWRITE_MAX_RUNNING_PER_USER", minimum=1),
            max_unfinished_per_user=_int(env, "NOVAWRITE_MAX_UNFINISHED_PER_USER", 50, minimum=1),
            max_attempts=_int(env, "NOVAWRITE_MAX_ATTEMPTS", 3, minimum=1),
            lease_seconds=_float(env, "NOVAWRITE_LEASE_SECONDS", 30.0),
            sweep_seconds=_float(env, "NOVAWRITE_SWEEP_SECONDS", 10.0),
            shutdown_grace_seconds=_float(env, "NOVAWRITE_SHUTDOWN_GRACE_SECONDS", 5.0),
            provider=provider,
            gemini_api_key=gemini_key,
            gemini_model=env.get("NOVAWRITE_GEMINI_MODEL") or DEFAULT_GEMINI_MODEL,
            gemini_base_url=env.get("NOVAWRITE_GEMINI_BASE_URL") or None,
            openai_base_url=env.get("NOVAWRITE_OPENAI_BASE_URL") or None,
            openai_api_key=env.get("NOVAWRITE_OPENAI_API_KEY") or None,
            openai_model=env.get("NOVAWRITE_OPENAI_MODEL") or None,
            demo_delay_ms=_int(env, "NOVAWRITE_DEMO_DELAY_MS", 30),
            provider_timeout_seconds=_float(env, "NOVAWRITE_PROVIDER_TIMEOUT_SECONDS", 120.0),
            provider_max_retries=_int(env, "NOVAWRITE_PROVIDER_MAX_RETRIES", 4, minimum=0),
            quota_max_wait_seconds=_float(env, "NOVAWRITE_QUOTA_MAX_WAIT_SECONDS", 86400.0),
            chapter_context_tokens=_int(env, "NOVAWRITE_CHAPTER_CONTEXT_TOKENS", 8000, minimum=2000),
            token_ttl_seconds=_int(env, "NOVAWRITE_TOKEN_TTL_SECONDS", 24 * 3600, minimum=1),
            argon2_time_cost=_int(env, "NOVAWRITE_ARGON2_TIME_COST", 3, minimum=1),
            argon2_memory_kib=_int(env, "NOVAWRITE_ARGON2_MEMORY_KIB", 65536, minimum=8),
            cookie_secure=_bool(env, "NOVAWRITE_COOKIE_SECURE", False),
            password_hash_threads=_int(
                env, "NOVAWRITE_PASSWORD_HASH_THREADS", max(1, (os.cpu_count() or 2) // 2), minimum=1
            ),
            login_failures_per_username=_int(env, "NOVAWRITE_LOGIN_FAILURES_PER_USERNAME", 10, minimum=1),
            login_failures_per_address=_int(env, "NOVAWRITE_LOGIN_FAILURES_PER_ADDRESS", 100, minimum=1),
            login_window_seconds=_int(env, "NOVAWRITE_LOGIN_WINDOW_SECONDS", 15 * 60, minimum=1),
            auth_cache_seconds=_float(env, "NOVAWRITE_AUTH_CACHE_SECONDS", 30.0),
            limit_concurrency=_int(env, "NOVAWRITE_LIMIT_CONCURRENCY", 10_000, minimum=1),
            keep_alive_seconds=_int(env, "NOVAWRITE_KEEP_ALIVE_SECONDS", 5, minimum=1),
            max_header_bytes=_int(env, "NOVAWRITE_MAX_HEADER_BYTES", 64 * 1024, minimum=1024),
            header_timeout_seconds=_float(env, "NOVAWRITE_HEADER_TIMEOUT_SECONDS", 10.0),
            stream_ping_seconds=_float(env, "NOVAWRITE_STREAM_PING_SECONDS", 15.0),
            stream_max_seconds=_float(env, "NOVAWRITE_STREAM_MAX_SECONDS", 300.0),
            max_streams_per_user=_int(env, "NOVAWRITE_MAX_STREAMS_PER_USER", 20, minimum=1),
            access_log=_bool(env, "NOVAWRITE_ACCESS_LOG", False),
            metrics_enabled=_bool(env, "NOVAWRITE_METRICS", True),
            metrics_token=env.get("NOVAWRITE_METRICS_TOKEN") or None,
            gc_tuning=_bool(env, "NOVAWRITE_GC_TUNING", True),
            looplag_file=env.get("NOVAWRITE_LOOPLAG_FILE") or None,
        )

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None for PostgreSQL and in-memory SQLite."""
        if not self.is_sqlite:
            return None
        _, _, rest = self.database_url.partition(":///")
        path = rest.split("?", 1)[0]
        if not path or path == ":memory:":
            return None
        return Path(path)
