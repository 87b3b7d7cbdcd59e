"""Stage 1: check each consumed record against the `claims.raw` contract.

What fails becomes a :class:`DeadLetter` carrying the reason and the original bytes, so nothing
is lost and the worker keeps going.
"""

import base64
import datetime as dt
from dataclasses import dataclass

from schemas.decode import decode_claim
from schemas.dlq import DeadLetter, DeadLetterError, OriginalHeader
from schemas.exceptions import ContractError
from schemas.raw import ClaimRaw
from worker.event_ids import coded_event_id, dead_letter_id
from worker.records import Record


@dataclass(frozen=True, slots=True)
class Accepted:
    record: Record
    claim: ClaimRaw
    event_id: str


@dataclass(frozen=True, slots=True)
class Rejected:
    record: Record
    letter: DeadLetter


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def dead_letter(record: Record, *, stage: str, kind: str, message: str) -> DeadLetter:
    return DeadLetter(
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


def accept(record: Record) -> Accepted | Rejected:
    try:
        claim = decode_claim(record.value, record.key)
    except ContractError as exc:
        return Rejected(
            record, dead_letter(record, stage="validate_event", kind=exc.kind, message=exc.message)
        )
    assert record.value is not None  # decode_claim rejects a missing value
    return Accepted(record, claim, coded_event_id(claim.claim_id, record.value))
