"""A coder that does no work: every claim gets the configured codes
(``CLAIMCODER_CODER_KIND=fixed``, ``CLAIMCODER_CODER_FIXED_CODES``).

It exists to measure the pipeline without a coder's cost (`claimcoder bench`): the codes still go
through conventions, validation, grouping, pricing and the store, so the measured path is the full
one. Its events say ``model.engine`` ``manual`` (the codes were given, not inferred) and
``model.model`` ``fixed``. Never use it for real claims.
"""

from collections.abc import Sequence

from schemas.coded import ModelInfo
from worker.coders.base import Coder, CoderResult, CodingRequest

_INFO = ModelInfo(engine="manual", model="fixed", adapter=None, profile=None)


class FixedCoder(Coder):
    """``codes`` (ICD-10-CM, principal first, as a coder would write them) for every claim."""

    def __init__(self, codes: Sequence[str]) -> None:
        self._codes = tuple(codes)

    @property
    def info(self) -> ModelInfo:
        return _INFO

    async def code_batch(self, requests: Sequence[CodingRequest]) -> list[CoderResult]:
        return [CoderResult(r.claim_id, codes=self._codes) for r in requests]
