"""Stage: the idempotent record of every result in PostgreSQL (``claim_results``).

One statement per batch inserts the new results and, for an ``event_id`` already stored (a
re-delivery after a crash or rebalance), keeps the stored output, counts the delivery and returns
the stored event. The pipeline then emits exactly what it emitted the first time, ``coded_at``
included, so a consumer de-duplicating on ``event_id`` sees one consistent event. Only a
re-delivered event's stored output comes back from PostgreSQL: a new one is the event itself,
already validated, so it is neither parsed nor validated again.
"""

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from drg.exceptions import wrap_database_error
from schemas.coded import ClaimCoded

# One short statement for every batch size, with one parameter: the batch's events as one JSON
# array of the texts pydantic wrote. The columns are read from each event in PostgreSQL, so the
# worker builds no per-column lists and psycopg dumps no arrays (a text[] of the outputs would
# also have every quote escaped). A repeated event_id in one batch is sent once. deliveries is
# 1 for a row just inserted: then its output is the event we sent, and only a re-delivered
# event's stored output comes back.
_UPSERT = text(
    """
    INSERT INTO claim_results (claim_id, event_id, status, drg, total, output)
    SELECT o.output->>'claim_id', o.output->>'event_id', o.output->>'status',
           o.output->'drg'->>'code', CAST(o.output->'estimate'->>'total' AS numeric), o.output
    FROM jsonb_array_elements(CAST(:outputs AS jsonb)) AS o(output)
    ON CONFLICT (event_id) DO UPDATE
    SET deliveries = claim_results.deliveries + 1, updated_at = now()
    RETURNING event_id, CASE WHEN deliveries > 1 THEN output END AS stored
    """
)


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
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def upsert(self, events: Sequence[Encoded]) -> list[Encoded]:
        """The stored version of each (event, JSON text), in order: the pair itself when its
        ``event_id`` is new, the first stored event (and its text) when it was seen before.
        Raises DatabaseUnavailableError (recoverable) while PostgreSQL is away, DatabaseError
        otherwise."""
        if not events:
            return []
        first: dict[str, Encoded] = {}
        for encoded in events:  # one row per event_id: a batch can carry the same record twice
            first.setdefault(encoded[0].event_id, encoded)
        columns = {"outputs": "[" + ",".join(text for _, text in first.values()) + "]"}
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(_UPSERT, columns)
                stored = {row.event_id: row.stored for row in result}
        except SQLAlchemyError as exc:
            raise wrap_database_error(exc, "storing results") from exc
        seen = {
            event_id: first[event_id] if output is None else _encoded(output)
            for event_id, output in stored.items()
        }
        return [seen[event.event_id] for event, _ in events]


def _encoded(stored: Any) -> Encoded:
    event = ClaimCoded.model_validate(stored)
    return event, event.model_dump_json()
