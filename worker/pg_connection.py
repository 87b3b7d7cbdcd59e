"""PostgreSQL connections of the worker whose every round trip is bounded in time.

A hung server (it accepts connections and never answers: a stopped process, a full disk, a
network that drops packets silently) would otherwise block a statement, and with it a
partition, for as long as TCP keeps the connection open: the kernel of a stopped server still
acknowledges our packets, so no socket timeout or keepalive notices it.

psycopg sends every round trip of a connection (a statement, a fetch of a server-side cursor,
a commit, a rollback) through :meth:`psycopg.AsyncConnection.wait`; :class:`BoundedConnection`
bounds that one method. When the bound passes, a WARNING is logged at once (no statement, no
parameters: they can hold claim data), psycopg cancels the statement (it gives the server
5 s to confirm, then closes the connection: psycopg issue #1371) and the call raises
:class:`psycopg.OperationalError`, which SQLAlchemy reports as ``OperationalError`` and
``drg.exceptions.wrap_database_error`` as recoverable: the batch waits and retries as for a
server that is down. Opening a connection is bounded by libpq's ``connect_timeout``.
"""

import asyncio
import logging
from typing import Any, TypeVar

import psycopg
from psycopg.abc import PQGen

log = logging.getLogger(__name__)

RV = TypeVar("RV")


class BoundedConnection(psycopg.AsyncConnection[Any]):
    """A psycopg connection whose round trips each last at most ``round_trip_timeout_s``."""

    round_trip_timeout_s: float = 5.0  # set on each connection by :func:`connect`

    async def wait(self, gen: PQGen[RV], *args: Any, **kwargs: Any) -> RV:
        seconds = self.round_trip_timeout_s
        loop = asyncio.get_running_loop()
        # Logged when the time is up, not when psycopg has finished cancelling (up to 10 s
        # later on a hung server): the operator sees the stall as it happens.
        warning = loop.call_later(
            seconds, log.warning, "PostgreSQL did not answer within %.1f s: giving up", seconds
        )
        try:
            async with asyncio.timeout(seconds):
                return await super().wait(gen, *args, **kwargs)
        except TimeoutError as exc:
            raise psycopg.OperationalError(
                f"PostgreSQL did not answer within {seconds:g} s"
            ) from exc
        finally:
            warning.cancel()


async def connect(
    url: str, *, connect_timeout_s: int, round_trip_timeout_s: float, **kwargs: Any
) -> BoundedConnection:
    """A :class:`BoundedConnection` to the libpq ``url``; ``kwargs`` are libpq parameters
    (``options``). Raises psycopg.OperationalError when the server does not answer within
    ``connect_timeout_s`` seconds."""
    conn = await BoundedConnection.connect(url, connect_timeout=connect_timeout_s, **kwargs)
    conn.round_trip_timeout_s = round_trip_timeout_s
    return conn
