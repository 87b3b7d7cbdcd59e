"""The Faust application: `claims.raw` in, `claims.coded` and `claims.dlq` out.

One actor per partition (``isolated_partitions``) takes micro-batches of at most
``batch.max_size`` events or ``batch.max_wait_s`` seconds. For each batch: check every event
against the contract (bad ones become dead letters), hand the good ones to the processor, send
every output, wait until the broker acknowledged all of them, then acknowledge the inputs and
commit. A crash can therefore repeat a batch but never lose one; outputs carry stable event ids
so consumers de-duplicate.
"""

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import faust

from worker.intake import Accepted, Rejected, accept
from worker.kafka import faust_credentials
from worker.records import Record, normalize_headers
from worker.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event to publish."""

    topic: Literal["coded", "dlq"]
    key: bytes | None
    value: bytes = field(repr=False)
    headers: tuple[tuple[str, bytes], ...] = ()


class BatchProcessor(Protocol):
    """What turns accepted claims into outputs (the coding pipeline)."""

    async def start(self) -> None: ...

    async def process(self, batch: Sequence[Accepted]) -> list[Outgoing]: ...

    async def stop(self) -> None: ...


class NoOutputProcessor:
    """Accepts valid claims and emits nothing: the worker before the coding stages exist."""

    async def start(self) -> None:
        return None

    async def process(self, batch: Sequence[Accepted]) -> list[Outgoing]:
        return []

    async def stop(self) -> None:
        return None


def dead_letter_output(rejected: Rejected) -> Outgoing:
    headers = tuple((k, v) for k, v in rejected.record.headers if k == "traceparent" and v)
    return Outgoing("dlq", rejected.record.key, rejected.letter.model_dump_json().encode(), headers)


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


async def handle_batch(records: Sequence[Record], processor: BatchProcessor) -> list[Outgoing]:
    """Contract check, then the processor; dead letters keep their input order."""
    accepted: list[Accepted] = []
    outputs: list[Outgoing] = []
    for record in records:
        outcome = accept(record)
        if isinstance(outcome, Rejected):
            log.warning(
                "dead-lettered %s[%d]@%d: %s",
                record.topic,
                record.partition,
                record.offset,
                outcome.letter.error.type,
            )
            outputs.append(dead_letter_output(outcome))
        else:
            accepted.append(outcome)
    if accepted:
        outputs.extend(await processor.process(accepted))
    return outputs


def create_app(settings: Settings, processor: BatchProcessor) -> faust.App:
    kafka = settings.kafka
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
    )
    topic_kw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    raw = app.topic(settings.topics.raw, allow_empty=True, **topic_kw)
    targets = {
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
            outputs = await handle_batch([record_of(e) for e in events], processor)
            pending = [
                await targets[o.topic].send(key=o.key, value=o.value, headers=list(o.headers))
                for o in outputs
            ]
            await asyncio.gather(*pending)  # the broker acknowledged every output
            for event in events:
                await stream.ack(event)
            await app.consumer.commit()

    # Sent once the consumer has stopped. mode types handlers so strictly that no signature fits.
    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    def stop_processor(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> Awaitable[None]:
        return processor.stop()

    return app
