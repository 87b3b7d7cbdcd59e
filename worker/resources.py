"""Clients for PostgreSQL and Redis built from settings, honouring the schema and key prefix."""

from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from worker.settings import DatabaseSettings, RedisSettings


def _connect_args(db: DatabaseSettings) -> dict[str, Any]:
    # Every connection searches the configured schema first (tests use one schema per test).
    return {"options": f"-c search_path={db.schema_name}"} if db.schema_name else {}


def async_engine(db: DatabaseSettings) -> AsyncEngine:
    return create_async_engine(
        db.sqlalchemy_url,
        pool_size=db.pool_size,
        pool_pre_ping=True,
        connect_args=_connect_args(db),
    )


def sync_engine(db: DatabaseSettings, *, connect_timeout_s: float | None = None) -> Engine:
    """For migrations and bulk loads, which run outside the event loop. ``connect_timeout_s``
    bounds each connection attempt (libpq ``connect_timeout``, whole seconds, at least 1)."""
    connect_args = _connect_args(db)
    if connect_timeout_s is not None:
        connect_args["connect_timeout"] = max(1, round(connect_timeout_s))
    return create_engine(
        db.sqlalchemy_url,
        pool_size=db.pool_size,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def redis_client(settings: RedisSettings) -> "aioredis.Redis":
    return aioredis.Redis.from_url(settings.url.get_secret_value(), decode_responses=False)
