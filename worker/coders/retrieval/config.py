"""Settings of the embedded CPU coder (``CLAIMCODER_RETRIEVAL_*``)."""

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class RetrievalSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    artifact: Path | None = Field(
        default=None,
        description="Learned evidence (``claimcoder retrieval learn``); unset: the packaged one, "
        "learned from CodiEsp train.",
    )
    min_probability: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        default=None,
        description="A candidate code is emitted when its learned probability reaches this; "
        "unset: the artifact's threshold, the one that maximised micro-F1 on out-of-fold "
        "candidates of its training documents. Higher is more precise, lower finds more.",
    )
    max_codes: Annotated[int, Field(ge=1, le=100)] = Field(
        default=25, description="At most this many codes a claim, most probable first."
    )
    top_k: Annotated[int, Field(ge=1, le=100)] = Field(
        default=8, description="Code texts retrieved per mention."
    )
