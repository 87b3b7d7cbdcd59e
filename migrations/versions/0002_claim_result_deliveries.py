"""Count deliveries of each claim result: a re-delivered event keeps its first output.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "claim_results",
        sa.Column(
            "deliveries",
            sa.Integer(),
            nullable=False,
            server_default="1",
            comment="times this event_id was processed; >1 means re-delivered input",
        ),
    )


def downgrade() -> None:
    op.drop_column("claim_results", "deliveries")
