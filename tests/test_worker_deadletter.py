"""The worker against the real broker: every malformed event reaches `claims.dlq` with its reason
and its original bytes; no valid event does; the worker keeps consuming."""

import base64
import json
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from schemas import DeadLetter
from tests.support import fetch, running_worker
from tests.test_contract import VALID_RAW
from worker.kafka import client_options
from worker.prepare import prepare_reference_data
from worker.settings import Settings

TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def valid_event(n: int) -> tuple[bytes, bytes]:
    claim_id = f"ok-{n}"
    return claim_id.encode(), json.dumps({**VALID_RAW, "claim_id": claim_id}).encode()


def malformed_events(tag: str) -> list[tuple[bytes | None, bytes | None, str]]:
    """(key, value, expected error type) for every kind of bad input."""
    base = {**VALID_RAW, "claim_id": f"bad-{tag}"}
    key = f"bad-{tag}".encode()

    def without(field: str) -> bytes:
        return json.dumps({k: v for k, v in base.items() if k != field}).encode()

    return [
        (key, b'{"claim_id": "bad", "narrative": ', "bad_json"),
        (key, b"\xc3\x28 not utf-8", "bad_utf8"),
        (key, without("discharge_date"), "invalid_event"),
        (
            key,
            json.dumps({**base, "patient": {"age": "old", "sex": "M"}}).encode(),
            "invalid_event",
        ),
        (key, json.dumps({**base, "narrative": "x" * 100_001}).encode(), "narrative_too_long"),
        (b"someone-else", json.dumps(base).encode(), "key_mismatch"),
        (key, None, "empty_value"),
    ]


def publish(
    settings: Settings,
    events: list[tuple[bytes | None, bytes | None]],
    partition: int | None = None,
) -> None:
    producer = KafkaProducer(**client_options(settings.kafka), acks="all")
    try:
        for key, value in events:
            producer.send(
                settings.topics.raw,
                key=key,
                value=value,
                partition=partition,
                headers=[("traceparent", TRACEPARENT), ("source", b"intake-test")],
            ).get(timeout=30)
    finally:
        producer.close()


def decoded(record: Any) -> tuple[DeadLetter, bytes | None]:
    letter = DeadLetter.model_validate_json(record.value)
    value = base64.b64decode(letter.value) if letter.value is not None else None
    return letter, value


def test_malformed_events_are_dead_lettered_and_valid_ones_are_not(
    settings: Settings, tmp_path: Path
) -> None:
    first = malformed_events("round1")
    valid = [valid_event(n) for n in range(12)]
    # Interleave, and put the same mix on every partition so all actors are exercised.
    mixed: list[tuple[bytes | None, bytes | None]] = []
    for n, (key, value, _) in enumerate(first):
        mixed.append((key, value))
        mixed.extend(valid[n * 2 : n * 2 + 2])
    expected = {value: kind for _, value, kind in first}

    prepare_reference_data(settings)  # valid claims go on through the pipeline
    with running_worker(settings, tmp_path / "worker.log") as worker:
        for partition in range(settings.topics.partitions):
            publish(settings, mixed, partition=partition)
        n_bad = len(first) * settings.topics.partitions
        records = fetch(settings, settings.topics.dlq, n_bad, seconds=90, settle=2.0, worker=worker)
        assert len(records) == n_bad, worker.log()

        seen: dict[int, list[str]] = {}
        for record in records:
            letter, value = decoded(record)
            assert value in expected, "a valid event or unknown bytes reached the DLQ"
            assert letter.error.type == expected[value]
            assert letter.error.stage == "validate_event"
            assert letter.topic == settings.topics.raw
            assert record.key == (base64.b64decode(letter.key) if letter.key is not None else None)
            assert [(h.key, base64.b64decode(h.value or "")) for h in letter.headers] == [
                ("traceparent", TRACEPARENT),
                ("source", b"intake-test"),
            ]
            # The dead letter continues the input's trace (same trace id, its own publish span).
            out = dict(record.headers)["traceparent"].split(b"-")
            assert out[1] == TRACEPARENT.split(b"-")[1]
            assert out[2] != TRACEPARENT.split(b"-")[2]
            seen.setdefault(letter.partition, []).append(letter.error.type)
        # every partition's actor dead-lettered its own copy of the mix, in input order
        assert seen == {p: [k for _, _, k in first] for p in range(settings.topics.partitions)}

        # Still consuming: a second round after the first was handled arrives too.
        second = malformed_events("round2")
        publish(settings, [(k, v) for k, v, _ in second])
        records = fetch(
            settings, settings.topics.dlq, n_bad + len(second), seconds=60, worker=worker
        )
        later = [decoded(r)[0].error.type for r in records[n_bad:]]
        assert sorted(later) == sorted(kind for _, _, kind in second)
        assert worker.alive, worker.log()


def test_dead_letters_are_not_repeated_after_a_restart(settings: Settings, tmp_path: Path) -> None:
    """Offsets are committed once the dead letters are acknowledged: a restarted worker does
    not dead-letter the same records again."""
    bad = malformed_events("restart")
    prepare_reference_data(settings)
    with running_worker(settings, tmp_path / "w1.log") as first:
        publish(settings, [(k, v) for k, v, _ in bad])
        fetch(settings, settings.topics.dlq, len(bad), seconds=90, worker=first)
    with running_worker(settings, tmp_path / "w2.log") as worker:
        publish(settings, [(b"after", b"{not json")])
        records = fetch(
            settings, settings.topics.dlq, len(bad) + 1, seconds=90, settle=3.0, worker=worker
        )
        assert len(records) == len(bad) + 1, worker.log()
        ids = [DeadLetter.model_validate_json(r.value).event_id for r in records]
        assert len(set(ids)) == len(ids)
