"""Every statement of the task engine, by name; ``TaskStore`` (and the novel snapshot) run them.

Two kinds, on purpose. The statements every task goes through (submit and its
checks, claim, record, complete, finish, requeue, cancel, lease renewal, the
dispatcher's reads, the novel snapshot) are plain SQL for the raw drivers
(``novawrite.db.raw``: ``$n`` parameters, one text for both databases). The API's
reads (a task, a history page, the active tasks, the events to replay) are
SQLAlchemy Core selects, whose rows come back decoded (datetimes, JSON).

Each transition of a task's status is one statement here: ``INSERT_TASK`` (new,
pending), ``CLAIM_SQLITE``/``CLAIM_PG`` (pending to running), ``COMPLETE`` (running to completed),
``FINISH`` (running to failed or cancelled), ``REQUEUE`` (running to pending),
``QUOTA_REQUEUE`` (running to pending until ``resume_at``),
``CANCEL_PENDING`` (pending to cancelled).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import Select, Table, func, or_, select

from novawrite.db.models import ACTIVE_SQL, ACTIVE_STATUSES, Task, TaskStatus
from novawrite.db.models import TaskEvent as TaskEventRow
from novawrite.engine.events import EventKind, running_data_sql
from novawrite.engine.notify import claim_payload_sql

T = cast(Table, Task.__table__)
E = cast(Table, TaskEventRow.__table__)

PENDING, RUNNING = TaskStatus.PENDING.value, TaskStatus.RUNNING.value
#: "The task is pending or running" (``ACTIVE_STATUSES``) in Core; ``ACTIVE_SQL`` in raw SQL.
ACTIVE = T.c.status.in_(ACTIVE_STATUSES)

# --- events and notifications --------------------------------------------------------------

ADD_EVENT = "INSERT INTO task_events (task_pk, seq, kind, data, created_at) VALUES ($1, $2, $3, $4, $5)"
NOTIFY = "SELECT pg_notify($1, $2)"


@functools.cache
def with_event_pg(write: str, count: int) -> str:
    """PostgreSQL: a write of ``count`` parameters (``... RETURNING pk``), its event and the event's NOTIFY as one
    statement (five more parameters: seq, kind, data, created_at, then the channel and the payload)."""
    n = count
    return f"""
WITH written AS ({write}),
stored AS (
    INSERT INTO task_events (task_pk, seq, kind, data, created_at)
    SELECT pk, ${n + 1}::integer, ${n + 2}::text, ${n + 3}::text, ${n + 4}::timestamptz FROM written
    RETURNING task_pk
)
SELECT task_pk, pg_notify(${n + 5}::text, ${n + 6}::text) FROM stored"""


# "is one of a list" in one parameter: an array on PostgreSQL, a JSON array on SQLite
_IN_LIST = {
    "postgresql": {"pk": "pk = ANY($1::bigint[])", "id": "id = ANY($1::text[])"},
    "sqlite": {"pk": "pk IN (SELECT value FROM json_each($1))", "id": "id IN (SELECT value FROM json_each($1))"},
}


def in_list(dialect: str, column: str) -> str:
    """``column`` is one of the values of parameter $1 (pass them through ``list_param``)."""
    return _IN_LIST[dialect][column]


def list_param(dialect: str, values: Sequence[Any]) -> Any:
    return list(values) if dialect == "postgresql" else orjson.dumps(list(values)).decode()


# --- submit --------------------------------------------------------------------------------

# The novel if the user owns it, and the user's unfinished (pending or running) tasks.
SUBMIT_CHECKS = f"""
SELECT (SELECT id FROM novels WHERE id = $1 AND user_id = $2),
    (SELECT count(*) FROM tasks WHERE user_id = $2 AND {ACTIVE_SQL})"""
#: A chapter's text, if it is a chapter of that novel (also the snapshot's texts).
CHAPTER_CONTENT = "SELECT content FROM chapters WHERE id = $1 AND novel_id = $2"
NOVEL_EXISTS = "SELECT id FROM novels WHERE id = $1"

_TASK_COLUMNS = """id, user_id, novel_id, task_type, scope, status, progress, message, params, attempt, retry_of,
    cancel_requested, idempotency_key, request_hash, seq, output, created_at, updated_at, parent_id"""
_NEW_TASK = f"$1, $2, $3, $4, $5, '{PENDING}', 0, $6, $7, $8, $9, $10, $11, $12, 1, '', $13, $13, $14"
INSERT_TASK = f"INSERT INTO tasks ({_TASK_COLUMNS}) VALUES ({_NEW_TASK}) RETURNING pk"
#: A batch's child, made only while its batch ($14, again as $16: PostgreSQL gives a parameter one type)
#: runs under its owner $15: a batch runner that lost its lease (paused while another process took the
#: batch over) queues nothing more.
INSERT_CHILD = f"""
INSERT INTO tasks ({_TASK_COLUMNS})
SELECT {_NEW_TASK}
WHERE EXISTS (SELECT 1 FROM tasks WHERE id = $16 AND owner = $15 AND status = '{RUNNING}')
RETURNING pk"""
#: The same insert, made only if the user owns the novel ($3) and has fewer than $15 unfinished
#: tasks: a submit's checks and its insert in one statement (SUBMIT_CHECKS says why when it is not made).
INSERT_TASK_CHECKED = f"""
INSERT INTO tasks ({_TASK_COLUMNS})
SELECT {_NEW_TASK}
WHERE EXISTS (SELECT 1 FROM novels WHERE id = $3 AND user_id = $2)
    AND (SELECT count(*) FROM tasks WHERE user_id = $2 AND {ACTIVE_SQL}) < $15
RETURNING pk"""

# --- batches (write_chapters) and their children ----------------------------------------------

#: The task types that run children and hold no generation slot while they wait
#: (``TaskKind.batch``): their running tasks count in no user's running tasks.
BATCH_TYPES = ("write_chapters",)
_NOT_BATCH = "task_type NOT IN ({})".format(", ".join(f"'{t}'" for t in BATCH_TYPES))
#: A batch's newest child for a scope (a chapter): the one an interrupted batch adopts.
CHILD_IN_SCOPE = "SELECT id FROM tasks WHERE parent_id = $1 AND scope = $2 ORDER BY pk DESC LIMIT 1"
#: A batch's children that are pending or running (cancelling the batch cancels them).
ACTIVE_CHILDREN = f"SELECT id FROM tasks WHERE parent_id = $1 AND {ACTIVE_SQL}"
#: What a batch reads of its child.
CHILD_STATE = "SELECT status, result, error, usage, message FROM tasks WHERE id = $1"
#: The novel's active batch of a type, with what it was asked and what it has done.
ACTIVE_BATCH = f"""
SELECT id, params, checkpoint FROM tasks WHERE novel_id = $1 AND task_type = $2 AND scope = 0 AND {ACTIVE_SQL}"""

# --- the dispatcher ------------------------------------------------------------------------

# Each waiting user's oldest pending task that is due ($1: now; a task waiting for a quota
# is due at its resume_at; a user with none due has a NULL pk) and how many tasks that user has running.
# The users with pending work are walked one index seek at a time
# (ix_tasks_status_user_pk), so a dispatch costs the number of waiting users, not
# the length of the queue.
_WAITING_USERS = f"""
WITH RECURSIVE waiting(user_id) AS (
    SELECT (SELECT user_id FROM tasks WHERE status = '{PENDING}' ORDER BY user_id LIMIT 1)
    UNION ALL
    SELECT (
        SELECT t.user_id FROM tasks AS t
        WHERE t.status = '{PENDING}' AND t.user_id > waiting.user_id ORDER BY t.user_id LIMIT 1
    )
    FROM waiting WHERE waiting.user_id IS NOT NULL
)"""
_HEADS = f"""
SELECT user_id,
    (SELECT h.pk FROM tasks AS h WHERE h.status = '{PENDING}' AND h.user_id = waiting.user_id
        AND (h.resume_at IS NULL OR h.resume_at <= $1) ORDER BY h.pk LIMIT 1),
    (SELECT count(*) FROM tasks AS r WHERE r.user_id = waiting.user_id AND r.status = '{RUNNING}' AND r.{_NOT_BATCH})"""
#: A dispatch's one read: a row with provider $2's not-before and the earliest resume_at of a pending
#: task (its user_id NULL), and a row per waiting user as above (their last two columns NULL).
DISPATCH_VIEW = f"""{_WAITING_USERS}
SELECT NULL, NULL, NULL,
    (SELECT not_before FROM provider_quotas WHERE provider = $2),
    (SELECT min(resume_at) FROM tasks WHERE resume_at IS NOT NULL AND status = '{PENDING}')
UNION ALL{_HEADS}, NULL, NULL
FROM waiting WHERE user_id IS NOT NULL"""
#: A pending task that is due ($6: now by the dispatcher's clock; a task waiting for a quota is due then).
_CLAIMABLE = f"status = '{PENDING}' AND (resume_at IS NULL OR resume_at <= $6)"
# {where}: which rows to take (CLAIM_SQLITE, CLAIM_PG)
_CLAIM = f"""
UPDATE tasks SET status = '{RUNNING}', owner = $2, lease_expires_at = $3, started_at = COALESCE(started_at, $4),
    updated_at = $4, seq = seq + 1, message = $5, resume_at = NULL
WHERE {{where}}
RETURNING pk, id, user_id, novel_id, task_type, params, attempt, seq, output, checkpoint, retry_of, started_at,
    progress, message"""
#: The dispatcher's claim on SQLite: the oldest claimable task of each user in $1 (a JSON array).
CLAIM_SQLITE = _CLAIM.format(
    where=f"""pk IN (
    SELECT (
        SELECT pk FROM tasks WHERE {_CLAIMABLE} AND user_id = waiting.value ORDER BY pk LIMIT 1
    ) FROM json_each($1) AS waiting
) AND {_CLAIMABLE}"""
)
CHECKPOINT_OF = "SELECT checkpoint FROM tasks WHERE id = $1"
#: Generations running over the whole database (NOVAWRITE_MAX_CONCURRENCY_GLOBAL): batches hold no slot.
RUNNING_GENERATIONS = f"SELECT count(*) FROM tasks WHERE status = '{RUNNING}' AND {_NOT_BATCH}"
#: PostgreSQL: claims under a global cap take turns, cluster-wide, for the rest of their transaction.
CLAIM_TURN = "SELECT pg_advisory_xact_lock($1)"
CLAIM_TURN_KEY = 0x4E6F7661  # "Nova"
#: The dispatcher's claim on PostgreSQL: for each user in $1 (user ids), that user's oldest claimable task
#: that no other process is claiming right now (FOR UPDATE SKIP LOCKED), so processes that read the same
#: queue at once take different tasks instead of one winning and the others reading the queue again. A
#: row the subquery returns is locked and was checked claimable in its newest version, so the UPDATE
#: needs only its pk; as an ARRAY the subquery runs once, before the UPDATE looks rows up by pk (as
#: ``pk IN (...)`` the plan PostgreSQL settled on after a few runs joined it against the whole table, and
#: claims ran 15 times slower at 2,000 tasks). The ``running`` event of each claimed task is stored and
#: notified by the same statement (no BEGIN and COMMIT: four round trips fewer); its data and its
#: notification are built by the database, byte for byte as ``event_data`` and ``event_notification``
#: write them. $7 is the channel, $8 the notifying origin.
_OLDEST_UNLOCKED = f"""pk = ANY(ARRAY(
    SELECT head.pk FROM unnest($1::bigint[]) AS waiting(user_id)
    CROSS JOIN LATERAL (
        SELECT pk FROM tasks WHERE {_CLAIMABLE} AND user_id = waiting.user_id
        ORDER BY pk LIMIT 1 FOR UPDATE SKIP LOCKED
    ) AS head
))"""
CLAIM_PG = f"""
WITH claimed AS (
    {_CLAIM.format(where=_OLDEST_UNLOCKED).strip()},
        {running_data_sql("id", "seq", "progress", "message", "attempt")} AS data
),
stored AS (
    INSERT INTO task_events (task_pk, seq, kind, data, created_at)
    SELECT pk, seq, '{EventKind.STATUS}', data, $4 FROM claimed
)
SELECT claimed.*, pg_notify($7, {claim_payload_sql("$8", "id", "seq::text", "user_id::text", "data")}) FROM claimed"""

# --- a running task's writes: only while its owner holds it, at the seq it knows -------------

MINE = f"pk = $1 AND owner = $2 AND status = '{RUNNING}' AND seq = $3"


def _later(lease: str) -> str:
    """The later of the stored lease and ``lease``: a write that waited in a group commit never moves a
    renewal's lease back."""
    return f"CASE WHEN lease_expires_at > {lease} THEN lease_expires_at ELSE {lease} END"


RECORD = f"""
UPDATE tasks SET seq = $4, progress = $5, message = $6, updated_at = $7, lease_expires_at = {_later("$8")},
    output = output || $9, usage = COALESCE($10, usage)
WHERE {MINE}
RETURNING pk"""
SAVE_CHECKPOINT = f"UPDATE tasks SET checkpoint = $4 WHERE {MINE}"
COMPLETE = f"""
UPDATE tasks SET status = '{TaskStatus.COMPLETED.value}', progress = 100, message = $4, result = $5, usage = $6,
    seq = $7, finished_at = $8, updated_at = $8, owner = NULL, lease_expires_at = NULL
WHERE {MINE}
RETURNING pk"""
FINISH = f"""
UPDATE tasks SET status = $4, message = $5, error = $6, usage = $7, seq = $8, finished_at = $9, updated_at = $9,
    owner = NULL, lease_expires_at = NULL
WHERE {MINE}
RETURNING pk"""
REQUEUE = f"""
UPDATE tasks SET status = '{PENDING}', attempt = $4, progress = 0, message = $5, seq = $6, updated_at = $7,
    owner = NULL, lease_expires_at = NULL
WHERE {MINE}
RETURNING pk"""
# A quota 429: pending again with attempt $4, not claimed before $8, $9 seconds more of waiting.
QUOTA_REQUEUE = f"""
UPDATE tasks SET status = '{PENDING}', attempt = $4, progress = 0, message = $5, seq = $6, updated_at = $7,
    owner = NULL, lease_expires_at = NULL, resume_at = $8, quota_waited_seconds = quota_waited_seconds + $9
WHERE {MINE}
RETURNING pk"""
QUOTA_WAITED = f"SELECT quota_waited_seconds, cancel_requested FROM tasks WHERE {MINE}"
# {ids}: in_list(dialect, "id")
#: The tasks still ours come back: one left out was taken over (its lease had run out) or has ended.
RENEW = f"""
UPDATE tasks SET lease_expires_at = {_later("$2")} WHERE {{ids}} AND owner = $3 AND status = '{RUNNING}' RETURNING id"""
CANCEL_REQUESTED = "SELECT id FROM tasks WHERE {ids} AND cancel_requested = $2"

# --- provider quotas -------------------------------------------------------------------------

#: Later only: a provider's not-before never moves back.
SET_NOT_BEFORE = """
INSERT INTO provider_quotas (provider, not_before) VALUES ($1, $2)
ON CONFLICT (provider) DO UPDATE SET not_before = CASE
    WHEN excluded.not_before > provider_quotas.not_before THEN excluded.not_before
    ELSE provider_quotas.not_before END"""
# (The dispatcher reads the not-before with its queue: DISPATCH_VIEW; a running task before each model call:)
PROVIDER_NOT_BEFORE = "SELECT not_before FROM provider_quotas WHERE provider = $1"

# --- recovery: running tasks to give back ---------------------------------------------------

RUNNING_OWNED = f"""
SELECT pk, id, user_id, owner, seq, attempt, progress, usage, cancel_requested FROM tasks
WHERE pk = $1 AND status = '{RUNNING}' AND owner = $2"""
RUNNING_EXPIRED = f"""
SELECT pk, id, user_id, owner, seq, attempt, progress, usage, cancel_requested FROM tasks
WHERE pk = $1 AND status = '{RUNNING}' AND lease_expires_at < $2"""
EXPIRED = f"SELECT pk FROM tasks WHERE status = '{RUNNING}' AND lease_expires_at < $1"

# --- cancel requests from the API ------------------------------------------------------------

CANCEL_TARGET = "SELECT pk, status, seq, progress FROM tasks WHERE id = $1 AND user_id = $2"
CANCEL_PENDING = f"""
UPDATE tasks SET status = '{TaskStatus.CANCELLED.value}', cancel_requested = $2, message = $3, seq = $4,
    finished_at = $5, updated_at = $5
WHERE pk = $1 AND status = '{PENDING}' AND seq = $6
RETURNING pk"""
FLAG_CANCEL = f"UPDATE tasks SET cancel_requested = $2, updated_at = $3 WHERE pk = $1 AND status = '{RUNNING}'"

# --- the novel snapshot a generator reads (novawrite.engine.snapshot) -------------------------

NOVEL = "SELECT id, title, genre, synopsis, language, outline FROM novels WHERE id = $1"
VOLUMES = "SELECT id, number, title, summary FROM volumes WHERE novel_id = $1 ORDER BY number"
CHAPTERS = """
SELECT id, volume_id, number, title, summary, word_count, recap FROM chapters
WHERE novel_id = $1 ORDER BY number"""
CHARACTERS = "SELECT name, role, description FROM characters WHERE novel_id = $1 ORDER BY id"
WORLD_SETTINGS = "SELECT name, category, description FROM world_settings WHERE novel_id = $1 ORDER BY id"
TIMELINE = """
SELECT position, time_label, title, description FROM timeline_events WHERE novel_id = $1 ORDER BY position, id"""
FORESHADOWINGS = """
SELECT id, title, description, status, planted_chapter_id, payoff_chapter_id FROM foreshadowings
WHERE novel_id = $1 ORDER BY id"""
CONTENT = "SELECT content FROM chapters WHERE id = $1"


def _json_rows(table: str, columns: str, order: str, *, named: bool) -> str:
    """PostgreSQL: a novel's rows of ``table`` as one JSON array (of objects when ``named``, else of arrays)."""
    names = [c.strip() for c in columns.split(",")]
    row = (
        "json_build_object(" + ", ".join(f"'{n}', {n}" for n in names) + ")"
        if named
        else f"json_build_array({columns})"
    )
    return f"(SELECT coalesce(json_agg({row} ORDER BY {order}), '[]') FROM {table} WHERE novel_id = n.id)"


#: PostgreSQL: the same reads as NOVEL to FORESHADOWINGS in one statement (one round trip, one snapshot).
NOVEL_SNAPSHOT_PG = f"""
SELECT n.id, n.title, n.genre, n.synopsis, n.language, n.outline,
    {_json_rows("volumes", "id, number, title, summary", "number", named=True)} AS volumes,
    {
    _json_rows("chapters", "id, volume_id, number, title, summary, word_count, recap", "number", named=True)
} AS chapters,
    {_json_rows("characters", "name, role, description", "id", named=False)} AS characters,
    {_json_rows("world_settings", "name, category, description", "id", named=False)} AS world_settings,
    {
    _json_rows("timeline_events", "position, time_label, title, description", "position, id", named=False)
} AS timeline,
    {
    _json_rows(
        "foreshadowings", "id, title, description, status, planted_chapter_id, payoff_chapter_id", "id", named=True
    )
} AS foreshadowings
FROM novels n WHERE n.id = $1"""

# --- the API's reads (SQLAlchemy Core) -----------------------------------------------------

#: The columns of API.md's Task object.
TASK_COLUMNS = (
    T.c.pk,
    T.c.id,
    T.c.novel_id,
    T.c.user_id,
    T.c.task_type,
    T.c.status,
    T.c.progress,
    T.c.message,
    T.c.params,
    T.c.result,
    T.c.error,
    T.c.usage,
    T.c.attempt,
    T.c.retry_of,
    T.c.parent_id,
    T.c.cancel_requested,
    T.c.resume_at,
    T.c.created_at,
    T.c.started_at,
    T.c.finished_at,
    T.c.updated_at,
)


def task_by_id(task_id: str) -> Select[Any]:
    """A task as the API shows it, with its text so far and its seq."""
    return select(*TASK_COLUMNS, T.c.output, T.c.seq).where(T.c.id == task_id)


def task_view_by_id(task_id: str) -> Select[Any]:
    """Just the columns of the API's Task object (no output text)."""
    return select(*TASK_COLUMNS).where(T.c.id == task_id)


def task_by_pk(pk: int) -> Select[Any]:
    return select(*TASK_COLUMNS).where(T.c.pk == pk)


def by_idempotency_key(user_id: int, key: str) -> Select[Any]:
    return select(*TASK_COLUMNS, T.c.request_hash).where(T.c.user_id == user_id, T.c.idempotency_key == key)


def active_in_scope(novel_id: int, task_type: str, scope: int) -> Select[Any]:
    """The id of the active task a new one of this kind and scope collides with (``uq_tasks_one_active``)."""
    return select(T.c.id).where(T.c.novel_id == novel_id, T.c.task_type == task_type, T.c.scope == scope, ACTIVE)


def active_of_user(user_id: int) -> Select[Any]:
    # No ORDER BY: with it SQLite walks ix_tasks_user_pk through the user's whole history
    # instead of taking the few active rows from ix_tasks_user_status (sort the rows instead).
    return select(*TASK_COLUMNS).where(T.c.user_id == user_id, ACTIVE)


def active_ids_of_novel(user_id: int, novel_id: int) -> Select[Any]:
    return select(T.c.id).where(T.c.novel_id == novel_id, T.c.user_id == user_id, ACTIVE)


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """Which of a user's tasks a history page lists (None: any)."""

    novel_id: int | None = None
    status: str | None = None
    task_type: str | None = None
    chapter_id: int | None = None  # a chapter task's scope is its chapter
    parent_id: str | None = None  # a batch's children


def history(user_id: int, only: HistoryFilter, *, before: int | None, limit: int) -> Select[Any]:
    """A page of the user's tasks, newest first (``before``: a pk, the page's cursor)."""
    query = select(*TASK_COLUMNS).where(T.c.user_id == user_id)
    if only.novel_id is not None:
        query = query.where(T.c.novel_id == only.novel_id)
    if only.status is not None:
        query = query.where(T.c.status == only.status)
    if only.task_type is not None:
        query = query.where(T.c.task_type == only.task_type)
    if only.chapter_id is not None:
        query = query.where(T.c.scope == only.chapter_id)
    if only.parent_id is not None:
        query = query.where(T.c.parent_id == only.parent_id)
    if before is not None:
        query = query.where(T.c.pk < before)
    return query.order_by(T.c.pk.desc()).limit(limit)


def events_after(task_pk: int, after: int) -> Select[Any]:
    return select(E.c.seq, E.c.kind, E.c.data).where(E.c.task_pk == task_pk, E.c.seq > after).order_by(E.c.seq)


def event_of(task_id: str, seq: int) -> Select[Any]:
    return (
        select(T.c.user_id, E.c.kind, E.c.data)
        .select_from(E.join(T, T.c.pk == E.c.task_pk))
        .where(T.c.id == task_id, E.c.seq == seq)
    )


def events_of_task_after(task_id: str, after: int, since: datetime | None = None) -> Select[Any]:
    """A task's events with seq > ``after`` (and stored at ``since`` or later), in order, with its user."""
    query = (
        select(T.c.user_id, E.c.seq, E.c.kind, E.c.data)
        .select_from(E.join(T, T.c.pk == E.c.task_pk))
        .where(T.c.id == task_id, E.c.seq > after)
        .order_by(E.c.seq)
    )
    return query if since is None else query.where(E.c.created_at >= since)


def changed_since(task_ids: Sequence[str], user_ids: Sequence[int], since: datetime) -> Select[Any]:
    """(id, seq) of these tasks and of these users' tasks that changed at ``since`` or later."""
    return select(T.c.id, T.c.seq).where(or_(T.c.id.in_(task_ids), T.c.user_id.in_(user_ids)), T.c.updated_at >= since)


def counts() -> Select[Any]:
    """(status, task_type, number of tasks) over the whole table."""
    return select(T.c.status, T.c.task_type, func.count()).group_by(T.c.status, T.c.task_type)
