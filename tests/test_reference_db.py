"""Migrations, seeding, providers and the claim_results table, against real PostgreSQL."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from drg.exceptions import ReferenceDataError
from drg.reference import counts, load_providers, read_providers, seed
from drg.tables import claim_results, drg_weights, ipps_rates, metadata, providers
from migrations.runner import current_revision, downgrade, head_revision, upgrade
from worker.cli import app
from worker.resources import sync_engine
from worker.settings import Settings

TABLES = {
    "alembic_version",
    "claim_results",
    "dlq_replays",
    "drg_weights",
    "fiscal_years",
    "icd10cm_codes",
    "icd10cm_releases",
    "ipps_rates",
    "providers",
    "release_periods",
}


def _tables(settings: Settings) -> set[str]:
    engine = sync_engine(settings.database)
    try:
        return set(inspect(engine).get_table_names(schema=settings.database.schema_name))
    finally:
        engine.dispose()


def test_upgrade_and_downgrade_through_the_cli(settings: Settings) -> None:
    runner = CliRunner()
    env = settings.to_env()

    result = runner.invoke(app, ["db", "upgrade"], env=env)
    assert result.exit_code == 0, result.output
    assert _tables(settings) == TABLES  # the version table sits in the test's schema too
    engine = sync_engine(settings.database)
    try:
        assert current_revision(engine, settings.database.schema_name) == head_revision()
    finally:
        engine.dispose()

    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0  # idempotent

    result = runner.invoke(app, ["db", "downgrade", "--revision", "base"], env=env)
    assert result.exit_code == 0, result.output
    assert _tables(settings) == {"alembic_version"}

    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    assert _tables(settings) == TABLES


def test_migrations_create_exactly_the_tables_of_drg_tables(settings: Settings) -> None:
    engine = sync_engine(settings.database)
    try:
        upgrade(engine, settings.database.schema_name)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
        downgrade(engine, settings.database.schema_name, "base")
        assert current_revision(engine, settings.database.schema_name) is None
    finally:
        engine.dispose()


def test_seed_loads_table5_and_ipps_rates_of_every_shipped_fiscal_year_once(
    migrated: Settings,
) -> None:
    """FY2026: CMS-1833-F Table 5 (772 DRGs) and Tables 1A/1B/1D; FY2027: CMS-1849-F Table 5
    as published with the final rule (768 DRGs of MS-DRG v44) and the CN Tables 1A/1B/1D, with
    no known outlier threshold (drg/data/README.md)."""
    result = CliRunner().invoke(app, ["db", "seed"], env=migrated.to_env())
    assert result.exit_code == 0, result.output
    assert "drg_weights: FY2026: 772 DRGs" in result.output
    assert "drg_weights: FY2027: 768 DRGs" in result.output
    engine = sync_engine(migrated.database)
    try:
        seed(engine)  # a second run changes nothing
        assert counts(engine) == {"drg_weights": 772 + 768, "ipps_rates": 2, "providers": 0}
        with engine.connect() as connection:
            weighted: dict[int, int] = dict(
                connection.execute(
                    select(drg_weights.c.fiscal_year, func.count())
                    .where(drg_weights.c.weight.is_not(None))
                    .group_by(drg_weights.c.fiscal_year)
                ).all()
            )
            dr291 = {
                row.fiscal_year: row._asdict()
                for row in connection.execute(select(drg_weights).where(drg_weights.c.drg == "291"))
            }
            rates = {
                row.fiscal_year: row._asdict() for row in connection.execute(select(ipps_rates))
            }
    finally:
        engine.dispose()
    assert weighted == {2026: 770, 2027: 766}  # 998 and 999 have none
    shared = {"drg": "291", "mdc": "05", "type": "MED", "post_acute": True, "special_pay": False}
    assert dr291 == {
        2026: {
            **shared,
            "fiscal_year": 2026,
            "title": "HEART FAILURE AND SHOCK WITH MCC",
            "weight_before_cap": Decimal("1.2838"),
            "weight": Decimal("1.2838"),
            "gmlos": Decimal("3.8"),
            "amlos": Decimal("5.0"),
        },
        2027: {
            **shared,
            "fiscal_year": 2027,
            "title": "HEART FAILURE AND SHOCK WITH MCC",
            "weight_before_cap": None,  # the column was not available for FY2027
            "weight": Decimal("1.2685"),
            "gmlos": Decimal("3.8"),
            "amlos": Decimal("4.9"),
        },
    }
    assert rates[2026].pop("source").startswith("CMS-1833-F")
    assert rates[2027].pop("source").startswith("CMS-1849-F")
    assert rates == {
        2026: {
            "fiscal_year": 2026,
            "effective_from": dt.date(2025, 10, 1),
            "effective_to": dt.date(2026, 9, 30),
            "labor_wage_index_above_1": Decimal("4456.72"),
            "non_labor_wage_index_above_1": Decimal("2295.89"),
            "labor_wage_index_at_most_1": Decimal("4186.62"),
            "non_labor_wage_index_at_most_1": Decimal("2565.99"),
            "capital_rate": Decimal("524.15"),
            "outlier_fixed_loss": Decimal("40397.00"),
        },
        2027: {
            "fiscal_year": 2027,
            "effective_from": dt.date(2026, 10, 1),
            "effective_to": dt.date(2027, 9, 30),
            "labor_wage_index_above_1": Decimal("4519.68"),
            "non_labor_wage_index_above_1": Decimal("2328.32"),
            "labor_wage_index_at_most_1": Decimal("4245.76"),
            "non_labor_wage_index_at_most_1": Decimal("2602.24"),
            "capital_rate": Decimal("539.95"),
            "outlier_fixed_loss": None,  # the FY2027 final threshold was not found
        },
    }


def test_providers_load_upserts(migrated: Settings, tmp_path: Path) -> None:
    csv = tmp_path / "providers.csv"
    csv.write_text(
        "provider_id,name,wage_index,fiscal_year\n"
        "330101,  Example   Hospital ,1.0369,2026\n"
        "050454,West,0.8612,2026\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(app, ["providers", "load", str(csv)], env=migrated.to_env())
    assert result.exit_code == 0, result.output
    csv.write_text("provider_id,name,wage_index,fiscal_year\n330101,Example,1.0400,2026\n")
    assert runner.invoke(app, ["providers", "load", str(csv)], env=migrated.to_env()).exit_code == 0
    engine = sync_engine(migrated.database)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(providers.c.provider_id, providers.c.name, providers.c.wage_index).order_by(
                    providers.c.provider_id
                )
            ).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("050454", "West", Decimal("0.8612")),
        ("330101", "Example", Decimal("1.0400")),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("provider_id,name,wage_index\n330101,A,1.0\n", "missing column(s) fiscal_year"),
        ("provider_id,name,wage_index,fiscal_year\n3301,A,1.0,2026\n", "line 2: provider_id"),
        ("provider_id,name,wage_index,fiscal_year\n330101,A,high,2026\n", "line 2: wage_index"),
        ("provider_id,name,wage_index,fiscal_year\n330101,A,-1,2026\n", "out of range"),
        ("provider_id,name,wage_index,fiscal_year\n330101,A,1.03691,2026\n", "> 4 decimals"),
        ("provider_id,name,wage_index,fiscal_year\n330101,A,1.0,2026,x\n", "line 2: more fields"),
        ("provider_id,name,wage_index,fiscal_year\n330101,A,1.0\n", "line 2: fewer fields"),
        ("provider_id,name,wage_index,fiscal_year\n330101, ,1.0,2026\n", "line 2: name is empty"),
        ("provider_id,name,wage_index,fiscal_year\n330101,A,1.0,1999\n", "fiscal_year out of"),
        (
            "provider_id,name,wage_index,fiscal_year\n330101,A,1.0,2026\n330101,B,1.1,2026\n",
            "line 3: provider 330101 is listed twice for fiscal year 2026",
        ),
    ],
)
def test_bad_provider_files_are_refused_with_the_line(
    tmp_path: Path, content: str, message: str
) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text(content, encoding="utf-8")
    with pytest.raises(ReferenceDataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_providers(csv)


def test_providers_load_refuses_a_bad_file_and_names_the_line(
    migrated: Settings, tmp_path: Path
) -> None:
    csv = tmp_path / "providers.csv"
    csv.write_text(
        "provider_id,name,wage_index,fiscal_year\n330101,A,1.0369,2026\n050454,B,0,2026\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["providers", "load", str(csv)], env=migrated.to_env())
    assert result.exit_code == 2
    assert result.output == "error: providers.csv line 3: wage_index out of range\n"
    engine = sync_engine(migrated.database)
    try:
        assert counts(engine)["providers"] == 0  # nothing of a refused file is loaded
    finally:
        engine.dispose()


def test_claim_results_upsert_on_event_id(migrated: Settings) -> None:
    engine = sync_engine(migrated.database)
    row = {
        "claim_id": "CLM-1",
        "event_id": "0" * 32,
        "status": "estimated",
        "drg": "291",
        "total": Decimal("9569.94"),
        "output": {"status": "estimated", "drg": {"code": "291"}},
    }
    # As worker/store.py does it: a re-delivery keeps the first output and is counted.
    upsert = insert(claim_results).on_conflict_do_update(
        index_elements=["event_id"],
        set_={"deliveries": claim_results.c.deliveries + 1, "updated_at": func.now()},
    )
    try:
        with engine.begin() as connection:
            connection.execute(upsert, row)
            connection.execute(upsert, {**row, "total": Decimal("9569.95")})
        with engine.connect() as connection:
            stored = connection.execute(
                select(
                    claim_results.c.event_id,
                    claim_results.c.total,
                    claim_results.c.output,
                    claim_results.c.deliveries,
                )
            ).all()
            status_check = connection.execute(
                text("SELECT count(*) FROM pg_constraint WHERE conname = :name"),
                {"name": "ck_claim_results_status_known"},
            ).scalar_one()
        assert [tuple(r) for r in stored] == [
            ("0" * 32, Decimal("9569.94"), {"status": "estimated", "drg": {"code": "291"}}, 2)
        ]
        assert status_check >= 1
        with (
            pytest.raises(IntegrityError, match="ck_claim_results_status_known"),
            engine.begin() as c,
        ):
            c.execute(insert(claim_results), {**row, "event_id": "1" * 32, "status": "done"})
        load_providers(engine, [])  # an empty file writes nothing
    finally:
        engine.dispose()
