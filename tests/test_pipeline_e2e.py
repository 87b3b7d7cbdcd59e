"""The worker end to end, against the real broker, Redis and PostgreSQL.

A kafka-python producer publishes claims with ``traceparent`` headers; a `claimcoder worker`
process (the retrieval coder) codes them; the test reads claims.coded by counting fetched
records (Tansu's end offsets are wrong) and receives the worker's spans over OTLP/HTTP
(tests/otlp.py stands in for a collector: the one mocked boundary).
"""

import asyncio
import csv
import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from drg.codeset.catalog import shipped_catalog
from drg.registry import ReleaseRegistry
from schemas.coded import ClaimCoded
from tests.cms_layouts import order_file, rates_file, table5_file
from tests.otlp import ReceivedSpan, otel_env, otlp_receiver
from tests.pipeline_support import (
    check_event,
    claim_events,
    header,
    publish_claims,
    reassess,
)
from tests.reference_support import invoke
from tests.support import fetch, running_worker
from worker.prepare import prepare_reference_data
from worker.settings import Settings

STAGES = (
    "inference",
    "apply_conventions",
    "validate_codes",
    "drg.group",
    "drg.price",
    "store",
)
CONSUMER = 5  # opentelemetry.proto.trace.v1.Span.SpanKind


@pytest.fixture
def ready(settings: Settings) -> Settings:
    """The test's schema migrated and seeded, the code set in its PostgreSQL schema and Redis."""
    prepare_reference_data(settings)
    return settings


def _claim_results(settings: Settings) -> list[tuple[str, str, int]]:
    schema = settings.database.schema_name
    assert schema is not None
    with psycopg.connect(settings.database.url.get_secret_value()) as conn:
        rows = conn.execute(
            sql.SQL("SELECT claim_id, event_id, deliveries FROM {}.claim_results").format(
                sql.Identifier(schema)
            )
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def test_200_claims_come_out_once_each_billable_priced_and_traced(
    ready: Settings, tmp_path: Path
) -> None:
    settings = ready
    events = claim_events(200, "e2e")
    inputs = {e["claim_id"]: e for e in events}
    with otlp_receiver() as (endpoint, received):
        with running_worker(
            settings, tmp_path / "worker.log", extra_env=otel_env(endpoint)
        ) as worker:
            traces = publish_claims(settings, events)
            records = fetch(
                settings, settings.topics.coded, 200, seconds=240, settle=3.0, worker=worker
            )
        # The worker flushed its spans at shutdown.
        spans = received.snapshot()
        metric_names = set(received.metric_names)

    # Exactly 200 distinct claims, each once.
    assert Counter(r.key.decode() for r in records) == Counter(inputs.keys())
    coded = {r.key.decode(): check_event(r.value) for r in records}
    # Each claim was checked, grouped and priced in the release of its discharge date.
    registry = ReleaseRegistry.load()
    for claim_id, event in coded.items():
        period = registry.period_for(dt.date.fromisoformat(inputs[claim_id]["discharge_date"]))
        assert period is not None
        assert (event.fiscal_year, event.msdrg_version) == (
            period.fiscal_year,
            period.msdrg_version,
        )
        assert event.codeset_release == period.codeset_release
        if event.drg is not None:
            assert event.drg.version == period.msdrg_version
        if event.estimate is not None:
            assert event.estimate.fiscal_year == period.fiscal_year
    assert {e.fiscal_year for e in coded.values() if e.status == "estimated"} == {2026, 2027}
    assert {e.status for e in coded.values()} <= {"estimated", "needs_review", "ungroupable"}
    assert sum(e.status == "estimated" for e in coded.values()) >= 100  # most claims price
    assert all(e.event_id for e in coded.values())
    # The prompt-injection narrative yields no invented code.
    injected = [e for cid, e in coded.items() if "Ignore all" in inputs[cid]["narrative"]]
    assert injected
    assert all(c.code not in ("ZZZ.999", "XYZ123") for e in injected for c in e.codes)

    # DRG and estimate are what the Assessor behind `claimcoder estimate` gives for the codes.
    priced = [e for e in coded.values() if e.codes]
    expected = asyncio.run(reassess(settings, priced, inputs))
    for event, again in zip(priced, expected, strict=True):
        got = event.model_dump(mode="json")
        assert (got["drg"], got["estimate"]) == (again["drg"], again["estimate"]), event.claim_id
    # ... and the command itself, for a few of them.
    for event in [e for e in priced if e.status == "estimated"][:3]:
        claim = inputs[event.claim_id]
        codes = [c.code for c in event.codes]
        args = [
            "estimate",
            "--pdx",
            codes[0],
            "--age",
            str(claim["patient"]["age"]),
            "--sex",
            claim["patient"]["sex"],
            "--discharge-date",
            claim["discharge_date"],
            "--json",
        ]
        for code in codes[1:]:
            args += ["--sdx", code]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMCODER_")}
        result = subprocess.run(
            [sys.executable, "-m", "worker", *args],
            env={**env, **settings.to_env()},
            capture_output=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        printed = json.loads(result.stdout)
        assert (printed["drg"], printed["estimate"]) == (
            event.model_dump(mode="json")["drg"],
            event.model_dump(mode="json")["estimate"],
        )

    # Every result is stored once, keyed by its event_id.
    stored = _claim_results(settings)
    assert sorted((c, e) for c, e, _ in stored) == sorted(
        (cid, e.event_id) for cid, e in coded.items()
    )

    # Tracing: each output continues its input's trace; the span tree has every stage.
    by_trace: dict[str, list[ReceivedSpan]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    for record in records:
        claim_id = record.key.decode()
        trace_id, producer_span = traces[claim_id]
        out_header = header(record, "traceparent")
        assert out_header is not None
        _, out_trace, out_span, _ = out_header.decode().split("-")
        assert out_trace == trace_id
        tree = by_trace[trace_id]
        (consumer,) = tree  # one span a claim
        assert consumer.kind == CONSUMER
        assert consumer.name == f"{settings.topics.raw} process"
        assert consumer.parent_span_id == producer_span
        assert consumer.span_id == out_span  # the output continues the claim's span
        assert consumer.attributes["messaging.system"] == "kafka"
        assert consumer.attributes["messaging.destination.name"] == settings.topics.raw
        assert consumer.attributes["claimcoder.status"] == coded[claim_id].status
        for stage in STAGES:  # what the claim waited for in each stage
            assert consumer.attributes[f"claimcoder.stage.{stage}.duration_ms"] >= 0
            assert f"claimcoder.stage.{stage}.runs" not in consumer.attributes  # ran once
        assert consumer.attributes["claimcoder.coder"]  # noted by inference
        # The claim links to its batch, whose stage spans ran the engine, Redis and PostgreSQL.
        (batch_trace, batch_span) = consumer.links[0]
        batch_tree = by_trace[batch_trace]
        stage_spans = {s.name for s in batch_tree if s.parent_span_id == batch_span}
        assert stage_spans == {f"{stage}.batch" for stage in STAGES}, claim_id
        # No narrative text in any attribute of the claim's trace or its batch's.
        narrative = inputs[claim_id]["narrative"]
        assert not any(
            narrative in str(v) for s in tree + batch_tree for v in s.attributes.values()
        )
    assert {
        "claimcoder.claims.consumed",
        "claimcoder.claims.coded",
        "claimcoder.batch.size",
        "claimcoder.stage.duration",
    } <= metric_names


def _published_ids(records: list[Any]) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = defaultdict(set)
    for record in records:
        ids[record.key.decode()].add(json.loads(record.value)["event_id"])
    return ids


def test_a_worker_killed_mid_stream_loses_nothing_and_repeats_identical_events(
    ready: Settings, tmp_path: Path
) -> None:
    """The first worker runs its pipeline in its own process (``pipeline_process=false``), the
    second in a child process (the default, worker/pipeline_process.py): a repeated output is
    byte for byte the same either way."""
    settings = ready
    events = claim_events(120, "restart", seed=11)
    publish_claims(settings, events)
    log = tmp_path / "worker.log"

    with running_worker(settings.model_copy(update={"pipeline_process": False}), log) as first:
        fetch(settings, settings.topics.coded, 20, seconds=180, worker=first)
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL  # mid-stream, no clean commit
    with running_worker(settings, log) as second:
        records = fetch(
            settings, settings.topics.coded, 120, seconds=240, settle=3.0, worker=second
        )

    # Nothing lost: every claim came out; a repeated claim carries the same event_id.
    ids = _published_ids(records)
    assert set(ids) == {e["claim_id"] for e in events}
    assert all(len(event_ids) == 1 for event_ids in ids.values()), ids
    first_value: dict[str, bytes] = {}
    for record in records:
        first_value.setdefault(record.key.decode(), record.value)
        assert record.value == first_value[record.key.decode()]  # byte for byte the same
    stored = _claim_results(settings)
    assert len(stored) == 120
    # The result is stored before it is published, so a kill between the two leaves a delivery
    # with no output: every output has its delivery, never the other way round.
    copies = Counter(record.key.decode() for record in records)
    assert all(copies[claim_id] <= deliveries for claim_id, _, deliveries in stored)

    # Replaying the topic (a new consumer group reads it all again) re-emits every claim with
    # its first event, byte for byte: the stored result is reused.
    replay = settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(
                update={"consumer_group": f"{settings.kafka.consumer_group}-replay"}
            )
        }
    )
    with running_worker(replay, log) as third:
        again = fetch(
            settings, settings.topics.coded, len(records) + 120, seconds=240, worker=third
        )
    for record in again:
        assert record.value == first_value[record.key.decode()]
    assert Counter(r.key for r in again) == Counter(
        {k: v + 1 for k, v in Counter(r.key for r in records).items()}
    )


def test_a_fiscal_year_an_operator_loaded_is_coded_with_its_own_code_set(
    ready: Settings, tmp_path: Path
) -> None:
    """FY2027 replaced by an operator's CMS-layout files: a whole code set that differs from
    the shipped one (category E11 removed, as a year might delete codes) under the release
    name 2026-10-op, and Tables 1A-1E with a capital rate of $550.00. The worker reads the
    registry at start: a 2026-11-20 claim is coded in that code set (never E11.x) and priced
    with the loaded rates; a FY2026 claim of the same batch keeps FY2026's code set (E11.9)."""
    settings = ready
    records = [r for r in shipped_catalog().records("2026-10") if r.code[:3] != "E11"]
    rows = list(
        csv.DictReader(files("drg.data").joinpath("fy2027", "table5.csv").read_text().splitlines())
    )
    (tmp_path / "order.txt").write_bytes(order_file(records))
    (tmp_path / "table5.txt").write_bytes(table5_file(2027, rows))
    (tmp_path / "rates.txt").write_bytes(rates_file(2027, capital_rate=Decimal("550.00")))
    invoke(
        settings,
        *("reference", "load", "--fiscal-year", "2027", "--order", str(tmp_path / "order.txt")),
        *("--table5", str(tmp_path / "table5.txt"), "--rates", str(tmp_path / "rates.txt")),
        *("--release", "2026-10-op", "--period", "2026-10-01,2027-03-31,440"),
    )
    narrative = (
        "Discharge summary. Acute on chronic systolic heart failure and acute respiratory "
        "failure with hypoxia. Type 2 diabetes mellitus. Dilated cardiomyopathy."
    )
    base = claim_events(2, "op2027")
    events = [
        {**base[0], "narrative": narrative, "discharge_date": "2026-11-20", "admission_date": None},
        {**base[1], "narrative": narrative, "discharge_date": "2026-09-20", "admission_date": None},
    ]
    with running_worker(settings, tmp_path / "worker.log") as worker:
        publish_claims(settings, events)
        out = fetch(settings, settings.topics.coded, 2, seconds=180, settle=1.0, worker=worker)
    by_claim = {r.key.decode(): ClaimCoded.model_validate_json(r.value) for r in out}
    fy2027, fy2026 = by_claim[events[0]["claim_id"]], by_claim[events[1]["claim_id"]]
    assert (fy2027.fiscal_year, fy2027.codeset_release, fy2027.msdrg_version) == (
        2027,
        "2026-10-op",
        440,
    )
    loaded = {r.dotted for r in records if r.billable}
    assert fy2027.codes, fy2027.review_reasons
    assert {c.code for c in fy2027.codes} <= loaded
    assert not [c.code for c in fy2027.codes if c.code.startswith("E11")]
    assert fy2027.estimate is not None
    assert fy2027.estimate.fiscal_year == 2027
    # the loaded capital rate, not the shipped $539.95: no provider, so wage index 1.0 and a
    # GAF of 1.0 (42 CFR 412.308: capital rate x GAF x weight, GAF = wage index ^ 0.6848)
    assert fy2027.drg is not None
    assert fy2027.drg.relative_weight is not None
    assert fy2027.estimate.wage_index == Decimal("1")
    assert fy2027.estimate.capital == (Decimal("550.00") * fy2027.drg.relative_weight).quantize(
        Decimal("0.01"),
        rounding=ROUND_HALF_UP,  # cents rounded half up (drg/pricing.py)
    )
    assert (fy2026.fiscal_year, fy2026.codeset_release) == (2026, "2026-04")
    assert "E11.9" in {c.code for c in fy2026.codes}
