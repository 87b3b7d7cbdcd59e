"""The dead letters `claimcoder dlq replay` re-published, so that a second run skips them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dlq_replays",
        sa.Column(
            "dlq_topic", sa.String(249), nullable=False, comment="Kafka's longest topic name"
        ),
        sa.Column("dlq_partition", sa.Integer(), nullable=False),
        sa.Column("dlq_offset", sa.BigInteger(), nullable=False),
        sa.Column("letter_id", sa.String(32), nullable=False, comment="the dead letter's event_id"),
        sa.Column("reason", sa.Text(), nullable=False, comment="error.type, e.g. internal_error"),
        sa.Column("stage", sa.Text(), nullable=False, comment="error.stage, e.g. drg.group"),
        sa.Column(
            "target_topic",
            sa.String(249),
            nullable=False,
            comment="where it was re-published",
        ),
        sa.Column(
            "replayed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.PrimaryKeyConstraint(
            "dlq_topic", "dlq_partition", "dlq_offset", name=op.f("pk_dlq_replays")
        ),
    )


def downgrade() -> None:
    op.drop_table("dlq_replays")
