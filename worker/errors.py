"""Whether a failure means "a server is down, wait and retry", and how a failure is described in
logs and traces."""

import traceback
from pathlib import Path

from schemas.exceptions import ClaimcoderError


def is_recoverable(exc: BaseException) -> bool:
    """True for our own errors that say retrying the same work later can fix them (Redis or
    PostgreSQL away, a lost engine). Decided by ``exc.recoverable`` alone: foreign errors are
    wrapped where they occur, so anything else (a bug, odd data) is not."""
    return isinstance(exc, ClaimcoderError) and exc.recoverable


def describe(exc: BaseException) -> str:
    """The exception's type and where it was raised (innermost frame first), never its message:
    a message can quote the claim it choked on, and claims are patient health information."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
    return f"{type(exc).__name__} at {where}" if where else type(exc).__name__
