"""`claims.raw`: what upstream intake publishes, keyed by ``claim_id``.

The model and the JSON Schema generated from it (``schemas/json/claims.raw.schema.json``) accept
exactly the same events (tests/test_contract.py checks it with generated events). Where JSON
Schema and pydantic read a rule differently, the rule is written here so that both agree:

- integers: JSON does not tell 70 from 70.0 and JSON Schema's ``integer`` accepts any number
  with a zero fractional part (JSON Schema 2020-12 Validation, section 6.1.1), so an integral
  float is its integer; ``true``/``false`` are not integers; "70" is not a number.
- dates: ``full-date`` of RFC 3339 section 5.6 (``YYYY-MM-DD``), what format ``date`` means;
  date-times: RFC 3339 ``date-time`` with an offset, seconds 00-59 (no leap second: a Python
  datetime cannot hold one).
- a narrative must hold a character other than white space; white space is spelled out
  (Unicode White_Space and U+FEFF) because the white-space class of ECMA-262, Python and Rust
  regular expressions is not the same set.
"""

import datetime as dt
import re
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

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

#: Not blank: a character outside Unicode White_Space and U+FEFF (ECMA-262 counts U+FEFF).
NOT_BLANK_PATTERN: Final = (
    r"[^\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    r"\ufeff]"
)
#: RFC 3339 section 5.6 ``full-date``, ASCII digits only.
FULL_DATE_PATTERN: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
#: RFC 3339 section 5.6 ``date-time`` with seconds 00-59 (pydantic refuses leap seconds).
DATE_TIME_PATTERN: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-5][0-9](\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_FULL_DATE: Final = re.compile(FULL_DATE_PATTERN.removesuffix("$"))
_DATE_TIME: Final = re.compile(DATE_TIME_PATTERN.removesuffix("$"))


def _integral(value: Any) -> Any:
    """An integral float (70.0) as its int; a bool is refused (JSON Schema: not an integer)."""
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_DATE: Final = TypeAdapter(dt.date)
_AWARE_DATETIME: Final = TypeAdapter(AwareDatetime)


def _rfc3339(
    pattern: re.Pattern[str], adapter: TypeAdapter[Any], error: str, message: str
) -> Callable[[Any], Any]:
    """A validator of a JSON string: the RFC 3339 ``pattern`` first (what the published
    schema's ``pattern`` says), then pydantic's own check (a real calendar date)."""

    def validate(value: Any) -> Any:
        if not isinstance(value, str):
            return value  # the strict validator after it refuses it
        try:
            if pattern.fullmatch(value):
                return adapter.validate_strings(value)
        except ValidationError:
            pass
        raise PydanticCustomError(error, message)

    return validate


_full_date = _rfc3339(
    _FULL_DATE, _DATE, "date_format", "Input should be a valid date in the format YYYY-MM-DD"
)
_date_time = _rfc3339(
    _DATE_TIME,
    _AWARE_DATETIME,
    "datetime_format",
    "Input should be an RFC 3339 date-time with a UTC offset",
)


#: An integer as JSON Schema reads one: 70 and 70.0, not "70" or true.
Integral = BeforeValidator(_integral)
FullDate = Annotated[dt.date, BeforeValidator(_full_date)]
DateTime = Annotated[
    AwareDatetime,
    BeforeValidator(_date_time),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN}),
]

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

    age: Annotated[int, Integral] = Field(
        ge=0, le=124, description="Age in whole years at admission."
    )
    sex: Literal["M", "F", "U"] = Field(description="M, F or U (unknown).")


class ClaimRaw(BaseModel):
    """One claim narrative to code.

    Unknown fields are ignored so that producers can add fields without breaking consumers.
    ``strict`` keeps pydantic and the published JSON Schema in agreement (no "70" for 70); an
    integer may be written 70 or 70.0, as JSON Schema's ``integer`` allows.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, title="claims.raw")

    schema_version: Annotated[Literal[1], Integral] = Field(
        default=1, description="Contract version; only 1 exists."
    )
    claim_id: ClaimId
    narrative: str = Field(
        min_length=1,
        max_length=MAX_NARRATIVE_CHARS,
        pattern=NOT_BLANK_PATTERN,
        repr=False,
        description="Free text: a patient's own description or a discharge summary. Patient "
        "health information: never logged or traced.",
    )
    patient: Patient
    discharge_date: FullDate = Field(
        description="Selects the fiscal year, the ICD-10-CM release and the MS-DRG version."
    )
    admission_date: FullDate | None = Field(default=None, description="Not after discharge_date.")
    discharge_status: Annotated[int, Integral] = Field(
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
    submitted_at: DateTime | None = Field(
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
