"""Stage: the idempotent record of every result in PostgreSQL (``claim_results``).

One statement per batch inserts the new results and, for an ``event_id`` already stored (a
re-delivery after a crash or rebalance), keeps the stored output, counts the delivery and returns
the stored event. The pipeline then emits exactly what it emitted the first time, ``coded_at``
included, so a consumer de-duplicating on ``event_id`` sees one consistent event. Only a
re-delivered event's stored output comes back from PostgreSQL: a new one is the event itself,
already validated, so it is neither parsed nor validated again.
"""

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Text, bindparam, case, cast, func
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from drg.exceptions import wrap_database_error
from drg.tables import claim_results
from schemas.coded import ClaimCoded

# One statement for every batch size: executed with a list of rows, SQLAlchemy sends it as one
# multi-row INSERT ... RETURNING ("insertmanyvalues") from a statement compiled once, where a
# .values(rows) statement would be compiled again for each batch (~16 ms for 64 claims). The
# output goes as the JSON text pydantic writes (cast to jsonb by PostgreSQL), not as a dict that
# SQLAlchemy would encode again with the json module.
_INSERT = insert(claim_results).values(output=cast(bindparam("output_json", type_=Text), JSONB))
_UPSERT = _INSERT.on_conflict_do_update(
    index_elements=[claim_results.c.event_id],
    set_={"deliveries": claim_results.c.deliveries + 1, "updated_at": func.now()},
).returning(
    claim_results.c.event_id,
    # deliveries is 1 for a row just inserted: then its output is the event we sent
    case((claim_results.c.deliveries > 1, claim_results.c.output), else_=None).label("stored"),
)


class ResultWriter(Protocol):
    async def upsert(self, events: Sequence[ClaimCoded]) -> list[ClaimCoded]: ...


class NoStore:
    """For one-off checks (`claimcoder code`): records nothing, returns the events."""

    async def upsert(self, events: Sequence[ClaimCoded]) -> list[ClaimCoded]:
        return list(events)


class ResultStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def upsert(self, events: Sequence[ClaimCoded]) -> list[ClaimCoded]:
        """The stored event of each event, in order: the event itself when it is new, the first
        stored version when its ``event_id`` was seen before. Raises
        DatabaseUnavailableError (recoverable) while PostgreSQL is away, DatabaseError
        otherwise."""
        if not events:
            return []
        rows: dict[str, dict[str, Any]] = {}
        first: dict[str, ClaimCoded] = {}
        for event in events:  # one row per event_id: a batch can carry the same record twice
            first.setdefault(event.event_id, event)
            rows.setdefault(
                event.event_id,
                {
                    "claim_id": event.claim_id,
                    "event_id": event.event_id,
                    "status": event.status,
                    "drg": event.drg.code if event.drg else None,
                    "total": Decimal(event.estimate.total) if event.estimate else None,
                    "output_json": event.model_dump_json(),
                },
            )
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(_UPSERT, list(rows.values()))
                stored = {row.event_id: row.stored for row in result}
        except SQLAlchemyError as exc:
            raise wrap_database_error(exc, "storing results") from exc
        seen = {
            event_id: first[event_id] if output is None else ClaimCoded.model_validate(output)
            for event_id, output in stored.items()
        }
        return [seen[event.event_id] for event in events]
