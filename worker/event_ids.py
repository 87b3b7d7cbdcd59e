"""Stable event ids: the same input always yields the same id, so consumers can de-duplicate
re-deliveries (at-least-once delivery can repeat a batch after a crash)."""

import hashlib

from worker.records import Record


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))  # length-prefixed: no ambiguity between parts
        h.update(part)
    return h.hexdigest()[:32]


def coded_event_id(claim_id: str, value: bytes) -> str:
    """Same claim_id and same input bytes -> same id; a corrected resubmission gets a new one."""
    return _digest(b"claims.coded/v1", claim_id.encode("utf-8"), value)


def dead_letter_id(record: Record) -> str:
    return _digest(
        b"claims.dlq/v1",
        record.topic.encode(),
        str(record.partition).encode(),
        str(record.offset).encode(),
    )
