"""OpenTelemetry: one trace per claim, continued from the producer's ``traceparent`` header.

Each consumed record gets one span, a CONSUMER span ``<topic> process`` whose parent is the
context found in the record's headers, and whose context its output carries on in its headers.
Stages run once for a whole micro-batch (one engine call, one Redis round trip, one PostgreSQL
query), each under a span ``<stage>.batch``, child of the batch's span ``claimcoder.batch`` (a
trace of its own, to which every claim span links); the claim span records what the claim
waited for in each stage (``claimcoder.stage.<stage>.duration_ms`` and ``.runs``), the
attributes the stages noted and its failure.

This module is an adapter: stages record plain data on their work items (``worker/work.py``:
times, attributes, failures) and :class:`BatchTrace` turns it into spans and metrics, as
faust's OpenTelemetry sensor does for its events. :class:`Telemetry` takes its tracer and meter
providers (default: the global ones; tests pass private ones). :func:`configure` (called by the
worker's entry point) sets up the SDK from the standard ``OTEL_*`` variables. Telemetry never
raises into processing and never carries narrative text: attributes are ids, counts, codes of
the DRG and statuses.
"""

import importlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from worker.errors import describe
from worker.records import Record
from worker.work import StageTiming, WorkItem

log = logging.getLogger(__name__)

SCOPE: Final = "claimcoder"


class Instruments:
    """The worker's metrics, from one meter. Durations in seconds, as the OpenTelemetry
    semantic conventions ask."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.consumed = meter.create_counter(
            "claimcoder.claims.consumed",
            unit="{claim}",
            description="Records read from claims.raw.",
        )
        self.coded = meter.create_counter(
            "claimcoder.claims.coded",
            unit="{claim}",
            description="claims.coded events sent, by status.",
        )
        self.dead_lettered = meter.create_counter(
            "claimcoder.claims.dead_lettered",
            unit="{claim}",
            description="Dead letters sent, by reason.",
        )
        self.batch_size = meter.create_histogram(
            "claimcoder.batch.size",
            unit="{claim}",
            description="Claims per micro-batch.",
            explicit_bucket_boundaries_advisory=[1, 2, 4, 8, 16, 32, 64, 128, 256],
        )
        self.stage_duration = meter.create_histogram(
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


# --- the adapter: work items in, spans and metrics out --------------------------------------


class Telemetry:
    """Turns what the pipeline records (records, work items, their stage times, attributes and
    failures) into spans and metrics, as faust's OpenTelemetry sensor does for its events.

    ``tracer_provider`` and ``meter_provider`` default to the global ones (set up by
    :func:`configure`); tests pass private providers."""

    def __init__(
        self,
        consumer_group: str,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.consumer_group = consumer_group
        self.tracer = trace.get_tracer(SCOPE, tracer_provider=tracer_provider)
        meter = (
            meter_provider.get_meter(SCOPE)
            if meter_provider is not None
            else metrics.get_meter(SCOPE)
        )
        self.instruments = Instruments(meter)

    def batch(self, records: Sequence[Record]) -> "BatchTrace":
        """Claim spans for a micro-batch (ended by :meth:`BatchTrace.close`)."""
        return BatchTrace(self, records)


def _record_key(record: Record) -> tuple[str, int, int]:
    return (record.topic, record.partition, record.offset)


class BatchTrace:
    """The spans of one micro-batch; ended by :meth:`close`.

    One span a claim: each record gets a CONSUMER span ``<topic> process`` continuing the
    producer's context, linked to the batch's span ``claimcoder.batch`` (a root span of its own
    trace). :meth:`stage` runs a stage under a current child of the batch span,
    ``<stage>.batch`` (client spans nest under it), and records on each claim what it waited for
    (``claimcoder.stage.<stage>.duration_ms``, summed over attempts, and, when it ran more
    than once, ``claimcoder.stage.<stage>.runs``) with the attributes and failure the stage
    recorded on its item; the claim span gets them all when the batch closes. An output
    carries its claim span's context on in its headers (:meth:`context`). Items without a
    record (`claimcoder code`) get no spans.

    Why one span a claim, not one a stage: an SDK span costs ~10-25 µs here, and nine of them a
    claim were a quarter of the worker's time (``claimcoder bench --profile``); the stage spans
    of a claim all had its batch's times, which the batch's stage spans hold once."""

    def __init__(self, telemetry: Telemetry, records: Sequence[Record]) -> None:
        self._telemetry = telemetry
        self._tracer = telemetry.tracer
        self._spans: dict[tuple[str, int, int], Span] = {}
        self._contexts: dict[tuple[str, int, int], otel_context.Context] = {}
        self._attributes: dict[tuple[str, int, int], dict[str, Any]] = {}
        self._published: dict[tuple[str, str], int] = {}  # (topic, label) -> outputs sent
        self._batch: Span = trace.INVALID_SPAN
        self._batch_context = otel_context.Context()
        if not records:
            return
        self._batch = self._tracer.start_span(
            "claimcoder.batch",
            context=otel_context.Context(),
            attributes={
                "messaging.destination.name": records[0].topic,
                "messaging.destination.partition.id": str(records[0].partition),
                "messaging.batch.message_count": len(records),
            },
        )
        self._batch_context = trace.set_span_in_context(self._batch)
        links = [Link(self._batch.get_span_context())]
        for record in records:
            parent = extract(record.headers)
            attributes: dict[str, Any] = {
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.destination.name": record.topic,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
                "messaging.consumer.group.name": telemetry.consumer_group,
                "messaging.batch.message_count": len(records),
            }
            if record.key is not None:
                attributes["messaging.kafka.message.key"] = record.key.decode("utf-8", "replace")
            span = self._tracer.start_span(
                f"{record.topic} process",
                context=parent,
                kind=SpanKind.CONSUMER,
                attributes=attributes,
                links=links,
            )
            key = _record_key(record)
            self._spans[key] = span
            self._contexts[key] = trace.set_span_in_context(span, parent)
            self._attributes[key] = {}
        telemetry.instruments.consumed.add(len(records))
        telemetry.instruments.batch_size.record(len(records))

    def context(self, record: Record | None) -> otel_context.Context:
        """The context of ``record``'s claim span (what its output's headers carry on), or an
        empty one."""
        if record is None:
            return otel_context.Context()
        return self._contexts.get(_record_key(record), otel_context.Context())

    def span(self, record: Record | None) -> Span:
        if record is None:
            return trace.INVALID_SPAN
        return self._spans.get(_record_key(record), trace.INVALID_SPAN)

    def set(self, record: Record | None, **attributes: Any) -> None:
        """Attributes of ``record``'s claim span (set when the batch closes)."""
        if (
            record is not None
            and (pending := self._attributes.get(_record_key(record))) is not None
        ):
            pending.update(attributes)

    def fail(self, record: Record | None, description: str) -> None:
        self.span(record).set_status(Status(StatusCode.ERROR, description))

    @contextmanager
    def stage(self, name: str, items: Sequence[WorkItem], **attributes: Any) -> Iterator[None]:
        """One batch run of stage ``name`` over ``items``: times it on every item (also when it
        fails), under a current span ``<name>.batch`` (a child of the batch span); afterwards
        each claim's span gets what it waited for, the attributes the stage noted on its item
        and, when the stage failed it, status ERROR with the stage and the exception's type
        and place."""
        batch_attributes = {"claimcoder.batch.size": len(items), **attributes}
        started, error = time.time_ns(), None
        clock = time.perf_counter()
        try:
            with _current_span(
                self._tracer, f"{name}.batch", self._batch_context, batch_attributes
            ):
                try:
                    yield
                except BaseException as exc:
                    error = describe(exc)
                    raise
        finally:
            seconds = time.perf_counter() - clock
            timing = StageTiming(started, started + int(seconds * 1e9))
            self._telemetry.instruments.stage_duration.record(seconds, {"stage": name})
            waited, runs = f"claimcoder.stage.{name}.duration_ms", f"claimcoder.stage.{name}.runs"
            for item in items:
                item.timings[name] = timing
                if item.record is None:
                    continue
                key = _record_key(item.record)
                pending = self._attributes.get(key)
                if pending is None:
                    continue
                if waited in pending:  # a run again: a server was away, or the batch split
                    pending[runs] = pending.get(runs, 1) + 1
                    pending[waited] += seconds * 1000
                else:
                    pending[waited] = seconds * 1000
                noted = item.attributes.get(name)
                if noted:
                    pending.update(noted)
                failure = item.failure
                if error is None and failure is not None and failure.stage == name:
                    self._spans[key].set_status(
                        Status(StatusCode.ERROR, f"{name}: {describe(failure.error)}")
                    )

    def published(self, topic: str, label: str) -> None:
        """Count one output sent; the counters are added to once per label at :meth:`close`."""
        self._published[topic, label] = self._published.get((topic, label), 0) + 1

    def close(self) -> None:
        instruments = self._telemetry.instruments
        for (topic, label), count in self._published.items():
            if topic == "coded":
                instruments.coded.add(count, {"status": label})
            else:
                instruments.dead_lettered.add(count, {"reason": label})
        self._published.clear()
        for key, span in self._spans.items():
            pending = self._attributes.get(key)
            if pending:
                span.set_attributes(pending)
            span.end()
        self._spans.clear()
        self._batch.end()


@contextmanager
def _current_span(
    tracer: trace.Tracer,
    name: str,
    context: otel_context.Context,
    attributes: Mapping[str, Any],
) -> Iterator[Span]:
    """A current span that records a failure by its type and place, never by its message (the
    SDK's default records ``str(exc)``, which can quote claim data)."""
    with tracer.start_as_current_span(
        name,
        context=context,
        attributes=dict(attributes),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, describe(exc)))
            raise


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


def service_version() -> str:
    """claimcoder's installed version (``service.version``)."""
    try:
        return version("claimcoder")
    except PackageNotFoundError:
        return "0+unknown"


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
