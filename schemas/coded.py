"""`claims.coded`: one enriched claim estimate per claim, keyed by ``claim_id``.

The downstream estimator reads these key names; change them only with a new ``schema_version``.
"""

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)

from schemas.icd10cm import DOTTED_CODE, DOTTED_CODE_PATTERN
from schemas.icd10pcs import PCS_CODE_PATTERN


def _fixed(places: int) -> PlainSerializer:
    return PlainSerializer(lambda v: f"{v:.{places}f}", return_type=str, when_used="json")


# Amounts travel as decimal strings so that no consumer meets binary floating point.
Money = Annotated[
    Decimal,
    _fixed(2),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$"}),
    Field(description="US dollars with two decimals, as a string."),
]
Weight = Annotated[
    Decimal,
    _fixed(4),
    WithJsonSchema({"type": "string", "pattern": r"^[0-9]+\.[0-9]{4}$"}),
]
LengthOfStay = Annotated[
    Decimal,
    _fixed(1),
    WithJsonSchema({"type": "string", "pattern": r"^[0-9]+\.[0-9]$"}),
]

Status = Literal["estimated", "needs_review", "ungroupable"]
#: Why a code is not billed: validation (invalid, not_billable, duplicate), the Medicare Code
#: Editor (mce:<EDIT>), or an ICD-10-CM convention naming the code it gave way to
#: (excludes1:E11.9, redundant:E11.65, symptom:E11.65, combination:I13.0). A rejected ICD-10-PCS
#: procedure code of the claim has ``procedure:`` first: procedure:invalid (not shaped as an
#: ICD-10-PCS code), procedure:mce:<EDIT> (the Medicare Code Editor: INVALID_CODE, not a valid
#: code on the discharge date; AGE_CONFLICT, SEX_CONFLICT).
RejectReason = Annotated[
    str,
    Field(
        pattern=rf"^(invalid|not_billable|duplicate|mce:[A-Z0-9_]+"
        rf"|procedure:(invalid|mce:[A-Z0-9_]+)"
        rf"|(excludes1|redundant|symptom|combination):{DOTTED_CODE})$"
    ),
]


class CodedDiagnosis(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=DOTTED_CODE_PATTERN, description="Dotted ICD-10-CM code.")
    description: str
    role: Literal["principal", "secondary"]


class RejectedCode(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    raw: str = Field(
        max_length=32,
        pattern=r"^[A-Za-z0-9.]+$",
        description="The code as the coder (or, for a procedure code, the claim) wrote it "
        "(code-shaped tokens only).",
    )
    reason: RejectReason


class Adjustment(BaseModel):
    """A change the ``apply_conventions`` stage made to the coder's codes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=DOTTED_CODE_PATTERN, description="The code acted on.")
    action: Literal["dropped", "added", "moved", "replaced"]
    rule: Literal["combination", "redundant", "symptom", "excludes1", "sequencing"]
    other: str | None = Field(
        pattern=DOTTED_CODE_PATTERN,
        description="The code it gave way to, was replaced by, or was moved before.",
    )
    guideline: str = Field(description="ICD-10-CM Official Guidelines section, e.g. I.A.12.a.")


class DrgAssignment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(description="MS-DRG grouper version, e.g. 430 (v43.0).")
    code: str = Field(pattern=r"^[0-9]{3}$", description="Final MS-DRG, three digits.")
    title: str | None
    mdc: str | None = Field(description="Major diagnostic category, e.g. '05', or 'PRE'.")
    type: Literal["MED", "SURG"] | None
    relative_weight: Weight | None
    gmlos: LengthOfStay | None = Field(description="Geometric mean length of stay (days).")
    amlos: LengthOfStay | None = Field(description="Arithmetic mean length of stay (days).")
    return_code: str = Field(description="Grouper return code; OK when grouped.")


#: What the estimate leaves out (each a payment or adjustment of the IPPS that it does not
#: compute): outlier payments (42 CFR 412.80), indirect medical education (412.105),
#: disproportionate share (412.106) and uncompensated care (412.106(g)), new technology add-on
#: payments (412.87-412.88), and the hospital's quality program adjustments (value-based
#: purchasing 412.160-412.167, readmissions reduction 412.150-412.154, hospital-acquired
#: condition reduction 412.170-412.172).
NotIncluded = Literal[
    "outlier",
    "indirect_medical_education",
    "disproportionate_share",
    "uncompensated_care",
    "new_technology_add_on",
    "quality_program_adjustments",
]
NOT_INCLUDED: tuple[NotIncluded, ...] = get_args(NotIncluded)


class TransferPayment(BaseModel):
    """A stay paid as a transfer (42 CFR 412.4(f)): the per diem (full payment / GMLOS) for
    each day plus one, up to the full payment; for special-pay MS-DRGs, half the full payment
    plus half of that."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: Literal["acute", "post_acute", "post_acute_special_pay"] = Field(
        description="acute: to another acute care hospital (42 CFR 412.4(b)); post_acute: from "
        "a post-acute MS-DRG to post-acute care (412.4(c)); post_acute_special_pay: the same "
        "from a special-pay MS-DRG."
    )
    discharge_status: int = Field(description="The UB-04 patient discharge status.")
    length_of_stay: int = Field(
        ge=1, description="Days, admission day counted, discharge day not; a same-day stay is 1."
    )
    gmlos: LengthOfStay = Field(description="The MS-DRG's geometric mean length of stay (days).")
    full_operating: Money = Field(description="The operating payment without the transfer rule.")
    full_capital: Money = Field(description="The capital payment without the transfer rule.")
    adjustment: Money = Field(
        description="total minus (full_operating + full_capital): zero or negative."
    )


class Estimate(BaseModel):
    """The IPPS payment estimate: ``total`` = ``operating`` + ``capital``, after the transfer
    rule when it applies (``transfer``). ``not_included`` lists what it leaves out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fiscal_year: int
    operating: Money = Field(
        description="Operating payment: (labor x wage index + non-labor) x weight (42 CFR "
        "412.64), after the transfer rule."
    )
    capital: Money = Field(
        description="Capital payment: capital rate x wage index ^ 0.6848 x weight (42 CFR "
        "412.308), after the transfer rule."
    )
    total: Money
    wage_index: Weight
    wage_index_basis: Literal["provider", "national", "override"] = Field(
        description="provider: the provider's loaded wage index; national: provider absent or "
        "unknown, priced at wage index 1.0; override: given by the caller."
    )
    transfer: TransferPayment | None = Field(
        default=None, description="Set when the stay is paid as a transfer."
    )
    upper_bound: bool = Field(
        default=False,
        description="True when the discharge status is a transfer but the length of stay is "
        "unknown (no admission_date): the amounts are the full MS-DRG payment, which the "
        "transfer payment never exceeds (review reason 'transfer').",
    )
    not_included: tuple[NotIncluded, ...] = Field(
        default=NOT_INCLUDED,
        description="Payments and adjustments the estimate does not compute: outlier (42 CFR "
        "412.80), indirect_medical_education (412.105), disproportionate_share (412.106), "
        "uncompensated_care (412.106(g)), new_technology_add_on (412.87), "
        "quality_program_adjustments (value-based purchasing 412.160-412.167, readmissions "
        "reduction 412.150-412.154, hospital-acquired condition reduction 412.170-412.172).",
    )


class ModelInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: Literal["retrieval", "vllm", "manual"]
    model: str
    adapter: str | None = None
    profile: str | None = None


class ClaimCoded(BaseModel):
    """The coded claim and its payment estimate."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="claims.coded")

    schema_version: Literal[1] = 1
    event_id: str = Field(
        pattern=r"^[0-9a-f]{32}$",
        description="Stable for the same claim_id and input bytes: consumers de-duplicate "
        "re-deliveries on it.",
    )
    claim_id: str
    status: Status
    review_reasons: list[str]
    codes: list[CodedDiagnosis] = Field(description="Billable codes, principal first.")
    rejected_codes: list[RejectedCode] = Field(
        description="Codes not billed, each with its reason; the claim's rejected ICD-10-PCS "
        "codes too (reason procedure:...)."
    )
    procedure_codes: list[Annotated[str, Field(pattern=PCS_CODE_PATTERN)]] = Field(
        default_factory=list,
        description="The claim's ICD-10-PCS codes the grouper saw (valid on the discharge "
        "date), principal procedure first; empty when the claim carries none or nothing was "
        "grouped.",
    )
    adjustments: list[Adjustment] = Field(
        default_factory=list,
        description="What ICD-10-CM's conventions changed in the coder's codes, in order.",
    )
    drg: DrgAssignment | None
    estimate: Estimate | None
    model: ModelInfo
    codeset_release: str | None = Field(description="ICD-10-CM release the codes were checked in.")
    fiscal_year: int | None = Field(
        default=None,
        description="Federal fiscal year whose code set, MS-DRG version and rates apply to the "
        "discharge date; null when no loaded release covers it.",
    )
    msdrg_version: int | None = Field(
        default=None,
        description="MS-DRG grouper version of the discharge date, e.g. 440 (v44.0); null when no "
        "loaded release covers it.",
    )
    discharge_date: dt.date
    timings_ms: dict[str, NonNegativeFloat] = Field(description="Milliseconds per stage.")
    coded_at: AwareDatetime

    @field_validator("timings_ms")
    @classmethod
    def _stages_in_name_order(cls, value: dict[str, float]) -> dict[str, float]:
        """Keys in one order, whatever built the event: an event read back from PostgreSQL
        (jsonb keeps its own key order) serializes byte for byte as it was first emitted."""
        return dict(sorted(value.items()))
