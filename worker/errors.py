"""Which failures mean "a server is down, wait and retry" rather than "this claim is odd", and
how a failure is described in logs and traces."""

import asyncio
import traceback
from pathlib import Path

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


def describe(exc: BaseException) -> str:
    """The exception's type and where it was raised (innermost frame first), never its message:
    a message can quote the claim it choked on, and claims are patient health information."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
    return f"{type(exc).__name__} at {where}" if where else type(exc).__name__
