"""A narrative as mentions: runs of words between clause punctuation and excluded words.

Sentences are split on line breaks and sentence-final punctuation; within a sentence, NegEx
scopes (context.py) mark negated, ruled-out and family-history words first. The words left form
mentions wherever a comma, semicolon, colon, parenthesis or an excluded word does not cut them;
a mention is what code texts are looked up for, and what learned phrases are read from. The
excluded words form negated mentions the same way: they never suggest a code, they veto the
codes they name (scoring.py), so that "type 2 diabetes, no hypertension" cannot get I10 from
learned co-occurrence.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from worker.coders.retrieval.context import NORMAL_WORKUP, RULE_OUT, excluded, uncertain
from worker.coders.retrieval.text import (
    CLAUSE_BREAKS,
    content_stems,
    in_clinical_words,
    is_word,
    lay_expansions,
    sentences,
)
from worker.coders.retrieval.text import words as split_words

MAX_PHRASE: Final = 3  # learned phrases are 1- to 3-stem runs of one mention
# stems that put a mention in the patient's history ("family history" is excluded already)
_HISTORY: Final = frozenset({"histori", "hx", "pmh"})
# ... unless it is the history of the present illness: the reason for this stay
_PRESENT_ILLNESS: Final = frozenset({"present", "ill"})
_PRIOR: Final = frozenset({"prior", "previous", "remote"})
# ... and a condition dated months or years back (see _is_prior); not one dated by its year
# ("diagnosed with prostate cancer in 2016" may well be under treatment still)
_LONG_AGO: Final = frozenset({"year", "years", "months", "decade", "decades"})
_LAST: Final = frozenset({"year", "decade"})
# ... or told over and done with: "cured", "as a child", "in childhood" (I.C.2.d: a malignancy
# eradicated, no further treatment, is its personal history Z85.-)
_OVER: Final = frozenset({"cured", "childhood"})
_AS_A: Final = frozenset({"child", "kid", "teen", "teenager", "toddler", "baby", "youth"})
# Verbs that open a new clause inside a sentence ("right lower quadrant pain | was found to have
# acute appendicitis"), and "and": a mention ends there, so each condition is looked up on its own.
_MENTION_CUTS: Final = frozenset(
    {"was", "were", "is", "are", "found", "presented", "presents", "underwent", "developed"}
    | {"showed", "revealed", "diagnosed", "complained", "reported", "became"}
    # the reason for this stay opens its own mention (_admitted_for)
    | {"admitted", "readmitted", "hospitalized", "hospitalised"}
    # a list of conditions: "urinary tract infection and acute kidney injury" is two mentions,
    # each looked up on its own (one mention gave its candidates to the first condition only)
    | {"and"}
)
# Organisms told before the condition they cause ("MRSA cellulitis of the left lower leg"):
# their own mention, so that the condition is looked up by its own words (linking.py joins
# them again where one code says both, "MRSA pneumonia": J15.212)
_ORGANISM_PREFIXES: Final = frozenset({"mrsa", "mssa"})
# "admitted for", "presents with", "came in with", "was hospitalized because of", "admitted to
# the hospital for": a verb of this stay, then within a few words the preposition of its reason
_ADMISSION_VERBS: Final = frozenset(
    {"admitted", "admission", "readmitted", "presents", "presented", "presenting", "came"}
    | {"hospitalized", "hospitalised", "encounter", "here"}
)
_ADMISSION_PREPOSITIONS: Final = frozenset({"for", "with", "because", "due", "in"})
_ADMISSION_GAP: Final = 4
_FINAL_HEADINGS: Final = frozenset(
    {"final diagnosis", "final diagnoses", "discharge diagnosis", "discharge diagnoses"}
    | {"final dx", "discharge dx"}
)
_REASON_HEADINGS: Final = _FINAL_HEADINGS | frozenset(
    {
        *("principal diagnosis", "primary diagnosis", "diagnosis", "diagnoses", "dx"),
        *("reason for admission", "admitting diagnosis", "admission diagnosis"),
        *("admitting dx", "admission dx"),
    }
)
# ... which a sentence may open without its colon: "Final dx migraine without aura."
_BARE_HEADINGS: Final = tuple(h.split() for h in _FINAL_HEADINGS)


# The type of diabetes a narrative states ("type 1 diabetic", "type II diabetes": text.words
# spells the numeral), which a complication told in another clause ("admitted in DKA") is of:
# E10.10, not E11.10, the default for an unstated type only (I.C.4.a.2).
_DIABETES: Final = "diabet"
_TYPES: Final = (("type", "1"), ("type", "2"))
_DIABETES_WORDS: Final = ("diabet", "dm", "mellitus", "iddm", "niddm")


@dataclass(frozen=True, slots=True)
class Mention:
    stems: tuple[str, ...]  # content stems in order, then those of lay-phrase expansions
    position: float  # where the mention starts, 0 (first sentence) to 1 (last)
    history: bool = False  # part of a "history of ..." clause: past or chronic, not the reason
    # after a heading that names the stay's diagnosis ("Final diagnosis:", "Reason for
    # admission:"): the principal diagnosis by its own words (Section II)
    reason: bool = False


@dataclass(frozen=True, slots=True)
class Narrative:
    mentions: tuple[Mention, ...]
    # every phrase (1-3 stem run of one mention, space-joined) -> position it first occurs at
    phrases: Mapping[str, float]
    negated: tuple[Mention, ...]  # negated, ruled-out and family-history mentions
    negated_phrases: frozenset[str]


def split(text: str) -> Narrative:
    sents = sentences(text)
    mentions: list[Mention] = []
    negated: list[Mention] = []
    words_of = [_lift_asides(split_words(sentence)) for sentence in sents]
    # a diagnosis told as uncertain before the final diagnosis is stated was settled by it
    # (Section II.H: coded as if established only when still uncertain at discharge): "Rule
    # out sepsis. Final diagnosis: urinary tract infection." is no sepsis
    final = next((n for n, tokens in enumerate(words_of) if _final_header(tokens)), None)
    # ... and a "rule out X" by a work-up told normal in a later sentence
    normal = [n for n, tokens in enumerate(words_of) if _normal_workup(tokens)]
    # ... and an uncertain diagnosis that a sentence at or after it rules out by name ("Sepsis
    # was suspected in the ED ... sepsis was ruled out": no sepsis; "suspected pneumonia; PE
    # ruled out" keeps the pneumonia, coded as if established, II.H)
    ruled = _ruled_out_stems(words_of)
    diabetes_type = _diabetes_type(words_of)
    for number, tokens in enumerate(words_of):
        position = number / max(1, len(sents) - 1)
        drop = excluded(tokens)
        if final is not None and number < final:
            drop = [d or u for d, u in zip(drop, uncertain(tokens), strict=True)]
        elif normal and number < normal[-1]:
            drop = [d or u for d, u in zip(drop, uncertain(tokens, RULE_OUT), strict=True)]
        if any(at >= number for at in ruled):
            later = set().union(*(stems for at, stems in ruled.items() if at >= number))
            drop = [d or u for d, u in zip(drop, _named_in(tokens, later), strict=True)]
        header = _history_header(tokens)
        reason = _reason_header(tokens)
        admitted = _admitted_for(tokens)
        for want, found in ((False, mentions), (True, negated)):
            for start, run in _runs(tokens, drop, want, _clause_starts(admitted)):
                stems = content_stems(in_clinical_words(run)) + content_stems(lay_expansions(run))
                if diabetes_type and _DIABETES in stems and "type" not in stems:
                    stems += diabetes_type
                if stems:
                    history = header or _is_history(stems) or _is_prior(run)
                    stated = (reason or admitted[start]) and not history
                    found.append(Mention(tuple(stems), position, history, stated))
    return Narrative(
        tuple(mentions), _phrases(mentions), tuple(negated), frozenset(_phrases(negated))
    )


#: How many words an aside lifted out of a term has (see _lift_asides).
_ASIDE_WORDS: Final = (1, 2, 3)
#: The longest one-word aside read as an abbreviation whatever the words before it.
_ABBREVIATION_LETTERS: Final = 5


#: The words of a sentence that say its diagnosis was ruled out ("sepsis was ruled out").
_RULED_OUT: Final = ("ruled", "out")


def _ruled_out_stems(words_of: Sequence[Sequence[str]]) -> dict[int, set[str]]:
    """For each sentence that rules a diagnosis out ("... sepsis was ruled out"), the content
    stems of the words its negation covers, by sentence number."""
    ruled: dict[int, set[str]] = {}
    for number, tokens in enumerate(words_of):
        at = next(
            (i for i in range(len(tokens) - 1) if tuple(tokens[i : i + 2]) == _RULED_OUT), None
        )
        if at is not None:
            out = [t for t, dropped in zip(tokens, excluded(tokens), strict=True) if dropped]
            out += _joined_before(tokens, at)
            stems = set(content_stems(in_clinical_words(out))) - {"rule", "out"}
            if stems:
                ruled[number] = stems
    return ruled


#: Words between a joining "but" or "and" and "ruled out": "suspected but later ruled out".
_BEFORE_RULED: Final = frozenset({"was", "were", "is", "been", "later", "then", "subsequently"})
_JOINERS: Final = frozenset({"but", "and", "which"})


def _joined_before(tokens: Sequence[str], ruled: int) -> list[str]:
    """The clause before "but", "and" or ", which" that joins it to "ruled out" at ``ruled``:
    the diagnosis both tell of ("Sepsis was suspected but ruled out", "possible pneumonia,
    which was subsequently ruled out", where the negation's scope stops at the joiner)."""
    at = ruled - 1
    while at >= 0 and tokens[at] in _BEFORE_RULED:
        at -= 1
    if at < 0 or tokens[at] not in _JOINERS:
        return []
    end = at - 1 if at > 0 and tokens[at - 1] == "," else at  # "pneumonia, which was ..."
    start = end
    while start > 0 and tokens[start - 1] not in CLAUSE_BREAKS:
        start -= 1
    return list(tokens[start:end])


def _named_in(tokens: Sequence[str], stems: set[str]) -> list[bool]:
    """For each token: part of an uncertain scope (:func:`uncertain`) one of whose words has a
    stem of ``stems``."""
    unsure = uncertain(tokens)
    out = [False] * len(tokens)
    start = 0
    while start < len(tokens):
        if not unsure[start]:
            start += 1
            continue
        end = start
        while end < len(tokens) and unsure[end]:
            end += 1
        if not stems.isdisjoint(content_stems(in_clinical_words(tokens[start:end]))):
            out[start:end] = [True] * (end - start)
        start = end
    return out


def _lift_asides(tokens: list[str]) -> list[str]:
    """``tokens`` with each short aside (two or three words) inside a term moved to a clause of
    its own at the end: "takotsubo ( broken heart ) syndrome" reads "takotsubo syndrome ;
    broken heart", so that the term is one mention (I51.81 "Takotsubo syndrome"). An aside is
    lifted only between two words that the parenthesis alone separates, and when it names no
    number ("CKD (stage 4) with anemia" keeps its stage where it is). One-word asides stay:
    mostly abbreviations of the term before them ("pulmonary disease (COPD) exacerbation";
    lifting them too cost 0.0012 micro-F1 on CodiEsp dev, these 0.0004)."""
    kept: list[str] = []
    asides: list[str] = []
    i = 0
    while i < len(tokens):
        aside = _aside_at(tokens, i) if kept and is_word(kept[-1]) else None
        if aside is None:
            kept.append(tokens[i])
            i += 1
        else:
            asides += [";", *aside]
            i += len(aside) + 2  # the aside and its parentheses
    return kept + asides


def _aside_at(tokens: Sequence[str], i: int) -> list[str] | None:
    """The words of the aside that opens at ``i`` and a word follows, or None."""
    if tokens[i] != "(":
        return None
    for size in _ASIDE_WORDS:
        closing = i + size + 1
        if closing + 1 < len(tokens) and tokens[closing] == ")":
            inner = list(tokens[i + 1 : closing])
            words = all(is_word(t) and not t.isdigit() for t in inner)
            if size == 1 and words and _abbreviation(inner[0], tokens[:i]):
                return None
            return inner if words and is_word(tokens[closing + 1]) else None
    return None


def _abbreviation(word: str, before: Sequence[str]) -> bool:
    """Whether a one-word aside is an abbreviation, of the words before it or not: at most
    :data:`_ABBREVIATION_LETTERS` letters ("copd", "chf", "hfref"), or the initials of the
    words before it ("pulmonary disease (pd)")."""
    if len(word) <= _ABBREVIATION_LETTERS:
        return True
    initials = "".join(t[0] for t in before[-len(word) :] if is_word(t))
    return initials == word


def _diabetes_type(words_of: Sequence[Sequence[str]]) -> list[str]:
    """The stems of the one type of diabetes the narrative states ("type", "1"), or [] when it
    states none or both. A type counts beside a diabetes word only ("type 1 diabetic",
    "diabetes mellitus type 2"; not "type 2 respiratory failure")."""
    found = {
        pair
        for tokens in words_of
        for i in range(len(tokens) - 1)
        if (pair := (tokens[i], tokens[i + 1])) in _TYPES
        and any(t.startswith(_DIABETES_WORDS) for t in tokens[max(0, i - 3) : i + 4])
    }
    return list(found.pop()) if len(found) == 1 else []


def _normal_workup(tokens: Sequence[str]) -> bool:
    """A sentence that reports a work-up normal: "unremarkable", "normal", "negative",
    "unrevealing"; not "gram negative" (an organism) nor "normal saline" (a fluid)."""
    return any(
        t in NORMAL_WORKUP
        and not (i > 0 and tokens[i - 1] == "gram")
        and not (i + 1 < len(tokens) and tokens[i + 1] == "saline")
        for i, t in enumerate(tokens)
    )


def _is_history(stems: Sequence[str]) -> bool:
    return not _HISTORY.isdisjoint(stems) and not set(stems) >= _PRESENT_ILLNESS


def _is_prior(tokens: Sequence[str]) -> bool:
    """ "prior stroke", "previous myocardial infarction": a past event, but not "prior to
    admission", which dates something of this stay. So is one dated months or years back
    ("had a stroke 3 years ago", "an MI last year"), or told over ("cured", "as a child");
    days or weeks back date the present illness ("chest pain 3 days ago")."""
    return any(
        (word in _PRIOR and (i + 1 == len(tokens) or tokens[i + 1] != "to"))
        or (word == "ago" and i > 0 and tokens[i - 1] in _LONG_AGO)
        or (word in _LAST and i > 0 and tokens[i - 1] == "last")
        or word in _OVER
        or (word in _AS_A and i > 1 and tokens[i - 2 : i] == ["as", "a"])
        for i, word in enumerate(tokens)
    )


def _heading(tokens: Sequence[str]) -> str:
    """The words before a sentence's first colon ("final diagnosis"), or a final-diagnosis
    heading the sentence opens with and no colon follows; "" without either."""
    if ":" in tokens:
        return " ".join(tokens[: tokens.index(":")])
    bare = next((h for h in _BARE_HEADINGS if list(tokens[: len(h)]) == h), None)
    return " ".join(bare) if bare is not None and len(tokens) > len(bare) else ""


def _reason_header(tokens: Sequence[str]) -> bool:
    """A sentence that opens with a heading naming the stay's diagnosis: "Final diagnosis:",
    "Discharge diagnoses:", "Principal diagnosis:", "Reason for admission:"."""
    heading = _heading(tokens)
    return heading in _REASON_HEADINGS or _is_final(heading)


def _final_header(tokens: Sequence[str]) -> bool:
    """A sentence that opens with the heading of the stay's final diagnosis: "Final
    diagnosis:", "Discharge diagnoses:" (not an admitting one), also a consultant's
    ("Cardiology final dx:", "the final diagnosis:")."""
    return _is_final(_heading(tokens))


def _is_final(heading: str) -> bool:
    return heading in _FINAL_HEADINGS or any(
        heading.endswith(f" {final}") for final in _FINAL_HEADINGS
    )


def _history_header(tokens: Sequence[str]) -> bool:
    """A sentence that opens with a history heading ("Past medical history:", "PMH:") lists
    the patient's history after its colon."""
    if ":" not in tokens:
        return False
    return _is_history(content_stems(tokens[: tokens.index(":")]))


def _clause_starts(admitted: Sequence[bool]) -> frozenset[int]:
    """Where a clause of the stay's reason starts ("admitted this time | for a small bowel
    obstruction"): a mention starts there, so the words before it are not the reason."""
    return frozenset(i for i, on in enumerate(admitted) if on and (i == 0 or not admitted[i - 1]))


def _runs(
    tokens: list[str], drop: list[bool], dropped: bool, starts: frozenset[int] = frozenset()
) -> Iterable[tuple[int, list[str]]]:
    """Runs of tokens whose ``drop`` flag is ``dropped``, cut at clause punctuation and before
    ``starts``, each with the index of its first token."""
    run: list[str] = []
    start = 0
    for i, (token, flag) in enumerate(zip(tokens, drop, strict=True)):
        if i in starts and run:
            yield start, run
            run = []
        if flag != dropped or token in CLAUSE_BREAKS or token in _MENTION_CUTS:
            if run:
                yield start, run
                run = []
        elif token in _ORGANISM_PREFIXES:
            if run:
                yield start, run
            yield i, [token]
            run = []
        else:
            if not run:
                start = i
            run.append(token)
    if run:
        yield start, run


def _admitted_for(tokens: Sequence[str]) -> list[bool]:
    """For each token of one sentence: part of the clause that states why the patient is
    here ("admitted for", "presents with", "came in with", "hospitalized for"), up to the next
    clause punctuation. Its diagnosis is the principal one (Section II: the condition
    established to be chiefly responsible for the admission), before comorbidities told
    first ("Patient with COPD and diabetes admitted for acute pyelonephritis")."""
    out = [False] * len(tokens)
    on = False
    for i, token in enumerate(tokens):
        if token in CLAUSE_BREAKS:
            on = False
        elif token in _ADMISSION_PREPOSITIONS and any(
            t in _ADMISSION_VERBS for t in tokens[max(0, i - _ADMISSION_GAP) : i]
        ):
            on = True
        out[i] = on
    return out


def _phrases(mentions: list[Mention]) -> dict[str, float]:
    found: dict[str, float] = {}
    for mention in mentions:
        stems = mention.stems
        for size in range(1, MAX_PHRASE + 1):
            for start in range(len(stems) - size + 1):
                found.setdefault(" ".join(stems[start : start + size]), mention.position)
    return found
