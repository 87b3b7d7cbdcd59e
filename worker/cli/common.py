"""What every command shares: settings with readable errors, and the consoles."""

import asyncio
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from redis.exceptions import RedisError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from schemas.decode import describe_validation_error
from schemas.exceptions import ClaimcoderError
from worker.settings import Settings

out = Console(highlight=False, soft_wrap=True)  # results: JSON, export lines
# tables, progress and messages for people; a message is one line even when piped, and never
# turns ":end:" or "[...]" in it into an emoji or markup
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def load_settings() -> Settings:
    """Settings from the environment; a bad value names the variable, never echoes its value
    (it may be a secret)."""
    try:
        return Settings()
    except ValidationError as exc:
        fail(f"invalid configuration: {describe_validation_error(exc)}")


T = TypeVar("T")
REFERENCE_HINT = "is the schema migrated and seeded? (claimcoder db upgrade; claimcoder db seed)"


def run_checked(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's async work; a server or reference-data failure becomes a one-line error
    naming the server and the exception type (messages can quote data)."""
    try:
        return asyncio.run(work)
    except SQLAlchemyError as exc:
        fail(f"PostgreSQL: {type(exc).__name__}; {REFERENCE_HINT}")
    except RedisError as exc:
        fail(f"Redis: {type(exc).__name__}")
    except ClaimcoderError as exc:
        fail(f"{exc}; {REFERENCE_HINT}")
