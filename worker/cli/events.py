"""`claimcoder publish FILE.jsonl` and `claimcoder tail TOPIC`."""

import base64
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from kafka import KafkaConsumer

from schemas.decode import decode_claim
from schemas.exceptions import ContractError
from worker.cli.common import err, fail, load_settings, out
from worker.kafka import consumer, producer
from worker.settings import Settings


def _topic_name(settings: Settings, topic: str) -> str:
    """Accept the aliases raw, coded and dlq for the configured topic names."""
    aliases = {
        "raw": settings.topics.raw,
        "coded": settings.topics.coded,
        "dlq": settings.topics.dlq,
    }
    return aliases.get(topic, topic)


def publish(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="One claim per line.")],
    dry_run: Annotated[bool, typer.Option(help="Validate only; publish nothing.")] = False,
) -> None:
    """Validate every line against the claims.raw contract, then publish the valid ones keyed by
    claim_id. Bad lines are reported by number and not published (exit code 1)."""
    settings = load_settings()
    good: list[tuple[str, bytes]] = []
    bad = 0
    with file.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                claim = decode_claim(line)
            except ContractError as exc:
                bad += 1
                err.print(f"line {number}: {exc.kind}: {exc.message}", markup=False)
                continue
            good.append((claim.claim_id, line))
    if not dry_run and good:
        client = producer(settings.kafka)
        try:
            futures = [
                client.send(settings.topics.raw, key=claim_id.encode(), value=value)
                for claim_id, value in good
            ]
            client.flush()
            for future in futures:
                future.get(timeout=30)  # raises if the broker refused a record
        finally:
            client.close()
    verb = "valid" if dry_run else f"published to {settings.topics.raw}"
    err.print(f"{len(good)} {verb}, {bad} rejected")
    if bad:
        raise typer.Exit(1)


def _render(message: Any, meta: bool) -> str:
    value: Any
    try:
        value = json.loads(message.value) if message.value is not None else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        value = {"value_base64": base64.b64encode(message.value).decode()}
    if not meta:
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(
        {
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
            "key": message.key.decode("utf-8", "replace") if message.key is not None else None,
            "headers": {k: (v or b"").decode("utf-8", "replace") for k, v in message.headers},
            "value": value,
        },
        ensure_ascii=False,
    )


def tail(
    topic: Annotated[str, typer.Argument(help="Topic name, or raw, coded or dlq.")],
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest event.")] = True,
    max_events: Annotated[int | None, typer.Option(min=1, help="Stop after this many.")] = None,
    idle_timeout: Annotated[
        float | None, typer.Option(min=0.1, help="Stop after this many seconds without events.")
    ] = None,
    meta: Annotated[
        bool, typer.Option(help="Wrap each event with topic, offset, key, headers.")
    ] = False,
) -> None:
    """Print the events of a topic as JSON lines."""
    settings = load_settings()
    name = _topic_name(settings, topic)
    client: KafkaConsumer = consumer(
        settings.kafka,
        name,
        group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
        consumer_timeout_ms=int(idle_timeout * 1000) if idle_timeout else float("inf"),
    )
    seen = 0
    try:
        for message in client:
            out.print(_render(message, meta), markup=False)
            seen += 1
            if max_events is not None and seen >= max_events:
                break
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    if seen == 0 and idle_timeout is not None:
        fail(f"no events on {name} within {idle_timeout:g} s", code=1)
