"""One claim, one work item: everything the pipeline learns about a claim, from intake to the
event it emits.

The stages (``worker/stages.py``) read and fill these fields in order; a stage that fails for one
claim records the failure on that claim's item and the later stages pass it by. Telemetry is
recorded here as plain data (per-stage times and attributes) and turned into spans and metrics by
``worker/telemetry.py``; nothing in a work item is ever logged (the claim holds a narrative).
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from drg.assess import Assessment, ClaimAssessment
from drg.conventions.rules import Adjustment
from drg.registry import ReleasePeriod
from schemas.coded import ClaimCoded
from schemas.raw import ClaimRaw
from worker.coders.base import CoderResult
from worker.records import Record

#: How a failure ends for the claim (README, "Statuses and delivery"): ``needs_review`` for a
#: claim that could not be coded (a person codes it), ``dead_letter`` for a claim that broke a
#: stage on its own (a bug or odd data: kept in claims.dlq for replay).
Disposition = Literal["needs_review", "dead_letter"]


@dataclass(frozen=True, slots=True)
class StageFailure:
    stage: str
    error: BaseException = field(repr=False)  # its message may quote the claim: never logged
    disposition: Disposition

    @property
    def kind(self) -> str:
        """What the output event says: a coder error's kind, else ``internal_error``."""
        return "coder_error" if self.disposition == "needs_review" else "internal_error"


@dataclass(frozen=True, slots=True)
class StageTiming:
    """Wall-clock span of the batch run of a stage that this claim waited for (ns since the
    epoch), and the span of its batch in OpenTelemetry (for links), when traced."""

    start_ns: int
    end_ns: int

    @property
    def ms(self) -> float:
        return max(self.end_ns - self.start_ns, 0) / 1e6


@dataclass(slots=True, eq=False)
class WorkItem:
    """One claim of a micro-batch.

    ``record`` is the Kafka record it came from (None for `claimcoder code`); ``event_id`` is
    stable for the claim and its input bytes (``worker/event_ids.py``)."""

    claim: ClaimRaw
    event_id: str
    record: Record | None = None
    period: ReleasePeriod | None = None  # of the discharge date; None: no release covers it
    coded: CoderResult | None = None  # inference
    adjustments: tuple[Adjustment, ...] = ()  # apply_conventions: what the rules changed
    assessment: ClaimAssessment | None = None  # validate_codes, drg.group, drg.price
    result: Assessment | None = None  # the assessment once every phase ran
    output: ClaimCoded | None = None  # the claims.coded event as stored (store)
    output_json: str | None = None  # its JSON text, as stored and published
    failure: StageFailure | None = None
    timings: dict[str, StageTiming] = field(default_factory=dict)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage -> attributes

    @property
    def claim_id(self) -> str:
        return self.claim.claim_id

    @property
    def active(self) -> bool:
        """Still going through the stages: no failure recorded."""
        return self.failure is None

    def fail(self, stage: str, error: BaseException, disposition: Disposition) -> None:
        self.failure = StageFailure(stage, error, disposition)

    def note(self, stage: str, **attributes: Any) -> None:
        """Attributes of this claim's span of ``stage`` (ids, counts, codes; never text)."""
        self.attributes.setdefault(stage, {}).update(attributes)

    def copy_for_retry(self) -> "WorkItem":
        """A fresh item for the same claim, as intake made it (what a retried batch starts
        from)."""
        return dataclasses.replace(
            self,
            coded=None,
            adjustments=(),
            assessment=None,
            result=None,
            output=None,
            output_json=None,
            failure=None,
            timings={},
            attributes={},
        )
