"""Scoring a coder against gold codes (``claimcoder eval``): pure metric functions and the loop.

Codes are compared undotted and upper-case (drg.codeset.normalize); each document's predicted
and gold codes are sets. The figures:

- micro precision, recall, F1 over all (document, code) pairs;
- per-document precision, recall, F1, averaged over documents, computed as AxisMapper's
  ``eval/metrics.py`` does: a document with no predicted (no gold) codes has precision (recall) 0,
  and its F1 is 0 when precision and recall are both 0;
- category F1: micro F1 on the first three characters;
- exact match: share of documents whose predicted set equals the gold set;
- format compliance: share of documents the coder answered without error and with only
  code-shaped strings;
- hallucination rate: share of predicted codes that are not FY2026 codes at all (or not even
  code-shaped), non-billable rate: share that exist but are not billable;
- mean predicted and mean gold codes a document (FraudLens's under-prediction figure);
- when the gold lists are ordered (principal diagnosis first): principal accuracy, the share of
  documents whose predicted principal is the gold one; and, when the documents also give the
  patient's age and sex, DRG agreement: the share of documents whose predicted codes group to the
  gold codes' MS-DRG (msdrg, the version of the scoring date; each list's billable codes only,
  as the pipeline would bill them). Both are None otherwise.

The coder's codes are scored after the ICD-10-CM conventions (``drg.conventions``) when given,
as the pipeline's ``apply_conventions`` stage bills them.
"""

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from drg.codeset.normalize import normalize
from drg.codeset.status import CodeStatus
from drg.conventions.apply import CODER_FIXES, Conventions
from drg.grouping import GroupingEngine, GroupingRequest
from drg.registry import ReleasePeriod
from worker.coders.base import Coder, CoderResult, CodingRequest

# The figures of ``claimcoder eval --json``, named and ordered as issue 4 lists them.
JSON_KEYS: Final = (
    "micro_precision",
    "micro_recall",
    "micro_f1",
    "doc_f1",
    "category_f1",
    "exact_match",
    "format_compliance",
    "hallucination_rate",
    "non_billable_rate",
    "mean_predicted",
    "mean_gold",
    "principal_accuracy",
    "drg_agreement",
    "n_docs",
    "docs_per_s",
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the coder said about one document."""

    codes: tuple[str, ...]  # as emitted
    ok: bool  # answered without error


@dataclass(frozen=True, slots=True)
class Report:
    micro_precision: float
    micro_recall: float
    micro_f1: float
    doc_precision: float
    doc_recall: float
    doc_f1: float
    category_f1: float
    exact_match: float
    format_compliance: float
    hallucination_rate: float
    non_billable_rate: float
    mean_predicted: float
    mean_gold: float
    n_docs: int
    errors: int
    docs_per_s: float
    principal_accuracy: float | None = None  # gold lists ordered principal first only
    drg_agreement: float | None = None  # ... with age and sex too

    def to_dict(self) -> dict[str, float | int | None]:
        """The figures ``--json`` writes (the table also shows per-document precision and
        recall and the error count)."""
        figures: dict[str, float | int | None] = {key: getattr(self, key) for key in JSON_KEYS}
        return figures


def _key(raw: str) -> str:
    """Comparison key: the normalised code, or the raw string upper-cased if it is no code."""
    return normalize(raw) or raw.strip().upper()


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def micro(gold: Sequence[set[str]], predicted: Sequence[set[str]]) -> tuple[float, float, float]:
    tp = sum(len(g & p) for g, p in zip(gold, predicted, strict=True))
    n_pred = sum(len(p) for p in predicted)
    n_gold = sum(len(g) for g in gold)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    return precision, recall, _f1(precision, recall)


def per_document(
    gold: Sequence[set[str]], predicted: Sequence[set[str]]
) -> tuple[float, float, float]:
    """Sample-averaged precision, recall and F1 (AxisMapper's ``compute_metrics``)."""
    if not gold:
        return 0.0, 0.0, 0.0
    ps, rs, fs = [], [], []
    for g, p in zip(gold, predicted, strict=True):
        precision = len(g & p) / len(p) if p else 0.0
        recall = len(g & p) / len(g) if g else 0.0
        ps.append(precision)
        rs.append(recall)
        fs.append(_f1(precision, recall))
    n = len(gold)
    return sum(ps) / n, sum(rs) / n, sum(fs) / n


def score(
    gold_codes: Sequence[Sequence[str]],
    outcomes: Sequence[Outcome],
    classify: Callable[[str], CodeStatus],
    elapsed_s: float = 0.0,
    *,
    principal_first: bool = False,
    drg_agreement: float | None = None,
) -> Report:
    """All figures for documents with ``gold_codes`` and what the coder said about them;
    ``principal_first``: the gold lists are ordered, principal first; ``drg_agreement`` as
    :func:`drg_agreement` computed it."""
    if len(gold_codes) != len(outcomes):
        raise ValueError("one outcome per document")
    gold = [{_key(c) for c in codes} for codes in gold_codes]
    predicted = [{_key(c) for c in o.codes} for o in outcomes]
    n = len(gold)
    micro_p, micro_r, micro_f = micro(gold, predicted)
    doc_p, doc_r, doc_f = per_document(gold, predicted)
    _, _, category_f = micro(
        [{c[:3] for c in g} for g in gold], [{c[:3] for c in p} for p in predicted]
    )
    all_predicted = [c for o in outcomes for c in dict.fromkeys(_key(x) for x in o.codes)]
    validity = [classify(c) for c in all_predicted]
    n_pred = len(all_predicted)
    compliant = sum(o.ok and all(normalize(c) is not None for c in o.codes) for o in outcomes)
    return Report(
        micro_precision=micro_p,
        micro_recall=micro_r,
        micro_f1=micro_f,
        doc_precision=doc_p,
        doc_recall=doc_r,
        doc_f1=doc_f,
        category_f1=category_f,
        exact_match=sum(g == p for g, p in zip(gold, predicted, strict=True)) / n if n else 0.0,
        format_compliance=compliant / n if n else 0.0,
        hallucination_rate=validity.count(CodeStatus.INVALID) / n_pred if n_pred else 0.0,
        non_billable_rate=validity.count(CodeStatus.NOT_BILLABLE) / n_pred if n_pred else 0.0,
        mean_predicted=sum(len(p) for p in predicted) / n if n else 0.0,
        mean_gold=sum(len(g) for g in gold) / n if n else 0.0,
        n_docs=n,
        errors=sum(not o.ok for o in outcomes),
        docs_per_s=n / elapsed_s if elapsed_s > 0 else 0.0,
        principal_accuracy=principal_accuracy(gold_codes, outcomes) if principal_first else None,
        drg_agreement=drg_agreement,
    )


def principal_accuracy(gold_codes: Sequence[Sequence[str]], outcomes: Sequence[Outcome]) -> float:
    """Share of documents with gold codes whose predicted principal (first code) is the gold
    principal (first code)."""
    pairs = [(g, o) for g, o in zip(gold_codes, outcomes, strict=True) if g]
    if not pairs:
        return 0.0
    return sum(bool(o.codes) and _key(o.codes[0]) == _key(g[0]) for g, o in pairs) / len(pairs)


@dataclass(frozen=True, slots=True)
class Patient:
    age: int
    sex: Literal["M", "F", "U"]


def drg_agreement(
    gold_codes: Sequence[Sequence[str]],
    outcomes: Sequence[Outcome],
    patients: Sequence[Patient | None],
    grouper: GroupingEngine,
    billable: Callable[[str], bool],
    discharge_date: dt.date,
    msdrg_version: int,
) -> float | None:
    """Share of the documents with a patient and gold codes whose predicted billable codes
    (principal first) group to the MS-DRG of the gold billable codes; None without any."""
    requests: list[GroupingRequest] = []
    for gold, outcome, patient in zip(gold_codes, outcomes, patients, strict=True):
        if patient is None or not gold:
            continue
        for codes in (gold, outcome.codes):
            keys = tuple(dict.fromkeys(k for c in codes if billable(k := _key(c))))
            requests.append(
                GroupingRequest(keys, patient.age, patient.sex, 1, discharge_date, msdrg_version)
            )
    if not requests:
        return None
    outcomes_ = grouper.group_batch(requests)
    pairs = list(zip(outcomes_[::2], outcomes_[1::2], strict=True))
    return sum(g.drg is not None and g.drg == p.drg for g, p in pairs) / len(pairs)


async def run(
    coder: Coder,
    texts: Sequence[str],
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
    period: ReleasePeriod | None = None,
    conventions: Conventions | None = None,
) -> tuple[list[Outcome], float]:
    """Code ``texts`` in batches with a started coder, as claims of ``period`` (its code-set
    release; None: the coder's newest), then apply ``conventions`` to what it answered:
    outcomes, and the seconds spent coding."""
    outcomes: list[Outcome] = []
    elapsed = 0.0
    for start in range(0, len(texts), batch_size):
        batch = [
            CodingRequest(claim_id=str(i), narrative=texts[i], period=period)
            for i in range(start, min(start + batch_size, len(texts)))
        ]
        began = time.perf_counter()
        results: list[CoderResult] = await coder.code_batch(batch)
        elapsed += time.perf_counter() - began
        if len(results) != len(batch):
            raise RuntimeError("the coder returned a different number of results than claims")
        for r in results:
            codes = r.codes if r.ok else ()
            if conventions is not None and codes:
                codes = conventions.apply(codes, fix=CODER_FIXES).codes  # as the stage bills
            outcomes.append(Outcome(codes, r.ok))
        if progress is not None:
            progress(len(batch))
    return outcomes, elapsed
