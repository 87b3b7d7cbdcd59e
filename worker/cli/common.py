"""What every command shares: settings with readable errors, and the consoles."""

from typing import NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from schemas.decode import describe_validation_error
from worker.settings import Settings

out = Console(highlight=False, soft_wrap=True)  # results: JSON, export lines
err = Console(stderr=True, highlight=False)  # tables, progress and messages for people


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def load_settings() -> Settings:
    """Settings from the environment; a bad value names the variable, never echoes its value
    (it may be a secret)."""
    try:
        return Settings()
    except ValidationError as exc:
        fail(f"invalid configuration: {describe_validation_error(exc)}")
