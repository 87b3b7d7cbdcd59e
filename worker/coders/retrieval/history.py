"""A resolved condition the narrative tells only as history is coded as its personal history.

"History of stroke. Admitted for pneumonia." is no stroke this stay: the index finds I63.9 in
"stroke", but the patient has a history, which ICD-10-CM codes in its own categories. Chronic
conditions told as history ("history of hypertension", "PMH: type 2 diabetes") are still present
and keep their codes; only the conditions below, which end, become their history code, and only
when every mention that names the code sits in a history clause (mentions.py: "history of",
"hx", "PMH", "prior", "previous", or a "Past medical history:" header).

- **Malignant neoplasms** (C00-C96, primary sites): Z85.- "Personal history of malignant
  neoplasm", when the malignancy was excised or eradicated and no treatment is directed to it
  (Official Guidelines I.C.2.d). The Z85 code of each C category comes from the tabular list's
  own inclusion notes ("Conditions classifiable to C50.-" under Z85.3), to the billable code of
  that node whose title shares most words with the C category's ("... of prostate": Z85.46
  under Z85.4 "Conditions classifiable to C51-C63"). Secondary sites (C77-C79) have no history
  code of their own and stay.
- **Cerebral infarction and TIA** (I63.-, G45.-): Z86.73, history of cerebral infarction
  without residual deficits (I.C.9.d.3).
- **Acute myocardial infarction** (I21.-, I22.-): I25.2 "Old myocardial infarction", healed and
  not requiring further care (I.C.9.e.4).
- **Pulmonary embolism, venous thrombosis** (I26.-, I80.-, I82.-): Z86.711, Z86.718.
- **Pneumonia** (J12-J18): Z87.01; **urinary tract infection** (N39.0): Z87.440; **urinary
  calculi** (N20-N23): Z87.442; **traumatic fracture** (S-codes titled "fracture"): Z87.81;
  **nicotine dependence** (F17.2-): Z87.891 (tabular titles of Z86-Z87).

Codes are undotted. A history code the release does not bill leaves the code as it was.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from drg.codeset.memory import MemoryCodeSet
from worker.coders.retrieval.text import content_stems, words

# category prefix -> personal history code (see the module docstring for the rule of each)
_RESOLVED: Final[tuple[tuple[str, str], ...]] = (
    ("I63", "Z8673"),
    ("G45", "Z8673"),
    ("I21", "I252"),
    ("I22", "I252"),
    ("I26", "Z86711"),
    ("I80", "Z86718"),
    ("I82", "Z86718"),
    *((f"J{n}", "Z8701") for n in range(12, 19)),
    ("N390", "Z87440"),
    *((f"N{n}", "Z87442") for n in range(20, 24)),
    ("F172", "Z87891"),
)
_PRIMARY_MALIGNANT: Final = (("C00", "C76"), ("C7A", "C7A"), ("C80", "C96"))
_CLASSIFIABLE: Final = re.compile(r"conditions classifiable to (.+)", re.IGNORECASE)
_RANGE: Final = re.compile(r"([A-Z][0-9][0-9A-Z])(?:\.-)?(?:-([A-Z][0-9][0-9A-Z]))?")
# words of the neoplasm titles that say nothing about the site
_GENERIC: Final = frozenset(
    content_stems(["personal", "history", "malignant", "neoplasm", "other", "unspecified"])
)


def personal_history(
    ranked: Sequence[tuple[float, str]],
    named: Mapping[str, tuple[bool, float]],
    codeset: MemoryCodeSet,
) -> list[tuple[float, str]]:
    """``ranked`` (probability, code) with each code that only history clauses name (``named``:
    code -> (named only in history, position)) replaced by its personal history code, once.
    A code no clause names, which only learned evidence brings ("DVT" -> I82.90 beside the
    I82.409 that "history of DVT" names), is the same past condition when its history code is
    one of those: it is replaced too, not coded as current."""
    told = {
        target
        for code, (only_history, _) in named.items()
        if only_history and (target := history_code(code, codeset)) is not None
    }

    def history(code: str) -> str | None:
        only_history = named.get(code, (False, 0.0))[0]
        if only_history:
            return history_code(code, codeset)
        if code not in named and told:
            target = history_code(code, codeset)
            return target if target in told else None
        return None

    return replaced(ranked, history)


def no_history_beside_current(
    ranked: Sequence[tuple[float, str]],
    named: Mapping[str, tuple[bool, float]],
    codeset: MemoryCodeSet,
    history_told: bool,
) -> list[tuple[float, str]]:
    """``ranked`` without a personal history code that no clause names, which only learned
    evidence brings, beside a current code of the condition it is the history of, in a
    narrative that tells no history (``history_told``: no "history of", "prior", "PMH"
    clause): "acute infarct in the left MCA territory" is I63.412, not also Z86.73 "personal
    history of ... cerebral infarction" (I.C.9.d.3: history codes are for a condition no
    longer present)."""
    if history_told:
        return list(ranked)
    current = {
        target
        for _, code in ranked
        if not named.get(code, (False, 0.0))[0]
        and (target := history_code(code, codeset)) is not None
    }
    return [(p, c) for p, c in ranked if c in named or c not in current]


def replaced(
    ranked: Sequence[tuple[float, str]], new_code: Callable[[str], str | None]
) -> list[tuple[float, str]]:
    """``ranked`` with each code replaced by ``new_code(code)`` where that is not None, every
    code once (the first keeps its place and probability)."""
    out: list[tuple[float, str]] = []
    seen: set[str] = set()
    for probability, code in ranked:
        new = new_code(code) or code
        if new not in seen:
            seen.add(new)
            out.append((probability, new))
    return out


def history_code(code: str, codeset: MemoryCodeSet) -> str | None:
    """The billable personal history code of a resolved condition ``code``, or None."""
    if _malignant_primary(code):
        target = _neoplasm_history(codeset).get(code[:3])
    else:
        target = next((t for prefix, t in _RESOLVED if code.startswith(prefix)), None)
        if target is None and code.startswith("S") and _is_fracture(code, codeset):
            target = "Z8781"
    record = codeset.records.get(target) if target else None
    return target if record is not None and record.billable else None


def _malignant_primary(code: str) -> bool:
    return any(low <= code[:3] <= high for low, high in _PRIMARY_MALIGNANT)


def _is_fracture(code: str, codeset: MemoryCodeSet) -> bool:
    record = codeset.records.get(code)
    return record is not None and "fracture" in record.description.lower()


# id(codeset) -> (codeset, its table): built once per code set (~0.1 s), kept with the code set
_TABLES: dict[int, tuple[MemoryCodeSet, dict[str, str]]] = {}


def _neoplasm_history(codeset: MemoryCodeSet) -> dict[str, str]:
    """C category -> its billable Z85 code, from the Z85 inclusion notes of ``codeset``."""
    cached = _TABLES.get(id(codeset))
    if cached is not None and cached[0] is codeset:
        return cached[1]
    table = _build_neoplasm_history(codeset)
    _TABLES[id(codeset)] = (codeset, table)
    return table


def _build_neoplasm_history(codeset: MemoryCodeSet) -> dict[str, str]:
    records = codeset.records
    categories = [c for c in records if len(c) == 3]
    covering: dict[str, str] = {}  # C category -> deepest Z85 node whose note covers it
    for code, record in records.items():
        if not code.startswith("Z85"):
            continue
        for term in record.inclusion_terms:
            match = _CLASSIFIABLE.match(term)
            if match is None:
                continue
            for low, high in _RANGE.findall(match.group(1)):
                for category in _categories(categories, low, high or low):
                    if len(code) > len(covering.get(category, "")):
                        covering[category] = code
    found: dict[str, str] = {}
    for category, node in covering.items():
        site = set(content_stems(words(records[category].description))) - _GENERIC
        leaves = _billable_leaves(codeset, node)
        if leaves:
            found[category] = max(
                leaves,
                key=lambda leaf: (
                    len(site & set(content_stems(words(records[leaf].description)))),
                    "other" in records[leaf].description.lower(),
                ),
            )
    return found


def _categories(categories: Sequence[str], low: str, high: str) -> list[str]:
    return [c for c in categories if low <= c <= high]


def _billable_leaves(codeset: MemoryCodeSet, node: str) -> list[str]:
    record = codeset.records[node]
    if record.billable:
        return [node]
    leaves: list[str] = []
    for child in codeset.children.get(node, ()):
        leaves += _billable_leaves(codeset, child)
    return leaves
