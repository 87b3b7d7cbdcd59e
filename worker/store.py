"""Stage: the idempotent record of every result in PostgreSQL (``claim_results``).

One statement per batch inserts the new results and, for an ``event_id`` already stored (a
re-delivery after a crash or rebalance), keeps the stored output, counts the delivery and returns
the stored event. The pipeline then emits exactly what it emitted the first time, ``coded_at``
included, so a consumer de-duplicating on ``event_id`` sees one consistent event. Only a
re-delivered event's stored output comes back from PostgreSQL: a new one is the event itself,
already validated, so it is neither parsed nor validated again.

The statement runs on a psycopg connection of the store's own, in autocommit: one statement is
atomic by itself, so a batch costs one round trip. Through SQLAlchemy's async pool the same
statement cost a checkout with its pre-ping, BEGIN and COMMIT, each through the greenlet
adapter: ~42 µs of the worker's CPU a claim against ~9 µs on its own connection (batches of 64,
this machine; the README's benchmark section).
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Protocol

import psycopg

from drg.exceptions import wrap_database_error
from schemas.coded import ClaimCoded

# One short statement for every batch size, with one parameter: the batch's events as one JSON
# array of the texts pydantic wrote. The columns are read from each event in PostgreSQL, so the
# worker builds no per-column lists and psycopg dumps no arrays (a text[] of the outputs would
# also have every quote escaped). A repeated event_id in one batch is sent once. deliveries is
# 1 for a row just inserted: then its output is the event we sent, and only a re-delivered
# event's stored output comes back.
_UPSERT: Final = """
    INSERT INTO claim_results (claim_id, event_id, status, drg, total, output)
    SELECT o.output->>'claim_id', o.output->>'event_id', o.output->>'status',
           o.output->'drg'->>'code', CAST(o.output->'estimate'->>'total' AS numeric), o.output
    FROM jsonb_array_elements(CAST(%s AS jsonb)) AS o(output)
    ON CONFLICT (event_id) DO UPDATE
    SET deliveries = claim_results.deliveries + 1, updated_at = now()
    RETURNING event_id, CASE WHEN deliveries > 1 THEN output END AS stored
"""


#: A claims.coded event and its JSON text (``model_dump_json``), encoded once: stored, then
#: published as it is.
Encoded = tuple[ClaimCoded, str]


class ResultWriter(Protocol):
    async def upsert(self, events: Sequence[Encoded]) -> list[Encoded]: ...


class NoStore:
    """For one-off checks (`claimcoder code`): records nothing, returns the events."""

    async def upsert(self, events: Sequence[Encoded]) -> list[Encoded]:
        return list(events)


class ResultStore:
    """``connect``: opens an autocommit psycopg connection (``worker.resources.connector``);
    called at the first batch and again after the connection was lost."""

    def __init__(self, connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]]) -> None:
        self._connect = connect
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._opening = asyncio.Lock()  # two batches at once open one connection, not two

    async def upsert(self, events: Sequence[Encoded]) -> list[Encoded]:
        """The stored version of each (event, JSON text), in order: the pair itself when its
        ``event_id`` is new, the first stored event (and its text) when it was seen before.
        Raises DatabaseUnavailableError (recoverable) while PostgreSQL is away (the connection
        is then dropped and opened again by the next call), DatabaseError otherwise."""
        if not events:
            return []
        first: dict[str, Encoded] = {}
        for encoded in events:  # one row per event_id: a batch can carry the same record twice
            first.setdefault(encoded[0].event_id, encoded)
        outputs = "[" + ",".join(text for _, text in first.values()) + "]"
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            conn = await self._connection()
            # psycopg runs one statement at a time on a connection: a second batch waits
            cursor = await conn.execute(_UPSERT, (outputs,))
            stored: dict[str, Any] = dict(await cursor.fetchall())
        except psycopg.Error as exc:
            error = wrap_database_error(exc, "storing results")
            if error.recoverable:
                await self._drop(conn)
            raise error from exc
        seen = {
            event_id: first[event_id] if output is None else _encoded(output)
            for event_id, output in stored.items()
        }
        return [seen[event.event_id] for event, _ in events]

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        async with self._opening:
            if self._conn is None or self._conn.closed:
                self._conn = await self._connect()
            return self._conn

    async def _drop(self, conn: psycopg.AsyncConnection[Any] | None) -> None:
        """Close ``conn`` and forget it, unless another batch has opened a new one since."""
        if conn is None:
            return
        if self._conn is conn:
            self._conn = None
        with contextlib.suppress(psycopg.Error):
            await conn.close()

    async def aclose(self) -> None:
        """Close the connection (the pipeline stops)."""
        await self._drop(self._conn)


def _encoded(stored: Any) -> Encoded:
    event = ClaimCoded.model_validate(stored)
    return event, event.model_dump_json()
