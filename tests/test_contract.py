"""The published contracts: pydantic models and the committed JSON Schema files agree."""

import base64
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from jsonschema import Draft202012Validator

from drg.registry import ReleaseRegistry
from schemas import ClaimCoded, ClaimRaw, DeadLetter
from schemas.coded import NOT_INCLUDED
from schemas.decode import decode_claim
from schemas.exceptions import ContractError
from schemas.jsonschema import TOPIC_MODELS, load, render, schema_path
from worker.intake import accept
from worker.outputs import Outgoing
from worker.records import Record
from worker.work import WorkItem

VALID_RAW: dict[str, Any] = {
    "schema_version": 1,
    "claim_id": "CLM-2026.000123:a_b",
    "narrative": "I was cycling and a car ran over my leg. My tibia is fractured.",
    "patient": {"age": 34, "sex": "M"},
    "discharge_date": "2026-01-15",
    "admission_date": "2026-01-12",
    "discharge_status": 1,
    "provider_id": "330101",
    "submitted_at": "2026-01-15T10:00:00+00:00",
}

VALID_CODED: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "0123456789abcdef0123456789abcdef",
    "claim_id": "CLM-1",
    "status": "estimated",
    "review_reasons": ["rejected_code:invalid"],
    "codes": [
        {
            "code": "I50.21",
            "description": "Acute systolic (congestive) heart failure",
            "role": "principal",
        },
        {
            "code": "J96.01",
            "description": "Acute respiratory failure with hypoxia",
            "role": "secondary",
        },
    ],
    "rejected_codes": [{"raw": "XYZ", "reason": "invalid"}],
    "procedure_codes": [],
    "adjustments": [],
    "drg": {
        "version": 430,
        "code": "291",
        "title": "Heart Failure and Shock with MCC",
        "mdc": "05",
        "type": "MED",
        "relative_weight": "1.2838",
        "gmlos": "3.9",
        "amlos": "4.9",
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
    "model": {"engine": "retrieval", "model": "bm25", "adapter": None, "profile": None},
    "codeset_release": "2026-04",
    "fiscal_year": 2026,
    "msdrg_version": 430,
    "discharge_date": "2026-01-15",
    "timings_ms": {"inference": 12.5, "validate_codes": 0.4},
    "coded_at": "2026-01-15T10:00:01.5+00:00",
}

REGISTRY = ReleaseRegistry.load()


def validator(topic: str) -> Draft202012Validator:
    return Draft202012Validator(load(topic), format_checker=Draft202012Validator.FORMAT_CHECKER)


def with_change(path: str, value: Any) -> dict[str, Any]:
    """VALID_RAW with one field set (or removed when value is ...)."""
    event: dict[str, Any] = json.loads(json.dumps(VALID_RAW))
    *parents, last = path.split(".")
    target = event
    for p in parents:
        target = target[p]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return event


@pytest.mark.parametrize("topic", list(TOPIC_MODELS))
def test_committed_json_schema_matches_the_models(topic: str) -> None:
    assert schema_path(topic).read_text(encoding="utf-8") == render(topic), (
        "schemas/json is stale: run `python -m schemas.jsonschema`"
    )
    Draft202012Validator.check_schema(load(topic))


def test_dates_carry_a_format_in_the_json_schema() -> None:
    raw = load("claims.raw")["properties"]
    assert raw["discharge_date"]["format"] == "date"
    assert {"format": "date", "type": "string"} in raw["admission_date"]["anyOf"]
    assert load("claims.coded")["properties"]["coded_at"]["format"] == "date-time"
    assert load("claims.dlq")["properties"]["failed_at"]["format"] == "date-time"


def test_valid_raw_event_passes_both_validators() -> None:
    validator("claims.raw").validate(VALID_RAW)
    claim = decode_claim(json.dumps(VALID_RAW).encode(), key=b"CLM-2026.000123:a_b")
    assert claim.model_dump(mode="json") == {
        **VALID_RAW,
        "submitted_at": "2026-01-15T10:00:00Z",
        "procedure_codes": [],  # an event from before procedure codes: none
    }


def test_minimal_raw_event_gets_defaults_and_ignores_unknown_fields() -> None:
    event = {
        "claim_id": "c1",
        "narrative": "chest pain",
        "patient": {"age": 0, "sex": "U"},
        "discharge_date": "2025-10-01",
        "added_by_a_newer_producer": {"x": [1, 2]},
    }
    validator("claims.raw").validate(event)
    claim = decode_claim(json.dumps(event).encode())
    assert claim.model_dump(mode="json") == {
        "schema_version": 1,
        "claim_id": "c1",
        "narrative": "chest pain",
        "patient": {"age": 0, "sex": "U"},
        "discharge_date": "2025-10-01",
        "admission_date": None,
        "discharge_status": 1,
        "provider_id": None,
        "submitted_at": None,
        "procedure_codes": [],
    }


def test_raw_event_carries_procedure_codes_principal_first() -> None:
    """claims.raw ``procedure_codes``: the ICD-10-PCS codes of an institutional claim (UB-04 /
    837I), principal procedure first; shape is checked later, per code (drg.procedures)."""
    event = with_change("procedure_codes", ["0SR9019", "0sr90zz", "XYZ"])
    validator("claims.raw").validate(event)
    claim = decode_claim(json.dumps(event).encode())
    assert claim.procedure_codes == ("0SR9019", "0sr90zz", "XYZ")
    # 25 codes: the most the UB-04 (form locators 74, 74a-e) and the 837I carry
    event = with_change("procedure_codes", ["0SR9019"] * 25)
    validator("claims.raw").validate(event)
    assert len(decode_claim(json.dumps(event).encode()).procedure_codes) == 25


def test_more_than_25_procedure_codes_are_a_dead_letter_naming_the_field() -> None:
    value = json.dumps(with_change("procedure_codes", ["0SR9019"] * 26)).encode()
    outcome = accept(Record("claims.raw", 0, 7, b"CLM-2026.000123:a_b", value), REGISTRY)
    assert isinstance(outcome, Outgoing)
    assert (outcome.topic, outcome.label) == ("dlq", "invalid_event")
    error = json.loads(outcome.value)["error"]
    assert error == {
        "stage": "validate_event",
        "type": "invalid_event",
        "message": "procedure_codes: Tuple should have at most 25 items after validation, not 26",
    }


MALFORMED = [
    # (case, event, field the message must name, error kind)
    ("claim_id missing", with_change("claim_id", ...), "claim_id", "invalid_event"),
    ("claim_id with a space", with_change("claim_id", "CLM 1"), "claim_id", "invalid_event"),
    ("claim_id too long", with_change("claim_id", "a" * 129), "claim_id", "invalid_event"),
    ("narrative empty", with_change("narrative", ""), "narrative", "invalid_event"),
    ("narrative blank", with_change("narrative", "  \n "), "narrative", "invalid_event"),
    (
        "narrative too long",
        with_change("narrative", "a" * 100_001),
        "narrative",
        "narrative_too_long",
    ),
    ("narrative not a string", with_change("narrative", 42), "narrative", "invalid_event"),
    ("age as a string", with_change("patient.age", "70"), "patient.age", "invalid_event"),
    ("age above 124", with_change("patient.age", 125), "patient.age", "invalid_event"),
    ("age negative", with_change("patient.age", -1), "patient.age", "invalid_event"),
    ("sex unknown letter", with_change("patient.sex", "X"), "patient.sex", "invalid_event"),
    ("patient missing", with_change("patient", ...), "patient", "invalid_event"),
    (
        "discharge_date missing",
        with_change("discharge_date", ...),
        "discharge_date",
        "invalid_event",
    ),
    (
        "discharge_date impossible",
        with_change("discharge_date", "2026-02-30"),
        "discharge_date",
        "invalid_event",
    ),
    (
        "admission after discharge",
        with_change("admission_date", "2026-01-16"),
        "admission_date",
        "invalid_event",
    ),
    (
        "discharge_status not UB-04",
        with_change("discharge_status", 8),
        "discharge_status",
        "invalid_event",
    ),
    (
        "provider_id malformed",
        with_change("provider_id", "33-0101"),
        "provider_id",
        "invalid_event",
    ),
    (
        "submitted_at without offset",
        with_change("submitted_at", "2026-01-15T10:00:00"),
        "submitted_at",
        "invalid_event",
    ),
    ("schema_version 2", with_change("schema_version", 2), "schema_version", "invalid_event"),
    (
        "procedure_codes over 25",
        with_change("procedure_codes", ["0SR9019"] * 26),
        "procedure_codes",
        "invalid_event",
    ),
    (
        "procedure_codes not a list",
        with_change("procedure_codes", "0SR9019"),
        "procedure_codes",
        "invalid_event",
    ),
    (
        "procedure code with punctuation",
        with_change("procedure_codes", ["0SR9-019"]),
        "procedure_codes.0",
        "invalid_event",
    ),
    (
        "procedure code empty",
        with_change("procedure_codes", [""]),
        "procedure_codes.0",
        "invalid_event",
    ),
]


@pytest.mark.parametrize(
    ("case", "event", "field", "kind"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_malformed_raw_event_is_rejected_naming_the_field(
    case: str, event: dict[str, Any], field: str, kind: str
) -> None:
    payload = json.dumps(event).encode()
    with pytest.raises(ContractError) as info:
        decode_claim(payload)
    assert info.value.kind == kind
    assert info.value.message.startswith(f"{field}:") or f"{field} " in info.value.message
    # The published JSON Schema rejects it too (except the cross-field date rule, which JSON
    # Schema cannot express and the message documents).
    if case != "admission after discharge":
        with pytest.raises(jsonschema.ValidationError):
            validator("claims.raw").validate(event)


def test_error_messages_never_repeat_the_narrative() -> None:
    secret = "Patient Jane Roe, SSN 123-45-6789, has HIV"
    event = with_change("narrative", secret + "x" * 100_000)
    event["patient"]["age"] = "seventy"
    with pytest.raises(ContractError) as info:
        decode_claim(json.dumps(event).encode())
    assert "Jane" not in info.value.message
    assert "seventy" not in info.value.message
    claim = ClaimRaw.model_validate_json(json.dumps(VALID_RAW))
    assert "cycling" not in repr(claim)


@pytest.mark.parametrize(
    ("value", "key", "kind"),
    [
        (b"\xff\xfe{}", None, "bad_utf8"),
        (b'{"claim_id": "c1", ', None, "bad_json"),
        (b"[1, 2]", None, "invalid_event"),
        (b"", None, "bad_json"),
        (None, b"c1", "empty_value"),
        (json.dumps(VALID_RAW).encode(), b"another-claim", "key_mismatch"),
    ],
)
def test_undecodable_bytes_are_rejected_with_their_kind(
    value: bytes | None, key: bytes | None, kind: str
) -> None:
    with pytest.raises(ContractError) as info:
        decode_claim(value, key)
    assert info.value.kind == kind


def test_coded_event_round_trips_and_matches_its_schema() -> None:
    validator("claims.coded").validate(VALID_CODED)
    event = ClaimCoded.model_validate_json(json.dumps(VALID_CODED))
    assert event.estimate is not None
    assert event.estimate.total == Decimal("9569.94")
    assert json.loads(event.model_dump_json()) == {
        **VALID_CODED,
        "coded_at": "2026-01-15T10:00:01.500000Z",
    }
    validator("claims.coded").validate(json.loads(event.model_dump_json()))


def test_coded_event_with_procedures_and_an_older_one_without_them_are_valid() -> None:
    with_procedures = {
        **VALID_CODED,
        "procedure_codes": ["0SR9019"],
        "rejected_codes": [
            {"raw": "XYZ", "reason": "procedure:invalid"},
            {"raw": "0SR90ZZ", "reason": "procedure:mce:INVALID_CODE"},
        ],
    }
    validator("claims.coded").validate(with_procedures)
    assert ClaimCoded.model_validate(with_procedures).procedure_codes == ["0SR9019"]
    older = {k: v for k, v in VALID_CODED.items() if k != "procedure_codes"}
    validator("claims.coded").validate(older)
    assert ClaimCoded.model_validate(older).procedure_codes == []


def test_coded_amounts_are_two_decimal_strings() -> None:
    event = ClaimCoded.model_validate(VALID_CODED).model_copy(
        update={
            "estimate": ClaimCoded.model_validate(VALID_CODED).estimate.model_copy(  # type: ignore[union-attr]
                update={"operating": Decimal("8880.1"), "total": Decimal("9569.9")}
            )
        }
    )
    dumped = json.loads(event.model_dump_json())
    assert (dumped["estimate"]["operating"], dumped["estimate"]["total"]) == ("8880.10", "9569.90")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("status", "done"),
        ("codes.0.role", "primary"),
        ("codes.0.code", "I5021"),
        ("rejected_codes.0.reason", "made_up"),
        ("rejected_codes.0.reason", "procedure:duplicate"),
        ("procedure_codes", ["0SR9O19"]),  # the letter O is never used in ICD-10-PCS
        ("event_id", "not-hex"),
    ],
)
def test_malformed_coded_event_is_rejected_by_schema_and_model(path: str, value: Any) -> None:
    event = json.loads(json.dumps(VALID_CODED))
    target: Any = event
    *parents, last = path.split(".")
    for p in parents:
        target = target[int(p)] if p.isdigit() else target[p]
    target[int(last) if last.isdigit() else last] = value
    with pytest.raises(jsonschema.ValidationError):
        validator("claims.coded").validate(event)
    with pytest.raises(ValueError, match=path.split(".")[0]):
        ClaimCoded.model_validate(event)


def test_intake_turns_bad_bytes_into_a_dead_letter_that_keeps_them() -> None:
    record = Record(
        topic="claims.raw",
        partition=3,
        offset=41,
        key=b"k-1",
        value=b"\xff not utf-8",
        headers=(
            ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            ("empty", None),
        ),
        timestamp_ms=1_768_471_200_000,
    )
    outcome = accept(record, REGISTRY)
    assert isinstance(outcome, Outgoing)
    assert (outcome.topic, outcome.key, outcome.label) == ("dlq", b"k-1", "bad_utf8")
    letter = json.loads(outcome.value)
    validator("claims.dlq").validate(letter)
    failed_at = letter.pop("failed_at")
    assert dt.datetime.fromisoformat(failed_at).tzinfo is not None
    assert letter == {
        "schema_version": 1,
        "event_id": letter["event_id"],
        "error": {
            "stage": "validate_event",
            "type": "bad_utf8",
            "message": "value is not UTF-8 (invalid byte at 0)",
        },
        "topic": "claims.raw",
        "partition": 3,
        "offset": 41,
        "timestamp_ms": 1_768_471_200_000,
        "key": base64.b64encode(b"k-1").decode(),
        "value": base64.b64encode(b"\xff not utf-8").decode(),
        "headers": [
            {
                "key": "traceparent",
                "value": base64.b64encode(
                    b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                ).decode(),
            },
            {"key": "empty", "value": None},
        ],
    }
    # the same record always gets the same dead-letter id
    again = accept(record, REGISTRY)
    assert isinstance(again, Outgoing)
    assert json.loads(again.value)["event_id"] == letter["event_id"]
    DeadLetter.model_validate_json(outcome.value)


def test_event_id_is_stable_per_claim_and_input_bytes() -> None:
    value = json.dumps(VALID_RAW).encode()
    first = accept(Record("claims.raw", 0, 1, b"CLM-2026.000123:a_b", value), REGISTRY)
    redelivered = accept(Record("claims.raw", 2, 9, b"CLM-2026.000123:a_b", value), REGISTRY)
    corrected = accept(
        Record("claims.raw", 0, 2, b"CLM-2026.000123:a_b", value.replace(b"tibia", b"fibula")),
        REGISTRY,
    )
    assert isinstance(first, WorkItem)
    assert isinstance(redelivered, WorkItem)
    assert isinstance(corrected, WorkItem)
    assert first.event_id == redelivered.event_id
    assert first.event_id != corrected.event_id
