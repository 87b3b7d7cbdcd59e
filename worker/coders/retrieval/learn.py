"""Learning the evidence artifact from coded narratives (``claimcoder retrieval learn``).

1. Every document is split into mentions once (the same code path as coding).
2. The scorer's weights are fitted on *out-of-fold* candidates: the documents are dealt into
   ``folds`` groups; the candidates of each group are scored with evidence counted on the other
   groups only, so the weights learn how far evidence from unseen documents can be trusted (with
   in-sample evidence every learned phrase would look perfect).
3. The threshold is the probability that maximises micro-F1 on those out-of-fold candidates, so
   it is chosen on the training documents too, never on the documents the coder is judged on.
4. The evidence kept in the artifact is then counted on all documents.

Deterministic: the same documents and parameters give the same artifact, byte for byte.
"""

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from drg.codeset.normalize import normalize
from worker.coders.retrieval.evidence import FORMAT, Evidence, LearnParams, count
from worker.coders.retrieval.index import CodeIndex
from worker.coders.retrieval.mentions import split
from worker.coders.retrieval.scoring import FEATURES, Scorer, fit_logistic

THRESHOLDS: Final = tuple(round(0.05 * i, 2) for i in range(2, 15))  # 0.10 ... 0.70


@dataclass(frozen=True, slots=True)
class CodedDocument:
    text: str
    codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LearnReport:
    documents: int
    codes_kept: int  # billable gold codes learned from
    codes_dropped: int  # gold codes that are not billable in the code set
    phrases: int
    pairs: int
    candidates: int  # out-of-fold candidate rows the weights were fitted on
    candidate_recall: float  # share of gold codes among the candidates (out of fold)
    threshold: float  # chosen on the out-of-fold candidates
    out_of_fold_f1: float  # micro-F1 there: what to expect on similar, unseen documents


def read_jsonl(path: Path, text_field: str, codes_field: str) -> list[CodedDocument]:
    docs = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            text, codes = record.get(text_field), record.get(codes_field)
            if not isinstance(text, str) or not isinstance(codes, list):
                raise ValueError(
                    f"line {number}: needs a string {text_field!r} and a list {codes_field!r}"
                )
            docs.append(CodedDocument(text, tuple(str(c) for c in codes)))
    return docs


def learn(
    name: str,
    documents: Sequence[CodedDocument],
    index: CodeIndex,
    *,
    top_k: int,
    max_codes: int,
    params: LearnParams | None = None,
    folds: int = 5,
    l2: float = 1.0,
    credit: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[Evidence, LearnReport]:
    params = params or LearnParams()
    records = index.codeset.records
    gold: list[set[str]] = []
    dropped = 0
    for doc in documents:
        listed = {c for raw in doc.codes if (c := normalize(raw)) is not None}
        kept = {c for c in listed if (r := records.get(c)) is not None and r.billable}
        dropped += len(listed) - len(kept)
        gold.append(kept)
    narratives = []
    for i, doc in enumerate(documents):
        narratives.append(split(doc.text))
        if progress:
            progress(i + 1)
    phrases = [n.phrases.keys() for n in narratives]
    scorer = Scorer(index, Evidence(name, 0, {}, {}, {}), top_k)
    lexical = [scorer.lexical(n) for n in narratives]

    # out-of-fold candidates: (document, codes, feature rows) in document order per fold
    held_out: list[tuple[int, list[str], npt.NDArray[np.float64]]] = []
    folds = max(2, min(folds, len(documents)))
    for fold in range(folds):
        rest = [i for i in range(len(documents)) if i % folds != fold]
        evidence = count(name, ((phrases[i], gold[i]) for i in rest), params)
        table = scorer.phrase_table(evidence)
        for i in range(fold, len(documents), folds):
            codes, rows = scorer.candidates(narratives[i], lexical[i], table, evidence)
            held_out.append((i, codes, rows))
    x_all = np.vstack([rows for _, _, rows in held_out])
    y_all = np.concatenate(
        [np.array([c in gold[i] for c in codes], dtype=np.float64) for i, codes, _ in held_out]
    )
    weights = fit_logistic(x_all, y_all, l2=l2)

    probabilities = 1.0 / (1.0 + np.exp(-(x_all @ weights)))
    scored: list[tuple[set[str], list[tuple[float, str]]]] = []
    start = 0
    for i, codes, _ in held_out:
        p = probabilities[start : start + len(codes)].tolist()
        scored.append((gold[i], sorted(zip(p, codes, strict=True), key=lambda pc: (-pc[0], pc[1]))))
        start += len(codes)
    threshold, oof_f1 = max(
        ((t, _micro_f1(scored, t, max_codes)) for t in THRESHOLDS), key=lambda tf: tf[1]
    )

    evidence = count(name, zip(phrases, gold, strict=True), params)
    evidence = evidence.with_scorer(
        {f: round(float(w), 6) for f, w in zip(FEATURES, weights, strict=True)},
        threshold,
        format=FORMAT,
        documents=len(documents),
        digest=_digest(documents),
        params=asdict(params),
        folds=folds,
        l2=l2,
        top_k=top_k,
        max_codes=max_codes,
        out_of_fold_f1=round(oof_f1, 4),
        **({"credit": credit} if credit else {}),
    )
    report = LearnReport(
        documents=len(documents),
        codes_kept=sum(len(g) for g in gold),
        codes_dropped=dropped,
        phrases=len(evidence.pairs),
        pairs=sum(len(v) for v in evidence.pairs.values()),
        candidates=len(y_all),
        candidate_recall=int(y_all.sum()) / max(1, sum(len(g) for g in gold)),
        threshold=threshold,
        out_of_fold_f1=oof_f1,
    )
    return evidence, report


def _micro_f1(
    scored: Sequence[tuple[set[str], list[tuple[float, str]]]], threshold: float, max_codes: int
) -> float:
    """Micro-F1 of emitting, per document, the codes from ``threshold`` up (at most
    ``max_codes``); candidates come sorted by falling probability."""
    tp = predicted = expected = 0
    for gold, ranked in scored:
        emitted = [code for p, code in ranked[:max_codes] if p >= threshold]
        tp += len(gold.intersection(emitted))
        predicted += len(emitted)
        expected += len(gold)
    return 2 * tp / (predicted + expected) if predicted + expected else 0.0


def _digest(documents: Iterable[CodedDocument]) -> str:
    """SHA-256 of the learned-from documents (texts and codes), to tell artifacts apart."""
    h = hashlib.sha256()
    for doc in documents:
        h.update(json.dumps([doc.text, list(doc.codes)]).encode("utf-8"))
    return h.hexdigest()
