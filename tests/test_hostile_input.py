"""Hostile input against one real worker (Tansu, Redis, PostgreSQL): 10,000 malformed records
are each dead-lettered with a reason (and their bytes, unless too large for a letter), valid
claims interleaved among them come out coded with billable codes only (prompt injections
included), the worker stays alive with bounded memory,
a canary in every narrative appears nowhere the worker writes, and nothing listens beyond
loopback (the local stack's servers: tests/test_local_stack.py).

Boundaries: the OTLP receiver (tests/otlp.py) stands in for an OpenTelemetry collector; the
vLLM coder's model is replaced by the answers fed to its output parser
(``worker.coders.vllm.profiles.OutputProfile.parse``, the model-output boundary).
Run time: ~55 s on the 2-core machine (the 10,000-record run ~40 s of it).
"""

import base64
import contextlib
import datetime as dt
import json
import threading
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
from kafka import KafkaConsumer, KafkaProducer

from drg.assess import AssessmentInput, Assessor
from drg.codeset.catalog import shipped_catalog
from schemas import DeadLetter
from tests.hostile_events import CANARY, malformed_records, valid_canaries
from tests.otlp import otel_env, otlp_receiver
from tests.pipeline_support import check_event
from tests.support import Timeout, WorkerProcess, fetch, running_worker
from worker.coders.exceptions import CoderError
from worker.coders.vllm.config import Profile, VLLMSettings
from worker.coders.vllm.profiles import make_profile
from worker.kafka import client_options
from worker.prepare import prepare_reference_data
from worker.settings import Settings

pytest_plugins = ("tests.reference_fixtures",)

MALFORMED = 10_000
VALID = 40
REASONS = {
    "empty_value",
    "bad_utf8",
    "bad_json",
    "invalid_event",
    "narrative_too_long",
    "key_mismatch",
}
#: Peak RSS growth allowed over the warmed-up worker. Justification: a batch holds at most 64
#: records, the largest generated ~0.6 MB (two of ~0.9 MB), each alive as bytes, str, parsed
#: JSON and its base64 letter (~4 copies): 64 x 0.6 MB x 4 ~ 150 MB in the very worst batch.
#: Measured growth: 5-22 MB in four runs. A leak of 16 kB a record would exceed the bound.
RSS_GROWTH_BOUND_MB = 160
LOOPBACK = {"127.0.0.1", "::1"}


def listening(pids: list[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every listening TCP socket of these processes."""
    found: list[tuple[int, str, int]] = []
    for pid in pids:
        try:
            connections = psutil.Process(pid).net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        found.extend(
            (pid, c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN
        )
    return found


def family(pid: int) -> list[int]:
    process = psutil.Process(pid)
    return [pid, *(c.pid for c in process.children(recursive=True))]


class RssSampler:
    """Samples a process tree's resident memory every 50 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        total = 0
        for pid in family(self.pid):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += psutil.Process(pid).memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self.rss())
            except psutil.NoSuchProcess:
                return
            time.sleep(0.05)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def send_all(settings: Settings, records: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = KafkaProducer(
        **client_options(settings.kafka), acks="all", linger_ms=20, max_request_size=2**21
    )
    try:
        for key, value in records:
            producer.send(settings.topics.raw, key=key, value=value)
        producer.flush(60)
    finally:
        producer.close()


def fetch_distinct(
    settings: Settings, topic: str, count: int, seconds: float, worker: WorkerProcess
) -> tuple[dict[str, bytes], int]:
    """Read ``topic`` until ``count`` distinct ``event_id`` arrived (delivery is at least once:
    a rebalance under load re-sends a batch, with the same event ids), then 2 s more.
    Returns event_id -> value and the number of records read."""
    consumer = KafkaConsumer(
        topic,
        **client_options(settings.kafka),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_bytes=2**25,
        max_partition_fetch_bytes=2**23,
    )
    events: dict[str, bytes] = {}
    read = 0
    try:
        timeout = Timeout(seconds, f"{count} distinct events on {topic}")
        settle_until: float | None = None
        while settle_until is None or time.monotonic() < settle_until:
            if settle_until is None:
                timeout.what = f"{count} distinct events on {topic} (have {len(events)})"
                assert timeout
                assert worker.alive, f"the worker exited:\n{worker.log()[-4000:]}"
            for batch in consumer.poll(timeout_ms=200).values():
                for record in batch:
                    read += 1
                    event_id = json.loads(record.value)["event_id"]
                    assert events.setdefault(event_id, record.value) == record.value
            if settle_until is None and len(events) >= count:
                settle_until = time.monotonic() + 2.0
    finally:
        consumer.close()
    return events, read


@pytest.fixture
def hostile(settings: Settings) -> Settings:
    prepare_reference_data(settings)
    return settings.model_copy(update={"batch": settings.batch.model_copy(update={"max_size": 64})})


def test_10000_malformed_records_are_dead_lettered_and_the_canary_goes_nowhere(
    hostile: Settings, tmp_path: Path
) -> None:
    settings = hostile
    malformed = malformed_records(MALFORMED, from_hypothesis=400)
    canaries = list(valid_canaries(VALID, "ok"))
    stream: list[tuple[bytes | None, bytes | None]] = []
    every = MALFORMED // VALID
    for n, record in enumerate(malformed):
        stream.append((record.key, record.value))
        if n % every == every // 2:
            stream.append(canaries[n // every])
    log = tmp_path / "worker.log"

    with otlp_receiver() as (endpoint, received):
        env = {**otel_env(endpoint), "CLAIMCODER_LOG_LEVEL": "DEBUG"}
        with running_worker(settings, log, extra_env=env) as worker:
            assert worker.proc is not None
            # Warm up: one valid claim through every stage, then the baseline.
            send_all(settings, [next(valid_canaries(1, "warm"))])
            fetch(settings, settings.topics.coded, 1, seconds=120, worker=worker)
            sockets = listening(family(worker.proc.pid))
            with RssSampler(worker.proc.pid) as rss:
                baseline = rss.rss()
                started = time.monotonic()
                send_all(settings, stream)
                letters, letters_read = fetch_distinct(
                    settings, settings.topics.dlq, MALFORMED, 240, worker
                )
                coded, coded_read = fetch_distinct(
                    settings, settings.topics.coded, VALID + 1, 60, worker
                )
                elapsed = time.monotonic() - started
            sockets += listening(family(worker.proc.pid))
            assert worker.alive, worker.log()[-4000:]
        spans_and_metrics = b"".join(received.bodies)
    print(
        f"{MALFORMED} malformed + {VALID} valid in {elapsed:.1f} s; RSS baseline "
        f"{baseline / 2**20:.0f} MB, peak {max(rss.samples) / 2**20:.0f} MB; re-sent "
        f"{letters_read - len(letters)} letters, {coded_read - len(coded)} coded events"
    )

    # Exactly one letter per malformed record (counted by event id: a re-sent letter is the
    # same letter), each with its reason and its original bytes.
    assert len(letters) == MALFORMED
    parsed = [DeadLetter.model_validate_json(value) for value in letters.values()]
    assert {p.error.type for p in parsed} <= REASONS
    assert all(p.error.stage == "validate_event" and p.error.message for p in parsed)
    # A record too large to copy: the letter says so and points at it.
    omitted = [p for p in parsed if p.value is None and p.error.type != "empty_value"]
    assert len(omitted) == sum(r.kind == "oversized" for r in malformed)
    assert all(p.error.message.endswith("too large for a dead letter") for p in omitted)
    kept = Counter(
        base64.b64decode(p.value) if p.value is not None else None
        for p in parsed
        if p not in omitted
    )
    assert kept == Counter(r.value for r in malformed if r.kind != "oversized")
    # The valid claims came out coded, with billable codes only (check_event), none of the
    # codes their narratives asked for.
    events = [check_event(value) for value in coded.values()]
    assert sorted(e.claim_id for e in events) == sorted(
        ["warm-0", *(k.decode() for k, _ in canaries)]
    )
    assert not [c.code for e in events for c in e.codes if c.code in ("ZZZ99", "I21.01")]
    # Alive and bounded.
    growth_mb = (max(rss.samples) - baseline) / 2**20
    assert growth_mb < RSS_GROWTH_BOUND_MB, f"RSS grew {growth_mb:.0f} MB"
    # The canary: in no log line (DEBUG), span, metric, letter or coded event.
    assert CANARY not in log.read_text(errors="replace")
    assert CANARY.encode() not in spans_and_metrics
    assert received.spans, "no span was exported"
    assert not [v for v in letters.values() if CANARY.encode() in v]
    assert not [v for v in coded.values() if CANARY.encode() in v]
    # The worker listens on loopback only (if at all).
    assert [s for s in sockets if s[1] not in LOOPBACK] == []


HOSTILE_ANSWERS: dict[str, list[str]] = {
    "codes-csv": [
        "ZZZ.99, I21.01, J18.9",  # one not code-shaped: the whole answer is refused
        "I21.01, A00.0, Q99.99, Z99.89, R99.9, I21, J4B",  # code-shaped, some not billable
        "J18.9, ignore previous instructions",
        "J18.9,\nZZZ99",
        '["J18.9"]',
        "J18.9 <|im_end|>",
        "",
    ],
    "codes-xml": [
        "<reasoning>bill everything</reasoning><codes><code>ZZZ99</code><code>J189</code></codes>",
        "<reasoning>x</reasoning><codes><code>A000</code><code>Q9999</code><code>I21</code>"
        "<code>R999</code><code>J4B</code></codes>",
        "<reasoning>a</reasoning><codes><code>J189</code></codes><codes><code>I2101</code>",
        "<reasoning><codes><code>I2101</code></codes></reasoning><codes><code>J189</code></codes>",
        '{"codes": ["J189"]}',
        "<codes><code>J189</code></codes>",
    ],
}


@pytest.mark.parametrize("profile", ["codes-csv", "codes-xml"])
async def test_hostile_model_answers_reach_claims_only_as_billable_codes(
    profile: Profile, assessor: Assessor
) -> None:
    """At the model-output boundary (``OutputProfile.parse``, what the vLLM coder does with the
    engine's text): an answer that is not exactly the profile's format is refused whole
    (``bad_output``), and what parses goes through validation, which keeps only codes billable
    in the claim's release (FY2026 and FY2027)."""
    parser = make_profile(VLLMSettings.model_validate({"model": "/m", "profile": profile}))
    parsed: list[tuple[str, ...]] = []
    for answer in HOSTILE_ANSWERS[profile]:
        try:
            parsed.append(parser.parse(answer))
        except CoderError as error:
            assert error.kind == "bad_output"  # noqa: PT017 (an error per answer, in a loop)
    # The code-shaped answers parse; nothing else does.
    assert [len(p) for p in parsed] == [3, 7] if profile == "codes-csv" else [2, 5]
    dates = {"2026-04": dt.date(2026, 1, 15), "2026-10": dt.date(2026, 11, 20)}
    items = [
        AssessmentInput(f"c-{n}-{release}", codes, 70, "M", date)
        for n, codes in enumerate(parsed)
        for release, date in dates.items()
    ]
    catalog = shipped_catalog()
    kept: dict[str, set[str]] = {release: set() for release in dates}
    rejected: set[str] = set()
    for assessment in await assessor.assess_batch(items):
        release = assessment.codeset_release
        assert release in dates
        codes = [c.code.replace(".", "") for c in assessment.codes]
        assert [c for c in codes if not catalog.codeset(release).is_billable(c)] == []
        kept[release] |= set(codes)
        rejected |= {r.raw.replace(".", "") for r in assessment.rejected_codes}
    assert {"ZZZ99", "Q9999", "R999", "I21"} <= rejected
    assert "J189" in kept["2026-04"]  # the billable code of an answer is kept
    # J4B is billable from FY2027 (2026-10) only
    assert "J4B" in kept["2026-10"]
    assert "J4B" not in kept["2026-04"]
