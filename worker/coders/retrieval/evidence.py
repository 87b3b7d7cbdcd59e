"""What the coder learned from coded narratives: code priors and phrase-to-code evidence.

From documents with gold codes (CodiEsp train for the packaged artifact; a user's own coded
claims for theirs) it counts, for every phrase (a 1-3 stem run of a non-excluded mention), the
documents that contain it, for every code the documents coded with it, and for each pair the
documents with both. A pair is kept when it is seen in ``min_pair_docs`` documents and the phrase
makes the code more likely by at least ``min_lift``; at coding time its strength is the smoothed
share of the phrase's documents that carried the code. Counts, not text, are stored: no document
can be read back from the artifact.

The artifact is one gzip-compressed JSON file with the counts, the weights and threshold of the
scorer (scoring.py, learn.py) and how it was made; ``FORMAT`` changes whenever text processing or
the scorer's features change, since phrase keys are stems and weights belong to features.
"""

import gzip
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Final

FORMAT: Final = 2
PACKAGED: Final = "codiesp-train.json.gz"
SMOOTHING: Final = 2.0  # pseudo-documents pulling a pair's share towards the code's prior


@dataclass(frozen=True, slots=True)
class LearnParams:
    min_pair_docs: int = 2  # documents with both phrase and code
    min_lift: float = 2.0  # share of the phrase's documents with the code, over the code's prior
    min_share: float = 0.1  # share of the phrase's documents with the code
    max_codes: int = 10  # codes kept per phrase, strongest first


@dataclass(frozen=True)
class Evidence:
    name: str
    n_docs: int
    code_docs: Mapping[str, int]  # undotted billable code -> documents coded with it
    phrase_docs: Mapping[str, int]  # phrase -> documents containing it
    pairs: Mapping[str, tuple[tuple[str, int], ...]]  # phrase -> ((code, documents), ...)
    weights: Mapping[str, float] = field(default_factory=dict)  # scorer weights by feature
    threshold: float = 0.5  # probability from which a candidate is emitted
    meta: Mapping[str, Any] = field(default_factory=dict)  # provenance and parameters

    def prior(self, code: str) -> float:
        """Share of documents coded with ``code`` (smoothed: never 0)."""
        return (self.code_docs.get(code, 0) + 0.5) / (self.n_docs + 1.0)

    def strength(self, phrase: str, code: str, both: int) -> float:
        """Smoothed share of the phrase's documents that carry ``code``."""
        return (both + SMOOTHING * self.prior(code)) / (self.phrase_docs[phrase] + SMOOTHING)

    def with_scorer(
        self, weights: Mapping[str, float], threshold: float, **meta: Any
    ) -> "Evidence":
        return replace(self, weights=dict(weights), threshold=threshold, meta={**self.meta, **meta})

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "meta": dict(self.meta),
            "n_docs": self.n_docs,
            "weights": dict(self.weights),
            "threshold": self.threshold,
            "code_docs": dict(sorted(self.code_docs.items())),
            "phrase_docs": dict(sorted(self.phrase_docs.items())),
            "pairs": {p: [list(cd) for cd in cds] for p, cds in sorted(self.pairs.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Evidence":
        if data.get("format") != FORMAT:
            raise ValueError(f"evidence format {data.get('format')!r}, expected {FORMAT}")
        return cls(
            name=str(data["name"]),
            n_docs=int(data["n_docs"]),
            code_docs={str(k): int(v) for k, v in data["code_docs"].items()},
            phrase_docs={str(k): int(v) for k, v in data["phrase_docs"].items()},
            pairs={
                str(p): tuple((str(c), int(n)) for c, n in cds) for p, cds in data["pairs"].items()
            },
            weights={str(k): float(v) for k, v in data["weights"].items()},
            threshold=float(data["threshold"]),
            meta=dict(data.get("meta", {})),
        )


def count(
    name: str,
    documents: Iterable[tuple[Iterable[str], Iterable[str]]],
    params: LearnParams = LearnParams(),
) -> Evidence:
    """Evidence from (phrases, gold codes) per document; codes already billable and undotted."""
    n_docs = 0
    code_docs: Counter[str] = Counter()
    phrase_docs: Counter[str] = Counter()
    both: Counter[tuple[str, str]] = Counter()
    for phrases, codes in documents:
        n_docs += 1
        phrase_set, code_set = set(phrases), set(codes)
        code_docs.update(code_set)
        phrase_docs.update(phrase_set)
        both.update((p, c) for p in phrase_set for c in code_set)
    pairs: dict[str, list[tuple[str, int]]] = {}
    for (phrase, code), n in both.items():
        if n < params.min_pair_docs:
            continue
        share = n / phrase_docs[phrase]
        prior = code_docs[code] / n_docs
        if share >= params.min_share and share >= params.min_lift * prior:
            pairs.setdefault(phrase, []).append((code, n))
    kept = {
        p: tuple(sorted(cds, key=lambda cd: (-cd[1], cd[0]))[: params.max_codes])
        for p, cds in pairs.items()
    }
    return Evidence(
        name=name,
        n_docs=n_docs,
        code_docs=dict(code_docs),
        phrase_docs={p: phrase_docs[p] for p in kept},
        pairs=kept,
    )


def save(evidence: Evidence, path: Path) -> None:
    text = json.dumps(evidence.to_json(), separators=(",", ":"), sort_keys=False)
    # mtime=0: the same evidence gives the same bytes, so a rebuilt artifact diffs clean
    with path.open("wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as gz:
        gz.write(text.encode("utf-8"))


def load(path: Path | None = None) -> Evidence:
    """The artifact at ``path``, or the one packaged with claimcoder."""
    if path is None:
        data = resources.files("worker.coders.retrieval").joinpath("data", PACKAGED).read_bytes()
    else:
        data = path.read_bytes()
    return Evidence.from_json(json.loads(gzip.decompress(data)))
