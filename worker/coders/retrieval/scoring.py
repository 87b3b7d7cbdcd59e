"""Candidate codes of one narrative, their features, and the learned score that picks among them.

Candidates come from two sources: the BM25 index of code texts, queried once per mention, and
the learned phrase evidence. Each candidate code gets a few generic features (how completely a
code text is covered by a mention, how strong the learned evidence is, how common the code is);
a logistic regression over them, fitted on out-of-fold candidates of the training documents
(learn.py), turns them into a probability. Features name no code, so the same weights apply to
codes never seen in training.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from worker.coders.retrieval.evidence import Evidence
from worker.coders.retrieval.index import DESCRIPTION, REFERENCE, CodeIndex, SeventhCharacter
from worker.coders.retrieval.mentions import Mention, Narrative
from worker.coders.retrieval.text import (
    BODY_SITES,
    SIDES,
    content_stems,
    sides_before_site,
    stem,
    words,
)

_SITE_STEMS: Final = frozenset(stem(sorted(BODY_SITES)))
FULL: Final = 0.999  # coverage that counts as "every required word mentioned"
# A phrase names its own code when it shares a stem with it and carries it in this share of its
# training documents; it then supports no other code (Scorer.phrase_table). Chosen among
# 0.3/0.5/0.7 on CodiEsp dev as the least recall lost (0.4308 -> 0.4247/0.4263/0.4292); with the
# evidence re-learned under it, out-of-fold F1 0.5108 -> 0.5118, dev (as billed) 0.5195 -> 0.5197.
NAMES_ITS_CODE: Final = 0.7

FEATURES: Final = (
    "bias",
    "lex_full",  # mentions in which the code is the most specific fully covered code text (log)
    "lex_coverage",  # best coverage of one of its texts by one mention
    "lex_bm25",  # best BM25 score (log)
    "lex_words",  # required stems of the best fully covered text (log)
    "lex_default",  # reached through a default leaf ("unspecified"): a guess at specificity
    "lex_description",  # best text is the code's own description
    "lex_reference",  # best text is an Excludes note pointing at the code
    "ev_strength",  # strongest learned phrase
    "ev_lift",  # its strength over the code's prior (log)
    "ev_phrases",  # distinct phrases supporting the code (log)
    "ev_lexical",  # a supporting phrase shares a stem with the code's texts
    "prior",  # log share of training documents with the code
    "seen",  # the code occurs in training at all
    "position",  # where the code is first supported, 0 (start) to 1 (end)
    "lex_and_ev",  # both sources agree
    "ev_support",  # documents with the strongest phrase and the code (log)
)

_N: Final = len(FEATURES)
(
    _BIAS,
    _LEX_FULL,
    _LEX_COVERAGE,
    _LEX_BM25,
    _LEX_WORDS,
    _LEX_DEFAULT,
    _LEX_DESCRIPTION,
    _LEX_REFERENCE,
    _EV_STRENGTH,
    _EV_LIFT,
    _EV_PHRASES,
    _EV_LEXICAL,
    _PRIOR,
    _SEEN,
    _POSITION,
    _LEX_AND_EV,
    _EV_SUPPORT,
) = range(_N)


@dataclass(frozen=True, slots=True)
class _Pick:
    """One BM25 hit of one mention, resolved to a billable code."""

    code: str
    bm25: float
    coverage: float
    entry: int
    winner: bool  # fully covered and no other fully covered hit of the mention contains it


@dataclass(frozen=True, slots=True)
class _Support:
    """One learned (phrase, code) pair with what the features need, computed once per artifact."""

    code: str
    strength: float  # smoothed share of the phrase's documents that carried the code
    lift: float  # log(strength / prior)
    lexical: bool  # the phrase shares a stem with the code's and its ancestors' descriptions
    support: float  # log1p(documents with phrase and code)


class _Candidate:
    """Features of one candidate code, filled in by both sources."""

    __slots__ = ("features", "learned", "lexical", "position")

    def __init__(self) -> None:
        self.features = [0.0] * _N
        self.position = 1.0
        self.lexical = False
        self.learned = False


#: The position :class:`Lexical` gives a code named as the reason for the stay (a heading such as
#: "Final diagnosis:", or an "admitted for" clause): before every mention of the narrative.
REASON: Final = -1.0


#: A clause's share of its sentence's position in ``named`` (sentences are >= 1/n apart).
_CLAUSE_STEP: Final = 1e-6


def clause_position(order: int, mention: Mention) -> float:
    """Where the ``order``-th mention of a narrative is told: its sentence's position, and in
    the sentence its clause's order (what ``Lexical.named`` and the principal compare)."""
    return mention.position + order * _CLAUSE_STEP


#: How many last words a mention with no winner may lose to find its head (see _pick_head).
_HEAD_TRIES: Final = 6
#: Only mentions of at most this many words look for their head: a condition and its site,
#: not a case report's long clause (which the search of its phrases serves; speed).
_HEAD_LONGEST: Final = 9


@dataclass(frozen=True, slots=True)
class Lexical:
    """What the code-text index says about one narrative. It depends on the index only, so
    learning computes it once per document and combines it with the evidence of each fold."""

    found: Mapping[str, _Candidate]
    negated: frozenset[str]  # codes with a text that a negated mention covers fully
    # code -> (named only in "history of" mentions, position of the first mention that names it
    # fully): where the narrative itself states the code, as the principal choice reads it
    named: Mapping[str, tuple[bool, float]]


PhraseTable = Mapping[str, tuple[_Support, ...]]


class Scorer:
    """Features and the logistic score; one per coder, shared by all threads (read-only after
    construction, apart from caches whose entries never change once written)."""

    def __init__(self, index: CodeIndex, evidence: Evidence, top_k: int) -> None:
        self.index = index
        self.evidence = evidence
        self.top_k = top_k
        self.weights = np.array([evidence.weights.get(f, 0.0) for f in FEATURES])
        self._stems: dict[str, frozenset[str]] = {}
        self.table = self.phrase_table(evidence)

    def phrase_table(self, evidence: Evidence) -> PhraseTable:
        """Each learned phrase with its codes' strengths, as :meth:`candidates` reads them.

        A phrase that names a code of its own (shares a stem with it and carries it in at
        least :data:`NAMES_ITS_CODE` of its documents: "type 2 diabetes" -> E11.9) is evidence
        for that code only, not for the codes it merely co-occurs with in the training
        documents ("type 2 diabetes" -> I10 in 75% of CodiEsp's): a claim gets no code its
        text does not mention. Phrases that name nothing the tabular list spells (abbreviations
        such as "hta", "crf") keep every code they predict."""
        table: dict[str, tuple[_Support, ...]] = {}
        for phrase, codes in evidence.pairs.items():
            stems = set(phrase.split())
            supports = []
            for code, both in codes:
                strength = evidence.strength(phrase, code, both)
                lexical = not stems.isdisjoint(self.code_stems(code))
                lift = math.log(strength / evidence.prior(code))
                supports.append(_Support(code, strength, lift, lexical, math.log1p(both)))
            if any(s.lexical and s.strength >= NAMES_ITS_CODE for s in supports):
                supports = [s for s in supports if s.lexical]
            table[phrase] = tuple(supports)
        return table

    def lexical(self, narrative: Narrative) -> Lexical:
        """Candidates from the code-text index: the part that does not depend on evidence."""
        index = self.index
        cues = SeventhCharacter.cues(narrative.phrases.keys())
        found: dict[str, _Candidate] = {}
        named: dict[str, tuple[bool, float]] = {}
        done: dict[tuple[tuple[int, ...], bool], list[_Pick]] = {}
        # the one side a narrative names, for a mention that names none ("landed on my right
        # wrist. Broke my distal radius": S52.501A, not unspecified side S52.509A)
        sited = (sides_before_site(m.stems, _SITE_STEMS) for m in narrative.mentions)
        only_side = side_named([side for sides in sited for side in sides])
        for order, mention in enumerate(narrative.mentions):
            query = tuple(index.ids(mention.stems))
            if not query:
                continue
            picked = done.get((query, mention.reason))
            if picked is None:  # the side is the query's (or the narrative's): one per query
                side = side_named(mention.stems) or only_side
                search = self._pick_head if mention.reason else self._pick
                picked = done[query, mention.reason] = search(query, cues, side)
            for pick in picked:
                entry = index.entries[pick.entry]
                cand = found.get(pick.code)
                if cand is None:
                    cand = found[pick.code] = _Candidate()
                v = cand.features
                cand.position = min(cand.position, mention.position)
                cand.lexical = True
                if pick.winner:
                    v[_LEX_FULL] += 1.0
                    # a diagnosis under a "Final diagnosis:" heading before any position
                    # (and, in one sentence, the clause that names it first: "Impression:
                    # immune thrombocytopenic purpura, plus an iron deficiency anemia" is D69.3)
                    at = REASON if mention.reason else clause_position(order, mention)
                    key = (mention.history, at)
                    named[pick.code] = min(named.get(pick.code, key), key)
                # the best text of the code: the most covered; among fully covered winners, its
                # own description or an inclusion term before an Excludes note naming it
                # ("COVID-19" is U07.1's description and an Excludes1 note elsewhere)
                better = pick.coverage > v[_LEX_COVERAGE] + 1e-9 or (
                    pick.winner and (entry.kind != REFERENCE or v[_LEX_REFERENCE] > 0.0)
                )
                if better:
                    v[_LEX_COVERAGE] = pick.coverage
                    v[_LEX_WORDS] = math.log1p(len(entry.stems)) if pick.coverage >= FULL else 0.0
                    v[_LEX_DEFAULT] = float(index.is_default(entry.node))
                    v[_LEX_DESCRIPTION] = float(entry.kind == DESCRIPTION)
                    v[_LEX_REFERENCE] = float(entry.kind == REFERENCE)
                v[_LEX_BM25] = max(v[_LEX_BM25], math.log1p(pick.bm25))
        for cand in found.values():
            cand.features[_LEX_FULL] = math.log1p(cand.features[_LEX_FULL])
        negated: set[str] = set()
        for mention in narrative.negated:
            query = tuple(index.ids(mention.stems))
            if query:
                negated.update(p.code for p in self._pick(query, cues) if p.coverage >= FULL)
        return Lexical(found, frozenset(negated), named)

    def _pick_head(
        self, query: Sequence[int], cues: Sequence[str], side: str | None = None
    ) -> list[_Pick]:
        """For the reason for the stay (speed: each try is a search), :meth:`_pick`, and when no
        text of the whole mention is a winner, also the picks of
        its head, the mention less its last words, up to :data:`_HEAD_TRIES` words less, until
        one is (mentions of 3 to :data:`_HEAD_LONGEST` words): a condition told before its
        site ("community-acquired pneumonia of the RLL") is named although texts of the
        site's words (C34.31 "... right lower lobe, bronchus or lung") crowd the whole
        mention's best hits. The head's picks are winners only."""
        picked = self._pick(query, cues, side)
        if any(p.winner for p in picked) or not 3 <= len(query) <= _HEAD_LONGEST:
            return picked
        for size in range(len(query) - 1, max(1, len(query) - _HEAD_TRIES - 1), -1):
            head = [p for p in self._pick(query[:size], cues, side) if p.winner]
            if head:
                return picked + head
        return picked

    def _pick(
        self, query: Sequence[int], cues: Sequence[str], side: str | None = None
    ) -> list[_Pick]:
        """The top hits of one mention. Winners are the fully covered texts that no other fully
        covered text of the mention contains: the most specific codes mentioned."""
        entries = self.index.entries
        hits = self.index.search(query, self.top_k)
        full = [entries[h.entry].stem_set for h in hits if h.coverage >= FULL]
        out = []
        for hit in hits:
            stems = entries[hit.entry].stem_set
            winner = hit.coverage >= FULL and not any(stems < other for other in full)
            code = self.index.resolve(entries[hit.entry].node, cues, side)
            out.append(_Pick(code, hit.bm25, hit.coverage, hit.entry, winner))
        return out

    def candidates(
        self,
        narrative: Narrative,
        lexical: Lexical | None = None,
        table: PhraseTable | None = None,
        evidence: Evidence | None = None,
    ) -> tuple[list[str], npt.NDArray[np.float64]]:
        """Candidate codes (billable, undotted) and their feature rows. ``table`` and
        ``evidence`` go together (learning passes each fold's); default: the coder's own."""
        evidence = evidence or self.evidence
        table = self.table if table is None else table
        base = self.lexical(narrative) if lexical is None else lexical
        found: dict[str, _Candidate] = {}
        for code, source in base.found.items():
            copy = found[code] = _Candidate()
            copy.features = source.features.copy()
            copy.position, copy.lexical = source.position, True
        for phrase, position in narrative.phrases.items():
            supports = table.get(phrase)
            if supports is None:
                continue
            for support in supports:
                cand = found.get(support.code)
                if cand is None:
                    cand = found[support.code] = _Candidate()
                v = cand.features
                cand.position = min(cand.position, position)
                cand.learned = True
                if support.strength > v[_EV_STRENGTH]:
                    v[_EV_STRENGTH] = support.strength
                    v[_EV_LIFT] = support.lift
                    v[_EV_SUPPORT] = support.support
                v[_EV_PHRASES] += 1.0
                if support.lexical:
                    v[_EV_LEXICAL] = 1.0
        # A code a negated mention names stays out unless a kept mention names it too: learned
        # co-occurrence ("diabetes" -> I10) must not bring back what the narrative rules out.
        negated = set(base.negated)
        for phrase in narrative.negated_phrases:
            negated.update(sup.code for sup in table.get(phrase, ()) if sup.lexical)
        for code in negated.intersection(found):
            v = found[code].features
            if v[_LEX_FULL] == 0.0 and v[_EV_LEXICAL] == 0.0:
                del found[code]
        codes = list(found)
        rows = np.empty((len(codes), _N), dtype=np.float64)
        code_docs = evidence.code_docs
        for i, code in enumerate(codes):
            cand = found[code]
            v = cand.features
            v[_BIAS] = 1.0
            v[_EV_PHRASES] = math.log1p(v[_EV_PHRASES])
            v[_PRIOR] = math.log(evidence.prior(code))
            v[_SEEN] = float(code_docs.get(code, 0) > 0)
            v[_POSITION] = cand.position
            v[_LEX_AND_EV] = float(cand.lexical and cand.learned)
            rows[i] = v
        return codes, rows

    def code_stems(self, code: str) -> frozenset[str]:
        """Stems of every text the tabular list gives a code: its description and inclusion
        terms and its ancestors' (E05.0's "Graves' disease" is E05.01's words; R61's "Excessive
        sweating" makes "sweating" a phrase that names R61: CodiEsp dev +0.0018)."""
        stems = self._stems.get(code)
        if stems is None:
            codeset = self.index.codeset
            records = (codeset.records[code], *codeset.ancestors(code))
            texts = [t for r in records for t in (r.description, *r.inclusion_terms)]
            stems = frozenset(s for t in texts for s in content_stems(words(t)))
            self._stems[code] = stems
        return stems

    def score(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        result: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-(rows @ self.weights)))
        return result


def side_named(stems: Sequence[str]) -> str | None:
    """The side ("left", "right") words or stems name, if they name exactly one."""
    sides = [side for side in SIDES if side in stems]
    return sides[0] if len(sides) == 1 else None


def fit_logistic(
    rows: npt.NDArray[np.float64],
    labels: npt.NDArray[np.float64],
    l2: float = 1.0,
    iterations: int = 50,
) -> npt.NDArray[np.float64]:
    """L2-regularised logistic regression by Newton's method (IRLS); column 0 is the bias and is
    not penalised. A dozen weights do not justify scikit-learn and SciPy as dependencies."""
    n_features = rows.shape[1]
    penalty = np.full(n_features, l2)
    penalty[0] = 1e-6
    weights = np.zeros(n_features)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(rows @ weights)))
        gradient = rows.T @ (p - labels) + penalty * weights
        hessian = (rows * (p * (1 - p))[:, None]).T @ rows + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return weights
