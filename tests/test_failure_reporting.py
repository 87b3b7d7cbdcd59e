"""A failing claim is reported by the type and place of its failure, never by the exception's
message: messages can quote the claim (patient health information), and logs and traces leave
the worker.

Boundary replaced here: the pipeline's stage list is one stand-in stage that fails with the
narrative in its message; intake, the retry and isolation policy, the dead-letter builder,
logging and tracing around it are the worker's own. Spans go to a private tracer provider.
"""

import json
import logging
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from drg.assess import Assessor
from drg.codeset.catalog import CodesetCatalog
from drg.registry import ReleaseRegistry
from schemas import DeadLetter
from tests.test_contract import VALID_RAW
from worker.coders.base import Coder
from worker.errors import describe
from worker.pipeline import ClaimPipeline
from worker.records import Record
from worker.resources import async_engine, redis_client
from worker.retry import RetryPolicy
from worker.settings import Settings
from worker.store import NoStore
from worker.telemetry import Telemetry
from worker.work import WorkItem

NARRATIVE = str(VALID_RAW["narrative"])


class FailingStage:
    """Fails every batch the way a library would: with the data it choked on in the message."""

    name = "inference"

    def __init__(self) -> None:
        self.calls = 0

    def wants(self, item: WorkItem) -> bool:
        return True

    async def run(self, items: Sequence[WorkItem]) -> None:
        self.calls += 1
        raise ValueError(f"cannot parse {items[0].claim.narrative!r}")


@pytest.fixture
def spans() -> Iterator[tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield (
        Telemetry("group", tracer_provider=tracer_provider, meter_provider=meter_provider),
        exporter,
        reader,
    )
    tracer_provider.shutdown()
    meter_provider.shutdown()


def test_describe_names_the_type_and_place_but_not_the_message() -> None:
    try:
        raise ValueError(NARRATIVE)
    except ValueError as exc:
        text = describe(exc)
    assert text.startswith("ValueError at test_failure_reporting.py:")
    assert "test_describe_names_the_type_and_place_but_not_the_message" in text
    assert NARRATIVE not in text


async def test_a_failing_claim_is_dead_lettered_without_its_text_in_logs_or_spans(
    caplog: pytest.LogCaptureFixture,
    spans: tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    telemetry, exporter, _ = spans
    settings = Settings()  # clients are built but never connect: the stage fails first
    redis, engine = redis_client(settings.redis), async_engine(settings.database)
    assessor = Assessor(
        redis=redis, engine=engine, key_prefix="unused:", registry=ReleaseRegistry.load()
    )
    stage = FailingStage()
    pipeline = ClaimPipeline(
        _no_coder, assessor, NoStore(), telemetry, policy=RetryPolicy(stage_attempts=3)
    )
    pipeline.stages = (stage,)
    key = str(VALID_RAW["claim_id"]).encode()
    record = Record("claims.raw", 0, 7, key, json.dumps(VALID_RAW).encode())
    try:
        trace = telemetry.batch([record])
        with caplog.at_level(logging.DEBUG):
            outputs = await pipeline.handle([record], trace)
        trace.close()
    finally:
        assessor.close()
        await redis.aclose()
        await engine.dispose()

    assert stage.calls == 3  # bounded attempts, then the claim is dead-lettered
    (output,) = outputs
    assert output.topic == "dlq"
    letter = DeadLetter.model_validate_json(output.value)
    assert (letter.error.stage, letter.error.type) == ("inference", "internal_error")
    assert NARRATIVE not in letter.error.message
    assert "ValueError at" in caplog.text  # the failure is still findable ...
    assert NARRATIVE not in caplog.text  # ... without the claim's text
    assert not any(r.exc_info for r in caplog.records)  # no traceback with the message
    finished = exporter.get_finished_spans()
    inference = [s for s in finished if s.name == "inference.batch"]
    assert len(inference) == 3  # one per attempt, each a child of the batch's span
    (batch,) = [s for s in finished if s.name == "claimcoder.batch"]
    assert {s.parent.span_id for s in inference if s.parent} == {batch.context.span_id}
    (consumer,) = [s for s in finished if s.name == "claims.raw process"]
    assert [link.context.span_id for link in consumer.links] == [batch.context.span_id]
    assert (consumer.attributes or {})["claimcoder.stage.inference.runs"] == 3
    for span in finished:
        assert NARRATIVE not in (span.status.description or "")
        assert not span.events  # no exception event carrying str(exc)
        assert not any(NARRATIVE in str(v) for v in (span.attributes or {}).values())
    assert all((s.status.description or "").startswith("ValueError at ") for s in inference)
    assert (consumer.status.description or "") == "inference: ValueError"


def _no_coder(catalog: CodesetCatalog) -> Coder:
    """Never called: the pipeline is not started, and the stand-in stage needs no coder."""
    raise AssertionError("the coder was built")
