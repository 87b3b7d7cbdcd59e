"""Link what one sentence says together: a systemic infection to its organism, COVID-19 to the
pneumonia it causes. The index and the learned evidence find each code on its own ("sepsis":
A41.9, "E. coli": B96.20); ICD-10-CM often has one code for the pair, and the guidelines say to
use it.

- **Sepsis due to a named organism** (Official Guidelines I.C.1.d.1.a: A41.9 only when the
  organism is not further specified): A41.9 "Sepsis, unspecified organism" beside an organism
  code of B95-B96 ("... as the cause of diseases classified elsewhere"), both named in one
  sentence ("sepsis due to E. coli urinary tract infection"), becomes the sepsis code of that
  organism (:data:`SEPSIS_BY_ORGANISM`, from the tabular titles of A40-A41). The organism is then
  reported once, by the sepsis code: the B95-B96 codes of that organism go, and so does A41.9
  beside a sepsis code that names its organism already. (Tabular N39.0 asks for an
  additional B95-B97 code to identify the agent of a UTI; with the agent in the sepsis code we
  follow the [retrieval] issue's answer, A41.51 and N39.0.)
- **COVID-19** (I.C.1.g.1.a): a sentence that names COVID-19 gets U07.1, unless it calls it
  suspected, possible or probable (I.C.1.g.1.a: only confirmed cases; the uncertain-diagnosis
  rule of Section II.H does not apply to COVID-19); pneumonia named with it is J12.82
  "Pneumonia due to coronavirus disease 2019", not an unspecified-organism pneumonia (J18.-),
  and acute bronchitis is J20.8. Sequencing (U07.1 first) is ``apply_conventions``'s. An
  exposure to COVID-19 ("exposed to", "contact with") is Z20.822, never U07.1 (I.C.1.g.1.e).
- **The reason for the stay: antineoplastic therapy** (I.C.2.e.2): a sentence that says the
  stay or encounter is for chemotherapy, radiation therapy or immunotherapy ("admitted for
  chemotherapy", "encounter for radiotherapy", "here for cycle 3 of chemo") gets Z51.11, Z51.0 or
  Z51.12; ``apply_conventions``'s sequencing puts it first and the malignancy after it. Therapy
  the patient only had ("received chemotherapy in 2019") gives none.
- **Hypertension with heart or kidney disease** (I.C.9.a): the classification presumes the
  link, and I11-I13 include the hypertension; I10 beside one of them goes. (Forming the
  combination code from I10 and the heart failure and CKD codes is ``apply_conventions``'s
  ``combination`` rule, which fixes a coder's codes.)

Codes are undotted; only codes the claim's release bills are ever added.
"""

from collections.abc import Callable, Sequence
from typing import Final

from drg.codeset.memory import MemoryCodeSet
from worker.coders.retrieval.context import affirmed
from worker.coders.retrieval.text import sentences, stem, words

#: Organism code (prefix, B95-B96) -> the sepsis code of that organism (A40-A41 titles).
SEPSIS_BY_ORGANISM: Final[dict[str, str]] = {
    "B950": "A400",  # streptococcus, group A -> Sepsis due to streptococcus, group A
    "B951": "A401",  # streptococcus, group B
    "B952": "A4181",  # Enterococcus -> Sepsis due to Enterococcus
    "B953": "A403",  # Streptococcus pneumoniae
    "B954": "A408",  # other streptococcus -> Other streptococcal sepsis
    "B955": "A409",  # unspecified streptococcus -> Streptococcal sepsis, unspecified
    "B9561": "A4101",  # MSSA -> Sepsis due to MSSA
    "B9562": "A4102",  # MRSA -> Sepsis due to MRSA
    "B957": "A411",  # other staphylococcus -> Sepsis due to other specified staphylococcus
    "B958": "A412",  # unspecified staphylococcus
    "B961": "A4159",  # Klebsiella pneumoniae -> Other Gram-negative sepsis
    "B962": "A4151",  # Escherichia coli (B96.20-B96.29) -> Sepsis due to E. coli
    "B963": "A413",  # Hemophilus influenzae
    "B964": "A4159",  # Proteus -> Other Gram-negative sepsis
    "B965": "A4152",  # Pseudomonas
    "B966": "A414",  # Bacteroides fragilis -> Sepsis due to anaerobes
    "B967": "A414",  # Clostridium perfringens -> Sepsis due to anaerobes
}
UNSPECIFIED_SEPSIS: Final = "A419"
_SEPSIS_OF_ORGANISM: Final = frozenset(SEPSIS_BY_ORGANISM.values())
COVID_19: Final = "U071"
COVID_PNEUMONIA: Final = "J1282"
COVID_ACUTE_BRONCHITIS: Final = "J208"
ESSENTIAL_HYPERTENSION: Final = "I10"
#: Hypertensive heart disease, CKD, heart and CKD (I11-I13)
HYPERTENSIVE_DISEASE: Final = frozenset({"I11", "I12", "I13"})

# Stems, as text.stem gives them
_SEPSIS: Final = frozenset(stem(["sepsis", "septic", "septicemia", "urosepsis", "bacteremia"]))
_ORGANISMS: Final = frozenset(
    stem(
        [
            *("coli", "streptococcus", "streptococcal", "strep", "staphylococcus", "staph"),
            *("staphylococcal", "enterococcus", "enterococcal", "pneumococcus", "pneumococcal"),
            *("klebsiella", "proteus", "pseudomonas", "influenzae", "mrsa", "mssa", "aureus"),
            *("bacteroides", "fragilis", "clostridium", "perfringens"),
        ]
    )
)
_COVID: Final = (("covid", "19"), ("covid19",), ("sars", "cov", "2"), ("coronavirus", "disease"))
_COVID_WORDS: Final = ("covid", "sars", "coronavirus")
_EXPOSURE: Final = frozenset({"exposure", "exposed", "contact", "contacts"})
COVID_EXPOSURE: Final = "Z20822"
_UNCERTAIN: Final = frozenset(
    {"suspected", "suspect", "possible", "possibly", "probable", "probably", "likely", "query"}
)
_PNEUMONIA: Final = frozenset(stem(["pneumonia", "pneumonitis"]))
# words that make a sentence about this stay or encounter, before "for" and the therapy
_STAY: Final = frozenset(
    {"admit", "admitted", "admission", "encounter", "here", "came", "presents", "presented"}
    | {"scheduled", "planned", "elective", "readmitted", "visit", "hospitalized", "hospitalised"}
)
# therapy words -> the Z51 code of an encounter for that therapy (tabular titles of Z51)
THERAPY_ENCOUNTER: Final[tuple[tuple[tuple[str, ...], str], ...]] = (
    (("chemotherapy",), "Z5111"),
    (("chemo",), "Z5111"),
    (("antineoplastic", "chemotherapy"), "Z5111"),
    (("radiation", "therapy"), "Z510"),
    (("radiation", "treatment"), "Z510"),
    (("radiotherapy",), "Z510"),
    (("immunotherapy",), "Z5112"),
)
_BRONCHITIS: Final = frozenset(stem(["bronchitis"]))
_ACUTE: Final = frozenset(stem(["acute"]))


def link(codes: Sequence[str], narrative: str, codeset: MemoryCodeSet) -> list[str]:
    """``codes`` (undotted, principal first) with the links above made, in place of the codes
    they combine. Never adds a code the release does not bill."""
    out = list(codes)
    # the sentences are read only when a link is possible (most claims: never)
    lowered = narrative.lower()
    sepsis = UNSPECIFIED_SEPSIS in out or not _SEPSIS_OF_ORGANISM.isdisjoint(out)
    if sepsis or any(word in lowered for word in _COVID_WORDS):
        said = [affirmed(words(sentence)) for sentence in sentences(narrative)]
        out = _sepsis_organism(out, said, codeset)
        out = _covid(out, said, codeset)
    if any(t[0][0][:5] in lowered for t in THERAPY_ENCOUNTER):
        out = _therapy_encounter(out, [affirmed(words(s)) for s in sentences(narrative)], codeset)
    return _hypertension(out)


def _therapy_encounter(
    codes: list[str], said: Sequence[Sequence[str]], codeset: MemoryCodeSet
) -> list[str]:
    out = list(codes)
    for tokens in said:
        for i in range(len(tokens)):
            for phrase, code in THERAPY_ENCOUNTER:
                if tuple(tokens[i : i + len(phrase)]) != phrase:
                    continue
                before = tokens[:i]
                # "for" shortly before the therapy ("for cycle 3 of chemotherapy"), and a word
                # of this stay before that
                if "for" not in before[-5:] or _STAY.isdisjoint(before):
                    continue
                if _bills(code, codeset) and code not in out:
                    out.append(code)
    return out


def _hypertension(codes: list[str]) -> list[str]:
    if ESSENTIAL_HYPERTENSION in codes and any(c[:3] in HYPERTENSIVE_DISEASE for c in codes):
        return [c for c in codes if c != ESSENTIAL_HYPERTENSION]
    return codes


def _bills(code: str, codeset: MemoryCodeSet) -> bool:
    record = codeset.records.get(code)
    return record is not None and record.billable


def _sepsis_organism(
    codes: list[str], said: Sequence[Sequence[str]], codeset: MemoryCodeSet
) -> list[str]:
    linked = any(
        not _SEPSIS.isdisjoint(stems) and not _ORGANISMS.isdisjoint(stems)
        for stems in (set(stem(list(words_))) for words_ in said)
    )
    if not linked:
        return codes
    out = list(codes)
    if UNSPECIFIED_SEPSIS in out and not any(c in _SEPSIS_OF_ORGANISM for c in out):
        for code in out:
            target = _organism_sepsis(code)
            if target is not None and _bills(target, codeset):
                out = [target if c == UNSPECIFIED_SEPSIS else c for c in out if c != target]
                break
    # the sepsis code names its organism: A41.9 and that organism's B95-B96 codes go (MRSA
    # sepsis, A41.02, says "Staphylococcus aureus": neither B95.62 nor the B95.61 that learned
    # evidence reads in "Staphylococcus aureus" stays)
    families = {prefix[:4] for prefix, target in SEPSIS_BY_ORGANISM.items() if target in set(out)}
    if not families:
        return out
    return [
        c
        for c in out
        if c != UNSPECIFIED_SEPSIS and not (_organism_sepsis(c) and c[:4] in families)
    ]


def _organism_sepsis(code: str) -> str | None:
    """The sepsis code of organism code ``code`` (B95-B96), or None."""
    return next((t for prefix, t in SEPSIS_BY_ORGANISM.items() if code.startswith(prefix)), None)


def _names_covid(tokens: Sequence[str]) -> int | None:
    """Where one sentence's words name COVID-19, or None."""
    for i in range(len(tokens)):
        for phrase in _COVID:
            if tuple(tokens[i : i + len(phrase)]) == phrase:
                return i
    return None


def _covid(codes: list[str], said: Sequence[Sequence[str]], codeset: MemoryCodeSet) -> list[str]:
    out = list(codes)
    for tokens in said:
        at = _names_covid(tokens)
        if at is None or not _UNCERTAIN.isdisjoint(tokens[:at]):
            continue
        if not _EXPOSURE.isdisjoint(tokens[:at]):
            out = [c for c in out if c != COVID_19]
            if _bills(COVID_EXPOSURE, codeset) and COVID_EXPOSURE not in out:
                out.append(COVID_EXPOSURE)
            continue
        if _bills(COVID_19, codeset) and COVID_19 not in out:
            out.append(COVID_19)
        stems = set(stem(list(tokens)))
        if not _PNEUMONIA.isdisjoint(stems) and _bills(COVID_PNEUMONIA, codeset):
            out = _replace(out, lambda c: c.startswith("J18"), COVID_PNEUMONIA)
        if (
            not _BRONCHITIS.isdisjoint(stems)
            and not _ACUTE.isdisjoint(stems)
            and _bills(COVID_ACUTE_BRONCHITIS, codeset)
        ):
            out = _replace(out, lambda c: c.startswith("J20"), COVID_ACUTE_BRONCHITIS)
    return out


def _replace(codes: list[str], unspecified: Callable[[str], bool], specific: str) -> list[str]:
    """The first code ``unspecified`` accepts becomes ``specific`` (the others go); with none,
    ``specific`` is added."""
    out: list[str] = []
    placed = specific in codes
    for code in codes:
        if code != specific and unspecified(code):
            if not placed:
                out.append(specific)
                placed = True
            continue
        out.append(code)
    if not placed:
        out.append(specific)
    return out
