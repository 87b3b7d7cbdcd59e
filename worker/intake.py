"""Intake: check each consumed record against the `claims.raw` contract.

A record that passes becomes a work item (``worker/work.py``) with the release period of its
discharge date; one that fails becomes a dead letter carrying the reason and the original bytes,
so nothing is lost and the worker keeps going.
"""

from drg.registry import ReleaseRegistry
from schemas.decode import decode_claim
from schemas.exceptions import ContractError
from schemas.raw import ClaimRaw
from worker.event_ids import coded_event_id
from worker.outputs import Outgoing, dead_letter
from worker.records import Record
from worker.work import WorkItem


def accept(record: Record, registry: ReleaseRegistry) -> WorkItem | Outgoing:
    """The work item of a valid record, or its dead letter (stage ``validate_event``)."""
    try:
        claim = decode_claim(record.value, record.key)
    except ContractError as exc:
        return dead_letter(record, stage="validate_event", kind=exc.kind, message=exc.message)
    assert record.value is not None  # decode_claim rejects a missing value
    return work_item(claim, record.value, registry, record)


def work_item(
    claim: ClaimRaw, value: bytes, registry: ReleaseRegistry, record: Record | None = None
) -> WorkItem:
    """The work item of a claim whose bytes are ``value`` (they give its ``event_id``)."""
    return WorkItem(
        claim=claim,
        event_id=coded_event_id(claim.claim_id, value),
        record=record,
        period=registry.period_for(claim.discharge_date),
    )
