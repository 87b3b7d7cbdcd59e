"""What the worker publishes: one ``claims.coded`` event per claim, or one ``claims.dlq``
letter per record it could not take. The one builder of each."""

import base64
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from drg.assess import finish, not_coded
from drg.codeset.normalize import dotted
from schemas.coded import ClaimCoded, ModelInfo, RejectedCode
from schemas.dlq import DeadLetter, DeadLetterError, OriginalHeader
from worker.event_ids import dead_letter_id
from worker.records import Record
from worker.work import WorkItem

#: claims.coded ``timings_ms`` keys of the stages timed per batch, as the contract has them.
TIMED_STAGES = {
    "inference": "inference",
    "validate_codes": "validate_codes",
    "drg.group": "drg_group",
    "drg.price": "drg_price",
}


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event to publish."""

    topic: Literal["coded", "dlq"]
    key: bytes | None
    value: bytes = field(repr=False)
    headers: tuple[tuple[str, bytes], ...] = ()
    source: Record | None = None  # the input it answers: its trace is the output's parent
    label: str = ""  # status or dead-letter reason, for metrics


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


#: The most a dead letter (key and value) may weigh. faust's producer refuses a record above
#: 1,000,000 bytes (``producer_max_request_size``) and Apache Kafka's default
#: ``max.message.bytes`` is ~1 MB; the rest is left for headers and framing. A record the broker
#: accepted near that size would otherwise make a letter (base64: 4/3 of it) that can never be
#: sent, and its partition would retry it forever.
MAX_LETTER_BYTES: Final = 900_000
#: The longest key a letter keeps as its own Kafka key; a longer one is only counted.
MAX_LETTER_KEY_BYTES: Final = 10_000


def dead_letter(record: Record, *, stage: str, kind: str, message: str) -> Outgoing:
    """The letter of a record the worker could not take: the reason (``stage``, ``kind`` and a
    message that never quotes the record) and the record's original bytes, base64.

    A letter that would exceed ``MAX_LETTER_BYTES`` keeps the reason and where the record is
    (topic, partition, offset) but not its bytes (key, value and headers ``null``/empty), and
    its message says so: the original stays readable in the input topic until its retention."""
    letter = DeadLetter(
        event_id=dead_letter_id(record),
        error=DeadLetterError(stage=stage, type=kind, message=message),
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp_ms,
        key=_b64(record.key),
        value=_b64(record.value),
        headers=[OriginalHeader(key=k, value=_b64(v)) for k, v in record.headers],
        failed_at=dt.datetime.now(dt.UTC),
    )
    key = record.key
    value = letter.model_dump_json().encode("utf-8")
    if len(value) + len(key or b"") > MAX_LETTER_BYTES:
        sizes = f"value {len(record.value or b'')} bytes, key {len(key or b'')} bytes"
        note = f"; original record ({sizes}) not copied: too large for a dead letter"
        letter = letter.model_copy(
            update={
                "error": DeadLetterError(stage=stage, type=kind, message=message + note),
                "key": None,
                "value": None,
                "headers": [],
            }
        )
        value = letter.model_dump_json().encode("utf-8")
        if key is not None and len(key) > MAX_LETTER_KEY_BYTES:
            key = None
    return Outgoing("dlq", key, value, source=record, label=kind)


def coded_event(item: WorkItem, model: ModelInfo) -> ClaimCoded:
    """The ``claims.coded`` event of a claim whose stages are done: its assessment (or, when
    its coder failed every attempt, ``needs_review`` / ``coder_error``), the model that coded
    it, and the time each stage took for its batch."""
    timings = {
        key: round(item.timings[stage].ms, 3)
        for stage, key in TIMED_STAGES.items()
        if stage in item.timings
    }
    if item.assessment is not None and item.failure is None:
        assessment = finish(item.assessment, {k: v for k, v in timings.items()})
    else:
        assessment = not_coded(item.claim_id, item.period, "coder_error")
    coded = item.coded
    if coded is not None and coded.adapter and coded.adapter != model.adapter:
        model = model.model_copy(update={"adapter": coded.adapter})
    dropped = [
        RejectedCode(raw=dotted(a.code), reason=f"{a.rule}:{dotted(a.other or a.code)}")
        for a in item.adjustments
        if a.action == "dropped"
    ]
    # The assessment's parts are the contract's own (frozen) models: given as they are, pydantic
    # takes them without dumping and validating them again.
    fields: dict[str, Any] = {
        "status": assessment.status,
        "review_reasons": list(assessment.review_reasons),
        "codes": list(assessment.codes),
        "rejected_codes": dropped + list(assessment.rejected_codes),
        "drg": assessment.drg,
        "estimate": assessment.estimate,
        "codeset_release": assessment.codeset_release,
        "fiscal_year": assessment.fiscal_year,
        "msdrg_version": assessment.msdrg_version,
        "procedure_codes": list(assessment.procedure_codes),
        "adjustments": [
            {
                "code": dotted(a.code),
                "action": a.action,
                "rule": a.rule,
                "other": dotted(a.other) if a.other else None,
                "guideline": a.guideline,
            }
            for a in item.adjustments
        ],
        "event_id": item.event_id,
        "claim_id": item.claim_id,
        "model": model,
        "discharge_date": item.claim.discharge_date,
        "timings_ms": timings,
        "coded_at": dt.datetime.now(dt.UTC),
    }
    return ClaimCoded.model_validate(fields)


def coded_output(item: WorkItem) -> Outgoing:
    """The stored event of ``item`` (``store``), ready to publish, keyed by ``claim_id``."""
    event, text = item.output, item.output_json
    assert event is not None
    assert text is not None
    return Outgoing(
        "coded",
        item.claim_id.encode("utf-8"),
        text.encode("utf-8"),
        source=item.record,
        label=event.status,
    )
