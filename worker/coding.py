"""Stage 2: the coder, with bounded retries, so that a failing claim never blocks its partition.

A claim whose coder result is an error is tried again (only that claim) up to ``coder.retries``
times with a growing pause; a dead engine is restarted and the unfinished claims tried again,
within the same budget. What still fails comes back as an error result: the pipeline marks the
claim ``needs_review`` with reason ``coder_error`` (it is a claim, not bad input).
"""

import asyncio
import logging
from collections.abc import Sequence

from worker.coders.base import Coder, CoderResult, CodingRequest
from worker.coders.exceptions import CoderError, EngineDeadError
from worker.errors import describe
from worker.settings import CoderSettings

log = logging.getLogger(__name__)


async def code_with_retries(
    coder: Coder, requests: Sequence[CodingRequest], settings: CoderSettings
) -> list[CoderResult]:
    """One result per request, in order; ``error`` set on what failed every attempt."""
    results: list[CoderResult | None] = [None] * len(requests)
    pending = list(range(len(requests)))
    for attempt in range(settings.retries + 1):
        if attempt:
            await asyncio.sleep(settings.retry_backoff_s * 2 ** (attempt - 1))
        batch = [requests[i] for i in pending]
        try:
            outcome = await coder.code_batch(batch)
        except EngineDeadError as exc:
            log.error(
                "coder engine died (attempt %d of %d); restarting it",
                attempt + 1,
                settings.retries + 1,
            )
            outcome = [CoderResult(r.claim_id, error=exc) for r in batch]
            await _restart(coder)
        except CoderError as exc:  # a whole-batch failure that is not a dead engine
            log.warning("coder failed a batch of %d: %s", len(batch), exc.kind)
            outcome = [CoderResult(r.claim_id, error=exc) for r in batch]
        if len(outcome) != len(batch):  # a coder bug: never lose a claim over it
            error = CoderError("engine_error", "coder returned a wrong number of results")
            outcome = [CoderResult(r.claim_id, error=error) for r in batch]
        still = []
        for index, result in zip(pending, outcome, strict=True):
            results[index] = result
            if not result.ok:
                still.append(index)
        pending = still
        if not pending:
            break
        if attempt < settings.retries:
            log.warning("retrying %d claim(s) the coder failed", len(pending))
    return [r for r in results if r is not None]


async def _restart(coder: Coder) -> None:
    try:
        await coder.restart()
    except Exception as exc:  # the next attempt fails fast and the claims end as coder_error
        log.error("coder restart failed: %s", describe(exc))
