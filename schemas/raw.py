"""`claims.raw`: what upstream intake publishes, keyed by ``claim_id``."""

import datetime as dt
from typing import Annotated, Final, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)

CLAIM_ID_PATTERN: Final = r"^[A-Za-z0-9._:-]{1,128}$"
MAX_NARRATIVE_CHARS: Final = 100_000
#: UB-04 form locators 74 and 74a-e and the 837I HI segments carry at most 25 ICD-10-PCS codes.
MAX_PROCEDURE_CODES: Final = 25

# UB-04 form locator 17 "patient discharge status" codes that CMS accepts on inpatient claims.
DISCHARGE_STATUS_CODES: Final = frozenset(
    {1, 2, 3, 4, 5, 6, 7, 9, 20, 21, 30, 40, 41, 42, 43, 50, 51, 61, 62, 63, 64, 65, 66, 69, 70}
    | set(range(81, 96))
)

_STATUS_ENUM: list[JsonValue] = [code for code in sorted(DISCHARGE_STATUS_CODES)]

ClaimId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=CLAIM_ID_PATTERN,
        description="Claim identifier; also the Kafka message key.",
        examples=["CLM-2026-000123"],
    ),
]


ProcedureCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=16,
        pattern=r"^[A-Za-z0-9]+$",
        description="An ICD-10-PCS code as the claim carries it, without a dot (0SR9019). "
        "Code-shaped tokens only; whether it is a procedure code is checked per code, not here.",
        examples=["0SR9019"],
    ),
]


class Patient(BaseModel):
    """Demographics the grouper needs."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    age: int = Field(ge=0, le=124, description="Age in whole years at admission.")
    sex: Literal["M", "F", "U"] = Field(description="M, F or U (unknown).")


class ClaimRaw(BaseModel):
    """One claim narrative to code.

    Unknown fields are ignored so that producers can add fields without breaking consumers.
    ``strict`` keeps pydantic and the published JSON Schema in agreement (no "70" for 70).
    """

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, title="claims.raw")

    schema_version: Literal[1] = Field(default=1, description="Contract version; only 1 exists.")
    claim_id: ClaimId
    narrative: str = Field(
        min_length=1,
        max_length=MAX_NARRATIVE_CHARS,
        pattern=r"\S",
        repr=False,
        description="Free text: a patient's own description or a discharge summary. Patient "
        "health information: never logged or traced.",
    )
    patient: Patient
    discharge_date: dt.date = Field(
        description="Selects the fiscal year, the ICD-10-CM release and the MS-DRG version."
    )
    admission_date: dt.date | None = Field(default=None, description="Not after discharge_date.")
    discharge_status: int = Field(
        default=1,
        description="UB-04 patient discharge status code (1 = home or self care).",
        json_schema_extra={"enum": _STATUS_ENUM},
    )
    provider_id: str | None = Field(
        default=None,
        pattern=r"^[0-9A-Z]{6}$",
        description="CMS certification number (CCN) of the billing hospital; selects the wage "
        "index. Absent or unknown: the national rate applies.",
    )
    submitted_at: AwareDatetime | None = Field(
        default=None, description="When intake received the claim (with a UTC offset)."
    )
    procedure_codes: tuple[ProcedureCode, ...] = Field(
        default=(),
        max_length=MAX_PROCEDURE_CODES,
        description="ICD-10-PCS procedure codes of the hospital's institutional claim (UB-04 / "
        "837I), principal procedure first, at most 25. Each is checked for the discharge date "
        "by the Medicare Code Editor: an invalid one is reported in claims.coded "
        "rejected_codes (reason procedure:...) and the claim is grouped without it. Never "
        "produced by a coder.",
    )

    @field_validator("discharge_status")
    @classmethod
    def _known_status(cls, value: int) -> int:
        if value not in DISCHARGE_STATUS_CODES:
            raise ValueError("not a UB-04 patient discharge status code")
        return value

    @model_validator(mode="after")
    def _admission_not_after_discharge(self) -> Self:
        if self.admission_date is not None and self.admission_date > self.discharge_date:
            raise ValueError("admission_date is after discharge_date")
        return self
