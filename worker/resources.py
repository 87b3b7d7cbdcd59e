"""Clients for PostgreSQL and Redis built from settings, honouring the schema, the key prefix
and the timeouts (README, "Statuses and delivery"): every call to either server either answers
or fails within its timeout, and a failure is one of "the server is away" that the pipeline
waits out (``worker/retry.py``)."""

from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from worker import pg_connection
from worker.settings import DatabaseSettings, RedisSettings


def _options(db: DatabaseSettings) -> dict[str, Any]:
    # Every connection searches the configured schema first (tests use one schema per test).
    return {"options": f"-c search_path={db.schema_name}"} if db.schema_name else {}


def connector(
    db: DatabaseSettings, **libpq: Any
) -> Callable[[], Awaitable[pg_connection.BoundedConnection]]:
    """Opens a psycopg connection to the configured database and schema: it opens within
    ``connect_timeout_s`` and each round trip lasts at most ``round_trip_timeout_s``
    (``worker/pg_connection.py``), or raises psycopg.OperationalError. ``libpq``: more
    connection parameters (``autocommit=True``)."""

    async def connect() -> pg_connection.BoundedConnection:
        return await pg_connection.connect(
            db.libpq_url,
            connect_timeout_s=db.connect_timeout_s,
            round_trip_timeout_s=db.round_trip_timeout_s,
            **_options(db),
            **libpq,
        )

    return connect


def async_engine(db: DatabaseSettings) -> AsyncEngine:
    """The worker's engine: connections open within ``connect_timeout_s``, each round trip
    lasts at most ``round_trip_timeout_s`` (``worker/pg_connection.py``), a free connection
    comes within ``pool_timeout_s``; each raises an OperationalError or a pool TimeoutError,
    both "PostgreSQL is away" for ``drg.exceptions.database_unavailable``."""
    return create_async_engine(
        db.sqlalchemy_url,
        async_creator=connector(db),
        pool_size=db.pool_size,
        pool_timeout=db.pool_timeout_s,
        pool_pre_ping=True,
    )


def sync_engine(db: DatabaseSettings, *, connect_timeout_s: float | None = None) -> Engine:
    """For migrations and bulk loads, which run outside the event loop: connections open
    within ``connect_timeout_s`` (default: the settings'; libpq counts whole seconds, at least
    2); statements are not bounded (a bulk load may be long)."""
    timeout = db.connect_timeout_s if connect_timeout_s is None else connect_timeout_s
    connect_args = {"connect_timeout": max(2, round(timeout)), **_options(db)}
    return create_engine(
        db.sqlalchemy_url,
        pool_size=db.pool_size,
        pool_timeout=db.pool_timeout_s,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def redis_client(settings: RedisSettings) -> "aioredis.Redis":
    """Every command answers within ``socket_timeout_s`` or raises redis.TimeoutError (a
    RedisError: the code set is unavailable, ``drg.codeset.validate``)."""
    return aioredis.Redis.from_url(
        settings.url.get_secret_value(),
        decode_responses=False,
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.connect_timeout_s,
    )
