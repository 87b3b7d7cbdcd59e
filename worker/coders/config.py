"""Settings of the coder component (``CLAIMCODER_CODER_*``): which coder, and how often a claim
it fails is tried again. Each coder has its own settings beside it (``retrieval/config.py``,
``vllm/config.py``)."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

CoderKind = Literal["retrieval", "vllm"]


class CoderSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    kind: CoderKind = "retrieval"
    """``retrieval``: the embedded CPU coder; ``vllm``: the in-process vLLM engine
    (CLAIMCODER_VLLM_*)."""
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    """Further tries of a claim the coder failed, before it becomes needs_review (coder_error)."""
    retry_backoff_s: Annotated[float, Field(ge=0)] = 0.5
    """Wait before the first retry, seconds; doubled for each further one."""
