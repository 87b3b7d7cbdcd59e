"""Which failures mean "a server is down, wait and retry" rather than "this claim is odd"."""

import asyncio

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError

from schemas.exceptions import ClaimcoderError


def is_transient(exc: BaseException) -> bool:
    """True for failures that retrying the same batch later can fix: Redis or PostgreSQL
    unreachable, a connection dropped, our own recoverable errors."""
    if isinstance(exc, ClaimcoderError):
        return exc.recoverable
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | OperationalError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, ConnectionError | TimeoutError | asyncio.TimeoutError | OSError)
