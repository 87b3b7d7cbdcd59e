"""Coders turn narratives into candidate ICD-10-CM codes."""

from worker.coders.base import Coder, CoderResult, CodingRequest
from worker.coders.exceptions import CoderError, CoderUnavailableError, EngineStoppedError

__all__ = [
    "Coder",
    "CoderError",
    "CoderResult",
    "CoderUnavailableError",
    "CodingRequest",
    "EngineStoppedError",
]
