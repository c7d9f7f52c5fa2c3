"""the index of tasks waiting for a quota holds only those tasks

ix_tasks_resume_at indexed every task, NULL resume_at included, so every insert and
every change of status wrote to it, and the planner preferred walking all pending
tasks to find the earliest resume_at. Partial, it holds only the tasks that wait.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = "resume_at IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_tasks_resume_at", table_name="tasks")
    op.create_index(
        "ix_tasks_resume_at",
        "tasks",
        ["resume_at"],
        postgresql_where=sa.text(WAITING),
        sqlite_where=sa.text(WAITING),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_resume_at", table_name="tasks")
    op.create_index("ix_tasks_resume_at", "tasks", ["resume_at"])
