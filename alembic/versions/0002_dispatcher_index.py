"""the dispatcher's index: pending tasks by user, oldest first

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 16:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_tasks_status_user_pk", "tasks", ["status", "user_id", "pk"])


def downgrade() -> None:
    op.drop_index("ix_tasks_status_user_pk", table_name="tasks")
