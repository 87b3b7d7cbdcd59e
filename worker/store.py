"""Stage: the idempotent record of every result in PostgreSQL (``claim_results``).

One statement per batch inserts the new results and, for an ``event_id`` already stored (a
re-delivery after a crash or rebalance), keeps the stored output, counts the delivery and returns
the stored event. The pipeline then emits exactly what it emitted the first time, ``coded_at``
included, so a consumer de-duplicating on ``event_id`` sees one consistent event.
"""

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from drg.exceptions import wrap_database_error
from drg.tables import claim_results
from schemas.coded import ClaimCoded

# One statement for every batch size: executed with a list of rows, SQLAlchemy sends it as one
# multi-row INSERT ... RETURNING ("insertmanyvalues") from a statement compiled once, where a
# .values(rows) statement would be compiled again for each batch (~16 ms for 64 claims).
_INSERT = insert(claim_results)
_UPSERT = _INSERT.on_conflict_do_update(
    index_elements=[claim_results.c.event_id],
    set_={"deliveries": claim_results.c.deliveries + 1, "updated_at": func.now()},
).returning(claim_results.c.event_id, claim_results.c.output)


class ResultWriter(Protocol):
    async def upsert(self, events: Sequence[ClaimCoded]) -> list[dict[str, Any]]: ...


class NoStore:
    """For one-off checks (`claimcoder code`): records nothing, returns the events."""

    async def upsert(self, events: Sequence[ClaimCoded]) -> list[dict[str, Any]]:
        return [e.model_dump(mode="json") for e in events]


class ResultStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def upsert(self, events: Sequence[ClaimCoded]) -> list[dict[str, Any]]:
        """The stored output (JSON-ready) of each event, in order: the event itself when it is
        new, the first stored version when its ``event_id`` was seen before. Raises
        DatabaseUnavailableError (recoverable) while PostgreSQL is away, DatabaseError
        otherwise."""
        if not events:
            return []
        rows: dict[str, dict[str, Any]] = {}
        for event in events:  # one row per event_id: a batch can carry the same record twice
            rows.setdefault(
                event.event_id,
                {
                    "claim_id": event.claim_id,
                    "event_id": event.event_id,
                    "status": event.status,
                    "drg": event.drg.code if event.drg else None,
                    "total": Decimal(event.estimate.total) if event.estimate else None,
                    "output": event.model_dump(mode="json"),
                },
            )
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(_UPSERT, list(rows.values()))
                stored = {row.event_id: row.output for row in result}
        except SQLAlchemyError as exc:
            raise wrap_database_error(exc, "storing results") from exc
        return [stored[event.event_id] for event in events]
