"""Which words of a sentence must not be coded: negated, ruled out, hypothetical, or a relative's.

This is NegEx (Chapman et al., "A simple algorithm for identifying negated findings and diseases
in discharge summaries", J Biomed Inform 34(5), 2001) with the "experiencer" and "hypothetical"
triggers of its successor ConText (Harkema et al., J Biomed Inform 42(5), 2009): trigger phrases
open a scope forwards (pre-triggers: "no", "denies", "family history of", "his father passed away
from", "if") or backwards (post-triggers: "was ruled out", "in his mother"); the scope ends at a
termination phrase ("but", "however", "due to"), at a semicolon, or after ``SCOPE`` tokens;
pseudo-triggers ("no change", "gram negative") look like triggers and are skipped. A relative
opens a scope only with what makes the clause theirs ("father had", "mother's", "sister was
diagnosed with"), not alone as in ConText, so in "his wife brought him in because of chest
pain" the pain stays the patient's.

Written here rather than taken from medspaCy, which was measured against it (CodiEsp, FY2026
codes): its ConText with the default rules, on these same sentences and tokens, scored lower
(dev micro-F1 0.50 against 0.52) and took the coder from about 130 to under 80 claims/s on one
core; its whole pipeline (PyRuSH sentences, ConText) runs about 20 narratives/s by itself; and
medspacy 1.3.1 needs spaCy < 3.8 on Python 3.11, whose thinc needs numpy < 2.

Word lists follow the published ones, plus the verbs of the CodiEsp translations ("was
discarded") and lay phrasing ("I don't have", spelled "do not have" by text.words). The lists
err towards excluding: a claim must never get a code for a condition it says is absent, so a
sentence such as "could not walk because of the fracture" loses "fracture" only until "because".
Uncertain diagnoses ("suspected", "probable", "rule out X") are kept: inpatient coding guidelines
(Section II.H) code them as if established when still uncertain at discharge (a narrative that
states its final diagnosis after them has settled them: :func:`uncertain`, mentions.py); "was
ruled out" closes the question, and "to rule
out" is what a work-up looks for. A relative's clause is excluded whole, "family history of"
included, so no family-history code (Z80-Z84) comes from it either.
"""

import functools
from collections.abc import Iterable, Sequence
from itertools import product
from typing import Final, NamedTuple

from worker.coders.retrieval.text import CLAUSE_BREAKS, sentences, words

SCOPE: Final = 12  # tokens a trigger reaches (NegEx used 5 words; lists in claims run longer)

Phrase = tuple[str, ...]


def _phrases(*texts: str) -> frozenset[Phrase]:
    return frozenset(tuple(t.split()) for t in texts)


# "child" is left out: case reports call the patient "the child" ("the child had febrile seizures")
_RELATIVES: Final = (
    *("mother", "father", "mom", "mum", "dad", "parent", "parents", "grandparents"),
    *("sister", "sisters", "brother", "brothers", "sibling", "siblings", "twin"),
    *("son", "sons", "daughter", "daughters", "grandmother", "grandfather", "grandma"),
    *("grandpa", "granny", "grandparent", "stepmother", "stepfather"),
    *("aunt", "aunts", "uncle", "uncles", "cousin", "cousins", "nephew", "niece"),
    *("wife", "husband", "spouse", "partner"),
)
# what follows a relative to make the rest of the clause theirs: "father had", "father's" (spelled
# "father s" by text.words), "mother was diagnosed with", "father passed away from", "dad deceased",
# "son is diabetic"
_RELATIVE_VERBS: Final = (
    *("had", "has", "have", "with", "history", "s"),
    # "son is diabetic", "both parents are obese", "mother was a smoker"
    *("is", "are", "was", "were"),
    *("who", ", who"),  # "her mother, who had breast cancer"
    *("died", "deceased", "dead", "passed away", "passed", "suffered", "suffers", "diagnosed"),
    *("drank", "drinks", "smoked", "smokes", "late"),  # "my mom drank herself to death"
    # "brother got lymphoma", "father developed colon cancer", "twin underwent surgery for"
    *("got", "gets", "developed", "develops", "underwent", "succumbed", "battled", "fought"),
    *("survived", "carries", "carried", "lost"),
    # a list's label: "Sister: breast cancer", "Grandmother (breast cancer), father (MI)"
    *(":", "("),
    # an aside before the verb: "mother, deceased, had", "father, now deceased,"
    *(f", {w}" for w in ("deceased", "late", "died", "now deceased", "since deceased")),
    *(
        f"{aux}{when}{verb}"
        for aux, when, verb in product(
            ("", "was ", "is ", "were ", "has been ", "had been ", "has ", "have "),
            ("", "also ", "just ", "recently ", "newly ", "previously ", "once ", "later "),
            ("diagnosed", "had", "has", "died", "developed", "passed", "underwent", "got"),
        )
        if aux or when
    ),
    # "mom and grandma both had", "my brothers all have"
    *(
        f"{who} {verb}"
        for who, verb in product(
            ("both", "all", "each"), ("had", "have", "has", "with", "died", "suffered")
        )
    ),
    # "her aunt was recently diagnosed with", "father newly diagnosed with"
    *(
        f"{aux}{when} diagnosed"
        for aux, when in product(("", "was ", "is ", "were ", "has been "), ("recently", "newly"))
    ),
)
_BE: Final = ("was", "were", "is", "are", "been", "be")
# the details of a condition a record may not know (see DESCRIPTORS)
_DETAILS: Final = (
    *("organism", "organisms", "pathogen", "bacteria", "bug", "cause", "source", "etiology"),
    *("aetiology", "type", "strain", "site", "stage", "grade", "laterality", "side"),
)
_FOUND: Final = ("identified", "isolated", "found", "grown", "determined", "specified")
_UNKNOWN: Final = (
    *(f"not {w}" for w in (*_FOUND, "known", "documented", "stated", "confirmed")),
    *("unknown", "unidentified", "undetermined", "unspecified"),
)
_POST_WORDS: Final = (
    "ruled out",
    "excluded",
    "discarded",
    "negative",
    "absent",
    "not seen",
    "not found",
    "not detected",
    "not observed",
    "not identified",
    "not present",
    "not confirmed",
    "not evident",
    "not documented",  # a coder codes only what the record documents
)

PSEUDO: Final = _phrases(
    "no change",
    "no changes",
    "no increase",
    "no significant change",
    "no further",
    "not only",
    "not necessarily",
    "not certain",
    "not rule out",
    "not ruled out",
    "not been ruled out",
    "not be ruled out",
    "cannot be ruled out",
    "can not be ruled out",
    "could not be ruled out",
    "without difficulty",
    "gram negative",
)

PRE: Final = _phrases(
    "no",
    "not",
    "without",
    "denies",
    "denied",
    "deny",
    "denying",
    "never",
    "nor",
    "neither",
    "absence of",
    "absent",
    "free of",
    "negative for",
    "ruled out",
    "rules out",
    "to rule out",  # a work-up's aim; "rule out X" as a diagnosis is kept (II.H)
    "exclude",
    "excluded",
    "excluding",
    "discarded",
    "discard",
    "fails to reveal",
    "failed to reveal",
    "lack of",
    "lacks",
    "lacked",
    # experiencer: someone other than the patient (ConText)
    "family history",
    "familial history",
    "family hx",
    "fhx",
    "fh :",  # a section header; "FH" alone is also familial hypercholesterolaemia
    "fh of",
    "fh significant for",
    "fh positive for",
    *(f"{r} {v}" for r, v in product(_RELATIVES, _RELATIVE_VERBS)),
    # hypothetical: a condition the patient is told to watch for (ConText)
    "if",
    "in case of",
    "come back for",
    "return for",
    "should he",
    "should she",
    "should the patient",
    "should there",
)

POST: Final = _phrases(
    *_POST_WORDS,
    *(f"{b} {w}" for b, w in product(_BE, _POST_WORDS)),
    "unlikely",
    *(f"in {d} {r}" for d, r in product(("his", "her", "my", "the", "a", "their"), _RELATIVES)),
    *(f"in {r}" for r in _RELATIVES),
    "in the family",
    "in his family",
    "in her family",
    "in my family",
)

TERMINATION: Final = _phrases(
    ";",
    # the patient comes back as the subject: "my mom had breast cancer and I have diabetes"
    "i",
    "patient",
    "but",
    "however",
    "although",
    "though",
    "yet",
    "except",
    "apart from",
    "aside from",
    "whereas",
    "while",
    "which",
    "who",
    "whose",
    "presents",
    "presented",
    "presenting",
    "reports",
    "reported",
    "complains",
    "complained",
    "complaining",
    "developed",
    "develops",
    "showed",
    "shows",
    "revealed",
    "reveals",
    "diagnosed",
    "underwent",
    "admitted",
    "due",
    "because",
    "secondary",
    "caused",
)

# What describes a condition told beside it, not a condition of its own: atrial fibrillation's
# ventricular rate ("with rapid ventricular response" is no ventricular fibrillation, I49.01; the
# rate is not coded, I48.- says it all). Excluded words, with no scope.
DESCRIPTORS: Final = _phrases(
    *(
        f"{pace} ventricular {what}"
        for pace in ("rapid", "slow", "controlled", "uncontrolled")
        for what in ("response", "rate")
    ),
    "ventricular response",
    "ventricular rate",
    "rvr",
    # what the record does not know about a condition it states is no negation of it:
    # "pneumonia, organism not identified" is J18.9 (Index: Pneumonia, unspecified organism;
    # I.A.9.b: unspecified codes are for a record that says no more)
    *(
        f"{what} {be}{unknown}"
        for what in _DETAILS
        for be in ("", *(f"{b} " for b in _BE))
        for unknown in _UNKNOWN
    ),
    *(f"no {what} {found}" for what in _DETAILS for found in _FOUND),
    "not otherwise specified",
)


# Uncertain diagnoses (Section II.H: "probable", "suspected", "likely", "questionable",
# "possible", "still to be ruled out"): pre-triggers whose scope is the diagnosis in doubt.
UNCERTAIN: Final = _phrases(
    *("rule out", "r o", "suspected", "suspect", "suspicion of", "suspicious for", "concern for"),
    *("possible", "possibly", "probable", "probably", "likely", "questionable", "presumed"),
    "working diagnosis",
)
# ... and post-triggers whose scope is the diagnosis told before them ("pulmonary embolism
# suspected", "sepsis was suspected in the ED"): ConText's backward uncertainty.
UNCERTAIN_AFTER: Final = _phrases(
    "suspected",
    *(f"{b} {w}" for b, w in product(_BE, ("suspected", "considered", "questioned"))),
)


@functools.cache
def _sizes(phrases: frozenset[Phrase]) -> dict[str, tuple[int, ...]]:
    """The lengths of the phrases of ``phrases`` that start with each word, longest first."""
    by_first: dict[str, set[int]] = {}
    for phrase in phrases:
        by_first.setdefault(phrase[0], set()).add(len(phrase))
    return {word: tuple(sorted(sizes, reverse=True)) for word, sizes in by_first.items()}


def _match(tokens: Sequence[str], start: int, phrases: frozenset[Phrase]) -> int:
    """Length of the longest phrase of ``phrases`` at ``start``; 0 when none."""
    sizes = _sizes(phrases).get(tokens[start])
    if sizes is None:
        return 0
    left = len(tokens) - start
    for size in sizes:
        if size <= left and tuple(tokens[start : start + size]) in phrases:
            return size
    return 0


def excluded(tokens: Sequence[str]) -> list[bool]:
    """For each token of one sentence: negated, ruled out, hypothetical or a relative's.

    Trigger words themselves are marked too (they are never evidence for a code)."""
    n = len(tokens)
    out = [False] * n
    stops = [_match(tokens, i, TERMINATION) > 0 for i in range(n)]
    i = 0
    while i < n:
        size = _match(tokens, i, DESCRIPTORS)
        if size:
            _mark(out, range(i, i + size))
            i += size
            continue
        size = _match(tokens, i, PSEUDO)
        if size:
            i += size
            continue
        post = _match(tokens, i, POST)
        pre = _match(tokens, i, PRE)
        if post:  # a word that is both ("absent") reaches both ways
            _mark(out, range(i, i + post))
            if _of_a_test(tokens, i):  # only the test's own clause: "influenza test negative"
                clause = [s or t in CLAUSE_BREAKS for s, t in zip(stops, tokens, strict=True)]
                _mark(out, _backwards(i, clause))
            else:
                _mark(out, _backwards(i, stops))
        if pre:
            _mark(out, range(i, i + pre))
            _mark(out, _forwards(i + pre, n, stops))
        i += max(pre, post, 1)
    return out


# Tests and studies whose result a post-trigger reports ("cultures negative", "troponins were
# negative x3", "PCR came back negative"): the result is the test's clause's (what it tested:
# "influenza test negative"), and a condition an earlier clause told stays affirmed
# ("admitted with pneumonia, cultures negative" is J18.9, Index: Pneumonia, unspecified
# organism; a negative culture does not rule the pneumonia out).
_TESTS: Final = frozenset(
    {
        *("culture", "cultures", "cx", "test", "tests", "testing", "pcr", "swab", "swabs"),
        *("screen", "screening", "panel", "serology", "serologies", "antigen", "antigens"),
        *("titer", "titers", "titre", "titres", "biopsy", "biopsies", "troponin", "troponins"),
        *("trop", "trops", "enzymes", "labs", "workup", "studies", "study", "xray", "ray"),
        *("ct", "mri", "ultrasound", "echo", "ecg", "ekg", "scan", "scans", "films", "smear"),
        *("stain", "assay", "result", "results", "dimer", "bnp", "lipase", "ua", "urinalysis"),
    }
)
_RESULT_VERBS: Final = frozenset({*_BE, "came", "come", "back", "returned", "all", "both"})


def _of_a_test(tokens: Sequence[str], at: int) -> bool:
    """Whether the post-trigger at ``at`` reports a test's result: a test word (:data:`_TESTS`)
    before it, with only "were", "came back" and the like between."""
    k = at - 1
    while k >= 0 and tokens[k] in _RESULT_VERBS:
        k -= 1
    return k >= 0 and tokens[k] in _TESTS


# "Rule out X": the question a work-up asks. A narrative that reports its work-up normal
# afterwards ("telemetry unremarkable, echo normal") answered it: X is not coded (II.H codes an
# uncertain diagnosis only when it is still uncertain at discharge).
RULE_OUT: Final = _phrases("rule out", "r o", "rule out for")
NORMAL_WORKUP: Final = frozenset({"unremarkable", "normal", "negative", "unrevealing"})


def uncertain(tokens: Sequence[str], triggers: frozenset[Phrase] | None = None) -> list[bool]:
    """For each token of one sentence: part of a diagnosis told as uncertain ("rule out
    sepsis", "suspected pneumonia", "pulmonary embolism was suspected"), the trigger words
    included. Guideline II.H codes such a
    diagnosis as if established only when it is still uncertain at discharge: a narrative that
    states its final diagnosis afterwards has settled it (mentions.py). ``triggers``: only
    these (:data:`RULE_OUT`), default :data:`UNCERTAIN`."""
    n = len(tokens)
    out = [False] * n
    stops = [_match(tokens, i, TERMINATION) > 0 for i in range(n)]
    for i in range(n):
        size = _match(tokens, i, UNCERTAIN if triggers is None else triggers)
        if size:
            _mark(out, range(i, i + size))
            _mark(out, _forwards(i + size, n, stops))
        after = _match(tokens, i, UNCERTAIN_AFTER) if triggers is None else 0
        if after:
            _mark(out, range(i, i + after))
            _mark(out, _backwards(i, stops))
    return out


def affirmed(tokens: Sequence[str]) -> list[str]:
    """The tokens of one sentence that no negation, ruled-out, hypothetical or family scope
    covers, in order."""
    return [t for t, out in zip(tokens, excluded(tokens), strict=True) if not out]


class Sentence(NamedTuple):
    said: tuple[str, ...]  # its words (text.words)
    kept: tuple[str, ...]  # those no scope excludes (affirmed)


@functools.lru_cache(maxsize=16)
def read(text: str) -> tuple[Sentence, ...]:
    """Each sentence of ``text``, its words and its affirmed words: read once a narrative
    however many rules of linking.py and injuries.py ask (the scopes are the costly part)."""
    return tuple(
        Sentence(tuple(said), tuple(affirmed(said)))
        for said in (words(sentence) for sentence in sentences(text))
    )


def _forwards(start: int, n: int, stops: Sequence[bool]) -> Iterable[int]:
    end = start
    while end < min(n, start + SCOPE) and not stops[end]:
        end += 1
    return range(start, end)


def _backwards(end: int, stops: Sequence[bool]) -> Iterable[int]:
    start = end
    while start > max(0, end - SCOPE) and not stops[start - 1]:
        start -= 1
    return range(start, end)


def _mark(out: list[bool], indices: Iterable[int]) -> None:
    for j in indices:
        out[j] = True
