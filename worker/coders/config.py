"""Settings of the coder component (``CLAIMCODER_CODER_*``): which coder, and how often a claim
it fails is tried again. ``fixed`` gives every claim ``fixed_codes`` and does no work: it measures
the pipeline without a coder's cost (`claimcoder bench`). Each coder has its own settings beside
it (``retrieval/config.py``, ``vllm/config.py``)."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

CoderKind = Literal["retrieval", "vllm", "fixed"]
#: Acute systolic heart failure with acute respiratory failure with hypoxia (the README's example):
#: billable in FY2026 and FY2027, it groups (MS-DRG 291) and prices, so every stage does its work.
DEFAULT_FIXED_CODES = ("I50.21", "J96.01")


class CoderSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    kind: CoderKind = "retrieval"
    """``retrieval``: the embedded CPU coder; ``vllm``: the in-process vLLM engine
    (CLAIMCODER_VLLM_*); ``fixed``: ``fixed_codes`` for every claim, no work (benchmarks)."""
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    """Further tries of a claim the coder failed, before it becomes needs_review (coder_error)."""
    retry_backoff_s: Annotated[float, Field(ge=0)] = 0.5
    """Wait before the first retry, seconds; doubled for each further one."""
    fixed_codes: Annotated[tuple[str, ...], Field(min_length=1, max_length=25)] = (
        DEFAULT_FIXED_CODES
    )
    """Codes of the ``fixed`` coder, for every claim: a benchmark's zero-cost coder (JSON in the
    environment: CLAIMCODER_CODER_FIXED_CODES='["I50.21", "J96.01"]')."""
