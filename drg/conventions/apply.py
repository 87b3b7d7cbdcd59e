"""Apply ICD-10-CM's conventions (``drg.conventions.rules``) to one claim's codes, in the claim's
release. Pure: no I/O, tables built once per release (:class:`Conventions`).

Who gets fixed and who gets flagged:

- codes a person gave (``claimcoder estimate``) are never changed: each change the rules would
  make becomes a review reason naming the rule and the code at fault (:func:`review_reasons`:
  ``excludes1:E10.9``, ``sequencing:I13.0``);
- codes a coder proposed (the pipeline's ``apply_conventions`` stage) are **fixed** by the rules
  of :data:`CODER_FIXES` (the changes are reported in claims.coded, a dropped code goes to
  ``rejected_codes`` naming its rule and the code it gave way to: ``redundant:E11.65``), and
  **flagged** like a person's by the others.

Why only those are fixed for a coder: they never drop a code that can be right beside the one
kept (the principal by rule moves codes; "without X" beside "with X", two acute MIs of one
episode, two CKD stages contradict each other; a symptom the table of ``rules.symptoms`` lists
is part of the diagnosis beside it by definition, I.B.5; hypertension with CKD or heart failure
is one combination code by presumption, I.C.9.a, and that code decides the MS-DRG). The others,
Excludes1 pairs (whose I.A.12.a exception allows unrelated conditions, which a list of codes
cannot show) and an unspecified code beside a specific one, drop codes that the only gold
standard available, CodiEsp (CLEF eHealth 2020, BSC TeMU, CC BY 4.0), lists beside the code kept:
fixing them costs 0.017 and 0.013 micro-F1 on its dev split (docs/conventions.md; fixing
``combination`` costs 0.004, accepted for the price). A person, who can read the record, decides
them.
"""

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final

from drg.codeset.catalog import CodesetCatalog
from drg.codeset.memory import MemoryCodeSet
from drg.codeset.normalize import dotted, normalize
from drg.conventions.notes import TabularNotes, notes_for
from drg.conventions.rules import ALL_RULES, RULES, Adjustment, Context

#: Results of this many recent code sets are kept per release, for code sets of at most
#: ``MAX_RECENT_CODES`` codes (~1 KB each).
RECENT_RESULTS: Final = 4096
MAX_RECENT_CODES: Final = 40


@dataclass(frozen=True, slots=True)
class ConventionResult:
    codes: tuple[str, ...]  # what to bill, principal first; codes the rules did not know kept
    adjustments: tuple[Adjustment, ...]  # the changes made to ``codes``
    flags: tuple[Adjustment, ...] = ()  # what the rules not asked to fix would have changed


class Conventions:
    """The rules over one release's code set and tabular notes."""

    def __init__(self, codeset: MemoryCodeSet, notes: TabularNotes) -> None:
        self.release = codeset.release
        self._context = Context(codeset=codeset, notes=notes)
        # The rules are a pure function of (codes, fix) and their result is immutable, so the
        # results of recent code sets are kept: claims of one kind repeat their code set.
        self._recent = functools.lru_cache(maxsize=RECENT_RESULTS)(self._apply)

    def apply(self, raw_codes: Sequence[str], fix: Collection[str] = ALL_RULES) -> ConventionResult:
        """The rules over the claim's codes that the release lists, in order; codes it does
        not list (invalid, or spelled so they are no code) are left for validation, after the
        others. Each code once. Rules named in ``fix`` (``rules.RULES``) change the codes; the
        others only say what they would change (``flags``)."""
        codes = tuple(raw_codes)
        if len(codes) > MAX_RECENT_CODES:
            return self._apply(codes, frozenset(fix))
        return self._recent(codes, frozenset(fix))

    def _apply(self, raw_codes: tuple[str, ...], fix: frozenset[str]) -> ConventionResult:
        known: list[str] = []
        unknown: list[str] = []
        records = self._context.codeset.records
        for raw in raw_codes:
            code = normalize(raw)
            if code is not None and code in records:
                if code not in known:
                    known.append(code)
            else:
                unknown.append(raw)
        changes: list[Adjustment] = []
        flags: list[Adjustment] = []
        # ``shadow`` goes through every rule, so that what is flagged is what the whole rule
        # set would do (each rule seeing the codes the ones before it left); ``known`` only
        # through the rules that fix.
        shadow = list(known)
        for name, rule in RULES:
            would = rule(shadow, self._context)
            if name in fix:
                changes += rule(known, self._context)
            else:
                flags += would
        billed = set(known)  # a flag about a code a fixing rule removed says nothing more
        return ConventionResult(
            tuple(dotted(c) for c in known) + tuple(unknown),
            tuple(changes),
            tuple(f for f in flags if f.code in billed),
        )


#: The rules that fix a coder's codes (see the module docstring).
CODER_FIXES: Final = frozenset({"exclusive", "symptom", "sequencing", "combination"})


def review_reasons(adjustments: Sequence[Adjustment]) -> list[str]:
    """The review reason of each change the rules would make to codes a person gave:
    ``<rule>:<the code at fault>`` (dotted): the code to drop, the code to move first, the
    combination code to use."""
    reasons = []
    for change in adjustments:
        at_fault = change.other if change.action == "replaced" else change.code
        reasons.append(f"{change.rule}:{dotted(at_fault or change.code)}")
    return list(dict.fromkeys(reasons))


@functools.cache
def _conventions(catalog: CodesetCatalog, release: str) -> Conventions:
    return Conventions(catalog.codeset(release), notes_for(catalog, release))


def conventions_for(catalog: CodesetCatalog, release: str) -> Conventions:
    """The rules of ``release`` (built once per catalog and release: ~ the notes' build)."""
    return _conventions(catalog, release)
