"""The result store (``worker/store.py``) on a real PostgreSQL: idempotent by ``event_id``, and a
lost connection is "PostgreSQL is away" (recoverable) once, then opened again."""

import asyncio
import datetime as dt
import uuid

import psycopg
import pytest

from drg.exceptions import DatabaseUnavailableError
from schemas.coded import ClaimCoded
from worker.resources import connector
from worker.settings import Settings
from worker.store import Encoded, ResultStore


def _event(event_id: str, reason: str = "first") -> Encoded:
    """A needs_review event (``reason``: tells two versions of one event apart)."""
    event = ClaimCoded(
        event_id=event_id,
        claim_id=f"claim-{event_id}",
        status="needs_review",
        review_reasons=[reason],
        codes=[],
        rejected_codes=[],
        drg=None,
        estimate=None,
        model={"engine": "manual", "model": "test"},
        codeset_release=None,
        discharge_date=dt.date(2026, 11, 2),
        timings_ms={},
        coded_at=dt.datetime.now(dt.UTC),
    )
    return event, event.model_dump_json()


def _id() -> str:
    return uuid.uuid4().hex


def test_a_redelivered_event_gets_the_stored_one_and_is_counted(migrated: Settings) -> None:
    one, two = _id(), _id()
    first, again = _event(one), _event(one, reason="again")
    other = _event(two)

    async def run() -> tuple[list[Encoded], list[Encoded]]:
        store = ResultStore(connector(migrated.database, autocommit=True))
        try:
            return await store.upsert([first]), await store.upsert([again, other, other])
        finally:
            await store.aclose()

    stored_first, stored_again = asyncio.run(run())
    assert stored_first == [first]
    # seen before: the first event comes back (parsed from PostgreSQL, the same JSON text)
    assert stored_again[0] == first
    assert stored_again[1:] == [other, other]
    with psycopg.connect(migrated.database.libpq_url) as conn:
        conn.execute(f"SET search_path = {migrated.database.schema_name}")
        rows: dict[str, int] = dict(
            conn.execute("SELECT event_id, deliveries FROM claim_results").fetchall()
        )
    assert rows == {one: 2, two: 1}  # a repeat within one batch is one delivery


def test_a_lost_connection_is_recoverable_and_the_next_batch_reconnects(
    migrated: Settings,
) -> None:
    """The store's own connection is killed on the server (as a restart or failover does): that
    batch fails as DatabaseUnavailableError (the pipeline waits and retries), the next one opens
    a new connection and is stored."""

    async def run() -> None:
        store = ResultStore(connector(migrated.database, autocommit=True))
        try:
            await store.upsert([_event(_id())])
            conn = await store._connection()  # the connection under test: killed below
            with psycopg.connect(migrated.database.libpq_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
            with pytest.raises(DatabaseUnavailableError) as raised:
                await store.upsert([_event(_id())])
            assert raised.value.recoverable
            after = _event(_id())
            assert await store.upsert([after]) == [after]
        finally:
            await store.aclose()

    asyncio.run(run())
