"""Errors of reference data, code-set validation, grouping and pricing.

Each class says whether it is *recoverable* (pause and retry the batch: a server or a load is
missing) or *fatal*. A claim that cannot be estimated is not an error: it is an assessment with
status ``needs_review`` or ``ungroupable``.
"""

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from schemas.exceptions import ClaimcoderError


class ReferenceDataError(ClaimcoderError):
    """Fatal for the command, not for a claim: a reference file or table is missing or bad."""


class CodesetUnavailableError(ClaimcoderError):
    """Recoverable: Redis or PostgreSQL could not serve the code set now (connection lost, a
    rebuild by another worker did not finish in time); pause and retry the batch."""

    recoverable = True


class DatabaseUnavailableError(ClaimcoderError):
    """Recoverable: PostgreSQL could not serve a statement now (pricing, the registry, the
    result store); pause and retry the batch."""

    recoverable = True


class DatabaseError(ClaimcoderError):
    """Fatal for the batch: PostgreSQL refused a statement for a reason retrying cannot fix (a
    constraint, bad data, a bug). The batch is split; a claim that fails alone is
    dead-lettered."""


def database_unavailable(exc: SQLAlchemyError | psycopg.Error) -> bool:
    """True when PostgreSQL could not serve a statement now and a later retry can succeed: the
    connection was refused, lost or timed out, the pool had no connection, or the schema is not
    migrated yet (a worker started before its init job). ``exc``: SQLAlchemy's, or psycopg's
    own for a connection used without SQLAlchemy (``worker/store.py``)."""
    if isinstance(exc, psycopg.Error):
        driver_lost = psycopg.OperationalError | psycopg.InterfaceError
        return isinstance(exc, driver_lost | pg_errors.UndefinedTable)
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc.orig, pg_errors.UndefinedTable)
    return False


def wrap_database_error(exc: SQLAlchemyError | psycopg.Error, what: str) -> ClaimcoderError:
    """``exc`` as the project's error: DatabaseUnavailableError (recoverable) when PostgreSQL is
    away, DatabaseError (fatal for the batch) otherwise. The message names ``what`` and the
    exception's type only (a statement's parameters can hold claim data)."""
    message = f"PostgreSQL failed {what}: {type(exc).__name__}"
    if database_unavailable(exc):
        return DatabaseUnavailableError(message)
    return DatabaseError(message)


class GrouperError(ClaimcoderError):
    """Fatal for the process: the MS-DRG grouper or code editor could not be started."""
