"""A release's tabular list as a BM25 index of code texts, and the way back to billable codes.

Every listed code contributes its description and inclusion terms ("entries"). Seven-character
codes do not: their base (the code without the 7th character) does, and the 7th character is
chosen from the narrative afterwards (initial encounter unless it says otherwise). That keeps the
index at ~53,000 entries instead of ~110,000. Words after "without" are left out of an entry:
"hepatitis C without hepatic coma" is what a plain "hepatitis C" means. An entry of a code that
is not billable resolves to its default leaf: the child that says "unspecified" (or "without
complications"), recursively, so "Type 2 diabetes mellitus" (E11) yields E11.9 and "Fracture of
tibia NOS" (S82.20) S82.209A.

Retrieval is bm25s's BM25 (Lucene variant) over stems, scored from its sparse index (~0.08 ms a
query). Each entry also keeps the
stems that must be present for it to count as fully mentioned, weighted by their inverse
document frequency, so that a clause can be checked for covering an entry.
"""

import csv
import functools
import logging
import re
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Final

import bm25s
import numpy as np
import numpy.typing as npt

from drg.codeset.hierarchy import default_leaf
from drg.codeset.memory import MemoryCodeSet
from drg.codeset.source import CodeRecord
from schemas.icd10cm import DOTTED_CODE
from worker.coders.retrieval.text import CLAUSE_BREAKS, content_stems, words

# bm25s sets its own logger to DEBUG at import, which lets "Building index" through every handler
logging.getLogger("bm25s").setLevel(logging.WARNING)

_PARENTHESES: Final = re.compile(r"\([^()]*\)")  # nonessential modifiers in ICD-10-CM convention
_BRACKETS: Final = re.compile(r"\[([^\[\]]*)\]")  # synonyms and abbreviations: "[HIV]"
# Two one-word alternatives of a code text, "bronchus or lung", "car, pick-up truck or van"
# ("with or without" is no alternative of two things).
_ALTERNATIVES: Final = re.compile(
    r"\b(?!with\b|without\b)(?P<a>[a-z]+) or (?!with\b|without\b)(?P<b>[a-z]+)\b", re.IGNORECASE
)
# Two one-word conditions a code text names together, either being enough (Index: Syncope R55,
# Collapse R55; Hyponatremia E87.1; Thrombosis, vein, femoral I82.41-): a whole text "syncope
# and collapse", "hypo-osmolality and hyponatremia", or a head "embolism and thrombosis of ...".
_BOTH: Final = re.compile(
    r"^(?P<lead>(?:acute |chronic )?)(?P<a>[a-z-]+) and (?P<b>[a-z-]+)(?P<rest>$| of .*)",
    re.IGNORECASE,
)
_NOT_CONDITIONS: Final = frozenset({"other", "unspecified", "with", "without", "in", "of"})
# A site of two parts after a side, ending a title, read as either part: "Acute hematogenous
# osteomyelitis, left tibia and fibula" (M86.062), "..., right ankle and foot" (Index:
# Osteomyelitis, acute, hematogenous, tibia M86.06-); "Torsion of right ovary and ovarian
# pedicle" (N83.511; Index: Torsion, ovary N83.51-).
_SITE_PAIR: Final = re.compile(
    r"^(?P<lead>.+(?:,| of) (?:right|left|unspecified|bilateral) )(?P<a>[a-z]+) and "
    r"(?P<b>[a-z]+(?: [a-z]+)?)$",
    re.IGNORECASE,
)
# A name's possessive ending: "Dressler's", "Reiter's", "Meniere's".
_POSSESSIVE: Final = re.compile(r"(?<=[A-Za-z])['\u2019]s\b")
# A title naming a condition by two or more persons: "Guillain-Barre syndrome", "Budd-Chiari
# syndrome". Their names alone name it ("it was Guillain-Barre"; Index: Guillain-Barre disease
# or syndrome G61.0). One name alone is often a word too ("Down", "Still's"), so it stays whole.
_EPONYMS: Final = re.compile(r"^(?P<names>[A-Z]\w+(?:-[A-Z]\w+)+)(?:'s)? (?:syndrome|disease)$")
# A title that ends with its condition's eponym in brackets: "Chondrocostal junction syndrome
# [Tietze]", "Synovial cyst of popliteal space [Baker]", "Thromboangiitis obliterans [Buerger's
# disease]". The Index enters these by the name ("Tietze's disease or syndrome M94.0", "Baker's
# cyst M71.2-", "Buerger's disease I73.1"); a name alone ("Burns", "Sweet") is often a word too.
_BRACKETED_EPONYM: Final = re.compile(
    r"^(?P<title>[^\[\]]+?)\s*\[(?P<name>(?:de |von |van )?[A-Z][a-z\u00c0-\u017f]+"
    r"(?:-[A-Z][a-z\u00c0-\u017f]+)*)(?P<what>(?:'s)? (?:disease|syndrome)(?: of [a-z ]+)?)?\]"
    r"(?P<rest>,.*)?$"
)
# An Excludes note that names one code: "renal colic (N23)", "abdomen pain (R10.-)".
_REFERENCE: Final = re.compile(rf"^(?P<text>[^()]+?)\s*\((?P<code>{DOTTED_CODE})\.?-?\)$")
# "Other specified fever" is "fever" once generic words go: such descriptions would match every
# plain mention, so only their inclusion terms are indexed.
_OTHER: Final = re.compile(r"^other\b|\bother specified\b", re.IGNORECASE)

# "without" opens what a code text says is absent ("... hepatitis C without hepatic coma"); up
# to one of these, those words are not required of a mention (the code is the default) and must
# not attract mentions of the very thing.
_WITHOUT_ENDS: Final = CLAUSE_BREAKS | {"of", "with", "in", "due"}

DESCRIPTION, INCLUSION, REFERENCE = 0, 1, 2  # Entry.kind


@dataclass(frozen=True, slots=True)
class Entry:
    node: str  # the listed code whose text this is (undotted)
    stems: tuple[int, ...]  # required stem ids, unique
    stem_set: frozenset[int]
    mass: float  # sum of the required stems' idf
    kind: int  # DESCRIPTION, INCLUSION (inclusion terms, includes notes) or REFERENCE


@dataclass(frozen=True, slots=True)
class Hit:
    entry: int
    bm25: float
    coverage: float  # share of the entry's idf mass present in the query


class SeventhCharacter:
    """Picks the 7th character of injury, poisoning and obstetric codes from narrative cues."""

    # learned-phrase keys (stem runs, see mentions.py) -> the 7th character they call for,
    # strongest first; none: "A", initial encounter, what an inpatient stay for the injury is.
    # Plain "open" is no cue: "open reduction" is how closed fractures are treated.
    _CUES: Final = (
        (frozenset({"sequela", "late effect"}), "S"),
        # a lay "follow-up visit" or "follow-up appointment" is the subsequent encounter
        (frozenset({"subsequ encount", "follow up visit", "follow up appoint"}), "D"),
        (frozenset({"open fractur", "compound fractur"}), "B"),
    )

    @classmethod
    def cues(cls, phrases: Collection[str]) -> tuple[str, ...]:
        return tuple(char for cue, char in cls._CUES if not cue.isdisjoint(phrases))


def _texts(record: CodeRecord) -> list[tuple[str, str, int]]:
    """(code, text, kind) of one record: its own texts and the codes its Excludes notes name."""
    out = [(record.code, t, INCLUSION) for t in (*record.inclusion_terms, *record.includes)]
    if not _OTHER.search(record.description):
        out.append((record.code, record.description, DESCRIPTION))
    for note in record.excludes:
        match = _REFERENCE.match(note)
        if match:
            out.append((match["code"].replace(".", ""), match["text"], REFERENCE))
    expanded: list[tuple[str, str, int]] = []
    for code, text, kind in out:
        plain = _PARENTHESES.sub(" ", text)
        # "Human immunodeficiency virus [HIV] disease": once as written, once with the synonym
        texts = [_BRACKETS.sub(" ", plain)]
        for match in _BRACKETS.finditer(plain):
            texts.append(plain[: match.start()] + match.group(1) + plain[match.end() :])
        texts += _bracketed_eponym(plain.strip())
        eponyms = _EPONYMS.match(plain.strip())
        if eponyms:
            texts.append(eponyms["names"])
        # an eponym's possessive: "Dressler's syndrome" is also told "Dressler syndrome" (the
        # Index writes eponyms both ways: "Tourette's syndrome", "Kawasaki syndrome")
        texts += [_POSSESSIVE.sub("", t) for t in texts if _POSSESSIVE.search(t)]
        # "upper lobe, right bronchus or lung": also once with each alternative, so that a
        # mention of the lung alone can name the code
        for written in list(texts):
            for match in _ALTERNATIVES.finditer(written):
                for word in (match["a"], match["b"]):
                    texts.append(written[: match.start()] + word + written[match.end() :])
            # a billable code's own text only: a category's ("nausea and vomiting", R11)
            # resolves to a default leaf that has both (R11.2)
            both = _BOTH.match(written.strip()) if record.billable and code == record.code else None
            if both and not {both["a"].lower(), both["b"].lower()} & _NOT_CONDITIONS:
                texts += [both["lead"] + word + both["rest"] for word in (both["a"], both["b"])]
            pair = _SITE_PAIR.match(written.strip()) if code == record.code else None
            if pair:
                texts += [pair["lead"] + pair["a"], pair["lead"] + pair["b"]]
        expanded += [(code, t, kind) for t in texts]
    return expanded


def _bracketed_eponym(text: str) -> list[str]:
    """The texts of a title whose eponym ends it in brackets (:data:`_BRACKETED_EPONYM`), each
    with the site or side after it: "[Buerger's disease]" alone; "[Tietze]" as "Tietze disease",
    "Tietze syndrome" and with the title's condition word ("Baker cyst", "de Quervain
    tenosynovitis": the word before "of", else the title's last word)."""
    match = _BRACKETED_EPONYM.match(text)
    if match is None:
        return []
    name, rest = match["name"], match["rest"] or ""
    if match["what"]:
        return [name + match["what"] + rest]
    title = match["title"].split(" of ")[0].split()
    return [f"{name} {word}{rest}" for word in dict.fromkeys(("disease", "syndrome", title[-1]))]


@functools.cache
def index_terms() -> tuple[tuple[str, str], ...]:
    """(undotted listed code, term) of ``data/index_terms.tsv``: terms of the ICD-10-CM
    Alphabetic Index that no tabular text says ("Ludwig's angina" K12.2, "atypical chest pain"
    R07.89), each row citing its Index entry. Lines starting with "#" are comments.

    Raises ValueError naming the line when a row does not have its three columns."""
    text = resources.files("worker.coders.retrieval").joinpath("data", "index_terms.tsv")
    rows: list[tuple[str, str]] = []
    lines = text.read_text(encoding="utf-8").splitlines()
    for number, row in enumerate(csv.reader(lines, delimiter="\t"), start=1):
        if not row or row[0].startswith("#"):
            continue
        if len(row) != 3 or not all(cell.strip() for cell in row):
            raise ValueError(f"index_terms.tsv line {number}: want code, term, Index entry")
        rows.append((row[0].strip().replace(".", ""), row[1].strip()))
    return tuple(rows)


def _present(tokens: Sequence[str]) -> list[str]:
    """``tokens`` without "without ..." spans: "viral hepatitis c" for "viral hepatitis c without
    hepatic coma", "laceration of abdominal wall" for "laceration without foreign body of
    abdominal wall"; nor the ", part unspecified" a default title ends its site with, which no
    narrative says ("diverticulitis of intestine, part unspecified" is what "diverticulitis of
    the bowel" means)."""
    tokens = _without_part_unspecified(tokens)
    kept: list[str] = []
    absent = False
    for i, word in enumerate(tokens):
        # "without hepatic coma"; "not specified as recurrent", "not having achieved remission"
        if word == "without" or (word == "not" and tokens[i + 1 : i + 2] != ["elsewhere"]):
            absent = True
        elif absent and word in _WITHOUT_ENDS:
            absent = False
        if not absent:
            kept.append(word)
    return kept


def _without_part_unspecified(tokens: Sequence[str]) -> list[str]:
    out = list(tokens)
    for i in range(len(out) - 2):
        if out[i : i + 3] == [",", "part", "unspecified"]:
            return out[:i] + out[i + 3 :]
    return out


def _with_side(text: str, side: str) -> list[str]:
    """``text`` with one of its "unspecified" read as ``side``, each in turn: a text can say
    "unspecified" twice ("unspecified part of neck of unspecified femur")."""
    variants = []
    for match in re.finditer(r"\bunspecified\b", text):
        variants.append(text[: match.start()] + side + text[match.end() :])
    return variants


class CodeIndex:
    """Entries of one code set, their BM25 index, and resolution to billable codes."""

    def __init__(self, codeset: MemoryCodeSet) -> None:
        self.codeset = codeset
        self.vocab: dict[str, int] = {}
        self._default: dict[str, str | None] = {}
        self._side: dict[tuple[str, str], str] = {}
        entries: list[tuple[str, tuple[int, ...], int]] = []
        seen: set[tuple[str, tuple[int, ...]]] = set()
        # the tabular list's own texts, then the Index's terms it does not say (a term of a code
        # this release lacks is left out)
        texts = [
            (code, _present(words(text)), kind)
            for record in codeset.records.values()
            if len(record.code) != 7  # seven-character codes are reached through their base
            for code, text, kind in _texts(record)
        ] + [(code, words(text), INCLUSION) for code, text in index_terms()]
        for code, tokens, kind in texts:
            if code not in codeset.records or self.default_leaf(code) is None:
                continue
            ids = tuple(dict.fromkeys(self._ids(content_stems(tokens))))
            if ids and (code, ids) not in seen:
                seen.add((code, ids))
                entries.append((code, ids, kind))
        df = np.zeros(len(self.vocab), dtype=np.int64)
        for _, ids, _ in entries:
            df[list(ids)] += 1
        n = len(entries)
        self.idf: npt.NDArray[np.float64] = np.log1p((n - df + 0.5) / (df + 0.5))
        self.entries: tuple[Entry, ...] = tuple(
            Entry(code, ids, frozenset(ids), float(self.idf[list(ids)].sum()), kind)
            for code, ids, kind in entries
        )
        self._idf: list[float] = self.idf.tolist()  # plain floats: numpy scalars are slow here
        self._bm25 = bm25s.BM25()
        self._bm25.index(([list(e.stems) for e in self.entries], self.vocab), show_progress=False)
        # bm25s keeps its index as a CSC matrix (vocabulary x entries) in ``scores``
        postings = self._bm25.scores
        self._indptr: list[int] = postings["indptr"].tolist()
        self._indices: npt.NDArray[np.int64] = postings["indices"].astype(np.int64)
        self._data: npt.NDArray[np.float64] = postings["data"].astype(np.float64)

    def _ids(self, stems: Sequence[str]) -> list[int]:
        return [self.vocab.setdefault(s, len(self.vocab)) for s in stems]

    def ids(self, stems: Sequence[str]) -> list[int]:
        """Ids of the stems the index knows; unknown stems cannot match any code text."""
        vocab = self.vocab
        return [vocab[s] for s in stems if s in vocab]

    def search(self, query: Sequence[int], k: int) -> list[Hit]:
        """The ``k`` best entries for one query of stem ids, best first (ties: lower entry)."""
        unique = list(dict.fromkeys(query))
        if not unique:
            return []
        # BM25 from bm25s's precomputed term-entry scores, summed over the query's postings
        # only: bm25s's own get_scores adds into a dense array term by term (np.add.at) and
        # leaves finding the few scored entries among ~53,000 to the caller, 4x slower here.
        indptr, indices, data = self._indptr, self._indices, self._data
        spans = [(indptr[t], indptr[t + 1]) for t in unique]
        touched = np.concatenate([indices[a:b] for a, b in spans])
        scores = np.bincount(
            touched,
            weights=np.concatenate([data[a:b] for a, b in spans]),
            minlength=len(self.entries),
        )
        # An entry appears in ``touched`` once per query stem it has, so the k best entries are
        # among the k * len(unique) best postings.
        top = k * len(unique)
        if len(touched) > top:
            touched = touched[np.argpartition(-scores[touched], top - 1)[:top]]
        best = np.unique(touched)
        best = best[np.argsort(-scores[best], kind="stable")][:k]
        present = set(unique)
        idf = self._idf
        hits = []
        for i, score in zip(best.tolist(), scores[best].tolist(), strict=True):
            entry = self.entries[i]
            covered = sum(idf[t] for t in entry.stem_set & present)
            hits.append(Hit(i, score, covered / entry.mass if entry.mass else 0.0))
        return hits

    def default_leaf(self, code: str) -> str | None:
        """The billable code a listed code stands for when nothing more specific is said; a
        seven-character base answers with itself (see :meth:`resolve`). None when no child
        reads as a default (G89 "Pain, not elsewhere classified": acute? chronic? central?)."""
        if code not in self._default:
            self._default[code] = default_leaf(self.codeset, code)
        return self._default[code]

    def resolve(self, code: str, cues: Sequence[str] = (), side: str | None = None) -> str:
        """A billable code for listed ``code``: its default leaf, on the named ``side`` ("left"
        or "right") where the leaf is the unspecified side of left/right siblings, with the 7th
        character chosen by ``cues`` (see :class:`SeventhCharacter`) when the leaf needs one."""
        node = self.default_leaf(code)
        if node is None:
            raise ValueError(f"{code} has no default leaf")
        if side is not None:
            node = self._sided(node, side)
        kids = self.codeset.children.get(node, ())
        if not kids:
            return node
        by_char = {k[-1]: k for k in kids}
        for char in (*cues, "A"):
            if char in by_char:
                return by_char[char]
        return kids[0]  # obstetric codes: "0", not applicable or unspecified

    def _sided(self, node: str, side: str) -> str:
        """The sibling of ``node`` whose description is node's with ``side`` for its one
        "unspecified" (S72.009 "... neck of unspecified femur" -> S72.002 "... of left femur");
        ``node`` itself when there is none."""
        key = (node, side)
        found = self._side.get(key)
        if found is None:
            found = node
            records = self.codeset.records
            text = records[node].description.lower()
            parent = records[node].parent
            if parent is not None and "unspecified" in text:
                for sibling in self.codeset.children.get(parent, ()):
                    other = records[sibling].description.lower()
                    if re.search(rf"\b{side}\b", other) and any(
                        other == variant for variant in _with_side(text, side)
                    ):
                        found = sibling
                        break
            self._side[key] = found
        return found

    def is_default(self, code: str) -> bool:
        return self.default_leaf(code) != code


_INDEXES: dict[int, tuple[MemoryCodeSet, CodeIndex]] = {}
_INDEXES_LOCK = threading.Lock()


def index_for(codeset: MemoryCodeSet) -> CodeIndex:
    """The index of a code set, built once per process and shared by every coder (read-only,
    apart from a cache of default leaves that only grows). Keyed by the code set object, so two
    catalogs that hold the same release share it."""
    with _INDEXES_LOCK:
        found = _INDEXES.get(id(codeset))
        if found is None or found[0] is not codeset:
            found = _INDEXES[id(codeset)] = (codeset, CodeIndex(codeset))
        return found[1]
