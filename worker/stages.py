"""The stages of the pipeline, in the order a claim goes through them (:func:`pipeline_stages`).

Each stage takes a batch of work items (``worker/work.py``) and records on each its result or its
own failure; it raises only for the whole batch (a server is down, or a bug), which the policy of
``worker/retry.py`` handles. Every batch call is one engine call, one Redis round trip, one
thread hop (the coder), a few slices of msdrg on the loop (grouping) or one PostgreSQL
statement (pricing: none once its fiscal year's tables are read):

1. ``inference``: the coder codes the batch (per-claim retries; a claim it cannot code ends
   ``needs_review`` / ``coder_error``);
2. ``apply_conventions``: ICD-10-CM's own rules fix the coder's codes (Excludes1, combination
   codes, redundant and integral codes, the principal by rule), no I/O;
3. ``validate_codes``: every code checked in the code set of its claim's release (Redis);
4. ``drg.group``: principal diagnosis, Medicare Code Editor and MS-DRG (msdrg);
5. ``drg.price``: weights, rates and wage index (PostgreSQL);
6. ``store``: the claims.coded event built (``worker/outputs.py``) and stored idempotently.
"""

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from drg.assess import AssessmentInput, Assessor, ClaimAssessment
from drg.conventions.apply import CODER_FIXES, Conventions, review_reasons
from worker.coders.base import Coder, CoderResult, CodingRequest
from worker.coders.exceptions import CoderError, EngineStoppedError
from worker.errors import describe
from worker.outputs import coded_event
from worker.retry import RetryPolicy, Stage, retry_claims
from worker.store import ResultWriter
from worker.work import WorkItem

log = logging.getLogger(__name__)


def _assessable(item: WorkItem) -> bool:
    return item.failure is None and item.assessment is not None


#: The name of the coder's stage, the first.
INFERENCE: Final = "inference"


class Inference:
    """The coder, with per-claim retries; a lost engine is restarted and its claims retried
    within the same budget."""

    name = INFERENCE

    def __init__(self, coder: Callable[[], Coder], policy: RetryPolicy) -> None:
        self._coder = coder  # the pipeline's coder, built when the pipeline starts
        self._policy = policy

    def wants(self, item: WorkItem) -> bool:
        return item.failure is None and item.coded is None

    async def run(self, items: Sequence[WorkItem]) -> None:
        coder = self._coder()
        requests = [CodingRequest(i.claim_id, i.claim.narrative, period=i.period) for i in items]

        async def attempt(batch: Sequence[CodingRequest]) -> Sequence[CoderResult]:
            try:
                outcome = await coder.code_batch(batch)
            except EngineStoppedError as exc:
                log.error("coder engine stopped; restarting it")
                await _restart(coder)
                return [CoderResult(r.claim_id, error=exc) for r in batch]
            except CoderError as exc:  # a whole-batch failure that is not a lost engine
                log.warning("coder failed a batch of %d: %s", len(batch), exc.kind)
                return [CoderResult(r.claim_id, error=exc) for r in batch]
            if len(outcome) != len(batch):  # a coder bug: never lose a claim over it
                error = CoderError("engine_error", "coder returned a wrong number of results")
                return [CoderResult(r.claim_id, error=error) for r in batch]
            return outcome

        results = await retry_claims(attempt, requests, lambda r: not r.ok, self._policy)
        info = coder.info
        for item, result in zip(items, results, strict=True):
            item.coded = result
            item.note(
                self.name,
                **{
                    "claimcoder.coder": info.engine,
                    "claimcoder.model": info.model,
                    "claimcoder.codes.proposed": len(result.codes),
                },
            )
            if result.error is not None:
                item.fail(self.name, result.error, "needs_review")
                continue
            try:
                item.assessment = _assessment_of(item, result)
            except ValueError as exc:  # odd data the contract let through: this claim only
                item.fail(self.name, exc, "dead_letter")


def _assessment_of(item: WorkItem, result: CoderResult) -> ClaimAssessment:
    claim = item.claim
    return ClaimAssessment(
        AssessmentInput(
            claim_id=claim.claim_id,
            codes=result.codes,
            age=claim.patient.age,
            sex=claim.patient.sex,
            discharge_date=claim.discharge_date,
            discharge_status=claim.discharge_status,
            provider_id=claim.provider_id,
            admission_date=claim.admission_date,
            procedure_codes=claim.procedure_codes,  # from the claim only: coders give none
        ),
        item.period,
    )


async def _restart(coder: Coder) -> None:
    try:
        await coder.restart()
    except Exception as exc:  # the next attempt fails fast and the claims end as coder_error
        log.error("coder restart failed: %s", describe(exc))


class ApplyConventions:
    """ICD-10-CM's own rules on the coder's codes, in the tables of each claim's release
    (``drg.conventions``): no I/O. The rules of ``CODER_FIXES`` fix the codes (every change is
    kept on the item for the claims.coded event); what the others find becomes review
    reasons."""

    name = "apply_conventions"

    def __init__(self, conventions: Callable[[str], Conventions]) -> None:
        self._conventions = conventions

    def wants(self, item: WorkItem) -> bool:
        return _assessable(item) and item.period is not None

    async def run(self, items: Sequence[WorkItem]) -> None:
        for item in items:
            assert item.assessment is not None
            assert item.period is not None
            work = item.assessment
            rules = self._conventions(item.period.codeset_release)
            result = rules.apply(work.item.codes, fix=CODER_FIXES)
            item.adjustments = result.adjustments
            item.assessment = ClaimAssessment(
                dataclasses.replace(work.item, codes=result.codes), work.period
            )
            for reason in review_reasons(result.flags):
                item.assessment.reasons.add(reason)
            item.note(
                self.name,
                **{
                    "claimcoder.conventions.changes": len(result.adjustments),
                    "claimcoder.conventions.flags": len(result.flags),
                },
            )


class AssessmentPhase:
    """One phase of ``drg.assess.Assessor`` as a stage."""

    def __init__(
        self, name: str, phase: Callable[[Sequence[ClaimAssessment]], Awaitable[None]]
    ) -> None:
        self.name = name
        self._phase = phase

    def wants(self, item: WorkItem) -> bool:
        return _assessable(item)

    async def run(self, items: Sequence[WorkItem]) -> None:
        await self._phase([i.assessment for i in items if i.assessment is not None])


class Store:
    """Each claim's claims.coded event, built and upserted by ``event_id`` in one statement: a
    re-delivered claim gets the event stored the first time."""

    name = "store"

    def __init__(self, store: ResultWriter, coder: Callable[[], Coder]) -> None:
        self._store = store
        self._coder = coder

    def wants(self, item: WorkItem) -> bool:
        return item.failure is None or item.failure.disposition == "needs_review"

    async def run(self, items: Sequence[WorkItem]) -> None:
        model = self._coder().info
        events = [coded_event(item, model) for item in items]
        stored = await self._store.upsert([(e, e.model_dump_json()) for e in events])
        for item, (output, text) in zip(items, stored, strict=True):
            item.output, item.output_json = output, text


def pipeline_stages(
    coder: Callable[[], Coder],
    conventions: Callable[[str], Conventions],
    assessor: Assessor,
    store: ResultWriter,
    policy: RetryPolicy,
) -> tuple[Stage, ...]:
    """The stages, in order: the one place that states it."""
    return (
        Inference(coder, policy),
        ApplyConventions(conventions),
        AssessmentPhase("validate_codes", assessor.validate),
        AssessmentPhase("drg.group", assessor.group),
        AssessmentPhase("drg.price", assessor.price),
        Store(store, coder),
    )
