"""the author's hand: revision sources, editing sessions, longer item fields

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Item fields the author may now write up to 5,000 characters into (API.md), and their old lengths.
WIDENED = (("characters", "role", 200), ("world_settings", "category", 100), ("timeline_events", "time_label", 200))


def upgrade() -> None:
    # Every revision so far was text a generation replaced.
    with op.batch_alter_table("chapter_revisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=20), server_default="generated", nullable=False))
    with op.batch_alter_table("chapters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("edit_session_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("edit_session_digest", sa.String(length=64), nullable=True))
    for table, column, length in WIDENED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=sa.String(length=length), type_=sa.Text(), existing_nullable=False
            )


def downgrade() -> None:
    for table, column, length in WIDENED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            # Text written past the old length is cut to it, so that PostgreSQL can narrow the column.
            batch_op.alter_column(
                column,
                existing_type=sa.Text(),
                type_=sa.String(length=length),
                existing_nullable=False,
                postgresql_using=f"substr({column}, 1, {length})",
            )
    with op.batch_alter_table("chapters", schema=None) as batch_op:
        batch_op.drop_column("edit_session_digest")
        batch_op.drop_column("edit_session_at")
    with op.batch_alter_table("chapter_revisions", schema=None) as batch_op:
        batch_op.drop_column("source")
