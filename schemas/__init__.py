"""Event contracts: `claims.raw` in, `claims.coded` and `claims.dlq` out."""

from schemas.coded import (
    ClaimCoded,
    CodedDiagnosis,
    DrgAssignment,
    Estimate,
    ModelInfo,
    RejectedCode,
    Status,
)
from schemas.dlq import DeadLetter, DeadLetterError, OriginalHeader
from schemas.exceptions import ClaimcoderError, ContractError
from schemas.raw import ClaimRaw, Patient

__all__ = [
    "ClaimCoded",
    "ClaimRaw",
    "ClaimcoderError",
    "CodedDiagnosis",
    "ContractError",
    "DeadLetter",
    "DeadLetterError",
    "DrgAssignment",
    "Estimate",
    "ModelInfo",
    "OriginalHeader",
    "Patient",
    "RejectedCode",
    "Status",
]
