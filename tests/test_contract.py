"""The published contracts: pydantic models and the committed JSON Schema files agree."""

import base64
import datetime as dt
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import jsonschema
import jsonschema.validators
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from drg.registry import ReleaseRegistry
from schemas import ClaimCoded, ClaimRaw, DeadLetter
from schemas.coded import NOT_INCLUDED
from schemas.decode import decode_claim
from schemas.exceptions import ContractError
from schemas.jsonschema import TOPIC_MODELS, load, render, schema_path
from schemas.raw import DISCHARGE_STATUS_CODES
from worker.intake import accept
from worker.outputs import MAX_LETTER_BYTES, Outgoing
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


# ---------------------------------------------------------------- one contract: schema == decoder


def _ecma_pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    """JSON Schema's ``pattern`` as ECMA-262 reads it (JSON Schema 2020-12 Validation 6.3.3).

    The boundary this test replaces: the jsonschema library searches with Python's ``re``, whose
    ``$`` also matches before a final newline ("CLM-1\\n"); in ECMA-262 (and in pydantic's Rust
    regex) ``$`` is the end of the text. Our patterns use ``$`` only as their last character."""
    if isinstance(instance, str) and not re.search(re.sub(r"\$$", r"\\Z", pattern), instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _ecma_pattern}
)
RAW_SCHEMA = EcmaValidator(load("claims.raw"), format_checker=Draft202012Validator.FORMAT_CHECKER)

INTS = st.one_of(
    st.integers(-3, 130),
    st.integers(),
    st.integers(-3, 130).map(float),  # integral floats: 70.0, -0.0 is 0
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.5, 70.5, 1e20, -0.0, 124.0000001]),
    st.integers(0, 130).map(str),  # strings of digits
    st.booleans(),
    st.none(),
)
WHITE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
NEAR_WHITE = "\x1c\x1f\u180e\u200b\x00"  # not white space in the contract
DIGITS = st.integers(0, 9999).map(lambda n: f"{n:04d}")
TWO = st.integers(0, 99).map(lambda n: f"{n:02d}")
FULL_DATES = st.builds(lambda y, m, d: f"{y}-{m}-{d}", DIGITS, TWO, TWO)
NEAR_DATES = st.one_of(
    st.dates().map(dt.date.isoformat),
    FULL_DATES,
    st.dates().map(lambda d: d.strftime("%Y%m%d")),  # ISO 8601 basic: not RFC 3339
    st.dates().map(lambda d: d.isoformat() + "T00:00:00"),
    st.dates().map(lambda d: d.isoformat() + "\n"),
    st.dates().map(lambda d: d.isoformat().replace("-", "/")),
    st.sampled_from(
        [
            "1699920000",
            "\uff12\uff10\uff12\uff16-01-15",
            "2026-1-15",
            "",
            "2026-W03-4",
            "+2026-01-15",
        ]
    ),
    st.integers(),
)
DATE_TIMES = st.builds(
    lambda date, sep, h, m, s, frac, offset, tail: f"{date}{sep}{h}:{m}:{s}{frac}{offset}{tail}",
    NEAR_DATES.filter(lambda d: isinstance(d, str)),
    st.sampled_from(["T", "t", " ", "_"]),
    st.sampled_from(["00", "09", "23", "24", "7"]),
    st.sampled_from(["00", "59", "60"]),
    st.sampled_from(["00", "59", "60", "61", ""]),
    st.sampled_from(["", ".5", ".123456", ".1234567", "."]),
    st.sampled_from(["Z", "z", "+00:00", "-05:30", "+23:59", "+24:00", "+0000", "", "+00:60"]),
    st.sampled_from(["", "", "", "\n"]),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
CODE_CHARS = "0SR9O1zZ- ."
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "schema_version": st.one_of(INTS, st.just(1), st.just(1.0)),
    "claim_id": st.one_of(
        st.text("Ab9._:-", min_size=0, max_size=130),
        st.text("Ab9._:- \n/é\x00", min_size=1, max_size=6),
        st.sampled_from(["CLM-1\n", "a" * 128, "a" * 129]),
        INTS,
    ),
    "narrative": st.one_of(
        st.text(WHITE + NEAR_WHITE + "ab", max_size=4),
        st.text(max_size=8),
        st.sampled_from(["a" * 100_000, " " * 99_999 + "a", "a" * 100_001]),
        INTS,
        JSON_VALUES,
    ),
    "patient": st.one_of(
        st.fixed_dictionaries(
            {"age": INTS, "sex": st.sampled_from(["M", "F", "U", "m", "X", "", None, 1])},
            optional={"extra": JSON_VALUES},
        ),
        st.fixed_dictionaries({}, optional={"age": st.integers(0, 124), "sex": st.just("F")}),
        JSON_VALUES,
    ),
    "discharge_date": NEAR_DATES,
    "admission_date": st.one_of(NEAR_DATES, st.none()),
    "discharge_status": st.one_of(INTS, st.sampled_from(sorted(DISCHARGE_STATUS_CODES))),
    "provider_id": st.one_of(
        st.text("0A9az-", min_size=5, max_size=7), st.just("330101\n"), st.none(), INTS
    ),
    "submitted_at": st.one_of(DATE_TIMES, st.none(), INTS, NEAR_DATES),
    "procedure_codes": st.one_of(
        st.lists(st.text(CODE_CHARS, max_size=8), max_size=27),
        st.lists(st.sampled_from(["0SR9019", "X" * 16, "X" * 17]), min_size=24, max_size=27),
        st.lists(JSON_VALUES, max_size=2),
        JSON_VALUES,
    ),
}


@st.composite
def near_contract_events(draw: st.DrawFn) -> Any:
    """VALID_RAW with one to three fields changed, removed, or a field added; or not an object."""
    if draw(st.integers(0, 19)) == 0:
        return draw(JSON_VALUES)
    event: dict[str, Any] = json.loads(json.dumps(VALID_RAW))
    for field in draw(st.lists(st.sampled_from(sorted(FIELD_VALUES)), min_size=1, max_size=3)):
        if draw(st.integers(0, 5)) == 0:
            event.pop(field, None)
        else:
            event[field] = draw(FIELD_VALUES[field])
    if draw(st.booleans()):
        event[draw(st.text(max_size=6))] = draw(JSON_VALUES)
    return event


def _admission_after_discharge(event: dict[str, Any]) -> bool:
    admission, discharge = event.get("admission_date"), event.get("discharge_date")
    return isinstance(admission, str) and isinstance(discharge, str) and admission > discharge


@settings(max_examples=600, derandomize=True, deadline=None, database=None)
@given(near_contract_events())
def test_the_json_schema_and_the_decoder_accept_the_same_events(event: Any) -> None:
    """The published JSON Schema (jsonschema, format checking as declared, ECMA-262 patterns)
    and the worker's decoder agree on every generated event. The one rule JSON Schema cannot
    state, admission_date not after discharge_date, is the decoder's alone (README)."""
    payload = json.dumps(event)
    schema_accepts = RAW_SCHEMA.is_valid(json.loads(payload))
    message = None
    try:
        decode_claim(payload.encode())
    except ContractError as error:
        message = error.message
    decoder_accepts = message is None
    if schema_accepts and not decoder_accepts and _admission_after_discharge(event):
        assert message == "event: Value error, admission_date is after discharge_date"
        return
    assert schema_accepts == decoder_accepts, (
        f"schema {'accepts' if schema_accepts else 'rejects'}, decoder "
        f"{'accepts' if decoder_accepts else 'rejects'}"
    )


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("patient.age", 70.0, 70),
        ("discharge_status", 1.0, 1),
        ("discharge_status", 2e0, 2),
        ("schema_version", 1.0, 1),
        ("patient.age", -0.0, 0),
    ],
)
def test_an_integral_float_is_its_integer_on_both_sides(
    path: str, value: Any, expected: int
) -> None:
    event = with_change(path, value)
    RAW_SCHEMA.validate(event)
    claim = decode_claim(json.dumps(event).encode()).model_dump(mode="json")
    *parents, last = path.split(".")
    for p in parents:
        claim = claim[p]
    assert claim[last] == expected
    assert type(claim[last]) is int


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("patient.age", 70.5),
        ("patient.age", "70"),
        ("patient.age", True),
        ("discharge_status", True),
        ("schema_version", True),
        ("schema_version", "1"),
        ("claim_id", "CLM-1\n"),
        ("narrative", "\u3000\ufeff\n"),
        ("discharge_date", "20260115"),
        ("discharge_date", "1768435200"),
        ("submitted_at", "1768471200"),
        ("submitted_at", "2026-01-15 10:00:00Z"),
        ("submitted_at", "2026-01-15T10:00Z"),
        ("submitted_at", "2026-12-31T23:59:60Z"),
    ],
)
def test_near_misses_are_refused_on_both_sides(path: str, value: Any) -> None:
    event = with_change(path, value)
    assert not RAW_SCHEMA.is_valid(event)
    with pytest.raises(ContractError) as info:
        decode_claim(json.dumps(event).encode())
    assert info.value.kind == "invalid_event"
    assert info.value.message.startswith(path.replace(".", ".") + ":")


@pytest.mark.parametrize(
    ("key", "kept_key"),
    [(b"big-1", b"big-1"), (b"k" * 950_000, None)],
    ids=["big value", "big key"],
)
def test_a_record_too_large_to_copy_is_dead_lettered_without_its_bytes(
    key: bytes, kept_key: bytes | None
) -> None:
    """A record near Kafka's 1 MB default would make a letter of 4/3 its size, which no
    producer with default limits can send: the letter keeps the reason and where the record is,
    says it left the bytes out, and fits (worker.outputs.MAX_LETTER_BYTES)."""
    value = json.dumps({**VALID_RAW, "claim_id": "big-1", "padding": "x" * 950_000}).encode()
    value = value.replace(b'"discharge_date"', b'"discharge_datum"')  # invalid: no date
    record = Record("claims.raw", 2, 17, key, value, headers=(("h", b"v" * 10),))
    outcome = accept(record, REGISTRY)
    assert isinstance(outcome, Outgoing)
    assert len(outcome.value) + len(outcome.key or b"") <= MAX_LETTER_BYTES
    assert outcome.key == kept_key
    letter = json.loads(outcome.value)
    validator("claims.dlq").validate(letter)
    assert (letter["topic"], letter["partition"], letter["offset"]) == ("claims.raw", 2, 17)
    assert (letter["key"], letter["value"], letter["headers"]) == (None, None, [])
    assert letter["error"]["type"] == "invalid_event"
    assert letter["error"]["message"].endswith(
        f"; original record (value {len(value)} bytes, key {len(key)} bytes) not copied: "
        "too large for a dead letter"
    )
