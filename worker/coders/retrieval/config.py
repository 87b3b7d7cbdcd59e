"""Settings of the embedded retrieval coder (``CLAIMCODER_RETRIEVAL_*``)."""

from pydantic import BaseModel, ConfigDict


class RetrievalSettings(BaseModel):
    """Filled in by the [engines] issue."""

    model_config = ConfigDict(frozen=True, extra="forbid")
