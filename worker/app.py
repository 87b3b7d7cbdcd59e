"""The Faust application: `claims.raw` in, `claims.coded` and `claims.dlq` out. Glue only: what
happens to a batch is ``worker/pipeline.py``'s.

One actor per partition (``isolated_partitions``) takes micro-batches of at most
``batch.max_size`` events or ``batch.max_wait_s`` seconds. For each batch: the pipeline gives
one output per record; every output is sent, and once the broker acknowledged all of them the
inputs are acknowledged and committed. A crash can therefore repeat a batch but never lose one;
outputs carry stable event ids so consumers de-duplicate.

A batch that is not done, because it failed outside the pipeline's retry policy (the pipeline's
process died, a bug) or because the worker is stopping while it waits for a server, ends the
worker at once, exit status ``EXIT_BATCH_FAILED``, without acknowledging it: faust's
``take_events`` acknowledges a batch whose loop body raised or was cancelled (faust/streams.py,
the ``finally`` of ``take_events``) and the stop that follows commits it, which would lose the
batch. Ended at once, nothing is committed and the batch is taken again after the restart.
"""

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Protocol

import faust

from worker.errors import describe
from worker.heartbeat import HEARTBEAT_INTERVAL_S, beat, heartbeat_path
from worker.kafka import faust_credentials
from worker.outputs import Outgoing
from worker.records import Record, normalize_headers
from worker.settings import Settings

log = logging.getLogger(__name__)

#: Exit status of a worker that ended at once because a batch failed (EX_SOFTWARE).
EXIT_BATCH_FAILED: Final = 70


def exit_at_once(why: str) -> None:
    """Log ``why`` and end the process now: no commit, no acknowledgement, no cleanup (what
    was not committed is taken again after the restart; a pipeline child reads the end of its
    socket and stops). Never returns."""
    log.critical("%s: exiting at once (status %d), nothing committed", why, EXIT_BATCH_FAILED)
    logging.shutdown()
    os._exit(EXIT_BATCH_FAILED)


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


class Processed(Protocol):
    """A processed batch: one output per record, in input order, headers ready."""

    outputs: list[Outgoing]

    async def finish(self, published: bool) -> None: ...


class Batches(Protocol):
    """What the agent needs of the pipeline: ``ClaimPipeline`` itself (in process) or
    ``PipelineProcess`` (the same pipeline in a child process, ``worker/pipeline_process.py``)."""

    async def start(self, stopping: Callable[[], bool]) -> None: ...

    async def process(
        self, records: Sequence[Record], stopping: Callable[[], bool]
    ) -> Processed: ...

    async def stop(self) -> None: ...

    async def responsive(self) -> bool: ...


async def publish(targets: dict[str, Any], outputs: Sequence[Outgoing]) -> None:
    """Send every output; return when the broker acknowledged all of them."""
    pending = []
    for output in outputs:
        future = await targets[output.topic].send(
            key=output.key, value=output.value, headers=list(output.headers)
        )
        pending.append(future)
    await asyncio.gather(*pending)


#: Options of every topic the worker reads or writes: raw bytes in and out, (de)coding is ours.
RAW_TOPIC: Final[dict[str, Any]] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def faust_app(settings: Settings) -> faust.App:
    """The worker's Faust app, without agents: broker, group, security and the options below
    (shared by ``claimcoder bench``'s Faust baseline, so both measure the same client)."""
    kafka = settings.kafka
    # Faust writes its data directory ("{id}-data") into the working directory by default, and
    # does not create parents of one given
    faust_dir = settings.state_dir / "faust"
    faust_dir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        kafka.consumer_group,
        broker=[f"kafka://{server}" for server in kafka.servers],
        broker_credentials=faust_credentials(kafka),
        broker_client_id=kafka.client_id,
        broker_session_timeout=kafka.session_timeout_s,
        broker_heartbeat_interval=kafka.heartbeat_interval_s,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=kafka.linger_ms / 1000,
        producer_max_batch_size=kafka.max_batch_bytes,
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


def create_app(settings: Settings, pipeline: Batches) -> faust.App:
    app = faust_app(settings)
    raw = app.topic(settings.topics.raw, allow_empty=True, **RAW_TOPIC)
    targets: dict[str, Any] = {
        "coded": app.topic(settings.topics.coded, **RAW_TOPIC),
        "dlq": app.topic(settings.topics.dlq, **RAW_TOPIC),
    }

    started = asyncio.Event()

    def stopping() -> bool:
        return bool(app.should_stop)

    @app.task  # type: ignore[untyped-decorator]  # faust's task decorator has no annotations
    async def start_pipeline() -> None:
        await pipeline.start(stopping)  # loads models or engines: can take a while
        started.set()
        await beat(heartbeat_path(settings))

    @app.timer(interval=HEARTBEAT_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def heartbeat() -> None:
        # For `claimcoder health --worker`: the loop runs, the pipeline has started and (in
        # its own process) answers.
        if started.is_set() and await pipeline.responsive():
            await beat(heartbeat_path(settings))

    @app.agent(raw, name="claims-raw", isolated_partitions=True)
    async def claims_raw(stream: Any) -> None:
        try:
            await started.wait()
        except asyncio.CancelledError:
            # Partitions revoked while the pipeline starts (a second worker joined): faust
            # forgets an isolated actor's partitions when its iteration stops, which this one
            # never began, and the next assignment then crashes the worker (conductor:
            # "active_partitions.issubset(assigned)", faust-streaming #529). Stop it here.
            stream.channel.on_stop_iteration()
            raise
        async for events in stream.take_events(
            settings.batch.max_size, within=settings.batch.max_wait_s
        ):
            try:
                batch = await pipeline.process([record_of(e) for e in events], stopping)
                published = False
                try:
                    await publish(targets, batch.outputs)  # every output acknowledged
                    published = True
                finally:
                    await batch.finish(published)
            except (Exception, asyncio.CancelledError) as exc:  # see the module docstring
                exit_at_once(f"a batch of {len(events)} records was not done ({describe(exc)})")
            for event in events:
                await stream.ack(event)
            await app.consumer.commit()

    # Sent once the consumer has stopped. mode types handlers so strictly that no signature fits.
    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    def stop_pipeline(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> Awaitable[None]:
        return pipeline.stop()

    return app
