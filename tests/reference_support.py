"""Helpers of the reference tests (their fixtures are in ``tests/reference_fixtures.py``): the
CLI runner, key clean-up, and counters of what reaches Redis and PostgreSQL."""

import functools
from typing import Any, Final

import redis
import redis.asyncio as aioredis
from hypothesis import strategies as st
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner, Result

from worker.cli import app
from worker.settings import Settings

RELEASE: Final = "2026-04"
PROVIDERS_CSV: Final = """provider_id,name,wage_index,fiscal_year
330101,Example Hospital Above One,1.0369,2026
050454,Example Hospital Below One,0.8612,2026
330101,Example Hospital Above One,1.0500,2027
"""


class CodeList(dict[str, bool]):
    """Undotted code -> billable, with a short repr for failure reports (hypothesis prints the
    test's arguments)."""

    def __repr__(self) -> str:
        return f"<{len(self)} codes>"

    @functools.cached_property
    def ordered(self) -> list[str]:
        return sorted(self)

    @functools.cached_property
    def any_code(self) -> st.SearchStrategy[str]:
        """Built once: hypothesis copies the list each time a strategy is made from it."""
        return st.sampled_from(self.ordered)

    @functools.cached_property
    def billable(self) -> list[str]:
        return sorted(code for code, billable in self.items() if billable)


def invoke(settings: Settings, *args: str) -> Result:
    """Run ``claimcoder ARGS`` against ``settings``; it must succeed."""
    result = CliRunner().invoke(app, list(args), env=settings.to_env())
    assert result.exit_code == 0, result.output
    return result


def drop_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class CountingConnection(aioredis.Connection):
    """A Redis connection that counts what it sends: one send is one round trip (a pipeline
    is packed into one send)."""

    sends = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sends += 1
        await super().send_packed_command(command, check_health)


def counting_redis(settings: Settings) -> "aioredis.Redis":
    pool = aioredis.ConnectionPool.from_url(
        settings.redis.url.get_secret_value(), connection_class=CountingConnection
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes both


class QueryCounter:
    """Statements SQLAlchemy sends to PostgreSQL through ``engine``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statements: list[str] = []
        self._engine = engine
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def close(self) -> None:
        event.remove(self._engine.sync_engine, "before_cursor_execute", self._seen)
