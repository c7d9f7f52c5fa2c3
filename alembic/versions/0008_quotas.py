"""quotas: a task can wait for its provider's quota (resume_at), and a provider can be out of quota

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resume_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("quota_waited_seconds", sa.Float(), server_default="0", nullable=False))
        batch_op.create_index("ix_tasks_resume_at", ["resume_at"], unique=False)
    op.create_table(
        "provider_quotas",
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", name=op.f("pk_provider_quotas")),
    )


def downgrade() -> None:
    op.drop_table("provider_quotas")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_resume_at")
        batch_op.drop_column("quota_waited_seconds")
        batch_op.drop_column("resume_at")
