"""Dead-letter replay (`claimcoder dlq replay`): letters of ``claims.dlq`` whose cause is fixed
go back to ``claims.raw`` with their original key, value and headers, byte for byte.

**What comes back.** A dead letter (``schemas/dlq.py``, built by ``worker.outputs.dead_letter``)
carries the original record's key, value and every header value base64 inside its JSON, and a
null key, value or header value as ``null``. So the replayed record has exactly the original
bytes, invalid UTF-8 and null header values included; aiokafka writes it because kafka-python's
producer refuses a null header value. The record gets a new timestamp (the producer's clock): an
old original timestamp could let a time-based retention delete it before the worker reads it.
It goes to the partition the original came from (``partition`` in the letter) while the topic
still has it, keyed as it was: whatever partitioner the original producer used, the claim stays
with the other records of its key. A letter of another topic, or of a partition the topic has
no more, is placed by the default partitioner from its key.

**Which letters.** Those of the dlq's partitions (or ``--partition``) from their first offset
(or ``--from-offset``) up to the end offsets read when the run starts (or ``--to-offset``,
inclusive): the run is bounded, and letters that arrive meanwhile (a replayed claim that fails
again) wait for the next run. Of those, the ones the filter selects (``ReplayFilter``) and that
no earlier run replayed.

**The record** is a PostgreSQL table (``dlq_replays``, migration 0004), one row per letter keyed
by dlq topic, partition and offset, not a committed consumer-group offset: a run filtered by
reason must leave the other letters for a later run, and one offset per partition would hide
them.

**At least once.** Each fetched batch is published, every record acknowledged by the broker
(acks=all), and only then recorded. A crash between the two replays those letters again on the
next run; that is harmless, because the worker derives a claim's ``event_id`` from its claim id
and bytes (``worker/event_ids.py``) and answers a claim it has stored with the same event
(``worker/store.py``), so consumers de-duplicate. The other order could record a letter that
was never published: a claim lost. Two runs on the same dlq topic and PostgreSQL schema at once
would replay the same letters twice; a PostgreSQL advisory lock makes the second one fail.

Nothing here logs or prints a narrative: a letter is shown by claim id (its original key),
reason, stage, dlq partition and offset, and time only (:meth:`Letter.shown`).
"""

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from drg.tables import dlq_replays
from schemas.decode import describe_validation_error
from schemas.dlq import DeadLetter
from schemas.exceptions import ClaimcoderError
from worker.kafka import aiokafka_options
from worker.resources import async_engine
from worker.settings import Settings

#: Seconds without a record while a partition is short of its end offset: the run fails.
IDLE_LIMIT_S: Final = 30.0
#: Letters fetched, published and recorded at a time.
BATCH_RECORDS: Final = 500


class ReplayError(ClaimcoderError):
    """Fatal for the run: a broker that does not answer, a missing topic, partition or table, a
    filter that selects nothing by construction, a record the broker refused, another run at
    work. Letters recorded before it stay recorded; the rest wait for the next run."""


@dataclass(frozen=True, slots=True)
class ReplayFilter:
    """Which dead letters a run replays; empty sets and None select every letter.

    ``reasons`` match ``error.type`` (``internal_error``, ``bad_json``, ...), ``stages``
    ``error.stage`` (``drg.group``, ``validate_event``, ...). ``since`` (inclusive) and ``until``
    (exclusive) compare with the letter's ``failed_at`` and must carry a time zone.
    ``from_offset`` and ``to_offset`` (both inclusive) bound the dlq offsets read in every
    partition read: all of them, or ``partition`` alone. Raises ReplayError when they
    contradict each other."""

    reasons: frozenset[str] = frozenset()
    stages: frozenset[str] = frozenset()
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    from_offset: int | None = None
    to_offset: int | None = None
    partition: int | None = None

    def __post_init__(self) -> None:
        for name, moment in (("since", self.since), ("until", self.until)):
            if moment is not None and moment.utcoffset() is None:
                raise ReplayError(f"--{name} needs a time zone")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ReplayError("--since must be before --until")
        for name, number in (
            ("from-offset", self.from_offset),
            ("to-offset", self.to_offset),
            ("partition", self.partition),
        ):
            if number is not None and number < 0:
                raise ReplayError(f"--{name} must be 0 or more")
        if (
            self.from_offset is not None
            and self.to_offset is not None
            and self.from_offset > self.to_offset
        ):
            raise ReplayError("--from-offset must not be after --to-offset")

    def selects(self, letter: DeadLetter) -> bool:
        error = letter.error
        return (
            (not self.reasons or error.type in self.reasons)
            and (not self.stages or error.stage in self.stages)
            and (self.since is None or letter.failed_at >= self.since)
            and (self.until is None or letter.failed_at < self.until)
        )


@dataclass(frozen=True, slots=True)
class Letter:
    """A dead letter read from the dlq, with the original record decoded. The original value is
    patient data: it is in no repr and not in :meth:`shown`."""

    partition: int  # in the dlq topic
    offset: int
    letter: DeadLetter = field(repr=False)
    key: bytes | None = field(repr=False)
    value: bytes | None = field(repr=False)
    headers: tuple[tuple[str, bytes | None], ...] = field(repr=False)

    def shown(self) -> dict[str, Any]:
        """What may be printed: ``claim_id`` (the original key as text, undecodable bytes
        escaped; the contract keys claims by claim_id), ``reason``, ``stage``, the dlq
        ``partition`` and ``offset``, ``failed_at`` (ISO 8601)."""
        return {
            "claim_id": None if self.key is None else self.key.decode("utf-8", "backslashreplace"),
            "reason": self.letter.error.type,
            "stage": self.letter.error.stage,
            "partition": self.partition,
            "offset": self.offset,
            "failed_at": self.letter.failed_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A dlq record that is no dead letter of ours; ``why`` names fields, never values."""

    partition: int
    offset: int
    why: str


@dataclass(slots=True)
class ReplaySummary:
    """Counts over the letters read (dlq offsets outside the range are not read). In a dry
    run ``replayed`` counts the letters that would be replayed."""

    dry_run: bool
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition: [start, end)
    replayed: int = 0
    already_replayed: int = 0
    filtered_out: int = 0
    unreadable: list[Unreadable] = field(default_factory=list)
    # every error.type and error.stage of the letters read, selected or not
    reasons_read: set[str] = field(default_factory=set)
    stages_read: set[str] = field(default_factory=set)


def _unbase64(data: str | None) -> bytes | None:
    return None if data is None else base64.b64decode(data, validate=True)


def read_letter(partition: int, offset: int, value: bytes | None) -> Letter | Unreadable:
    """The letter at ``partition``/``offset`` of the dlq, or why it is unreadable."""
    if value is None:
        return Unreadable(partition, offset, "record has no value")
    try:
        letter = DeadLetter.model_validate_json(value)
    except ValidationError as exc:
        return Unreadable(
            partition, offset, f"not a claims.dlq letter: {describe_validation_error(exc)}"
        )
    try:
        key, original = _unbase64(letter.key), _unbase64(letter.value)
        headers = tuple((h.key, _unbase64(h.value)) for h in letter.headers)
    except (binascii.Error, ValueError):
        return Unreadable(partition, offset, "key, value or a header value is not base64")
    return Letter(partition, offset, letter, key, original, headers)


async def replay(
    settings: Settings,
    selection: ReplayFilter,
    *,
    dry_run: bool = False,
    on_letter: Callable[[Letter], None] = lambda _letter: None,
    on_unreadable: Callable[[Unreadable], None] = lambda _record: None,
) -> ReplaySummary:
    """Replay the selected letters of ``settings.topics.dlq`` to ``settings.topics.raw`` (see
    the module docstring); ``on_letter`` sees each letter replayed (or that would be, in a dry
    run, which publishes and records nothing), ``on_unreadable`` each record that is no
    letter. Raises ReplayError; SQLAlchemyError when PostgreSQL fails."""
    summary = ReplaySummary(dry_run)
    engine = async_engine(settings.database)
    try:
        async with engine.connect() as db:
            await _check_table(db)
            if not dry_run:
                await _lock(db, settings.topics.dlq)
            try:
                await _run(settings, selection, db, summary, on_letter, on_unreadable)
            except KafkaError as exc:  # the broker went away or refused a request mid-run
                raise ReplayError(
                    f"Kafka at {settings.kafka.bootstrap_servers} failed while reading "
                    f"{settings.topics.dlq} ({type(exc).__name__}); letters recorded so far "
                    "stay recorded, a later run goes on from there"
                ) from exc
            finally:
                if not dry_run:
                    # closing the connection releases the lock too, should PostgreSQL be away
                    with contextlib.suppress(SQLAlchemyError):
                        await _unlock(db, settings.topics.dlq)
    finally:
        await engine.dispose()
    return summary


async def _run(
    settings: Settings,
    selection: ReplayFilter,
    db: AsyncConnection,
    summary: ReplaySummary,
    on_letter: Callable[[Letter], None],
    on_unreadable: Callable[[Unreadable], None],
) -> None:
    topics = settings.topics
    options = aiokafka_options(settings.kafka)
    consumer = AIOKafkaConsumer(**options, group_id=None, enable_auto_commit=False)
    await _start(consumer, settings)
    producer = None
    try:
        targets, ranges = await _ranges(consumer, settings, selection)
        summary.ranges = {tp.partition: bounds for tp, bounds in ranges.items()}
        if not summary.dry_run and ranges:
            producer = AIOKafkaProducer(**options, acks="all")
            await _start(producer, settings)
        async for partition, records in _fetch(consumer, ranges):
            todo: list[Letter] = []
            for record in records:
                read = read_letter(partition, record.offset, record.value)
                if isinstance(read, Unreadable):
                    summary.unreadable.append(read)
                    on_unreadable(read)
                else:
                    summary.reasons_read.add(read.letter.error.type)
                    summary.stages_read.add(read.letter.error.stage)
                    if selection.selects(read.letter):
                        todo.append(read)
                    else:
                        summary.filtered_out += 1
            done = await _replayed(db, topics.dlq, partition, [t.offset for t in todo])
            summary.already_replayed += sum(1 for t in todo if t.offset in done)
            todo = [t for t in todo if t.offset not in done]
            if producer is not None and todo:
                await _publish(producer, topics.raw, targets, todo)
                await _record(db, topics.dlq, topics.raw, todo)  # after every acknowledgement
            for letter in todo:
                on_letter(letter)
            summary.replayed += len(todo)
    finally:
        if producer is not None:
            await producer.stop()
        await consumer.stop()


async def _start(client: Any, settings: Settings) -> None:
    try:
        await client.start()
    except KafkaError as exc:
        await client.stop()
        raise ReplayError(
            f"Kafka at {settings.kafka.bootstrap_servers} does not answer ({type(exc).__name__})"
        ) from exc


async def _ranges(
    consumer: Any, settings: Settings, selection: ReplayFilter
) -> tuple[frozenset[int], dict[TopicPartition, tuple[int, int]]]:
    """The partitions of the raw topic, and [start, end) of each dlq partition to read, the
    consumer assigned and positioned."""
    topics = settings.topics
    existing = await consumer.topics()
    for name in (topics.dlq, topics.raw):
        if name not in existing:
            raise ReplayError(f"topic {name} does not exist on {settings.kafka.bootstrap_servers}")
    # read before assign(), which narrows the consumer's metadata to the dlq topic
    targets = frozenset(consumer.partitions_for_topic(topics.raw) or ())
    partitions = sorted(consumer.partitions_for_topic(topics.dlq) or ())
    if selection.partition is not None:
        if selection.partition not in partitions:
            raise ReplayError(
                f"topic {topics.dlq} has no partition {selection.partition} "
                f"(it has {len(partitions)})"
            )
        partitions = [selection.partition]
    tps = [TopicPartition(topics.dlq, p) for p in partitions]
    consumer.assign(tps)
    first = await consumer.beginning_offsets(tps)
    end = await consumer.end_offsets(tps)  # read once: the run stops there
    ranges = {}
    for tp in tps:
        start = max(first[tp], selection.from_offset or 0)
        stop = end[tp] if selection.to_offset is None else min(end[tp], selection.to_offset + 1)
        if start < stop:
            ranges[tp] = (start, stop)
            consumer.seek(tp, start)
    return targets, ranges


async def _fetch(
    consumer: Any, ranges: dict[TopicPartition, tuple[int, int]]
) -> AsyncIterator[tuple[int, list[Any]]]:
    """Batches of records inside ``ranges``, per partition, until every partition reached its
    end; ReplayError after IDLE_LIMIT_S without a record."""
    pending = dict(ranges)
    loop = asyncio.get_running_loop()
    last_record = loop.time()
    while pending:
        fetched = await consumer.getmany(*pending, timeout_ms=1000, max_records=BATCH_RECORDS)
        for tp, records in fetched.items():
            inside = [r for r in records if r.offset < pending[tp][1]]
            if inside:
                last_record = loop.time()
                yield tp.partition, inside
        for tp in list(pending):
            if await consumer.position(tp) >= pending[tp][1]:
                del pending[tp]
        if pending and loop.time() - last_record > IDLE_LIMIT_S:
            where = []
            for tp, (_, end) in pending.items():
                position = await consumer.position(tp)
                where.append(f"partition {tp.partition} at offset {position} of {end}")
            raise ReplayError(
                f"the broker sent no letter for {IDLE_LIMIT_S:.0f} s ({', '.join(where)})"
            )


async def _publish(
    producer: Any, topic: str, partitions: frozenset[int], letters: Sequence[Letter]
) -> None:
    try:
        futures = [
            await producer.send(
                topic,
                value=t.value,
                key=t.key,
                headers=list(t.headers),
                partition=_partition(t.letter, topic, partitions),
            )
            for t in letters
        ]
        await asyncio.gather(*futures)
    except KafkaError as exc:
        raise ReplayError(
            f"Kafka did not take a replayed record ({type(exc).__name__}); the letters of this "
            "batch are not recorded, a later run replays them"
        ) from exc


def _partition(letter: DeadLetter, topic: str, partitions: frozenset[int]) -> int | None:
    """The original's partition while ``topic`` has it; None: the key's (default partitioner)."""
    return letter.partition if letter.topic == topic and letter.partition in partitions else None


async def _check_table(db: AsyncConnection) -> None:
    if await db.scalar(text("SELECT to_regclass('dlq_replays')")) is None:
        raise ReplayError("PostgreSQL has no dlq_replays table: run `claimcoder db upgrade`")


_LOCK_KEY = "hashtext('claimcoder dlq replay ' || coalesce(current_schema(), '') || ' ' || :topic)"


async def _lock(db: AsyncConnection, topic: str) -> None:
    locked = await db.scalar(text(f"SELECT pg_try_advisory_lock({_LOCK_KEY})"), {"topic": topic})
    await db.commit()
    if not locked:
        raise ReplayError(f"another `claimcoder dlq replay` of {topic} is running")


async def _unlock(db: AsyncConnection, topic: str) -> None:
    await db.execute(text(f"SELECT pg_advisory_unlock({_LOCK_KEY})"), {"topic": topic})
    await db.commit()


async def _replayed(
    db: AsyncConnection, topic: str, partition: int, offsets: Sequence[int]
) -> set[int]:
    if not offsets:
        return set()
    result = await db.execute(
        select(dlq_replays.c.dlq_offset).where(
            dlq_replays.c.dlq_topic == topic,
            dlq_replays.c.dlq_partition == partition,
            dlq_replays.c.dlq_offset.in_(offsets),
        )
    )
    found = {row.dlq_offset for row in result}
    await db.commit()
    return found


async def _record(db: AsyncConnection, topic: str, target: str, letters: Sequence[Letter]) -> None:
    rows = [
        {
            "dlq_topic": topic,
            "dlq_partition": t.partition,
            "dlq_offset": t.offset,
            "letter_id": t.letter.event_id,
            "reason": t.letter.error.type,
            "stage": t.letter.error.stage,
            "target_topic": target,
        }
        for t in letters
    ]
    await db.execute(insert(dlq_replays).on_conflict_do_nothing(), rows)
    await db.commit()
