"""The pipeline's middle: one work item per claim, one explicit list of stages, imports that run
one way, and a claim coded with no Kafka record at all.

Boundaries replaced, where a test says so: a stand-in stage (to watch the stage runner). Servers
are real (Tansu, PostgreSQL, Redis)."""

import ast
import asyncio
import datetime as dt
import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typer.testing import CliRunner

from drg.exceptions import DatabaseUnavailableError
from drg.registry import ReleaseRegistry
from schemas.coded import ClaimCoded
from tests.pipeline_support import check_event, claim_events, publish_claims
from tests.support import running_worker
from tests.test_contract import VALID_RAW
from worker import records
from worker.cli import app
from worker.intake import accept
from worker.pipeline import ClaimPipeline
from worker.prepare import prepare_reference_data
from worker.records import Record
from worker.retry import RetryPolicy, run_stage
from worker.settings import Settings
from worker.telemetry import Telemetry
from worker.work import WorkItem

pytest_plugins = ("tests.reference_fixtures",)

ROOT = Path(__file__).resolve().parents[1]
STAGES = (
    "inference",
    "apply_conventions",
    "validate_codes",
    "drg.group",
    "drg.price",
    "store",
)


# --- one list of stages ----------------------------------------------------------------------


async def test_the_stage_list_orders_the_pipeline_and_the_readme_follows_it() -> None:
    pipeline = ClaimPipeline.from_settings(Settings(), record=False)  # clients never connect
    try:
        assert tuple(stage.name for stage in pipeline.stages) == STAGES
    finally:
        await pipeline.stop()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("Follow one claim") : readme.index("## The event contract")]
    listed = re.findall(r"^\| `([a-z_.]+)` \|", table, flags=re.MULTILINE)
    assert listed == ["validate_event", *STAGES]


# --- imports run one way ---------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_nothing_below_the_faust_glue_imports_it_and_coders_know_no_settings() -> None:
    """Only the entry points (worker/runner.py, worker/cli/, and the benchmark's Faust baseline,
    which runs the worker's app without its pipeline) import worker.app; the coders take their
    own component settings, never worker.settings."""
    offenders = []
    for path in sorted((ROOT / "worker").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        imported = _imports(path)
        entry_point = relative in (
            "worker/runner.py",
            "worker/benchmark/passthrough.py",
        ) or relative.startswith("worker/cli/")
        if "worker.app" in imported and not entry_point and relative != "worker/app.py":
            offenders.append(f"{relative} imports worker.app")
        if relative.startswith("worker/coders/") and "worker.settings" in imported:
            offenders.append(f"{relative} imports worker.settings")
    assert offenders == []


# --- the stage runner and the retry policy ---------------------------------------------------


class Flaky:
    """Stand-in stage: the server it needs is away for its first ``away`` runs."""

    name = "validate_codes"

    def __init__(self, away: int) -> None:
        self.away = away
        self.runs: list[int] = []

    def wants(self, item: WorkItem) -> bool:
        return item.failure is None

    async def run(self, items: Sequence[WorkItem]) -> None:
        self.runs.append(len(items))
        if len(self.runs) <= self.away:
            raise DatabaseUnavailableError("PostgreSQL failed: OperationalError")
        for item in items:
            item.note(self.name, **{"claimcoder.seen": True})


class PoisonPill:
    """Stand-in stage: fails the whole batch whenever the one odd claim is in it."""

    name = "drg.group"

    def __init__(self, odd: str) -> None:
        self.odd = odd
        self.runs: list[tuple[str, ...]] = []

    def wants(self, item: WorkItem) -> bool:
        return item.failure is None

    async def run(self, items: Sequence[WorkItem]) -> None:
        self.runs.append(tuple(i.claim_id for i in items))
        if any(i.claim_id == self.odd for i in items):
            raise KeyError("odd data")


def _items(n: int) -> list[WorkItem]:
    registry = ReleaseRegistry.load()
    out = []
    for i in range(n):
        value = json.dumps({**VALID_RAW, "claim_id": f"c-{i}"}).encode()
        item = accept(Record("claims.raw", 0, i, f"c-{i}".encode(), value), registry)
        assert isinstance(item, WorkItem)
        out.append(item)
    return out


async def test_a_server_that_is_away_makes_the_stage_wait_then_every_claim_goes_on() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    items = _items(3)
    trace = Telemetry("g", tracer_provider=provider).batch([i.record for i in items if i.record])
    stage = Flaky(away=2)
    policy = RetryPolicy(server_backoff_s=(0.01,))
    await run_stage(stage, items, trace, policy)
    trace.close()
    assert stage.runs == [3, 3, 3]  # the same batch again, never split, nothing failed
    assert [i.failure for i in items] == [None, None, None]
    assert all(i.timings["validate_codes"].ms >= 0 for i in items)
    spans = exporter.get_finished_spans()
    assert len([s for s in spans if s.name == "validate_codes.batch"]) == 3
    claim_spans = [s.attributes or {} for s in spans if s.name == "claims.raw process"]
    assert len(claim_spans) == 3
    # each claim's span shows the three runs it waited for, their time, and what the stage noted
    assert [a["claimcoder.stage.validate_codes.runs"] for a in claim_spans] == [3, 3, 3]
    waited = [a["claimcoder.stage.validate_codes.duration_ms"] for a in claim_spans]
    assert all(isinstance(ms, float) and ms >= 0 for ms in waited)
    assert all(a.get("claimcoder.seen") for a in claim_spans)


async def test_at_shutdown_a_waiting_stage_leaves_the_batch_for_redelivery() -> None:
    items = _items(2)
    trace = Telemetry("g").batch([])
    with pytest.raises(asyncio.CancelledError):
        await run_stage(Flaky(away=99), items, trace, RetryPolicy(), stopping=lambda: True)


async def test_a_failing_batch_is_split_and_only_the_odd_claim_fails() -> None:
    items = _items(4)
    stage = PoisonPill("c-2")
    await run_stage(stage, items, Telemetry("g").batch([]), RetryPolicy(stage_attempts=2))
    whole = ("c-0", "c-1", "c-2", "c-3")
    assert stage.runs == [whole, whole, ("c-0",), ("c-1",), ("c-2",), ("c-2",), ("c-3",)]
    failed = {i.claim_id: i.failure for i in items if i.failure is not None}
    assert list(failed) == ["c-2"]
    assert (failed["c-2"].stage, failed["c-2"].disposition) == ("drg.group", "dead_letter")


# --- one claim with no Kafka record ----------------------------------------------------------


def test_claimcoder_code_runs_the_stage_list_without_a_kafka_record(
    reference: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same stages as the worker, for a claim typed on the command line: no Record is
    ever built (the record type refuses to be), nothing is stored."""

    def no_record(*args: object, **kwargs: object) -> None:
        raise AssertionError("claimcoder code built a Kafka record")

    monkeypatch.setattr(records.Record, "__init__", no_record)
    result = CliRunner().invoke(
        app,
        [
            *("code", "Admitted with community acquired pneumonia."),
            *("--age", "70", "--sex", "M", "--discharge-date", "2026-11-20"),
        ],
        env=reference.to_env(),
    )
    assert result.exit_code == 0, result.output
    event = ClaimCoded.model_validate_json(result.stdout)
    assert (event.status, event.fiscal_year, event.codeset_release) == (
        "estimated",
        2027,
        "2026-10",
    )
    assert [c.code for c in event.codes] == ["J18.9"]
    assert event.drg is not None
    assert (event.drg.code, event.drg.version) == ("195", 440)
    assert set(event.timings_ms) == {"inference", "validate_codes", "drg_group", "drg_price"}


# --- a producer in one client library, a consumer in another ----------------------------------


@pytest.fixture
def ready(settings: Settings) -> Settings:
    prepare_reference_data(settings)
    return settings


async def _consume(settings: Settings, count: int, seconds: float) -> list[ClaimCoded]:
    consumer = AIOKafkaConsumer(
        settings.topics.coded,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    events: list[ClaimCoded] = []
    try:
        deadline = asyncio.get_running_loop().time() + seconds
        while len(events) < count:
            assert asyncio.get_running_loop().time() < deadline, f"{len(events)} of {count}"
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                events.extend(check_event(record.value) for record in batch)
    finally:
        await consumer.stop()
    return events


def test_50_claims_from_a_kafka_python_producer_reach_an_aiokafka_consumer(
    ready: Settings, tmp_path: Path
) -> None:
    events = claim_events(50, "roundtrip", seed=3)
    with running_worker(ready, tmp_path / "worker.log"):
        publish_claims(ready, events)
        coded = asyncio.run(_consume(ready, 50, seconds=180))
    assert sorted(e.claim_id for e in coded) == sorted(e["claim_id"] for e in events)
    registry = ReleaseRegistry.load()
    for event in coded:
        period = registry.period_for(event.discharge_date)
        assert period is not None
        assert event.fiscal_year == period.fiscal_year
    assert dt.date(2025, 10, 1) <= min(e.discharge_date for e in coded)
