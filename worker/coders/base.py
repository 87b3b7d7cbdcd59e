"""What every coder offers the pipeline: a batch of narratives in, candidate codes out.

A coder returns the codes as it wrote them; it does not decide billability (the validator does,
against the code set in Redis), so nothing a coder emits reaches `claims.coded` unchecked.
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

from drg.registry import ReleasePeriod
from schemas.coded import ModelInfo
from worker.coders.exceptions import CoderError


@dataclass(frozen=True, slots=True)
class CodingRequest:
    claim_id: str
    narrative: str = field(repr=False)  # patient health information: never in a repr or log
    adapter: str | None = None  # LoRA adapter name for engines that have them; None: default
    # The release period of the claim's discharge date: the coder proposes codes of its code
    # set only. None (no period covers the date, or a caller with no date): the coder's newest.
    period: ReleasePeriod | None = None

    @property
    def codeset_release(self) -> str | None:
        return self.period.codeset_release if self.period is not None else None


@dataclass(frozen=True, slots=True)
class CoderResult:
    """One claim's outcome: codes in order (principal first) or a per-claim error."""

    claim_id: str
    codes: tuple[str, ...] = ()
    error: CoderError | None = None
    # The model's text, kept in memory for debugging and metrics; never emitted or logged.
    raw_output: str = field(default="", repr=False)
    latency_ms: float = 0.0
    adapter: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Coder(ABC):
    """Narrative-to-codes engine. One instance per worker process; safe for concurrent batches."""

    @property
    @abstractmethod
    def info(self) -> ModelInfo:
        """Engine, model, adapter and profile, as reported in `claims.coded`."""

    async def start(self) -> None:  # noqa: B027 - optional hook; most coders need no start-up
        """Load models or start engines; called once before the first batch."""

    @abstractmethod
    async def code_batch(self, requests: Sequence[CodingRequest]) -> list[CoderResult]:
        """One result per request, in request order. Per-claim failures are results with
        ``error`` set; only a failure of the whole engine raises (:class:`EngineStoppedError`)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release engines and processes; idempotent."""

    async def restart(self) -> None:
        """Start again after :class:`EngineStoppedError`: the pipeline's way to recover."""
        await self.aclose()
        await self.start()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
