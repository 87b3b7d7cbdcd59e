"""A failing claim is reported by the type and place of its failure, never by the exception's
message: messages can quote the claim (patient health information), and logs and traces leave
the worker.

Boundary replaced here: the ``BatchProcessor`` (the coding pipeline) is a stand-in that fails
with the narrative in its message; the batch handling, logging and tracing around it are real.
"""

import json
import logging
from collections.abc import Sequence

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from schemas import DeadLetter
from tests.test_contract import VALID_RAW
from worker.app import Outgoing, handle_until_done
from worker.errors import describe
from worker.intake import Accepted
from worker.records import Record
from worker.telemetry import BatchTrace, batch_span

NARRATIVE = str(VALID_RAW["narrative"])


class FailingPipeline:
    """Fails every batch the way a library would: with the data it choked on in the message."""

    def __init__(self) -> None:
        self.calls = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def process(self, batch: Sequence[Accepted], trace_: BatchTrace) -> list[Outgoing]:
        self.calls += 1
        with batch_span("inference", trace_):
            raise ValueError(f"cannot parse {batch[0].claim.narrative!r}")


@pytest.fixture
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def test_describe_names_the_type_and_place_but_not_the_message() -> None:
    try:
        raise ValueError(NARRATIVE)
    except ValueError as exc:
        text = describe(exc)
    assert text.startswith("ValueError at test_failure_reporting.py:")
    assert "test_describe_names_the_type_and_place_but_not_the_message" in text
    assert NARRATIVE not in text


async def test_a_failing_claim_is_dead_lettered_without_its_text_in_logs_or_spans(
    caplog: pytest.LogCaptureFixture, spans: InMemorySpanExporter
) -> None:
    key = str(VALID_RAW["claim_id"]).encode()
    record = Record("claims.raw", 0, 7, key, json.dumps(VALID_RAW).encode())
    pipeline = FailingPipeline()
    trace_ = BatchTrace([record], "group")
    with caplog.at_level(logging.DEBUG):
        outputs = await handle_until_done([record], pipeline, trace_)
    trace_.close()

    assert pipeline.calls == 3  # bounded attempts, then the claim is dead-lettered
    (output,) = outputs
    assert output.topic == "dlq"
    assert DeadLetter.model_validate_json(output.value).error.type == "internal_error"
    assert "ValueError at" in caplog.text  # the failure is still findable ...
    assert NARRATIVE not in caplog.text  # ... without the claim's text
    assert not any(r.exc_info for r in caplog.records)  # no traceback with the message
    finished = spans.get_finished_spans()
    inference = [s for s in finished if s.name == "inference"]
    assert len(inference) == 3
    for span in finished:
        assert NARRATIVE not in (span.status.description or "")
        assert not span.events  # no exception event carrying str(exc)
        assert not any(NARRATIVE in str(v) for v in (span.attributes or {}).values())
    assert (inference[0].status.description or "").startswith("ValueError at ")
