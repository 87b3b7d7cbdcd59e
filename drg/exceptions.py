"""Errors of reference data, code-set validation, grouping and pricing.

Each class says whether it is *recoverable* (pause and retry the batch: a server or a load is
missing) or *fatal*. A claim that cannot be estimated is not an error: it is an assessment with
status ``needs_review`` or ``ungroupable``.
"""

from schemas.exceptions import ClaimcoderError


class ReferenceDataError(ClaimcoderError):
    """Fatal for the command, not for a claim: a reference file or table is missing or bad."""


class CodesetUnavailableError(ClaimcoderError):
    """Recoverable: Redis or PostgreSQL could not serve the code set now (connection lost, a
    rebuild by another worker did not finish in time); pause and retry the batch."""

    recoverable = True


class PricingUnavailableError(ClaimcoderError):
    """Recoverable: the pricing query failed on the database side; pause and retry the batch."""

    recoverable = True


class GrouperError(ClaimcoderError):
    """Fatal for the process: the MS-DRG grouper or code editor could not be started."""
