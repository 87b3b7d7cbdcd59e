"""Fiscal years an operator loads from CMS files, and rates without a known outlier threshold.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column(
        "ipps_rates",
        "outlier_fixed_loss",
        existing_type=sa.Numeric(12, 2),
        nullable=True,
        comment="NULL when the final rule's threshold is not known (FY2027 as shipped)",
    )
    op.create_table(
        "fiscal_years",
        sa.Column("fiscal_year", sa.SmallInteger(), nullable=False),
        sa.Column(
            "codeset_release",
            sa.String(16),
            nullable=False,
            comment="the ICD-10-CM release its claims are validated against",
        ),
        sa.Column(
            "source",
            sa.Text(),
            nullable=False,
            comment="files and SHA-256 digests it was read from",
        ),
        sa.Column(
            "loaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.ForeignKeyConstraint(
            ["codeset_release"],
            ["icd10cm_releases.release"],
            name=op.f("fk_fiscal_years_codeset_release_icd10cm_releases"),
        ),
        sa.PrimaryKeyConstraint("fiscal_year", name=op.f("pk_fiscal_years")),
    )
    op.create_table(
        "release_periods",
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False, comment="inclusive"),
        sa.Column("fiscal_year", sa.SmallInteger(), nullable=False),
        sa.Column("msdrg_version", sa.SmallInteger(), nullable=False, comment="e.g. 440 for v44.0"),
        sa.CheckConstraint(
            "start_date <= end_date", name=op.f("ck_release_periods_period_ordered")
        ),
        sa.ForeignKeyConstraint(
            ["fiscal_year"],
            ["fiscal_years.fiscal_year"],
            name=op.f("fk_release_periods_fiscal_year_fiscal_years"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("start_date", name=op.f("pk_release_periods")),
    )
    op.create_index("ix_release_periods_fiscal_year", "release_periods", ["fiscal_year"])


def downgrade() -> None:
    op.drop_index("ix_release_periods_fiscal_year", table_name="release_periods")
    op.drop_table("release_periods")
    op.drop_table("fiscal_years")
    op.execute("DELETE FROM ipps_rates WHERE outlier_fixed_loss IS NULL")
    op.alter_column(
        "ipps_rates",
        "outlier_fixed_loss",
        existing_type=sa.Numeric(12, 2),
        nullable=False,
        comment=None,
    )
