"""`claimcoder dlq replay` end to end: real Tansu, PostgreSQL and Redis, real worker processes.

A claim is dead-lettered by a broken stage, the worker is restarted with the fix, the replay
re-publishes the claim's original bytes and it comes out coded; a second run replays nothing; a
dry run publishes nothing; a filter by reason leaves the other letters alone.

Boundaries replaced: the first worker runs ``tests/broken_stage_worker.py`` (``drg.group``
raises for claims ``broken-*``); a crash between publish and record is simulated by deleting
the replay's rows in PostgreSQL.
"""

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from typer.testing import CliRunner

from schemas.coded import ClaimCoded
from schemas.dlq import DeadLetter
from tests.broken_stage_worker import BROKEN_PREFIX, BROKEN_STAGE
from tests.support import fetch, running_worker
from tests.test_contract import VALID_RAW
from worker.cli import app
from worker.event_ids import coded_event_id
from worker.kafka import aiokafka_options, client_options
from worker.outputs import dead_letter
from worker.prepare import prepare_reference_data
from worker.records import Record
from worker.settings import Settings

Original = tuple[bytes, bytes, list[tuple[str, bytes | None]]]

NARRATIVE = "Admitted with community acquired pneumonia. Replay-test narrative."
HEADERS: list[tuple[str, bytes | None]] = [
    ("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ("binary", b"\xff\x00\xfe"),  # not UTF-8
    ("null", None),  # a header with no value
]


def _claim(claim_id: str) -> Original:
    value = json.dumps({**VALID_RAW, "claim_id": claim_id, "narrative": NARRATIVE}).encode()
    return claim_id.encode(), value, HEADERS


ORIGINALS: list[Original] = [
    _claim(f"{BROKEN_PREFIX}1"),
    (b"junk-1", b"\xc3\x28 not utf-8 " + NARRATIVE.encode(), HEADERS),  # bad_utf8
    _claim(f"{BROKEN_PREFIX}2"),
]


def _not_the_keys_partition(settings: Settings, key: bytes) -> int:
    """A partition the default partitioner would not choose for ``key``: where a producer with
    another partitioner put it."""
    partitions = list(range(settings.topics.partitions))
    default: int = DefaultPartitioner()(key, partitions, partitions)
    return (default + 1) % len(partitions)


async def _publish(settings: Settings, original: Original) -> None:
    # aiokafka: kafka-python's producer refuses a null header value
    producer = AIOKafkaProducer(**aiokafka_options(settings.kafka), acks="all")
    await producer.start()
    try:
        key, value, headers = original
        await producer.send_and_wait(
            settings.topics.raw,
            value=value,
            key=key,
            headers=headers,
            partition=_not_the_keys_partition(settings, key),
        )
    finally:
        await producer.stop()


def _as_sent(record: ConsumerRecord) -> Original:
    return (
        record.key,
        record.value,
        [(k, None if v is None else bytes(v)) for k, v in record.headers],
    )


def _replay(settings: Settings, *args: str) -> tuple[list[dict[str, Any]], str]:
    result = CliRunner().invoke(app, ["dlq", "replay", *args], env=settings.to_env())
    assert result.exit_code == 0, result.output
    assert NARRATIVE not in result.output
    assert "Replay-test" not in result.output
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def _recorded(settings: Settings) -> list[tuple[int, int, str]]:
    with psycopg.connect(
        settings.database.url.get_secret_value(),
        options=f"-c search_path={settings.database.schema_name}",
    ) as conn:
        rows = conn.execute(
            "SELECT dlq_partition, dlq_offset, reason FROM dlq_replays ORDER BY 1, 2"
        ).fetchall()
    return [(p, o, r) for p, o, r in rows]


def _forget_replays(settings: Settings) -> None:
    with psycopg.connect(
        settings.database.url.get_secret_value(),
        options=f"-c search_path={settings.database.schema_name}",
        autocommit=True,
    ) as conn:
        conn.execute("DELETE FROM dlq_replays")


def test_a_dead_lettered_claim_is_replayed_once_and_comes_out_coded(
    settings: Settings, tmp_path: Path
) -> None:
    prepare_reference_data(settings)
    with running_worker(settings, tmp_path / "broken.log", module="tests.broken_stage_worker") as w:
        # One at a time: each letter is its own produce request (a whole batch of letters is
        # covered by the end offsets on Apache Kafka, not on Tansu; see shared notes).
        for n, original in enumerate(ORIGINALS, start=1):
            asyncio.run(_publish(settings, original))
            fetch(settings, settings.topics.dlq, n, seconds=90, worker=w)
    letters = [
        DeadLetter.model_validate_json(r.value) for r in fetch(settings, settings.topics.dlq, 3)
    ]
    assert sorted((lt.error.type, lt.error.stage) for lt in letters) == [
        ("bad_utf8", "validate_event"),
        ("internal_error", BROKEN_STAGE),
        ("internal_error", BROKEN_STAGE),
    ]
    where = {(lt.partition, lt.offset) for lt in letters}
    assert len(where) == 3

    with running_worker(settings, tmp_path / "fixed.log") as fixed:  # the bug fixed
        # --dry-run: what would go, and nothing published or recorded
        shown, summary = _replay(settings, "--dry-run")
        assert sorted((s["claim_id"], s["reason"], s["stage"]) for s in shown) == [
            ("broken-1", "internal_error", BROKEN_STAGE),
            ("broken-2", "internal_error", BROKEN_STAGE),
            ("junk-1", "bad_utf8", "validate_event"),
        ]
        assert set(shown[0]) == {"claim_id", "reason", "stage", "partition", "offset", "failed_at"}
        assert "would replay 3" in summary
        assert _recorded(settings) == []

        # --reason internal_error: the two claims go, the bad_utf8 letter stays
        shown, summary = _replay(settings, "--reason", "internal_error")
        assert sorted(s["claim_id"] for s in shown) == ["broken-1", "broken-2"]
        assert "replayed 2" in summary
        assert "filtered out 1" in summary
        assert sorted(r[2] for r in _recorded(settings)) == ["internal_error", "internal_error"]

        coded = fetch(settings, settings.topics.coded, 2, seconds=90, worker=fixed)
        events = {ClaimCoded.model_validate_json(r.value).claim_id: r for r in coded}
        assert sorted(events) == ["broken-1", "broken-2"]
        for key, value, _ in (ORIGINALS[0], ORIGINALS[2]):
            event = ClaimCoded.model_validate_json(events[key.decode()].value)
            assert event.status == "estimated"
            assert event.event_id == coded_event_id(key.decode(), value)  # the original bytes

        # the replayed records are the originals, byte for byte, headers and all
        # on the partition of the original
        records = fetch(settings, settings.topics.raw, 5)
        for original in ORIGINALS:
            copies = 2 if original[0].startswith(BROKEN_PREFIX.encode()) else 1
            same = [r for r in records if r.key == original[0]]
            assert [_as_sent(r) for r in same] == [original] * copies
            assert {r.partition for r in same} == {_not_the_keys_partition(settings, original[0])}

        # a second run replays nothing; the other letter is still there to replay
        shown, summary = _replay(settings, "--reason", "internal_error")
        assert shown == []
        assert "replayed 0" in summary
        assert "skipped 2 already replayed" in summary
        shown, summary = _replay(settings, "--dry-run")
        assert [s["claim_id"] for s in shown] == ["junk-1"]

        # A crash between publish and record replays again (at least once): the worker answers
        # with the very same events, so consumers de-duplicate on event_id.
        _forget_replays(settings)
        shown, _ = _replay(settings, "--stage", BROKEN_STAGE)
        assert len(shown) == 2
        again = fetch(settings, settings.topics.coded, 4, seconds=90, worker=fixed, settle=1.0)
        assert sorted(r.value for r in again) == sorted([r.value for r in coded] * 2)

    assert len(fetch(settings, settings.topics.raw, 7, settle=1.0)) == 7  # dry runs sent none


T0 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)


def _letters_by_hand(settings: Settings) -> None:
    """Dead letters as the worker builds them, written straight to the dlq: partition 0 holds
    offsets 0-4, failed one hour apart from T0, stages alternating; partition 1 one letter;
    partition 2 a record that is no letter. One send at a time (one record a batch)."""
    producer = KafkaProducer(**client_options(settings.kafka), acks="all")

    def send(partition: int, value: bytes) -> None:
        producer.send(settings.topics.dlq, value=value, partition=partition).get(timeout=30)

    try:
        for n in range(5):
            record = Record(settings.topics.raw, 0, n, f"c-{n}".encode(), b"{}", ())
            stage = "drg.group" if n % 2 else "validate_event"
            letter = dead_letter(record, stage=stage, kind="internal_error", message="m")
            failed = json.loads(letter.value) | {
                "failed_at": (T0 + dt.timedelta(hours=n)).isoformat()
            }
            send(0, json.dumps(failed).encode())
        other = dead_letter(
            Record(settings.topics.raw, 1, 0, b"c-p1", b"{}", ()),
            stage="store",
            kind="x",
            message="m",
        )
        send(1, other.value)
        send(2, b"\xffnot a letter")
    finally:
        producer.close()


def test_filters_select_by_time_stage_offset_and_partition(settings: Settings) -> None:
    """No worker: letters written by hand. Each filter selects what it says; a record that is
    no letter is named and left alone (exit 1); a second run at once is refused."""
    runner = CliRunner()
    env = settings.to_env()
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    _letters_by_hand(settings)

    def dry(*args: str, code: int = 0) -> list[str]:
        result = runner.invoke(app, ["dlq", "replay", "--dry-run", *args], env=env)
        assert result.exit_code == code, result.output
        return [json.loads(line)["claim_id"] for line in result.stdout.splitlines()]

    def at(hours: int) -> str:
        return (T0 + dt.timedelta(hours=hours)).isoformat()

    assert dry("--partition", "0") == ["c-0", "c-1", "c-2", "c-3", "c-4"]
    assert dry("--partition", "0", "--since", at(1), "--until", at(3)) == ["c-1", "c-2"]
    assert dry("--partition", "0", "--stage", "drg.group") == ["c-1", "c-3"]
    assert dry("--partition", "0", "--from-offset", "3") == ["c-3", "c-4"]
    assert dry("--partition", "0", "--from-offset", "1", "--to-offset", "2") == ["c-1", "c-2"]
    assert dry("--partition", "1") == ["c-p1"]
    assert dry("--partition", "0", "--reason", "x") == []
    # a reason no letter has is named, with the reasons that were read (a typo shows)
    typo = runner.invoke(
        app,
        ["dlq", "replay", "--dry-run", "--partition", "0", "--reason", "internal-error"],
        env=env,
    )
    assert typo.exit_code == 0, typo.output
    assert "note: no letter read has --reason internal-error (read: " in typo.stderr
    assert "internal_error" in typo.stderr
    assert sorted(dry("--reason", "x", "--reason", "internal_error", code=1)) == [
        "c-0",
        "c-1",
        "c-2",
        "c-3",
        "c-4",
        "c-p1",
    ]
    result = runner.invoke(app, ["dlq", "replay", "--dry-run", "--partition", "2"], env=env)
    assert result.exit_code == 1
    assert f"{settings.topics.dlq} partition 2 offset 0 left alone: not a claims.dlq letter" in (
        result.stderr
    )
    assert "unreadable 1" in result.stderr

    # another run holds the lock: this one is refused and replays nothing
    with psycopg.connect(
        settings.database.url.get_secret_value(),
        options=f"-c search_path={settings.database.schema_name}",
        autocommit=True,
    ) as other:
        key = f"claimcoder dlq replay {settings.database.schema_name} {settings.topics.dlq}"
        assert other.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone() == (
            True,
        )
        result = runner.invoke(app, ["dlq", "replay", "--partition", "0"], env=env)
        assert result.exit_code == 2
        assert f"another `claimcoder dlq replay` of {settings.topics.dlq} is running" in (
            result.output
        )
    assert _recorded(settings) == []


def test_replay_errors_are_clear(settings: Settings) -> None:
    """No table yet, a missing topic, a broker that does not answer, a filter that cannot
    match: one line each, exit code 2, nothing replayed."""
    runner = CliRunner()
    env = settings.to_env()
    result = runner.invoke(app, ["dlq", "replay"], env=env)
    assert result.exit_code == 2
    assert "no dlq_replays table: run `claimcoder db upgrade`" in result.output

    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    missing = {**env, "CLAIMCODER_TOPICS_DLQ": f"{settings.topics.dlq}.missing"}
    result = runner.invoke(app, ["dlq", "replay"], env=missing)
    assert result.exit_code == 2
    assert f"topic {settings.topics.dlq}.missing does not exist" in result.output

    away = {**env, "CLAIMCODER_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    result = runner.invoke(app, ["dlq", "replay", "--dry-run"], env=away)
    assert result.exit_code == 2
    assert "Kafka at 127.0.0.1:1 does not answer" in result.output

    result = runner.invoke(
        app, ["dlq", "replay", "--since", "2026-11-30", "--until", "2026-11-01"], env=env
    )
    assert result.exit_code == 2
    assert "--since must be before --until" in result.output
    result = runner.invoke(app, ["dlq", "replay", "--partition", "99"], env=env)
    assert result.exit_code == 2
    assert f"topic {settings.topics.dlq} has no partition 99" in result.output
