"""Synthetic discharge summaries that the repository can make on its own (no CodiEsp texts).

Each narrative strings together titles of billable FY2026 ICD-10-CM codes (the tabular list the
repository ships, a US government work) in clinical phrasings: diagnoses, a history, a negated
finding, a relative's disease, an uncertain one, and the lay narratives of the samples. Enough
variety to make the coder propose hundreds of distinct codes; deterministic for a seed.
"""

import json
import random
from pathlib import Path
from typing import Final

from drg.codeset.catalog import shipped_catalog
from tests.pipeline_support import NARRATIVES

SAMPLES: Final = Path(__file__).resolve().parents[1] / "worker" / "samples" / "claims.jsonl"

_TEMPLATES: Final = (
    "Admitted with {a}.",
    "Discharge diagnosis: {a}; also {b}.",
    "History of {a}.",
    "No evidence of {a}.",
    "His mother had {a}.",
    "Probable {a}, treated empirically.",
    "She presented with {a} and was found to have {b}.",
    "Known {a}. Seen today for {b}.",
    "Ruled out {a}. Final diagnosis {b}.",
)


def synthetic_narratives(count: int = 250, seed: int = 2026) -> list[str]:
    """``count`` narratives of 2-5 sentences each (release 2026-04 titles); the sample claims'
    narratives come first."""
    rng = random.Random(seed)
    titles = sorted(
        r.description.lower() for r in shipped_catalog().records("2026-04") if r.billable
    )
    samples = [json.loads(line)["narrative"] for line in SAMPLES.read_text().splitlines() if line]
    texts = [*samples, *NARRATIVES]
    while len(texts) < count:
        sentences = [
            rng.choice(_TEMPLATES).format(a=rng.choice(titles), b=rng.choice(titles))
            for _ in range(rng.randint(2, 5))
        ]
        texts.append("Discharge summary. " + " ".join(sentences))
    return texts[:count]
