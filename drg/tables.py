"""The reference and result tables (SQLAlchemy Core, one MetaData).

Tables are unqualified: they live in the connection's search_path schema
(``settings.database.schema_name``). The Alembic migrations in ``migrations/versions`` create
exactly these tables; ``tests/test_reference_db.py`` checks that the two agree.
"""

from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

NAMING: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# One row per ICD-10-CM release, written in the same transaction as its codes: a release row
# exists only for a complete code set.
icd10cm_releases = Table(
    "icd10cm_releases",
    metadata,
    Column("release", String(16), primary_key=True, comment='e.g. "2026-04"'),
    Column("fiscal_year", SmallInteger, nullable=False),
    Column("source", Text, nullable=False, comment="files and package version it was read from"),
    Column("code_count", Integer, nullable=False),
    Column("billable_count", Integer, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

icd10cm_codes = Table(
    "icd10cm_codes",
    metadata,
    Column(
        "release",
        String(16),
        ForeignKey("icd10cm_releases.release", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("code", String(7), primary_key=True, comment='undotted, upper case: "S82201A"'),
    Column("dotted", String(8), nullable=False, comment='display form: "S82.201A"'),
    Column("description", Text, nullable=False),
    Column("billable", Boolean, nullable=False),
    Column("parent", String(7), nullable=True, comment="nearest listed ancestor, undotted"),
    Column("category", String(3), nullable=False, comment="first three characters"),
    CheckConstraint("code ~ '^[A-Z][0-9A-Z][0-9A-Z]{1,5}$'", name="code_shape"),
)

# FY IPPS Table 5: MS-DRG relative weights and lengths of stay. ``weight`` is the CMS column
# "Weights - 10% Cap Applied", the one payment uses; DRGs 998 and 999 have none.
drg_weights = Table(
    "drg_weights",
    metadata,
    Column("fiscal_year", SmallInteger, primary_key=True),
    Column("drg", String(3), primary_key=True),
    Column("mdc", String(3), nullable=True, comment='"01".."25", "PRE", or NULL'),
    Column("type", String(4), nullable=True, comment="MED or SURG"),
    Column("title", Text, nullable=False),
    Column("post_acute", Boolean, nullable=False),
    Column("special_pay", Boolean, nullable=False),
    Column("weight_before_cap", Numeric(8, 4), nullable=True),
    Column("weight", Numeric(8, 4), nullable=True),
    Column("gmlos", Numeric(5, 1), nullable=True),
    Column("amlos", Numeric(5, 1), nullable=True),
    CheckConstraint("drg ~ '^[0-9]{3}$'", name="drg_shape"),
    CheckConstraint("type IN ('MED', 'SURG')", name="type_known"),
)

# IPPS national rates by fiscal year. The labor share is 66% where the wage index is above 1 and
# 62% where it is 1 or below, hence two labor/non-labor pairs.
ipps_rates = Table(
    "ipps_rates",
    metadata,
    Column("fiscal_year", SmallInteger, primary_key=True),
    Column("effective_from", Date, nullable=False),
    Column("effective_to", Date, nullable=False),
    Column("labor_wage_index_above_1", Numeric(12, 2), nullable=False),
    Column("non_labor_wage_index_above_1", Numeric(12, 2), nullable=False),
    Column("labor_wage_index_at_most_1", Numeric(12, 2), nullable=False),
    Column("non_labor_wage_index_at_most_1", Numeric(12, 2), nullable=False),
    Column("capital_rate", Numeric(12, 2), nullable=False),
    Column(
        "outlier_fixed_loss",
        Numeric(12, 2),
        nullable=True,
        comment="NULL when the final rule's threshold is not known (FY2027 as shipped)",
    ),
    Column("source", Text, nullable=False),
    CheckConstraint("effective_from <= effective_to", name="period_ordered"),
)

# The fiscal years an operator loaded from CMS's files (``claimcoder reference load``); the
# fiscal years claimcoder ships are listed in drg/data/releases.json. A row here replaces the
# shipped fiscal year of the same number (drg/registry.py).
fiscal_years = Table(
    "fiscal_years",
    metadata,
    Column("fiscal_year", SmallInteger, primary_key=True),
    Column(
        "codeset_release",
        String(16),
        ForeignKey("icd10cm_releases.release"),
        nullable=False,
        comment="the ICD-10-CM release its claims are validated against",
    ),
    Column("source", Text, nullable=False, comment="files and SHA-256 digests it was read from"),
    Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Discharge periods of the loaded fiscal years, each with its MS-DRG grouper version.
release_periods = Table(
    "release_periods",
    metadata,
    Column("start_date", Date, primary_key=True),
    Column("end_date", Date, nullable=False, comment="inclusive"),
    Column(
        "fiscal_year",
        SmallInteger,
        ForeignKey("fiscal_years.fiscal_year", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("msdrg_version", SmallInteger, nullable=False, comment="e.g. 440 for v44.0"),
    CheckConstraint("start_date <= end_date", name="period_ordered"),
    Index("ix_release_periods_fiscal_year", "fiscal_year"),
)

providers = Table(
    "providers",
    metadata,
    Column("provider_id", String(6), primary_key=True, comment="CMS certification number"),
    Column("fiscal_year", SmallInteger, primary_key=True),
    Column("name", Text, nullable=False),
    Column("wage_index", Numeric(6, 4), nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("wage_index > 0", name="wage_index_positive"),
)

# One row per emitted claims.coded event, kept for audit. Upserted on event_id: a re-delivery
# keeps the first output and counts itself in ``deliveries`` (worker/store.py).
claim_results = Table(
    "claim_results",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("claim_id", String(128), nullable=False),
    Column("event_id", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("drg", String(3), nullable=True),
    Column("total", Numeric(12, 2), nullable=True),
    Column("output", JSONB, nullable=False, comment="the full claims.coded event"),
    Column(
        "deliveries",
        Integer,
        nullable=False,
        server_default="1",
        comment="times this event_id was processed; >1 means re-delivered input",
    ),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("event_id"),
    CheckConstraint("status IN ('estimated', 'needs_review', 'ungroupable')", name="status_known"),
    Index("ix_claim_results_claim_id", "claim_id"),
)

# One row per dead letter `claimcoder dlq replay` re-published (worker/replay.py), keyed by where
# the letter sits in the dead-letter topic: a later run skips it. Written after the broker
# acknowledged the replayed record (at least once).
dlq_replays = Table(
    "dlq_replays",
    metadata,
    Column("dlq_topic", String(249), primary_key=True, comment="Kafka's longest topic name"),
    Column("dlq_partition", Integer, primary_key=True),
    Column("dlq_offset", BigInteger, primary_key=True),
    Column("letter_id", String(32), nullable=False, comment="the dead letter's event_id"),
    Column("reason", Text, nullable=False, comment="error.type, e.g. internal_error"),
    Column("stage", Text, nullable=False, comment="error.stage, e.g. drg.group"),
    Column("target_topic", String(249), nullable=False, comment="where it was re-published"),
    Column("replayed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
