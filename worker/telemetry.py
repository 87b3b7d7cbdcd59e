"""OpenTelemetry: one trace per claim, continued from the producer's ``traceparent`` header.

Each consumed record gets a CONSUMER span ``<topic> process`` whose parent is the context found in
the record's headers. Its children are the stages: ``validate_event``, ``inference``,
``validate_codes``, ``drg.group``, ``drg.price``, ``store`` and a PRODUCER span
``<topic> publish`` whose context travels on in the output's headers. Stages that run once for a
whole micro-batch (one engine call, one Redis round trip, one PostgreSQL query) run under a
batch span of their own; each claim's stage span covers the batch stage's time and links to the
batch span, so a claim's trace shows what it waited for and ops can still open the batch.

Library code here uses the API only; :func:`configure` (called by the worker's entry point) sets
up the SDK from the standard ``OTEL_*`` variables. Telemetry never raises into processing and
never carries narrative text: attributes are ids, counts, codes of the DRG and statuses.
"""

import importlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from worker.errors import describe
from worker.records import Record

log = logging.getLogger(__name__)

SCOPE: Final = "claimcoder"
tracer = trace.get_tracer(SCOPE)
meter = metrics.get_meter(SCOPE)

# Metrics. Durations in seconds, as the OpenTelemetry semantic conventions ask.
claims_consumed = meter.create_counter(
    "claimcoder.claims.consumed", unit="{claim}", description="Records read from claims.raw."
)
claims_coded = meter.create_counter(
    "claimcoder.claims.coded", unit="{claim}", description="claims.coded events sent, by status."
)
claims_dead_lettered = meter.create_counter(
    "claimcoder.claims.dead_lettered", unit="{claim}", description="Dead letters sent, by reason."
)
batch_size = meter.create_histogram(
    "claimcoder.batch.size",
    unit="{claim}",
    description="Claims per micro-batch.",
    explicit_bucket_boundaries_advisory=[1, 2, 4, 8, 16, 32, 64, 128, 256],
)
stage_duration = meter.create_histogram(
    "claimcoder.stage.duration", unit="s", description="Wall time of a stage for one batch."
)


# --- trace context in Kafka headers ---------------------------------------------------------


class _HeaderGetter(Getter[Sequence[tuple[str, bytes | None]]]):
    def get(self, carrier: Sequence[tuple[str, bytes | None]], key: str) -> list[str] | None:
        values = [v.decode("latin-1") for k, v in carrier if k.lower() == key and v is not None]
        return values or None

    def keys(self, carrier: Sequence[tuple[str, bytes | None]]) -> list[str]:
        return [k for k, _ in carrier]


_GETTER: Final = _HeaderGetter()


def extract(headers: Sequence[tuple[str, bytes | None]]) -> otel_context.Context:
    """The producer's context (W3C ``traceparent``/``tracestate`` by default), or an empty one."""
    try:
        return propagate.extract(headers, getter=_GETTER)
    except Exception:  # a malformed header must not fail the claim
        log.warning("could not read trace context from headers", exc_info=True)
        return otel_context.Context()


def inject(ctx: otel_context.Context) -> list[tuple[str, bytes]]:
    """Headers that carry ``ctx`` to the consumer of our output."""
    carrier: dict[str, str] = {}
    try:
        propagate.inject(carrier, context=ctx)
    except Exception:
        log.warning("could not write trace context to headers", exc_info=True)
    return [(k, v.encode("latin-1")) for k, v in carrier.items()]


def replace_headers(
    headers: Iterable[tuple[str, bytes]], ctx: otel_context.Context
) -> list[tuple[str, bytes]]:
    """``headers`` with any trace context replaced by ``ctx``'s."""
    fresh = inject(ctx)
    names = {k for k, _ in fresh} | {"traceparent", "tracestate"}
    return [(k, v) for k, v in headers if k not in names] + fresh


# --- spans of one micro-batch ---------------------------------------------------------------


def _record_key(record: Record) -> tuple[str, int, int]:
    return (record.topic, record.partition, record.offset)


class BatchTrace:
    """The claim spans of one micro-batch, keyed by record; ended by :meth:`close`."""

    def __init__(self, records: Sequence[Record], consumer_group: str) -> None:
        self._spans: dict[tuple[str, int, int], Span] = {}
        self._contexts: dict[tuple[str, int, int], otel_context.Context] = {}
        self.batch_links: list[Link] = []
        for record in records:
            parent = extract(record.headers)
            attributes: dict[str, Any] = {
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.destination.name": record.topic,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
                "messaging.consumer.group.name": consumer_group,
                "messaging.batch.message_count": len(records),
            }
            if record.key is not None:
                attributes["messaging.kafka.message.key"] = record.key.decode("utf-8", "replace")
            span = tracer.start_span(
                f"{record.topic} process",
                context=parent,
                kind=SpanKind.CONSUMER,
                attributes=attributes,
            )
            key = _record_key(record)
            self._spans[key] = span
            self._contexts[key] = trace.set_span_in_context(span, parent)
            self.batch_links.append(Link(span.get_span_context()))
        claims_consumed.add(len(records))
        batch_size.record(len(records))

    def context(self, record: Record) -> otel_context.Context:
        return self._contexts.get(_record_key(record), otel_context.Context())

    def span(self, record: Record) -> Span:
        return self._spans.get(_record_key(record), trace.INVALID_SPAN)

    def set(self, record: Record, **attributes: Any) -> None:
        self.span(record).set_attributes(attributes)

    @contextmanager
    def stage(self, record: Record, name: str, **attributes: Any) -> Iterator[Span]:
        """A child span of the claim, current while the block runs."""
        with _current_span(name, self.context(record), attributes) as span:
            yield span

    def stage_span(
        self,
        record: Record,
        name: str,
        start_ns: int,
        end_ns: int,
        *,
        links: Sequence[Link] = (),
        attributes: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """A child span of the claim for a stage that ran for the whole batch."""
        span = tracer.start_span(
            name,
            context=self.context(record),
            start_time=start_ns,
            links=links,
            attributes=dict(attributes or {}),
        )
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=max(end_ns, start_ns))

    def fail(self, record: Record, description: str) -> None:
        self.span(record).set_status(Status(StatusCode.ERROR, description))

    def close(self) -> None:
        for span in self._spans.values():
            span.end()


@contextmanager
def batch_span(name: str, trace_: BatchTrace, **attributes: Any) -> Iterator[Span]:
    """A span for work done once for the whole batch, linked to every claim of the batch."""
    # a root: a batch belongs to no single claim's trace
    with _current_span(name, otel_context.Context(), attributes, trace_.batch_links) as span:
        yield span


@contextmanager
def _current_span(
    name: str,
    context: otel_context.Context,
    attributes: Mapping[str, Any],
    links: Sequence[Link] = (),
) -> Iterator[Span]:
    """A current span that records a failure by its type and place, never by its message (the
    SDK's default records ``str(exc)``, which can quote claim data)."""
    with tracer.start_as_current_span(
        name,
        context=context,
        links=links,
        attributes=dict(attributes),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, describe(exc)))
            raise


class StageClock:
    """Wall-clock start and end of a stage, in ns for spans and in seconds for metrics."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.start_ns = time.time_ns()
        self._perf = time.perf_counter()
        self.end_ns = self.start_ns

    def stop(self) -> float:
        seconds = time.perf_counter() - self._perf
        self.end_ns = self.start_ns + int(seconds * 1e9)
        stage_duration.record(seconds, {"stage": self.stage})
        return seconds * 1000


# --- SDK set-up (the entry point only) ------------------------------------------------------


def _exporter_choice(signal: str) -> str:
    """``OTEL_<SIGNAL>_EXPORTER`` if set, else otlp when an OTLP endpoint is configured."""
    chosen = os.environ.get(f"OTEL_{signal}_EXPORTER")
    if chosen:
        return chosen.split(",")[0].strip().lower()
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    return "otlp" if any(os.environ.get(v) for v in endpoints) else "none"


def _protocol(signal: str) -> str:
    return (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )


# The OTLP exporter of each signal and transport, imported only when chosen: the gRPC one pulls
# in grpcio.
_OTLP_EXPORTERS: Final = {
    ("TRACES", True): "opentelemetry.exporter.otlp.proto.grpc.trace_exporter:OTLPSpanExporter",
    ("TRACES", False): "opentelemetry.exporter.otlp.proto.http.trace_exporter:OTLPSpanExporter",
    ("METRICS", True): "opentelemetry.exporter.otlp.proto.grpc.metric_exporter:OTLPMetricExporter",
    ("METRICS", False): "opentelemetry.exporter.otlp.proto.http.metric_exporter:OTLPMetricExporter",
}


def _exporter(signal: str, console: Callable[[], Any]) -> Any:
    """The exporter ``OTEL_<SIGNAL>_EXPORTER`` and the OTLP protocol variables ask for, or None."""
    match _exporter_choice(signal):
        case "otlp":
            module, name = _OTLP_EXPORTERS[signal, _protocol(signal) == "grpc"].split(":")
            return getattr(importlib.import_module(module), name)()
        case "console":
            return console()
    return None


def configure(service_version: str) -> Callable[[], None]:
    """Install the SDK's tracer and meter providers as the standard variables say
    (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_*``,
    ``OTEL_TRACES_EXPORTER``/``OTEL_METRICS_EXPORTER`` = otlp | console | none,
    ``OTEL_SDK_DISABLED``). Returns the function that flushes and shuts them down."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return lambda: None
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    attributes: dict[str, str] = {SERVICE_VERSION: service_version}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = "claimcoder"
    resource = Resource.create(attributes)

    tracer_provider = TracerProvider(resource=resource)
    span_exporter = _exporter("TRACES", ConsoleSpanExporter)
    if span_exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(tracer_provider)

    metric_exporter = _exporter("METRICS", ConsoleMetricExporter)
    readers = [PeriodicExportingMetricReader(metric_exporter)] if metric_exporter else []
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    metrics.set_meter_provider(meter_provider)

    def shutdown() -> None:
        for provider in (tracer_provider, meter_provider):
            try:
                provider.shutdown()
            except Exception:  # telemetry never breaks shutdown
                log.warning("telemetry shutdown failed", exc_info=True)

    return shutdown


def instrument_clients() -> None:
    """Client spans for Redis and psycopg (PostgreSQL) from the instrumentation packages; they
    nest under whatever stage span is current. (The SQLAlchemy instrumentation supports
    SQLAlchemy < 2.1 only; psycopg's sees the same statements one level lower.)"""
    try:
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor().instrument()
        PsycopgInstrumentor().instrument(enable_commenter=False)
    except Exception:
        log.warning("client instrumentation failed", exc_info=True)
