"""memory: chapter recaps, foreshadowing tied to chapters by id

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The chapter numbers a foreshadowing named, and the chapter-id columns that replace them.
REFERENCES = (("planted_chapter", "planted_chapter_id"), ("payoff_chapter", "payoff_chapter_id"))


def _chapter_id_of(number_column: str) -> str:
    # Numbers run through the whole novel; a kept-but-unlisted chapter may share one, so the oldest wins.
    return (
        f"(SELECT min(chapters.id) FROM chapters WHERE chapters.novel_id = foreshadowings.novel_id "
        f"AND chapters.number = foreshadowings.{number_column})"
    )


def upgrade() -> None:
    with op.batch_alter_table("chapters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recap", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("recap_stale", sa.Boolean(), server_default=sa.false(), nullable=False))
    # The summaries kept so far were the chapter's plan and its last sentences, not a reading of
    # the text: they stay as recaps (better than nothing in later chapters' context), marked
    # stale so that recap-chapters is seen to be worth running.
    op.execute(
        sa.text(
            "UPDATE chapters SET recap = content_summary, recap_stale = :stale "
            "WHERE content_summary <> '' AND content <> ''"
        ).bindparams(stale=True)
    )
    with op.batch_alter_table("chapters", schema=None) as batch_op:
        batch_op.drop_column("content_summary")

    with op.batch_alter_table("foreshadowings", schema=None) as batch_op:
        for _, column in REFERENCES:
            batch_op.add_column(sa.Column(column, ID, nullable=True))
    for number, column in REFERENCES:
        op.execute(f"UPDATE foreshadowings SET {column} = {_chapter_id_of(number)} WHERE {number} IS NOT NULL")
    with op.batch_alter_table("foreshadowings", schema=None) as batch_op:
        for number, column in REFERENCES:
            batch_op.drop_column(number)
            batch_op.create_index(batch_op.f(f"ix_foreshadowings_{column}"), [column], unique=False)
            batch_op.create_foreign_key(
                batch_op.f(f"fk_foreshadowings_{column}_chapters"), "chapters", [column], ["id"], ondelete="SET NULL"
            )


def downgrade() -> None:
    with op.batch_alter_table("foreshadowings", schema=None) as batch_op:
        for number, _ in REFERENCES:
            batch_op.add_column(sa.Column(number, sa.Integer(), nullable=True))
    for number, column in REFERENCES:
        op.execute(
            f"UPDATE foreshadowings SET {number} = "
            f"(SELECT chapters.number FROM chapters WHERE chapters.id = foreshadowings.{column})"
        )
    with op.batch_alter_table("foreshadowings", schema=None) as batch_op:
        for _, column in REFERENCES:
            batch_op.drop_constraint(batch_op.f(f"fk_foreshadowings_{column}_chapters"), type_="foreignkey")
            batch_op.drop_index(batch_op.f(f"ix_foreshadowings_{column}"))
            batch_op.drop_column(column)

    with op.batch_alter_table("chapters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_summary", sa.Text(), server_default="", nullable=False))
    op.execute("UPDATE chapters SET content_summary = recap WHERE recap IS NOT NULL")
    with op.batch_alter_table("chapters", schema=None) as batch_op:
        batch_op.alter_column("content_summary", existing_type=sa.Text(), server_default=None)
        batch_op.drop_column("recap_stale")
        batch_op.drop_column("recap")
