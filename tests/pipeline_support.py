"""Claims, reference data and checks shared by the end-to-end pipeline tests."""

import datetime as dt
import json
import secrets
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from drg.assess import AssessmentInput, Assessor
from drg.codeset.catalog import shipped_catalog
from drg.codeset.memory import MemoryCodeSet
from schemas.coded import ClaimCoded

# the claims, shared with `claimcoder bench`
from worker.benchmark.claims import NARRATIVES as NARRATIVES
from worker.benchmark.claims import claim_events as claim_events
from worker.kafka import client_options
from worker.resources import async_engine, redis_client
from worker.settings import Settings

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas" / "json"


def traceparent() -> tuple[str, str, bytes]:
    """A producer's W3C trace context: (trace id, span id, header value)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01".encode()


def publish_claims(
    settings: Settings, events: Sequence[dict[str, Any]]
) -> dict[str, tuple[str, str]]:
    """Publish with a kafka-python producer, each with its own ``traceparent``; returns
    claim_id -> (trace id, producer span id)."""
    traces = {}
    producer = KafkaProducer(**client_options(settings.kafka), acks="all", linger_ms=20)
    try:
        for event in events:
            trace_id, span_id, header = traceparent()
            traces[event["claim_id"]] = (trace_id, span_id)
            producer.send(
                settings.topics.raw,
                key=event["claim_id"].encode(),
                value=json.dumps(event).encode(),
                headers=[("traceparent", header)],
            )
        producer.flush(30)
    finally:
        producer.close()
    return traces


@cache
def coded_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMA_DIR / "claims.coded.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    validator: jsonschema.protocols.Validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return validator


def codeset(release: str = "2026-04") -> MemoryCodeSet:
    return shipped_catalog().codeset(release)


def check_event(value: bytes) -> ClaimCoded:
    """Valid against the published JSON Schema; every emitted code billable in the release
    the event says it was checked in (FY2026 or FY2027)."""
    document = json.loads(value)
    coded_validator().validate(document)
    event = ClaimCoded.model_validate(document)
    release = event.codeset_release or "2026-04"
    not_billable = [c.code for c in event.codes if not codeset(release).is_billable(c.code)]
    assert not_billable == [], f"{event.claim_id}: emitted non-billable {not_billable}"
    return event


def header(record: ConsumerRecord, name: str) -> bytes | None:
    for key, value in record.headers:
        if key == name:
            return bytes(value)
    return None


async def reassess(
    settings: Settings, events: Sequence[ClaimCoded], inputs: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """What `claimcoder estimate` computes (the same Assessor) for each event's emitted codes."""
    client = redis_client(settings.redis)
    engine = async_engine(settings.database)
    assessor = Assessor(redis=client, engine=engine, key_prefix=settings.redis.key_prefix)
    try:
        items = [
            AssessmentInput(
                claim_id=e.claim_id,
                codes=tuple(c.code for c in e.codes),
                age=inputs[e.claim_id]["patient"]["age"],
                sex=inputs[e.claim_id]["patient"]["sex"],
                discharge_date=dt.date.fromisoformat(inputs[e.claim_id]["discharge_date"]),
            )
            for e in events
        ]
        return [a.coded_fields() for a in await assessor.assess_batch(items)]
    finally:
        assessor.close()
        await client.aclose()
        await engine.dispose()
