"""`claimcoder worker` (the stream worker alone), `claimcoder prepare` (a deployment's init
job), `claimcoder run` (the main job) and `claimcoder demo` (sample claims through a running
worker)."""

import json
import subprocess
import sys
import time
from importlib.resources import files
from typing import Annotated

import typer
from kafka.errors import KafkaError
from redis.exceptions import RedisError
from rich.live import Live
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from schemas.coded import ClaimCoded
from schemas.decode import decode_claim
from schemas.exceptions import ClaimcoderError
from worker.cli.common import err, fail, load_settings
from worker.event_ids import coded_event_id
from worker.kafka import BrokerUnavailableError, consumer, create_topics, producer
from worker.localstack import LocalStack, LocalStackError, redacted
from worker.prepare import prepare_reference_data
from worker.runner import run_worker
from worker.settings import Settings


def worker(
    create_topics: Annotated[
        bool, typer.Option(help="Create the three topics first if they are missing.")
    ] = True,
) -> None:
    """Consume claims.raw until SIGTERM: code, validate, group and price each claim, emit
    claims.coded; dead-letter bad events to claims.dlq. Exits with status 2 and a clear error
    when no Kafka broker answers within CLAIMCODER_KAFKA_STARTUP_TIMEOUT_S."""
    _run(load_settings(), ensure_topics=create_topics)


def _run(settings: Settings, *, ensure_topics: bool) -> None:
    try:
        run_worker(settings, ensure_topics=ensure_topics)
    except BrokerUnavailableError as exc:
        fail(str(exc))


def prepare(
    topics: Annotated[
        bool, typer.Option("--topics/--no-topics", help="Also create the three topics.")
    ] = True,
) -> None:
    """Make the servers given by URL ready for workers (a deployment's init job): migrate the
    schema (db upgrade), seed the shipped fiscal years (db seed), load every code-set release
    into PostgreSQL and Redis (codeset load) and create the topics (topics create). Each step is
    a no-op when already done, so it runs before every deployment."""
    _prepare(load_settings(), topics=topics)


def _prepare(settings: Settings, *, topics: bool) -> None:
    """What `prepare` does and `run` does before its worker; a failure is one line naming the
    server and the exception type (messages can quote URLs)."""
    err.print("reference data: migrations, DRG weights and rates, ICD-10-CM code sets ...")
    try:
        prepared = prepare_reference_data(settings)
    except SQLAlchemyError as exc:
        fail(f"PostgreSQL: {type(exc).__name__}")
    except RedisError as exc:
        fail(f"Redis: {type(exc).__name__}")
    except ClaimcoderError as exc:
        fail(str(exc))
    for release in prepared.registry.codeset_releases:
        loaded = "loaded" if release in prepared.releases_loaded else "present"
        warmed = "warmed" if release in prepared.releases_warmed else "present"
        err.print(f"ICD-10-CM {release}: PostgreSQL {loaded}, Redis {warmed}")
    if not topics:
        return
    try:
        created = create_topics(settings.kafka, settings.topics)
    except KafkaError as exc:
        fail(f"Kafka: {type(exc).__name__}")
    for topic, was_created in created.items():
        err.print(f"{topic}: {'created' if was_created else 'exists'}")


def _ready() -> Settings:
    """Local servers (those not given by URL), schema, reference data and topics."""
    stack = LocalStack(load_settings().state_dir)
    try:
        services = stack.up()
    except LocalStackError as exc:
        fail(str(exc))
    for name, service in services.items():
        err.print(f"{name}: {redacted(service.url)} ({service.origin})")
    settings = load_settings()  # again: `up` wrote stack.env, read below the environment
    _prepare(settings, topics=True)
    return settings


def run() -> None:
    """The main job: start the local stack (servers not given by URL), migrate and load the
    reference data when needed, create the topics and run the worker until Ctrl-C. The servers
    keep running afterwards; `claimcoder dev down` stops them."""
    _run(_ready(), ensure_topics=False)


def _samples() -> list[bytes]:
    text = files("worker.samples").joinpath("claims.jsonl").read_bytes()
    return [line for line in text.splitlines() if line.strip()]


def _table(expected: dict[str, str], arrived: dict[str, ClaimCoded]) -> Table:
    table = Table("claim", "FY", "status", "codes", "DRG", "total USD", "review reasons")
    for event_id, claim_id in expected.items():
        event = arrived.get(event_id)
        if event is None:
            table.add_row(claim_id, "", "[dim]waiting[/dim]", "", "", "", "")
            continue
        table.add_row(
            claim_id,
            str(event.fiscal_year or "-"),
            event.status,
            " ".join(c.code for c in event.codes),
            f"{event.drg.code} v{event.drg.version} {event.drg.title or ''}"[:48]
            if event.drg
            else "-",
            str(event.estimate.total) if event.estimate else "-",
            ", ".join(event.review_reasons),
        )
    return table


def demo(
    with_worker: Annotated[
        bool,
        typer.Option("--worker/--no-worker", help="Also run a worker for the demo's duration."),
    ] = False,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for all results.")] = 180,
) -> None:
    """Publish the sample claims shipped with claimcoder and show their coded results as they
    arrive on claims.coded (run `claimcoder run` in another terminal, or pass --worker)."""
    settings = _ready()
    samples = _samples()
    expected = {}
    for line in samples:
        claim = decode_claim(line)
        expected[coded_event_id(claim.claim_id, line)] = claim.claim_id
    child = None
    if with_worker:
        child = subprocess.Popen(
            [sys.executable, "-m", "worker", "worker", "--no-create-topics"],
            stdin=subprocess.DEVNULL,
        )
    client = producer(settings.kafka)
    try:
        for line in samples:
            claim_id = json.loads(line)["claim_id"]
            client.send(settings.topics.raw, key=claim_id.encode(), value=line)
        client.flush()
    finally:
        client.close()
    err.print(f"published {len(samples)} sample claims to {settings.topics.raw}")
    arrived: dict[str, ClaimCoded] = {}
    reader = consumer(
        settings.kafka, settings.topics.coded, group_id=None, auto_offset_reset="earliest"
    )
    deadline = time.monotonic() + timeout
    try:
        with Live(_table(expected, arrived), console=err, refresh_per_second=4) as live:
            while len(arrived) < len(expected) and time.monotonic() < deadline:
                for batch in reader.poll(timeout_ms=500).values():
                    for message in batch:
                        try:
                            event = ClaimCoded.model_validate_json(message.value)
                        except ValueError:
                            continue
                        if event.event_id in expected:
                            arrived[event.event_id] = event
                live.update(_table(expected, arrived))
    finally:
        reader.close()
        if child is not None:
            child.terminate()
            child.wait(60)
    if len(arrived) < len(expected):
        fail(
            f"{len(expected) - len(arrived)} claims did not arrive within {timeout:g} s "
            "(is a worker running? `claimcoder run`, or pass --worker)",
            code=1,
        )
