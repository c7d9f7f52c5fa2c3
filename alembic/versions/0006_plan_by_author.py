"""chapters remember a title or summary the author wrote by hand

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 18:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chapters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("title_by_author", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("summary_by_author", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("chapters", schema=None) as batch_op:
        batch_op.drop_column("summary_by_author")
        batch_op.drop_column("title_by_author")
