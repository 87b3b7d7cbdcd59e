"""Baseline workers of `claimcoder bench`: they copy claims.raw to claims.coded and do nothing else.

    python -m worker.benchmark.passthrough raw|faust     # settings from CLAIMCODER_* as the worker

- ``raw``: an aiokafka consumer in the configured group takes up to ``batch.max_size`` records
  (waiting at most ``batch.max_wait_s``), sends each to claims.coded, awaits every
  acknowledgement, then commits: the floor any Kafka worker in Python pays.
- ``faust``: a Faust agent with the worker's app options, batching and commit discipline
  (``worker/app.py``: ``take_events(max_size, within=max_wait_s)``, send, await the acks, ack,
  commit), without the pipeline and its telemetry: the floor of our design on Faust.

Both run until SIGTERM or SIGINT.
"""

import asyncio
import contextlib
import signal
import sys
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from worker.app import RAW_TOPIC, faust_app
from worker.benchmark.clients import bench_client_options
from worker.settings import Settings


async def run_raw(settings: Settings) -> None:
    """The aiokafka pass-through until a signal."""
    options = bench_client_options(settings.kafka)
    consumer = AIOKafkaConsumer(
        settings.topics.raw,
        **options,
        group_id=settings.kafka.consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=int(settings.kafka.session_timeout_s * 1000),
        heartbeat_interval_ms=int(settings.kafka.heartbeat_interval_s * 1000),
    )
    producer = AIOKafkaProducer(
        **options,
        acks="all",
        linger_ms=settings.kafka.linger_ms,
        max_batch_size=settings.kafka.max_batch_bytes,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await producer.start()
    await consumer.start()
    wait_ms = int(settings.batch.max_wait_s * 1000)
    try:
        while not stop.is_set():
            batches = await consumer.getmany(
                timeout_ms=wait_ms, max_records=settings.batch.max_size
            )
            pending = []
            for records in batches.values():
                for record in records:
                    pending.append(
                        await producer.send(
                            settings.topics.coded,
                            value=record.value,
                            key=record.key,
                            headers=list(record.headers),
                        )
                    )
            if pending:
                await asyncio.gather(*pending)
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def passthrough_app(settings: Settings) -> faust.App:
    """The Faust pass-through: ``worker/app.py``'s app and agent loop, no pipeline."""
    app = faust_app(settings)
    topic_kw = RAW_TOPIC
    raw = app.topic(settings.topics.raw, allow_empty=True, **topic_kw)
    coded = app.topic(settings.topics.coded, **topic_kw)

    @app.agent(raw, name="claims-raw", isolated_partitions=True)
    async def passthrough(stream: Any) -> None:
        async for events in stream.take_events(
            settings.batch.max_size, within=settings.batch.max_wait_s
        ):
            pending = []
            for event in events:
                message = event.message
                pending.append(
                    await coded.send(key=message.key, value=message.value, headers=message.headers)
                )
            await asyncio.gather(*pending)
            for event in events:
                await stream.ack(event)
            await app.consumer.commit()

    return app


def main(argv: list[str]) -> None:
    if argv[1:] not in (["raw"], ["faust"]):
        raise SystemExit("usage: python -m worker.benchmark.passthrough raw|faust")
    settings = Settings()
    if argv[1] == "raw":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_raw(settings))
        return
    faust.Worker(
        passthrough_app(settings), loglevel="WARNING", quiet=True
    ).execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv)
