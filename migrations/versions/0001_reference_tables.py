"""Reference data (ICD-10-CM, MS-DRG weights, IPPS rates, providers) and claim results.

Revision ID: 0001
Revises:
Create Date: 2026-05-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "icd10cm_releases",
        sa.Column("release", sa.String(16), nullable=False, comment='e.g. "2026-04"'),
        sa.Column("fiscal_year", sa.SmallInteger(), nullable=False),
        sa.Column(
            "source",
            sa.Text(),
            nullable=False,
            comment="files and package version it was read from",
        ),
        sa.Column("code_count", sa.Integer(), nullable=False),
        sa.Column("billable_count", sa.Integer(), nullable=False),
        sa.Column(
            "loaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("release", name=op.f("pk_icd10cm_releases")),
    )
    op.create_table(
        "icd10cm_codes",
        sa.Column("release", sa.String(16), nullable=False),
        sa.Column("code", sa.String(7), nullable=False, comment='undotted, upper case: "S82201A"'),
        sa.Column("dotted", sa.String(8), nullable=False, comment='display form: "S82.201A"'),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("billable", sa.Boolean(), nullable=False),
        sa.Column(
            "parent", sa.String(7), nullable=True, comment="nearest listed ancestor, undotted"
        ),
        sa.Column("category", sa.String(3), nullable=False, comment="first three characters"),
        sa.CheckConstraint(
            "code ~ '^[A-Z][0-9A-Z][0-9A-Z]{1,5}$'", name=op.f("ck_icd10cm_codes_code_shape")
        ),
        sa.ForeignKeyConstraint(
            ["release"],
            ["icd10cm_releases.release"],
            name=op.f("fk_icd10cm_codes_release_icd10cm_releases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("release", "code", name=op.f("pk_icd10cm_codes")),
    )
    op.create_table(
        "drg_weights",
        sa.Column("fiscal_year", sa.SmallInteger(), nullable=False),
        sa.Column("drg", sa.String(3), nullable=False),
        sa.Column("mdc", sa.String(3), nullable=True, comment='"01".."25", "PRE", or NULL'),
        sa.Column("type", sa.String(4), nullable=True, comment="MED or SURG"),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("post_acute", sa.Boolean(), nullable=False),
        sa.Column("special_pay", sa.Boolean(), nullable=False),
        sa.Column("weight_before_cap", sa.Numeric(8, 4), nullable=True),
        sa.Column("weight", sa.Numeric(8, 4), nullable=True),
        sa.Column("gmlos", sa.Numeric(5, 1), nullable=True),
        sa.Column("amlos", sa.Numeric(5, 1), nullable=True),
        sa.CheckConstraint("drg ~ '^[0-9]{3}$'", name=op.f("ck_drg_weights_drg_shape")),
        sa.CheckConstraint("type IN ('MED', 'SURG')", name=op.f("ck_drg_weights_type_known")),
        sa.PrimaryKeyConstraint("fiscal_year", "drg", name=op.f("pk_drg_weights")),
    )
    op.create_table(
        "ipps_rates",
        sa.Column("fiscal_year", sa.SmallInteger(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_to", sa.Date(), nullable=False),
        sa.Column("labor_wage_index_above_1", sa.Numeric(12, 2), nullable=False),
        sa.Column("non_labor_wage_index_above_1", sa.Numeric(12, 2), nullable=False),
        sa.Column("labor_wage_index_at_most_1", sa.Numeric(12, 2), nullable=False),
        sa.Column("non_labor_wage_index_at_most_1", sa.Numeric(12, 2), nullable=False),
        sa.Column("capital_rate", sa.Numeric(12, 2), nullable=False),
        sa.Column("outlier_fixed_loss", sa.Numeric(12, 2), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "effective_from <= effective_to", name=op.f("ck_ipps_rates_period_ordered")
        ),
        sa.PrimaryKeyConstraint("fiscal_year", name=op.f("pk_ipps_rates")),
    )
    op.create_table(
        "providers",
        sa.Column("provider_id", sa.String(6), nullable=False, comment="CMS certification number"),
        sa.Column("fiscal_year", sa.SmallInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("wage_index", sa.Numeric(6, 4), nullable=False),
        sa.Column(
            "loaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("wage_index > 0", name=op.f("ck_providers_wage_index_positive")),
        sa.PrimaryKeyConstraint("provider_id", "fiscal_year", name=op.f("pk_providers")),
    )
    op.create_table(
        "claim_results",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("claim_id", sa.String(128), nullable=False),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("drg", sa.String(3), nullable=True),
        sa.Column("total", sa.Numeric(12, 2), nullable=True),
        sa.Column(
            "output",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="the full claims.coded event",
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "status IN ('estimated', 'needs_review', 'ungroupable')",
            name=op.f("ck_claim_results_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claim_results")),
        sa.UniqueConstraint("event_id", name=op.f("uq_claim_results_event_id")),
    )
    op.create_index(op.f("ix_claim_results_claim_id"), "claim_results", ["claim_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_claim_results_claim_id"), table_name="claim_results")
    op.drop_table("claim_results")
    op.drop_table("providers")
    op.drop_table("ipps_rates")
    op.drop_table("drg_weights")
    op.drop_table("icd10cm_codes")
    op.drop_table("icd10cm_releases")
