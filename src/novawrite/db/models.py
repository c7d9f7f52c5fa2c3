"""The schema: SQLAlchemy 2 typed models.

Alembic migrations are the only way the schema changes; a test checks that
autogenerate finds no difference between these models and the migrations.

Tasks have an integer primary key ``pk`` for joins, ordering and cursors, and
the public, unguessable ``id`` (a UUID string) that the API shows.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; BigInteger elsewhere.
IntPK = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class TaskStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED_STATUSES


FINISHED_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
#: A pending or running task: the one spelling of "active" (the SQL form for raw statements and the partial index).
ACTIVE_STATUSES = (TaskStatus.PENDING.value, TaskStatus.RUNNING.value)
ACTIVE_SQL = "status IN ({})".format(", ".join(f"'{status}'" for status in ACTIVE_STATUSES))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(IntPK, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Raised by a password change: tokens carry the value they were issued under, and
    # one issued under an older value is refused (novawrite.services.users).
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RevokedToken(Base):
    """A session ended by logout before its expiry; kept until then, and refused meanwhile."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoginFailure(Base):
    """One failed login, for throttling (novawrite.services.login_throttle); kept for its window."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_username_failed_at", "username", "failed_at"),
        Index("ix_login_failures_address_failed_at", "address", "failed_at"),
    )

    id: Mapped[int] = mapped_column(IntPK, primary_key=True)
    username: Mapped[str] = mapped_column(String(256))
    address: Mapped[str] = mapped_column(String(100))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Novel(Base):
    __tablename__ = "novels"

    id: Mapped[int] = mapped_column(IntPK, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    genre: Mapped[str] = mapped_column(String(100), default="")
    synopsis: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(8), default="zh")
    outline: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    volumes: Mapped[list[Volume]] = relationship(
        back_populates="novel", order_by="Volume.number", cascade="all, delete-orphan", passive_deletes=True
    )
    characters: Mapped[list[Character]] = relationship(
        order_by="Character.id", cascade="all, delete-orphan", passive_deletes=True
    )
    world_settings: Mapped[list[WorldSetting]] = relationship(
        order_by="WorldSetting.id", cascade="all, delete-orphan", passive_deletes=True
    )
    timeline_events: Mapped[list[TimelineEvent]] = relationship(
        order_by="(TimelineEvent.position, TimelineEvent.id)", cascade="all, delete-orphan", passive_deletes=True
    )
    foreshadowings: Mapped[list[Foreshadowing]] = relationship(
        order_by="Foreshadowing.id", cascade="all, delete-orphan", passive_deletes=True
    )


class Volume(Base):
    __tablename__ = "volumes"
    __table_args__ = (UniqueConstraint("novel_id", "number"),)

    id: Mapped[int] = mapped_column(IntPK, primary_key=True)
    novel_id: Mapped[int] = mapped_column(ForeignKey("novels.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(500), default="")
    summary: Mapped[str] = mapped_column(Text, default="")

    novel: Mapped[Novel] = relationship(back_populates="volumes")
    chapters: Mapped[list[Chapter]] = relationship(
        back_populates="volume", order_by="Chapter.number", cascade="all, delete-orphan", passive_deletes=True
    )


class Chapter(Base):
    __tablename__ = "chapters"
    __table_args__ = (UniqueConstraint("volume_id", "number"),)

    id: Mapped[int] = mapped_column(IntPK, primary_key=True)
    novel_id: Mapped[int] = mapped_column(ForeignKey("novels.id", ondelete="CASCADE"), index=True)
    volume_id: Mapped[int] = mapped_column(ForeignKey("volumes.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(500), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    content: Mapped[str] = mapped_column(Text, default="")
    word_count: Mapped[int] = mapped_column(Integer, default=0)
    # What happens in the written text (the recap step of services.apply.memory), for later
    # chapters' context; stale once the author changed the text it was made from.
    recap: Mapped[str | None] = mapped_column(Text, nullable=True)
    recap_stale: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # False when a regenerated outline no longer lists this chapter but it was kept for its text.
    in_outline: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set when the author edits the title or the summary: regenerating the outline keeps
    # what the author wrote (services/apply/outline.py).
    title_by_author: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    summary_by_author: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The author's editing session (services.editing): when the content was last edited by
    # hand, and the sha256 of the text that edit left. The session goes on while the next
    # edit comes within 10 minutes and the text is still what it left (no generation or
    # restore replaced it since).
    edit_session_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    edit_session_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)

    volume: Mapped[Volume] = relationship(back_populates="chapters")


class ChapterRevision(Base):
    __tablename__ = "chapter_revisions"

    id: Mapped[int] = mapped_column(IntPK, primary_key=True)
    chapter_id: Mapped[int] = mapped_column(ForeignKey("chapters.id", ondelete="CASCADE"), index=True)
    content: Mapped[str] = mapped_column(Text)
    word_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What replaced the text: a generation, an author's edit, or a restore (RevisionSource).
    source: Mapped[str] = mapped_column(String(20), default="generated", server_default="generated")


class RevisionSource(enum.StrEnum):
    GENERATED = "generated"
    AUTHOR = "author"
    RESTORED = "restored"


class Character(Base):
    __tablename__ = "characters"

    id: Mapped[int] = mapped_column(IntPK, primary_key=True)
    novel_id: Mapped[int] = mapped_column(ForeignKey("novels.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    traits: Mapped[list[str]] = mapped_column(JSON, default=list)
    arc: Mapped[str] = mapped_column(Text, default="")
    relationships: Mapped[str] = mapped_column(Text, default="")


class WorldSetting(Base):
    __tablename__ = "world_settings"

    id: Mapped[int] = mapped_column(IntPK, primary_key=True)
    novel_id: Mapped[int] = mapped_column(ForeignKey("novels.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")


class TimelineEvent(Base):
    __tablename__ = "timeline_events"

    id: Mapped[int] = mapped_column(IntPK, primary_key=True)
    novel_id: Mapped[int] = mapped_column(ForeignKey("novels.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    time_label: Mapped[str] = mapped_column(Text, default="")
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    chapter_number: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Foreshadowing(Base):
    __tablename__ = "foreshadowings"

    id: Mapped[int] = mapped_column(IntPK, primary_key=True)
    novel_id: Mapped[int] = mapped_column(ForeignKey("novels.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="planted")
    # Chapters by id, so they keep naming the same chapters whatever the renumbering; a
    # deleted chapter leaves null.
    planted_chapter_id: Mapped[int | None] = mapped_column(
        ForeignKey("chapters.id", ondelete="SET NULL"), nullable=True, index=True
    )
    payoff_chapter_id: Mapped[int | None] = mapped_column(
        ForeignKey("chapters.id", ondelete="SET NULL"), nullable=True, index=True
    )


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        # One pending or running task per (novel, kind, scope); scope is the chapter
        # id for chapter tasks and 0 otherwise, never NULL (NULLs never conflict).
        Index(
            "uq_tasks_one_active",
            "novel_id",
            "task_type",
            "scope",
            unique=True,
            sqlite_where=text(ACTIVE_SQL),
            postgresql_where=text(ACTIVE_SQL),
        ),
        Index("ix_tasks_user_status", "user_id", "status"),
        Index("ix_tasks_user_pk", "user_id", "pk"),
        Index("ix_tasks_novel_pk", "novel_id", "pk"),
        Index("ix_tasks_status_pk", "status", "pk"),
        # The dispatcher's walk over the users with pending work, oldest task first in each.
        Index("ix_tasks_status_user_pk", "status", "user_id", "pk"),
        # The tasks waiting for a quota, and only those (the dispatcher's earliest resume_at).
        Index(
            "ix_tasks_resume_at",
            "resume_at",
            sqlite_where=text("resume_at IS NOT NULL"),
            postgresql_where=text("resume_at IS NOT NULL"),
        ),
    )

    pk: Mapped[int] = mapped_column(IntPK, primary_key=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    novel_id: Mapped[int] = mapped_column(ForeignKey("novels.id", ondelete="CASCADE"))
    task_type: Mapped[str] = mapped_column(String(50))
    scope: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(20), default=TaskStatus.PENDING.value)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    usage: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    retry_of: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # The batch (write_chapters) whose child this task is; a batch's children go with it.
    parent_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("tasks.id", ondelete="CASCADE"), nullable=True, index=True
    )
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # sha256 of route and canonical body, to tell a repeat from a reused key.
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The seq of the task's last stored event.
    seq: Mapped[int] = mapped_column(Integer, default=0)
    # Text generated so far by a streaming task; kept on failure and cancel.
    output: Mapped[str] = mapped_column(Text, default="")
    # What a generator saved to resume from (outline batches), reused by retries.
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Waiting for the provider's quota (a long 429): pending, not claimed before this time.
    resume_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Seconds this task has waited for quotas in total (NOVAWRITE_QUOTA_MAX_WAIT_SECONDS bounds it).
    quota_waited_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProviderQuota(Base):
    """A provider whose quota is used up: no process starts a call on it before ``not_before``."""

    __tablename__ = "provider_quotas"

    provider: Mapped[str] = mapped_column(String(50), primary_key=True)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)


class TaskEvent(Base):
    __tablename__ = "task_events"
    __table_args__ = (UniqueConstraint("task_pk", "seq"),)

    id: Mapped[int] = mapped_column(IntPK, primary_key=True)
    task_pk: Mapped[int] = mapped_column(ForeignKey("tasks.pk", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    # The event's data as the JSON text that is sent, encoded once.
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
