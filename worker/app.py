"""The Faust application: `claims.raw` in, `claims.coded` and `claims.dlq` out.

One actor per partition (``isolated_partitions``) takes micro-batches of at most
``batch.max_size`` events or ``batch.max_wait_s`` seconds. For each batch: check every event
against the contract (bad ones become dead letters), hand the good ones to the processor, send
every output, wait until the broker acknowledged all of them, then acknowledge the inputs and
commit. A crash can therefore repeat a batch but never lose one; outputs carry stable event ids
so consumers de-duplicate.

When a server the processor needs is down (:func:`worker.errors.is_transient`), the batch is
retried with a growing pause until it is back: nothing is acknowledged meanwhile, so the partition
waits instead of losing claims. Any other failure of a whole batch is retried a few times, then
each record is processed alone and what still fails is dead-lettered with the stage and error
type, so one poisonous event never stalls its partition.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import faust
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from worker.errors import describe, is_transient
from worker.intake import Accepted, Rejected, accept, dead_letter
from worker.kafka import faust_credentials
from worker.records import Record, normalize_headers
from worker.settings import Settings
from worker.telemetry import (
    BatchTrace,
    claims_coded,
    claims_dead_lettered,
    replace_headers,
    tracer,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event to publish."""

    topic: Literal["coded", "dlq"]
    key: bytes | None
    value: bytes = field(repr=False)
    headers: tuple[tuple[str, bytes], ...] = ()
    source: Record | None = None  # the input it answers: its trace is the output's parent
    label: str = ""  # status or dead-letter reason, for metrics


class BatchProcessor(Protocol):
    """What turns accepted claims into outputs (the coding pipeline)."""

    async def start(self) -> None: ...

    async def process(self, batch: Sequence[Accepted], trace: BatchTrace) -> list[Outgoing]: ...

    async def stop(self) -> None: ...


class NoOutputProcessor:
    """Accepts valid claims and emits nothing: the worker before the coding stages exist."""

    async def start(self) -> None:
        return None

    async def process(self, batch: Sequence[Accepted], trace: BatchTrace) -> list[Outgoing]:
        return []

    async def stop(self) -> None:
        return None


def dead_letter_output(rejected: Rejected) -> Outgoing:
    return Outgoing(
        "dlq",
        rejected.record.key,
        rejected.letter.model_dump_json().encode(),
        source=rejected.record,
        label=rejected.letter.error.type,
    )


def record_of(event: Any) -> Record:
    message = event.message
    timestamp = getattr(message, "timestamp", None)
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=normalize_headers(message.headers),
        timestamp_ms=int(timestamp * 1000) if timestamp else None,
    )


async def handle_batch(
    records: Sequence[Record], processor: BatchProcessor, trace: BatchTrace
) -> list[Outgoing]:
    """Contract check, then the processor; dead letters keep their input order."""
    accepted: list[Accepted] = []
    outputs: list[Outgoing] = []
    for record in records:
        with trace.stage(record, "validate_event") as span:
            outcome = accept(record)
            if isinstance(outcome, Rejected):
                span.set_attribute("claimcoder.dead_letter.reason", outcome.letter.error.type)
        if isinstance(outcome, Rejected):
            log.warning(
                "dead-lettered %s[%d]@%d: %s",
                record.topic,
                record.partition,
                record.offset,
                outcome.letter.error.type,
            )
            trace.fail(record, f"validate_event: {outcome.letter.error.type}")
            outputs.append(dead_letter_output(outcome))
        else:
            accepted.append(outcome)
    if accepted:
        outputs.extend(await processor.process(accepted, trace))
    return outputs


# Pauses between attempts while a server is down, then steady at the last value.
TRANSIENT_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
FAILED_BATCH_ATTEMPTS = 3


async def handle_until_done(
    records: Sequence[Record],
    processor: BatchProcessor,
    trace: BatchTrace,
    stopping: Callable[[], bool] = lambda: False,
) -> list[Outgoing]:
    """:func:`handle_batch`, retried while servers are down; a batch that keeps failing for
    another reason is split into single records, and a record that fails alone is dead-lettered."""
    transient = failed = 0
    while True:
        try:
            return await handle_batch(records, processor, trace)
        except Exception as exc:
            if is_transient(exc):
                if stopping():  # shutting down: leave the batch unacknowledged for redelivery
                    raise asyncio.CancelledError from exc
                pause = TRANSIENT_BACKOFF_S[min(transient, len(TRANSIENT_BACKOFF_S) - 1)]
                transient += 1
                log.warning(
                    "batch of %d waits %.1f s for a server: %s",
                    len(records),
                    pause,
                    type(exc).__name__,
                )
                await asyncio.sleep(pause)
                continue
            failed += 1
            log.error("batch of %d failed (attempt %d): %s", len(records), failed, describe(exc))
            if failed >= FAILED_BATCH_ATTEMPTS:
                break
    if len(records) == 1:
        record = records[0]
        letter = dead_letter(
            record,
            stage="pipeline",
            kind="internal_error",
            message="processing failed repeatedly; see the worker log for the error type",
        )
        trace.fail(record, "pipeline: internal_error")
        return [
            Outgoing(
                "dlq",
                record.key,
                letter.model_dump_json().encode(),
                source=record,
                label="internal_error",
            )
        ]
    outputs: list[Outgoing] = []
    for record in records:
        outputs.extend(await handle_until_done([record], processor, trace, stopping))
    return outputs


async def publish(targets: dict[str, Any], outputs: Sequence[Outgoing], trace: BatchTrace) -> None:
    """Send every output with a PRODUCER span whose context goes into its headers; return when
    the broker acknowledged all of them."""
    pending = []
    for output in outputs:
        topic = targets[output.topic]
        parent = trace.context(output.source) if output.source else otel_context.Context()
        span = tracer.start_span(
            f"{topic.get_topic_name()} publish",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.operation.name": "publish",
                "messaging.destination.name": topic.get_topic_name(),
            },
        )
        headers = replace_headers(output.headers, trace_context(span, parent))
        future = await topic.send(key=output.key, value=output.value, headers=headers)
        future.add_done_callback(lambda _f, span=span: span.end())
        pending.append(future)
    await asyncio.gather(*pending)
    for output in outputs:
        if output.topic == "coded":
            claims_coded.add(1, {"status": output.label})
        else:
            claims_dead_lettered.add(1, {"reason": output.label})


def trace_context(span: Any, parent: otel_context.Context) -> otel_context.Context:
    return trace.set_span_in_context(span, parent)


def create_app(settings: Settings, processor: BatchProcessor) -> faust.App:
    kafka = settings.kafka
    # Faust writes its data directory ("{id}-data") into the working directory by default, and
    # does not create parents of one given
    faust_dir = settings.state_dir / "faust"
    faust_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        kafka.consumer_group,
        broker=[f"kafka://{server}" for server in kafka.servers],
        broker_credentials=faust_credentials(kafka),
        broker_client_id=kafka.client_id,
        broker_session_timeout=kafka.session_timeout_s,
        broker_heartbeat_interval=kafka.heartbeat_interval_s,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        key_serializer="raw",
        value_serializer="raw",
        # No faust-managed topics (leader election, changelogs): topics are created explicitly,
        # and no web server (it would bind 0.0.0.0:6066 and clash with a second worker).
        topic_disable_leader=True,
        topic_allow_declare=False,
        web_enabled=False,
        store="memory://",
        datadir=str(faust_dir / "{conf.name}-data"),
    )
    topic_kw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    raw = app.topic(settings.topics.raw, allow_empty=True, **topic_kw)
    targets: dict[str, Any] = {
        "coded": app.topic(settings.topics.coded, **topic_kw),
        "dlq": app.topic(settings.topics.dlq, **topic_kw),
    }

    started = asyncio.Event()

    @app.task  # type: ignore[untyped-decorator]  # faust's task decorator has no annotations
    async def start_processor() -> None:
        await processor.start()  # loads models or engines: can take a while
        started.set()

    @app.agent(raw, name="claims-raw", isolated_partitions=True)
    async def claims_raw(stream: Any) -> None:
        await started.wait()
        async for events in stream.take_events(
            settings.batch.max_size, within=settings.batch.max_wait_s
        ):
            records = [record_of(e) for e in events]
            batch_trace = BatchTrace(records, kafka.consumer_group)
            try:
                outputs = await handle_until_done(
                    records, processor, batch_trace, lambda: bool(app.should_stop)
                )
                await publish(targets, outputs, batch_trace)  # every output acknowledged
            finally:
                batch_trace.close()
            for event in events:
                await stream.ack(event)
            await app.consumer.commit()

    # Sent once the consumer has stopped. mode types handlers so strictly that no signature fits.
    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    def stop_processor(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> Awaitable[None]:
        return processor.stop()

    return app
