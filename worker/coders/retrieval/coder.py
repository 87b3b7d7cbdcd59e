"""`RetrievalCoder`: the embedded CPU coder (no GPU, no download).

One claim's path: narrative -> mentions without negated, ruled-out or family-history words
(mentions.py, context.py) -> candidate codes from the BM25 index of the FY2026 tabular list
(index.py) and from phrases learned on coded narratives (evidence.py) -> a learned probability
per candidate (scoring.py) -> the billable codes from the threshold up, principal first.
When no candidate reaches the threshold, a clause that spells out a whole code text may still
give one code (see :func:`_fallback`): short lay narratives ("my tibia is fractured") name their
diagnosis plainly but in words the learned evidence, fitted on clinical case reports, never saw.

Start-up builds the index from the packaged tabular list (about 4 s: 2-3 s to parse the release,
1-2 s to index ~53,000 code texts); it runs in a thread, so the event loop stays free. Coding a
batch is CPU work too, done in one ``asyncio.to_thread`` call per batch.
"""

import asyncio
import dataclasses
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from drg.codeset.catalog import CodesetCatalog, shipped_catalog
from drg.codeset.memory import MemoryCodeSet
from drg.codeset.normalize import dotted
from drg.exceptions import ReferenceDataError
from schemas.coded import ModelInfo
from worker.coders.base import Coder, CoderResult, CodingRequest
from worker.coders.exceptions import CoderError, CoderUnavailableError
from worker.coders.retrieval.config import RetrievalSettings
from worker.coders.retrieval.evidence import Evidence, load
from worker.coders.retrieval.history import (
    no_history_beside_current,
    personal_history,
    replaced,
)
from worker.coders.retrieval.index import CodeIndex, index_for
from worker.coders.retrieval.injuries import is_injury, with_lay_injuries
from worker.coders.retrieval.linking import link
from worker.coders.retrieval.mentions import Mention, Narrative, split
from worker.coders.retrieval.scoring import FEATURES, REASON, Scorer, clause_position, side_named
from worker.coders.retrieval.text import clinical_stems, stem

log = logging.getLogger(__name__)

METHOD: Final = "bm25-evidence-lr"  # name of the method; the artifact's name and digest follow
# Never the principal diagnosis: external causes (V-Y). Only when nothing else is: symptoms (R)
# and factors influencing health status (Z), which guidelines code as principal only when no
# definitive diagnosis was made.
_NOT_PRINCIPAL: Final = frozenset("VWXY")
_PRINCIPAL_LAST: Final = frozenset("RZ")
# Feature columns the fallback reads (see scoring.py): "a mention covers every required word of
# one of the code's texts, and no more specific one" and how many words that text requires (log).
_LEX_FULL: Final = FEATURES.index("lex_full")
_LEX_WORDS: Final = FEATURES.index("lex_words")
_LEX_COVERAGE: Final = FEATURES.index("lex_coverage")
_EV_STRENGTH: Final = FEATURES.index("ev_strength")
_RECORD_CHAPTERS: Final = frozenset("OP")  # pregnancy, perinatal: their own records only
# the columns learned evidence fills (scoring.py), zeroed to read a candidate's lexical score
_EVIDENCE_COLUMNS: Final = [
    FEATURES.index(f)
    for f in ("ev_strength", "ev_lift", "ev_phrases", "ev_lexical", "lex_and_ev", "ev_support")
]
# ... and whether the best text of the code is an Excludes note naming it: "urinary tract
# infection (O08.83)" under another code is no statement that the narrative means O08.83.
_LEX_REFERENCE: Final = FEATURES.index("lex_reference")
# The fallback's bar: a fully covered code text of at least two required words ("fracture" +
# "tibia"); one word alone ("discharge", "pain") names too little to code without evidence.
_FALLBACK_WORDS: Final = 2
#: The most mentions a narrative short enough for :func:`_one_clause` has.
_SHORT_NARRATIVE: Final = 3
#: Stems that tell how a condition is told, not what it is (:func:`_one_clause`).
_FRAMING: Final = frozenset(
    {"patient", "complain", "present", "report", "admit", "diagnosi", "diagnos", "has", "had"}
    | {"sever", "bad", "terribl", "worst", "mild", "new", "now", "today", "a", "with"}
)
# Below the threshold, a code text of this many required words that one clause covers is coded
# anyway (see :func:`_spelled_out`).
_SPELLED_WORDS: Final = 3
# ... and a code's own description of this many words, from this learned probability up
_SPELLED_DESCRIPTION_WORDS: Final = 2
_SPELLED_FLOOR: Final = 0.08
_LEX_DESCRIPTION: Final = FEATURES.index("lex_description")
_POSITION: Final = FEATURES.index("position")
# Catch-all codes of a whole chapter's residue: "Illness, unspecified", "Unspecified infectious
# disease", "Other infectious disease" (see :func:`_explained_catch_alls`).
CATCH_ALL: Final = frozenset({"R69", "B999", "B998"})
# Not a definitive diagnosis: external causes, signs and symptoms, status codes.
_NOT_DEFINITIVE: Final = _NOT_PRINCIPAL | _PRINCIPAL_LAST
# Signs and symptoms outside chapter 18 (I.C.18: "Chapter 18 includes ... many, but not all,
# codes for symptoms"): gastrointestinal bleeding told by its sign (K92.0 hematemesis, K92.1
# melena, K92.2 "Gastrointestinal hemorrhage, unspecified"), pain in a limb, a joint or the
# back (M79.6-, M25.5-, M54.-).
_SYMPTOMS_ELSEWHERE: Final = ("K920", "K921", "K922", "M796", "M255", "M54")


def _is_symptom(code: str) -> bool:
    """A sign or symptom: chapter 18 (R00-R99) or :data:`_SYMPTOMS_ELSEWHERE`."""
    return code[0] == "R" or code.startswith(_SYMPTOMS_ELSEWHERE)


# The least probability of a code named as the reason for the stay that the threshold left out
# (see _reason_for_stay): below it, the learned model has seen the words coded otherwise.
STAY_FLOOR: Final = 0.05
_SYMPTOMS_DIAGNOSIS_FLOOR: Final = 0.2
# "Not elsewhere classified" codes of a condition that other codes classify by site or kind:
# the NEC code -> the stem a code that classifies the condition has in its texts.
NEC_BY_CONDITION: Final[dict[str, frozenset[str]]] = {
    "R58": frozenset(stem(["hemorrhage", "bleeding"]))  # K57.91 "... with bleeding"
}
# Hedges of an uncertain diagnosis (Official Guidelines II.H), stemmed as text.stem does.
# With "known" ("known CHF and CKD"), they qualify a condition and name none.
_HEDGES: Final = frozenset(
    stem(["probable", "probably", "possible", "possibly", "suspected", "likely", "questionable"])
    + stem(["known"])
)
# Where a lay injury stands among the codes the narrative names (see _principal_first):
# named, not in a history clause, after every code named in index words.
_LAY_NAMED: Final = (False, 1.0)


@dataclass(frozen=True, slots=True)
class Coded:
    codes: tuple[str, ...]  # undotted, billable, principal first
    probabilities: tuple[float, ...]


class RetrievalCoder(Coder):
    """One index and scorer per code-set release of ``catalog`` (default: the releases
    claimcoder ships); each claim is coded with the release of its discharge date
    (``CodingRequest.period``), so it proposes only codes that exist and are billable there."""

    def __init__(self, settings: RetrievalSettings, catalog: CodesetCatalog | None = None) -> None:
        self.settings = settings
        self.catalog = catalog or shipped_catalog()
        self._scorers: dict[str, Scorer] = {}
        self._evidence: Evidence | None = None
        self._lock = threading.Lock()

    @property
    def info(self) -> ModelInfo:
        name = "unloaded"
        if self._evidence is not None:
            evidence = self._evidence
            digest = str(evidence.meta.get("digest", ""))[:12]
            name = f"{evidence.name}@{digest}" if digest else evidence.name
        return ModelInfo(engine="retrieval", model=f"{METHOD}/{name}", adapter=None, profile=None)

    async def start(self) -> None:
        await asyncio.to_thread(self.load)

    def load(self) -> dict[str, Scorer]:
        """Build the index of every release and load the evidence (idempotent; thread-safe)."""
        with self._lock:
            if not self._scorers:
                started = time.perf_counter()
                try:
                    evidence = load(self.settings.artifact)
                    scorers = {}
                    for release in self.catalog.releases:
                        index = index_for(self.catalog.codeset(release))
                        scorers[release] = Scorer(
                            index, _usable(evidence, index), self.settings.top_k
                        )
                except (OSError, ValueError, KeyError, ReferenceDataError) as exc:
                    raise CoderUnavailableError(f"retrieval coder cannot load: {exc}") from exc
                self._evidence = evidence
                self._scorers = scorers
                log.info(
                    "retrieval coder ready in %.1f s (code sets %s)",
                    time.perf_counter() - started,
                    ", ".join(scorers),
                )
            return self._scorers

    def scorer(self, release: str | None = None) -> Scorer:
        """The scorer of ``release`` (default: the newest release of the catalog). Raises
        CoderError(unknown_release) for a release the catalog does not hold."""
        scorers = self.load()
        chosen = release or self.catalog.registry.newest_release
        found = scorers.get(chosen)
        if found is None:
            raise CoderError("unknown_release", f"no code set {chosen!r} in the retrieval coder")
        return found

    async def code_batch(self, requests: Sequence[CodingRequest]) -> list[CoderResult]:
        if not requests:
            return []
        return await asyncio.to_thread(self._code_all, requests)

    def _code_all(self, requests: Sequence[CodingRequest]) -> list[CoderResult]:
        self.load()
        results = []
        for request in requests:
            started = time.perf_counter()
            try:
                scorer = self.scorer(request.codeset_release)
            except CoderError as exc:
                results.append(CoderResult(request.claim_id, error=exc, adapter=request.adapter))
                continue
            try:
                coded = self.code_one(request.narrative, scorer)
            except Exception as exc:  # one claim's failure must not fail the batch
                # the type only: a message could quote the narrative
                log.warning("retrieval coder failed on a claim: %s", type(exc).__name__)
                error = CoderError("engine_error", f"retrieval failed: {type(exc).__name__}")
                results.append(
                    CoderResult(
                        claim_id=request.claim_id,
                        error=error,
                        latency_ms=(time.perf_counter() - started) * 1000,
                        adapter=request.adapter,
                    )
                )
                continue
            codes = tuple(dotted(c) for c in coded.codes)
            results.append(
                CoderResult(
                    claim_id=request.claim_id,
                    codes=codes,
                    raw_output=" ".join(
                        f"{c}:{p:.3f}" for c, p in zip(codes, coded.probabilities, strict=True)
                    ),
                    latency_ms=(time.perf_counter() - started) * 1000,
                    adapter=request.adapter,
                )
            )
        return results

    def code_one(
        self, narrative: str, scorer: Scorer | None = None, release: str | None = None
    ) -> Coded:
        """Code one narrative synchronously (blocking: for threads, tests and benchmarks), with
        ``scorer`` or the scorer of ``release`` (default: the newest release)."""
        scorer = scorer or self.scorer(release)
        mentions = split(narrative)
        lexical = scorer.lexical(mentions)
        codes, rows = scorer.candidates(mentions, lexical)
        threshold = self.settings.min_probability
        if threshold is None:
            threshold = scorer.evidence.threshold
        records = scorer.index.codeset.records
        probabilities = _named_floor(scorer, rows)
        features = rows.tolist()
        ranked = sorted(
            (
                (p, c)
                for c, p, row in zip(codes, probabilities, features, strict=True)
                if p >= threshold and records[c].billable and _stated(c, row) and _mentioned(c, row)
            ),
            key=lambda pc: (-pc[0], pc[1]),
        )
        taken = {c for _, c in ranked}
        ranked += _spelled_out(codes, features, probabilities, taken, scorer.index.codeset)
        ranked = ranked[: self.settings.max_codes]
        stay = {c for c, (history, at) in lexical.named.items() if at == REASON and not history}
        short = len(mentions.mentions) <= _SHORT_NARRATIVE
        # none, or in a short narrative only a catch-all ("Behcet's disease." R69 "Illness,
        # unspecified", learned from "disease")
        if not ranked or (short and all(c in CATCH_ALL for _, c in ranked)):
            if short:
                stay |= _one_clause(lexical.named, mentions.mentions, scorer)
            ranked = _fallback(codes, features, probabilities, stay) + ranked
        else:
            ranked += _reason_for_stay(codes, features, probabilities, stay, taken)
            ranked += _diagnosis_of_the_symptoms(
                codes, features, probabilities, lexical.named, {c for _, c in ranked}
            )
        ranked = _explained_catch_alls(ranked, mentions.phrases, scorer)
        ranked = _classified_elsewhere(ranked, scorer)
        by_code = dict(zip(codes, features, strict=True))
        ranked = _inside_named(ranked, by_code, mentions, scorer)
        readings = _named_readings(ranked, codes, features, lexical.named, mentions, scorer)
        ranked = replaced(ranked, readings.get)
        # resolved conditions told only as history: their personal history codes (history.py)
        ranked = personal_history(ranked, lexical.named, scorer.index.codeset)
        ranked = no_history_beside_current(
            ranked,
            lexical.named,
            scorer.index.codeset,
            any(m.history for m in (*mentions.mentions, *mentions.negated)),
        )
        # injuries and their external causes told in lay words (injuries.py), never principal
        before = {c for _, c in ranked}
        ranked = with_lay_injuries(ranked, narrative, scorer.index.codeset, threshold)
        # a lay injury is named by the narrative (after the codes it names in index words)
        # (where the index words name it too, as they tell it: "admitted for hip fracture")
        named = {c: _LAY_NAMED for _, c in ranked if c not in before} | dict(lexical.named)
        ranked = _unspecified_read_as_specific(ranked, named, scorer.index)
        ranked = _chronic_beside_acute_injury(ranked, named)
        ranked = _told_twice(ranked, scorer.index.codeset)
        first = _stay_principal(ranked, named, by_code, mentions)
        ranked = _principal_first(
            ranked, named, _unspecified_with_siblings(ranked, scorer.index), first
        )
        linked = link([c for _, c in ranked], narrative, scorer.index.codeset)
        scores = dict(zip(codes, probabilities, strict=True)) | {c: p for p, c in ranked}
        return Coded(tuple(linked), tuple(round(scores.get(c, 0.0), 6) for c in linked))


def _explained_catch_alls(
    ranked: list[tuple[float, str]], phrases: Mapping[str, float], scorer: Scorer
) -> list[tuple[float, str]]:
    """``ranked`` without the catch-all codes (:data:`CATCH_ALL`) that another coded code
    explains: every phrase of the narrative that supports the catch-all is made of words of
    that code's texts (phrases of hedges alone, "probable", name no condition). "Chronic kidney
    disease" supports R69 "Illness, unspecified" through "disease", and "urinary tract
    infection" B99.9 "Unspecified infectious disease" through "infection", only because
    annotators coded those words alone elsewhere; beside N18.4 or N39.0 they name nothing more
    (a code needs a mention of its own: [retrieval] issue, and I.A.9.b: unspecified codes only
    when the record says no more)."""
    catch_alls = [c for _, c in ranked if c in CATCH_ALL]
    if not catch_alls:
        return ranked
    others = [c for _, c in ranked if c not in CATCH_ALL]
    words_of_others = set().union(*(scorer.code_stems(c) for c in others)) if others else set()
    supports = _supports(phrases, set(catch_alls), scorer)
    dropped = set()
    for code in catch_alls:
        support = [stems for stems in supports.get(code, []) if not stems <= _HEDGES]
        # a lay abbreviation says its clinical words: "COPD" supports R69 through nothing
        # J44.1 "chronic obstructive pulmonary disease with (acute) exacerbation" does not say
        if support and all(clinical_stems(stems) <= words_of_others for stems in support):
            dropped.add(code)
    return [(p, c) for p, c in ranked if c not in dropped]


def _classified_elsewhere(
    ranked: list[tuple[float, str]], scorer: Scorer
) -> list[tuple[float, str]]:
    """``ranked`` without a "not elsewhere classified" code (:data:`NEC_BY_CONDITION`) beside
    a code that classifies its condition: R58 "Hemorrhage, not elsewhere classified" goes
    beside I61.9 "Nontraumatic intracerebral hemorrhage, unspecified" or K92.2
    "Gastrointestinal hemorrhage, unspecified" (Official Guidelines I.A.9.a: NEC is for a
    condition the classification has no specific code for). Learned evidence brings R58 in
    from any word of a hemorrhage ("massive", "ruptured aneurysm")."""
    codes = {c for _, c in ranked}
    dropped = {
        nec
        for nec, condition in NEC_BY_CONDITION.items()
        if nec in codes
        and any(not condition.isdisjoint(scorer.code_stems(c)) for c in codes if c != nec)
    }
    return [(p, c) for p, c in ranked if c not in dropped]


def _inside_named(
    ranked: list[tuple[float, str]],
    rows: Mapping[str, Sequence[float]],
    mentions: Narrative,
    scorer: Scorer,
) -> list[tuple[float, str]]:
    """``ranked`` without the codes that only learned phrases support (no text of the code is
    in the narrative, even in part) when every one of those phrases is made of words of one
    code that the narrative names in full: the words belong to that diagnosis. "Acute pulmonary
    embolism" names I26.99, whose words hold "acute pulmonary", a phrase annotators coded
    J81.0 "Acute pulmonary edema" for elsewhere; the narrative says no edema. A code needs a
    mention of its own ([retrieval] issue; I.A.19: code what is documented)."""
    named = [c for _, c in ranked if rows[c][_LEX_FULL] > 0.0]
    learned_only = {c for _, c in ranked if c not in named and rows[c][_LEX_COVERAGE] == 0.0}
    if not named or not learned_only:
        return ranked
    words_of = [scorer.code_stems(c) for c in named]
    supports = _supports(mentions.phrases, learned_only, scorer)
    dropped = {
        code
        for code in learned_only
        if (support := supports.get(code))
        and all(
            len(stems) > 1 and any(clinical_stems(stems) <= words for words in words_of)
            for stems in support
        )
    }
    return [(p, c) for p, c in ranked if c not in dropped]


def _named_floor(scorer: Scorer, rows: npt.NDArray[np.float64]) -> list[float]:
    """Each candidate's probability; a code a clause names in full keeps at least what its
    lexical features alone give it. Weak co-occurrence evidence ("laparoscopic" -> K35.80 in
    one training document) would otherwise pull a stated "acute appendicitis" below the
    threshold: the learned weight of "lexical and learned together" is fitted on the common
    case of strong evidence, and a faint phrase must not veto a statement."""
    probabilities = scorer.score(rows)
    # named by a text of its own, not by an Excludes note that points at it
    named = (rows[:, _LEX_FULL] > 0.0) & (rows[:, _EV_STRENGTH] > 0.0)
    named &= rows[:, _LEX_REFERENCE] == 0.0
    if named.any():
        lexical_only = rows[named].copy()
        lexical_only[:, _EVIDENCE_COLUMNS] = 0.0
        probabilities[named] = np.maximum(probabilities[named], scorer.score(lexical_only))
    result: list[float] = probabilities.tolist()
    return result


def _supports(
    phrases: Iterable[str], codes: Collection[str], scorer: Scorer
) -> dict[str, list[set[str]]]:
    """The stems of each learned phrase of the narrative that supports one of ``codes``: one
    pass over the phrases, whatever the number of codes."""
    found: dict[str, list[set[str]]] = {}
    if not codes:
        return found
    for phrase in phrases:
        for support in scorer.table.get(phrase, ()):
            if support.code in codes:
                found.setdefault(support.code, []).append(set(phrase.split()))
    return found


def _named_readings(
    ranked: Sequence[tuple[float, str]],
    codes: Sequence[str],
    rows: Sequence[Sequence[float]],
    named: Mapping[str, tuple[bool, float]],
    narrative: Narrative,
    scorer: Scorer,
) -> dict[str, str]:
    """Learned codes of ``ranked`` -> the code the narrative's own words name instead.

    Training documents read "myocardial infarction" as I25.2 "Old myocardial infarction" (most
    of theirs were in a history); a text that says no "old" names I21.9, "Myocardial infarction
    (acute) NOS" in the index. A code that only evidence suggests (no clause covers a text of
    its own) whose every supporting phrase is words of both its own texts and of a code of the
    same chapter letter that a clause names in full is that named code. On CodiEsp dev:
    micro-F1 -0.0002."""
    records = scorer.index.codeset.records
    winners = [
        c
        for c, row in zip(codes, rows, strict=True)
        if row[_LEX_FULL] > 0.0 and c in named and records[c].billable
    ]
    readings: dict[str, str] = {}
    if not winners:
        return readings
    coded = {code for _, code in ranked}
    learned = {
        code
        for code, row in zip(codes, rows, strict=True)
        if code in coded and row[_LEX_FULL] <= 0.0 and code not in named and row[_EV_STRENGTH] > 0.0
    }
    supports = _supports(narrative.phrases, learned, scorer)
    for code in learned:
        support = supports.get(code, [])
        own = scorer.code_stems(code)
        if not support or not all(stems <= own for stems in support):
            continue
        for winner in winners:
            if winner[0] == code[0] and all(
                stems <= scorer.code_stems(winner) for stems in support
            ):
                readings[code] = winner
                break
    return readings


def _mentioned(code: str, row: Sequence[float]) -> bool:
    """A code needs a mention: a learned phrase of the narrative that supports it, or a clause
    that covers one of its texts fully with no more specific text covering it too. A text only
    partly covered ("sepsis due to methicillin susceptible Staphylococcus aureus" for A41.02
    "... methicillin resistant ...") is a near miss, not a statement. A pregnancy or newborn
    code (chapters 15-16: maternal and newborn records only, I.C.15.a.1, I.C.16.a.1) that only
    an Excludes note of another code names ("urinary tract infection (O08.83)") is none."""
    by_reference = row[_LEX_REFERENCE] > 0.0 and code[0] in _RECORD_CHAPTERS
    return (row[_LEX_FULL] > 0.0 and not by_reference) or row[_EV_STRENGTH] > 0.0


def _stated(code: str, row: Sequence[float]) -> bool:
    """An abnormal finding without diagnosis (R70-R94: laboratory, imaging and other results) is
    coded only when the text states the finding itself, every word of its code text ("elevated
    C-reactive protein"), not when it only reports the test ("CRP 12 mg/L"): abnormal findings
    are not coded unless the provider indicates their clinical significance (Official
    Guidelines Section III.B)."""
    return not (code[0] == "R" and "R70" <= code[:3] <= "R94") or row[_LEX_FULL] > 0.0


def _spelled_out(
    codes: Sequence[str],
    rows: Sequence[Sequence[float]],
    probabilities: Sequence[float],
    taken: set[str],
    codeset: MemoryCodeSet,
) -> list[tuple[float, str]]:
    """Codes below the threshold whose whole code text one clause spells out, most probable
    first: a text of at least three required words ("fracture of the neck of the left femur"),
    or the code's own description of two ("unstable angina": I20.0) when the score reaches
    :data:`_SPELLED_FLOOR`. The learned score rates such codes low when training never saw
    them, yet a narrative that names a diagnosis this fully means it. On CodiEsp dev, 13 of the
    36 codes the three-word rule adds are right (36%, above the precision where adding codes
    lowers F1): micro-F1 0.519 -> 0.521; the two-word descriptions add 0.003 more."""
    floor = math.log1p(_SPELLED_WORDS) - 1e-9
    floor_description = math.log1p(_SPELLED_DESCRIPTION_WORDS) - 1e-9
    records = codeset.records
    found = [
        (p, code)
        for code, row, p in zip(codes, rows, probabilities, strict=True)
        if code not in taken
        and records[code].billable
        and row[_LEX_FULL] > 0.0
        and row[_LEX_REFERENCE] == 0.0
        and code[0] not in _NOT_PRINCIPAL
        and (
            row[_LEX_WORDS] >= floor
            or (
                row[_LEX_WORDS] >= floor_description
                and row[_LEX_DESCRIPTION] > 0.0
                and p >= _SPELLED_FLOOR
            )
        )
    ]
    return sorted(found, key=lambda pc: (-pc[0], pc[1]))


def _reason_for_stay(
    codes: Sequence[str],
    rows: Sequence[Sequence[float]],
    probabilities: Sequence[float],
    stay: Collection[str],
    taken: Collection[str],
) -> list[tuple[float, str]]:
    """The codes a clause names in full as the reason for the stay (``stay``: "admitted for",
    "came in because", under a "Final diagnosis" heading) that the threshold left out while
    other codes passed it: the principal diagnosis is the condition established to be chiefly
    responsible for the admission (Section II), and a comorbidity the training documents code
    more often must not take its place ("Type 2 diabetes. Admitted for an acute gout flare" is
    M10.9 first, not E11.9 alone). At least :data:`STAY_FLOOR` probable; a definitive
    diagnosis only, never a sign or symptom (chapter 18), a Z code or an external cause: a
    symptom that brought the patient in is not coded once the diagnosis that explains it is
    (I.B.5, Section II.A), which a stay's account often gives later ("admitted for vomiting
    ... gastric adenocarcinoma")."""
    return [
        (p, code)
        for code, row, p in zip(codes, rows, probabilities, strict=True)
        if code in stay and code not in taken and p >= STAY_FLOOR and _definitive_in_full(code, row)
    ]


def _definitive_in_full(code: str, row: Sequence[float]) -> bool:
    """A definitive diagnosis (not a sign or symptom, a Z code or an external cause) that a
    clause names in full by its own text, not by an Excludes note that points at it."""
    return code[0] not in _NOT_DEFINITIVE and row[_LEX_FULL] > 0.0 and row[_LEX_REFERENCE] == 0.0


def _diagnosis_of_the_symptoms(
    codes: Sequence[str],
    rows: Sequence[Sequence[float]],
    probabilities: Sequence[float],
    named: Mapping[str, tuple[bool, float]],
    taken: Collection[str],
) -> list[tuple[float, str]]:
    """Definitive diagnoses a clause names in full, below the threshold, when signs or symptoms
    (chapter 18) passed it: "fever, rash, red eyes ...; diagnosed with MIS-C" is M35.81, not
    the fever and the rash alone. Signs and symptoms are coded only when no definitive
    diagnosis is established (I.B.4, I.C.18); those routinely part of the diagnosis then go
    (I.B.5). At least :data:`_SYMPTOMS_DIAGNOSIS_FLOOR` probable, its own text (not an
    Excludes note), not history. On CodiEsp dev, micro-F1 0.5208 -> 0.5210 with that floor;
    at :data:`STAY_FLOOR` it added too many (precision 0.642 -> 0.614, F1 0.515)."""
    if not any(_is_symptom(c) for c in taken):
        return []
    return [
        (p, code)
        for code, row, p in zip(codes, rows, probabilities, strict=True)
        if code in named
        and not named[code][0]
        and code not in taken
        and p >= _SYMPTOMS_DIAGNOSIS_FLOOR
        and _definitive_in_full(code, row)
    ]


def _one_clause(
    named: Mapping[str, tuple[bool, float]], mentions: Sequence[Mention], scorer: Scorer
) -> set[str]:
    """The codes ``named`` (:attr:`Lexical.named`) names as current, when one clause names them
    all and says nothing more of the condition than their texts do ("Headache.", "Patient
    complains of migraine."; not "Pulmonary mycetoma." for B47.9 "Mycetoma, unspecified", a
    disease of the foot), else none: a short narrative that tells one condition means it, even
    in one word."""
    current = {c: at for c, (history, at) in named.items() if not history}
    if len(set(current.values())) != 1:
        return set()
    return {
        code
        for code, words in ((c, scorer.code_stems(c)) for c in current)
        if any(set(m.stems) - words <= _FRAMING and not words.isdisjoint(m.stems) for m in mentions)
    }


def _fallback(
    codes: Sequence[str],
    rows: Sequence[Sequence[float]],
    probabilities: Sequence[float],
    stay: Collection[str] = (),
) -> list[tuple[float, str]]:
    """At most one code for a narrative where no candidate reached the threshold: the candidate
    whose code text a single clause covers completely (every required word present, the most
    specific such text of that clause), with the longest such text, then the most probable.
    A text of one word is enough for a code named as the reason for the stay (``stay``: under
    a "Final diagnosis" heading or in an "admitted for" clause, Section II): "Final dx migraine
    without aura" is G43.- (else the claim goes unpriced, with no code at all).

    Candidates are billable already (the index resolves to default leaves, the initial encounter
    for injuries, unspecified laterality unless a side is named) and negated ones are gone
    (scoring.py). External causes (V-Y) are left out: a lay account of how it happened ("a car
    ran over my leg") rarely spells out a whole external-cause text, and a wrong one is worse
    than none. Its probability is the model's own, below the threshold, as the raw output shows.
    """
    best: tuple[float, float, str] | None = None
    floor = math.log1p(_FALLBACK_WORDS) - 1e-9
    for code, row, p in zip(codes, rows, probabilities, strict=True):
        short = row[_LEX_WORDS] < floor and code not in stay
        if row[_LEX_FULL] <= 0.0 or short or code[0] in _NOT_PRINCIPAL:
            continue
        key = (row[_LEX_WORDS], p, code)
        if best is None or key[:2] > best[:2]:
            best = key
    return [] if best is None else [(best[1], best[2])]


def _unspecified_with_siblings(ranked: list[tuple[float, str]], index: CodeIndex) -> frozenset[str]:
    """The category's unspecified codes (I50.9) coded next to a code of the same category
    (I50.23): never the principal then, since the specific code says more. Both stay coded:
    annotated data such as CodiEsp lists both when both are written (dropping the unspecified
    one cost 0.018 micro-F1 on its dev split)."""
    per_category = Counter(code[:3] for _, code in ranked)
    found = set()
    for _, code in ranked:
        if per_category[code[:3]] > 1:
            default = index.default_leaf(code[:3])  # a 6-character base for injury codes
            if default is not None and code.startswith(default):
                found.add(code)
    return frozenset(found)


def _unspecified_read_as_specific(
    ranked: list[tuple[float, str]], named: Mapping[str, tuple[bool, float]], index: CodeIndex
) -> list[tuple[float, str]]:
    """``ranked`` without a category's unspecified code (J44.9) that no mention names, only
    learned evidence suggests, while the narrative names a coded sibling (J44.1, "COPD with
    acute exacerbation"): "unspecified" is for a record that says no more (I.A.9.b). An
    unspecified code a mention names stays beside its sibling (see
    :func:`_unspecified_with_siblings`)."""
    unspecified = _unspecified_with_siblings(ranked, index)
    dropped = set()
    for code in unspecified:
        if code in named:
            continue
        siblings = [c for _, c in ranked if c[:3] == code[:3] and c not in unspecified]
        if any(c in named for c in siblings):
            dropped.add(code)
    return [(p, c) for p, c in ranked if c not in dropped]


def _chronic_beside_acute_injury(
    ranked: list[tuple[float, str]], named: Mapping[str, tuple[bool, float]]
) -> list[tuple[float, str]]:
    """``ranked`` without the musculoskeletal codes (chapter 13, M00-M99) that no mention names,
    only learned evidence suggests, when the narrative names a current injury (S00-T34): an
    acute injury is coded to chapter 19, chapter 13 holding the chronic and recurrent
    conditions, previous injuries' included (Official Guidelines I.C.13.b). "I tripped and
    sprained my left ankle" is S93.402A, without the algoneurodystrophy M89.072 that training
    documents about ankles suggest."""
    if not any(is_injury(c) for _, c in ranked if c in named):
        return ranked
    return [(p, c) for p, c in ranked if c[0] != "M" or c in named]


#: Heart failure by type (systolic, diastolic, combined), and the unspecified one.
_TYPED_HEART_FAILURE: Final = frozenset({"I502", "I503", "I504"})
_HEART_FAILURE_UNSPECIFIED: Final = "I509"


def _told_twice(ranked: list[tuple[float, str]], codeset: MemoryCodeSet) -> list[tuple[float, str]]:
    """``ranked`` without a code that says less about a condition another code tells:

    - an unspecified fracture of a bone's part ("Unspecified fracture of the lower end of left
      radius", S52.502A) beside a specified fracture of the same part, side and encounter
      ("Colles' fracture of left radius", S52.532A): one fracture told in general and then by
      its kind ("displaced fracture of the left distal radius ... a classic Colles' fracture");
    - a disease "with unspecified complications" (K50.019) beside a code of the same
      subdivision that names its complication ("... with intestinal obstruction", K50.012);
    - a heart failure's acute (I50.21) or chronic (I50.22) code beside its acute on chronic
      one (I50.23), and I50.9 beside a typed one (I50.2-I50.4): one heart failure, its type
      and acuity told in full (Index: Failure, heart, systolic, acute on chronic I50.23).

    I.B.3: code to the highest specificity; I.A.9.b: "unspecified" only when the record says no
    more."""
    records = codeset.records
    kept = [c for _, c in ranked]

    def specified_sibling(code: str) -> bool:
        title = records[code].description
        if not is_injury(code) or not title.startswith("Unspecified fracture of"):
            return False
        side = side_named(title.lower().split())
        return any(
            other != code
            and other[:4] == code[:4]
            and other[-1] == code[-1]
            and "fracture" in records[other].description
            and not records[other].description.startswith("Unspecified")
            and side_named(records[other].description.lower().split()) == side
            for other in kept
        )

    def specified_complication(code: str) -> bool:
        # "Crohn's disease of small intestine with unspecified complications" (K50.019) beside
        # "... with intestinal obstruction" (K50.012): the complication is told
        if not records[code].description.endswith("with unspecified complications"):
            return False
        parent = code[:-1]
        return any(
            other != code
            and other.startswith(parent)
            and " with " in records[other].description
            and "unspecified" not in records[other].description
            for other in kept
        )

    def acuity_told_in_full(code: str) -> bool:
        # one heart failure: "acute on chronic" (I50.x3) says the acute (x1) and the chronic
        # (x2) of its type, and a typed one (I50.2-I50.4) says the unspecified I50.9
        if code == _HEART_FAILURE_UNSPECIFIED:
            return any(other[:4] in _TYPED_HEART_FAILURE for other in kept)
        return (
            code[:4] in _TYPED_HEART_FAILURE and code[4:] in ("1", "2") and f"{code[:4]}3" in kept
        )

    return [
        (p, c)
        for p, c in ranked
        if not specified_sibling(c) and not specified_complication(c) and not acuity_told_in_full(c)
    ]


def _stay_principal(
    ranked: Sequence[tuple[float, str]],
    named: Mapping[str, tuple[bool, float]],
    rows: Mapping[str, Sequence[float]],
    narrative: Narrative,
) -> str | None:
    """The principal of a stay whose stated reason is a sign or symptom (chapter 18): the
    definitive diagnosis told in or after the reason's sentence, where a work-up's diagnosis
    is ("Hypertension. Admitted for abdominal pain, found to have acute appendicitis": K35.80,
    Section II: the condition established after study); with none, the symptom itself, when
    every definitive code is told before the reason's sentence (a list of comorbidities) or
    only as history ("PMH: CAD, HFrEF, OSA. Admitted because of a syncopal episode": R55, not
    the sleep apnea; Section II.A: a symptom is the principal when no related definitive
    diagnosis is established). None when the reason is no symptom (the usual rank decides)."""
    # where the reason is told: its sentence, and its clause (as Lexical.named orders clauses
    # in a sentence): "Type 1 diabetic, admitted for intractable vomiting; ... diabetic
    # gastroparesis" prefers the gastroparesis (E10.43) told after the reason to the diabetes
    # told before it in its sentence, which is taken only when nothing follows ("atherosclerosis
    # ... with a heel ulcer; admitted for pain control": I70.244, not R52)
    reasons = [
        (m.position, clause_position(order, m))
        for order, m in enumerate(narrative.mentions)
        if m.reason
    ]
    if not reasons:
        return None
    reason_at, reason_clause = min(reasons)
    symptoms = [
        c for _, c in ranked if _is_symptom(c) and named.get(c, (True, 0.0)) == (False, REASON)
    ]
    if not symptoms:
        return None
    # a sign outside chapter 18 is not explained by a diagnosis told before its clause:
    # "Chronic atrial fibrillation on warfarin, admitted for GI bleed" stays K92.2
    after_only = all(not c.startswith("R") for c in symptoms)
    found = []
    for order, (_, code) in enumerate(ranked):
        if code[0] in _NOT_DEFINITIVE or _is_symptom(code):
            continue
        history, at = named.get(code, (False, rows[code][_POSITION] if code in rows else 0.0))
        before = after_only and at != REASON and at < reason_clause
        if not history and not before and (at == REASON or at >= reason_at):
            # a code the narrative names before one only learned evidence suggests
            found.append((at != REASON, code not in named, at < reason_clause, at, order, code))
    return min(found)[5] if found else symptoms[0]


def _principal_first(
    ranked: list[tuple[float, str]],
    named: Mapping[str, tuple[bool, float]],
    unspecified: frozenset[str] = frozenset(),
    first: str | None = None,
) -> list[tuple[float, str]]:
    """The principal diagnosis first: a definitive diagnosis if there is one, else a symptom or
    status code, never an external cause. Among those, a code the narrative gives as the
    reason for the stay ("admitted for", "Final diagnosis:"), then the code it names first
    outside a "history of" clause (discharge summaries state the reason for the stay before
    comorbidities), then codes named in history clauses, then codes only learned evidence
    suggests; ``unspecified`` codes after the others of their rank, ties to the more probable.
    The rest stay in order of probability. ``first``, the principal a symptom told as the
    reason for the stay decides (:func:`_stay_principal`), goes first without ranking."""
    if first is not None:
        i = next(i for i, (_, code) in enumerate(ranked) if code == first)
        return [ranked[i], *ranked[:i], *ranked[i + 1 :]]
    unnamed = (True, math.inf)

    def rank(i: int) -> tuple[bool, bool, bool, float, int]:
        code = ranked[i][1]
        history, position = named.get(code, unnamed)
        return (position != REASON, code in unspecified, history, position, i)

    for allowed in (_NOT_PRINCIPAL | _PRINCIPAL_LAST, _NOT_PRINCIPAL):
        eligible = [i for i, (_, code) in enumerate(ranked) if code[0] not in allowed]
        if eligible:
            i = min(eligible, key=rank)
            return [ranked[i], *ranked[:i], *ranked[i + 1 :]]
    return ranked


def _usable(evidence: Evidence, index: CodeIndex) -> Evidence:
    """The evidence in the codes of ``index``'s release. The artifact was learned on gold lists
    of one release (CodiEsp: FY2026), so a code it names may be gone or a header here: a
    header stands for its default child (FY2027 made I42.0 a header: its evidence goes to
    I42.00, "dilated cardiomyopathy, unspecified"; a narrative that names a more specific child
    reaches it through the index), a deleted code is dropped. The coder can therefore never
    propose a code its release does not bill."""
    records = index.codeset.records
    targets: dict[str, str | None] = {}

    def target(code: str) -> str | None:
        if code not in targets:
            record = records.get(code)
            found: str | None = None
            if record is not None and record.billable:
                found = code
            elif record is not None:
                try:
                    found = index.resolve(code)
                except ValueError:  # no child reads as the default: nothing to say
                    found = None
            targets[code] = found
        return targets[code]

    pairs: dict[str, tuple[tuple[str, int], ...]] = {}
    for phrase, codes in evidence.pairs.items():
        mapped: dict[str, int] = {}
        for code, both in codes:
            new = target(code)
            if new is not None:
                mapped[new] = max(mapped.get(new, 0), both)
        if mapped:
            pairs[phrase] = tuple(mapped.items())
    if pairs == evidence.pairs:
        return evidence
    code_docs: dict[str, int] = {}
    for code, n in evidence.code_docs.items():
        new = target(code)
        if new is not None:
            code_docs[new] = code_docs.get(new, 0) + n
    changed = sum(1 for code, new in targets.items() if new != code)
    log.info(
        "evidence %s: %d codes are not billable in %s; mapped to a child or dropped",
        evidence.name,
        changed,
        index.codeset.release,
    )
    return dataclasses.replace(
        evidence,
        code_docs=code_docs,
        phrase_docs={p: evidence.phrase_docs[p] for p in pairs},
        pairs=pairs,
    )
