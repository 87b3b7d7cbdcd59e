"""The tabular list's Excludes1, "code first" and "use additional code" notes of every code of a
release, as the references to other codes they make.

Sources (ICD-10-CM Official Guidelines for Coding and Reporting, Section I.A, "Conventions for
the ICD-10-CM", and the tabular list's "Instructional Notations"):

- I.A.12.a, Excludes1: "NOT CODED HERE!": the excluded code is never used at the same time as
  the code above the note. A note printed under a chapter, a section (block) or a category
  heads every code below it, so a code's Excludes1 notes are its own plus those of its listed
  ancestors, its section(s) and its chapter;
- I.A.13, etiology/manifestation: a "code first" note at the manifestation names its
  etiology, a "use additional code" note at the etiology names its manifestation; they apply
  to the codes under the code that carries them, likewise.

A note names codes at its end, in parentheses: ``type 1 diabetes mellitus (E10.-)``,
``(I12.-, I13.-)``, ``(E08-E13)``, ``(S02.0-S02.4)``. :func:`parse_refs` reads those
(:class:`CodeRef`); a note without one ("code to identify control using:", "certain localized
infections - see body system-related chapters") names no code, and an item with words in it
("E08-E13 with .42", "S02.- with 7th character B", "Chapter 20") is not read either: taking
only its codes would name more than the note does (:func:`unread_items` lists them). Codes
named outside parentheses ("code from category Z3A") are not read.

The notes come from the tabular XML of the packaged release (simple-icd-10-cm's, April 2026):
no later release ships one. A later release (derived or loaded, ``drg.codeset.catalog``) keeps
the notes of every code it shares with it; a new code has none of its own and inherits those of
its listed ancestors, its section and its chapter (a new category takes the sections of the
category before it in the release's code list, as ``drg.codeset.derive`` gives it that
category's chapter); a deleted code is absent.
"""

import re
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from drg.codeset.catalog import CodesetCatalog
from drg.codeset.memory import MemoryCodeSet
from drg.codeset.normalize import dotted, normalize
from drg.codeset.source import (
    CodeRecord,
    NodeNotes,
    TabularNotesSource,
    packaged_files,
    read_notes,
)
from drg.exceptions import ReferenceDataError
from drg.registry import CodesetSource, DerivedCodeset, PackagedCodeset

# --- the order of codes -----------------------------------------------------------------------

# Categories whose third character is a letter sit in the tabular list right after a category
# (and its codes) that plain character order would not put them after: category -> (that
# category, place after it). The tabular list puts every other category where character order
# does (I1A after I16, I5A after I52, O9A after O99, QA0 after Q99: nothing lies between).
_PLACED_AFTER: Final[Mapping[str, tuple[str, int]]] = {
    "C4A": ("C43", 1),  # Merkel cell carcinoma: section C43-C44, between C43 and C44
    "C7A": ("C75", 1),  # malignant neuroendocrine tumors: section C7A, before C76-C80
    "C7B": ("C75", 2),  # secondary neuroendocrine tumors: section C7B, after C7A
    "D3A": ("D36", 1),  # benign neuroendocrine tumors: section D3A, before D37-D48
    "J4A": ("J44", 1),  # section J40-J4A, between J44 and J45
    "M1A": ("M08", 1),  # chronic gout: section M05-M14, between M08 and M10
    "Z3A": ("Z36", 1),  # weeks of gestation: section Z30-Z39, between Z36 and Z37
}
# Chapter 22, "Codes for special purposes" (U00-U85), comes after chapter 21 (Z00-Z99).
_LETTERS: Final = "ABCDEFGHIJKLMNOPQRSTVWXYZU"
_LETTER_RANK: Final = {letter: rank for rank, letter in enumerate(_LETTERS)}


def tabular_key(code: str) -> tuple[int, str, int, str]:
    """Sort key of an undotted code (or code prefix) in the order of the tabular list.

    Character by character, digits before letters (ASCII), a prefix before its extensions
    ("E11" < "E110" < "E119" < "E11A"); except that the categories of ``_PLACED_AFTER`` sit
    where the tabular list prints them ("C43" < "C4A" < "C44", "M08" < "M1A" < "M10"), not
    after every digit ("C49" < "C4A" by character), and chapter 22 (U) comes last. A category
    the table does not name (a later release's ``J4B``, ``K6A``, ``QA1``) is placed by
    character. ``tests/test_tabular_notes.py`` checks this order against every category of the
    April 2026 tabular XML."""
    anchor, step = _PLACED_AFTER.get(code[:3], (code[:3], 0))
    return (_LETTER_RANK.get(anchor[:1], -1), anchor[1:], step, code[3:])


# --- references -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodeRef:
    """One reference of a note to codes, undotted: a code and every code below it
    (``first == last``: "E10.-", "O24.4-" and "P70.2" are E10, O244 and P702 with their
    children), or an inclusive range of them (``first`` < ``last``: "E08-E13", "S02.0-S02.4",
    "A00-R94"): every code from ``first`` to the last code below ``last``, in
    :func:`tabular_key` order. Raises ValueError on a bound that is not a code, or bounds out
    of order."""

    first: str  # "E10", "E08", "S020"
    last: str  # == first for one code; "E13", "S024" for a range
    _low: tuple[int, str, int, str] = field(init=False, repr=False, compare=False)
    _high: tuple[int, str, int, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for bound in (self.first, self.last):
            if normalize(bound) != bound:
                raise ValueError(f"{bound!r} is not an undotted ICD-10-CM code")
        low, high = tabular_key(self.first), tabular_key(self.last)
        if low > high:
            raise ValueError(f"range {self.first}-{self.last} ends before it starts")
        object.__setattr__(self, "_low", low)  # frozen: set once, here
        object.__setattr__(self, "_high", high)

    @property
    def single(self) -> bool:
        return self.first == self.last

    def matches(self, code: str) -> bool:
        """True when the undotted ``code`` is named: it starts with ``first`` (one code), or
        (a range) it is not before ``first`` and its prefix of the length of ``last`` is not
        after ``last``. So E11.9 is in E08-E13, I1A.0 in I10-I1A, C4A.0 in C43-C44 (not in
        C45-C49), S02.42 in S02.0-S02.4; S02 itself is not in S02.0-S02.4 (it comes before
        S02.0)."""
        if self.first == self.last:
            return code.startswith(self.first)
        letter = _LETTER_RANK.get(code[:1], -1)  # most codes are outside by their letter
        if letter < self._low[0] or letter > self._high[0]:
            return False
        return self._low <= tabular_key(code) and tabular_key(code[: len(self.last)]) <= self._high

    def __str__(self) -> str:
        if self.single:
            return dotted(self.first)
        return f"{dotted(self.first)}-{dotted(self.last)}"


# A parenthesised group; an unclosed one runs to the end of the text ("(Z89.52-").
_GROUP: Final = re.compile(r"\(([^()]*)(?:\)|$)")
# Items of a group: "(I12.-, I13.-)", "(A00-R94 and T80-T88.6, T88.8)".
_ITEM_SPLIT: Final = re.compile(r",|\band\b")
# A written code: a category with a digit in it (so "(SUV)", "(HIV)" are words), optionally a
# dot and 1-4 characters, not part of a longer word ("(G6PD)" is no code).
_CODE: Final = re.compile(
    r"(?<![0-9A-Za-z])([A-Z](?:[0-9][0-9A-Z]|[A-Z][0-9]))(?:\.([0-9A-Z]{1,4}))?(?![0-9A-Za-z])"
)
# What may follow a code: "and below" marks ("E10.-", "O24.4-", "G35-"), a stray space.
_TAIL: Final = re.compile(r"[\s.\-]*")
# Between the two bounds of a range: "E08-E13", "F11.-F17.-", "I70.2--I70.7-",
# "P28.3- - P28.4-", "I01.0 -I01.9", "M05.00 to M05.8A".
_BETWEEN: Final = re.compile(r"[\s.\-]*?(?:-|\bto\b)[\s.\-]*")


def _read_item(item: str) -> CodeRef | None:
    """The reference one item makes, or None when it is not only a code or a range."""
    found = list(_CODE.finditer(item))
    if not found or item[: found[0].start()].strip() or not _TAIL.fullmatch(item, found[-1].end()):
        return None
    codes = [m[1] + (m[2] or "") for m in found]
    if len(found) == 1:
        return CodeRef(codes[0], codes[0])
    if len(found) != 2 or not _BETWEEN.fullmatch(item, found[0].end(), found[1].start()):
        return None
    try:
        return CodeRef(codes[0], codes[1])
    except ValueError:  # bounds out of order: a misprint, not a reference we can trust
        return None


def _items(text: str) -> Iterator[str]:
    for group in _GROUP.finditer(text):
        for item in _ITEM_SPLIT.split(group[1]):
            if item.strip():
                yield item


def parse_refs(text: str) -> tuple[CodeRef, ...]:
    """Every code reference of a note, in order, each once: the items of its parenthesised
    groups (split at commas and "and") that are a code or a range of two codes, with or without
    an "and below" mark ("E10.-", "O24.4-", "D71-"). Anything else is ignored; never raises.

    >>> [str(r) for r in parse_refs("hypertensive chronic kidney disease (I12.-, I13.-)")]
    ['I12', 'I13']
    >>> parse_refs("code to identify control using:")
    ()
    """
    refs = (ref for item in _items(text) if (ref := _read_item(item)) is not None)
    return tuple(dict.fromkeys(refs))


def unread_items(text: str) -> tuple[str, ...]:
    """The items of a note's parenthesised groups that write a code but that :func:`parse_refs`
    does not read, stripped: qualified references ("E08-E13 with .42", "S02.- with 7th
    character B", "I69. with final characters -23"). For data checks; never raises."""
    return tuple(
        item.strip() for item in _items(text) if _CODE.search(item) and _read_item(item) is None
    )


# --- effective notes of a release ---------------------------------------------------------------


class _Refs:
    """References with a fast membership test: one-code references by prefix, ranges one by
    one."""

    __slots__ = ("lengths", "prefixes", "ranges", "refs")

    def __init__(self, refs: tuple[CodeRef, ...]) -> None:
        self.refs = refs
        self.prefixes = frozenset(r.first for r in refs if r.single)
        self.lengths = tuple(sorted({len(p) for p in self.prefixes}))
        self.ranges = tuple(r for r in refs if not r.single)

    def matches(self, code: str) -> bool:
        prefixes = self.prefixes
        for n in self.lengths:
            if code[:n] in prefixes:
                return True
        return bool(self.ranges) and any(ref.matches(code) for ref in self.ranges)


_NONE: Final = _Refs(())


@dataclass(frozen=True, slots=True)
class _Effective:
    """What applies to one code; shared by every code below it that adds no notes."""

    excludes1: _Refs
    code_first: tuple[CodeRef, ...]
    use_additional: tuple[CodeRef, ...]

    def then(self, other: "_Effective") -> "_Effective":
        """These notes, then ``other``'s (nearer notes first), each reference once."""
        return _Effective(
            _Refs(_join(self.excludes1.refs, other.excludes1.refs)),
            _join(self.code_first, other.code_first),
            _join(self.use_additional, other.use_additional),
        )


def _join(*parts: tuple[CodeRef, ...]) -> tuple[CodeRef, ...]:
    return tuple(dict.fromkeys(ref for part in parts for ref in part))


_EMPTY: Final = _Effective(_NONE, (), ())


class TabularNotes:
    """The effective Excludes1, "code first" and "use additional code" references of every
    code of one release (module docstring: own notes, then those of the listed ancestors,
    nearest first, then the sections', innermost first, then the chapter's; each reference
    once). Build it with :func:`notes_for` (or :meth:`build`); read-only afterwards, so one
    instance serves every thread. Codes are undotted; a code the release does not list has no
    notes."""

    def __init__(self, release: str, effective: Mapping[str, _Effective]) -> None:
        self.release = release
        self._effective = effective

    @classmethod
    def build(cls, source: TabularNotesSource, codeset: MemoryCodeSet) -> "TabularNotes":
        """The effective notes of ``codeset``'s codes, from the notes of ``source`` (the tabular
        XML of the same or an earlier release)."""
        builder = _Builder(source, codeset)
        effective = {code: builder.resolve(record) for code, record in codeset.records.items()}
        return cls(codeset.release, effective)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code in self._effective

    def __iter__(self) -> Iterator[str]:
        """The release's codes, in code-list order."""
        return iter(self._effective)

    def __len__(self) -> int:
        return len(self._effective)

    def excludes1(self, code: str) -> tuple[CodeRef, ...]:
        """The codes never reported with ``code`` (I.A.12.a); () for an unlisted code."""
        return self._effective.get(code, _EMPTY).excludes1.refs

    def code_first(self, code: str) -> tuple[CodeRef, ...]:
        """The etiologies sequenced before ``code`` when present (I.A.13); () for an unlisted
        code. "Such as" lists name examples, not every etiology."""
        return self._effective.get(code, _EMPTY).code_first

    def use_additional(self, code: str) -> tuple[CodeRef, ...]:
        """The codes reported after ``code`` to complete it (I.A.13): manifestations, causes,
        status codes; () for an unlisted code."""
        return self._effective.get(code, _EMPTY).use_additional

    def excludes1_pair(self, a: str, b: str) -> bool:
        """True when an Excludes1 note of either code names the other (I.A.12.a): the pair is
        never reported together. Symmetric. A code the release does not list has no notes of
        its own, but a listed code's note may still name it."""
        effective = self._effective
        return effective.get(a, _EMPTY).excludes1.matches(b) or effective.get(
            b, _EMPTY
        ).excludes1.matches(a)


class _Builder:
    """Resolves the effective notes of a code set's codes, sharing one :class:`_Effective`
    among the codes below an entry that add no notes of their own."""

    def __init__(self, source: TabularNotesSource, codeset: MemoryCodeSet) -> None:
        self.source = source
        self.records = codeset.records
        self.parsed: dict[str, tuple[CodeRef, ...]] = {}
        self.effective: dict[str, _Effective] = {}
        self.headings: dict[tuple[tuple[str, ...], int], _Effective] = {}
        self.held: dict[str, frozenset[str]] = {}  # section id -> the categories it holds
        held: dict[str, set[str]] = {}
        for category, ids in source.category_sections.items():
            for section_id in ids:
                held.setdefault(section_id, set()).add(category)
        self.held = {section_id: frozenset(c) for section_id, c in held.items()}
        # A category's sections; a category the XML lacks takes those of the one before it
        # in the code list (as drg.codeset.derive gives it that category's chapter).
        self.sections: dict[str, tuple[str, ...]] = {}
        previous: tuple[str, ...] = ()
        for code in codeset.records:
            if code[:3] not in self.sections:
                previous = source.category_sections.get(code[:3], previous)
                self.sections[code[:3]] = previous

    def refs(self, texts: Iterable[str]) -> tuple[CodeRef, ...]:
        found: list[CodeRef] = []
        for text in texts:
            refs = self.parsed.get(text)
            if refs is None:
                refs = self.parsed[text] = parse_refs(text)
            found.extend(refs)
        return _join(tuple(found))

    def own(self, notes: NodeNotes | None, holder: str | frozenset[str]) -> _Effective:
        """The references of one entry's notes; ``holder`` is the entry: a code, or the
        categories of a section (none for a chapter). An Excludes1 reference to codes the entry
        itself holds is dropped: read literally, those codes would exclude themselves (D72
        "basophilia (D72.824)"; section M26-M27 "unilateral condylar hyperplasia (M27.8)")."""
        if notes is None:
            return _EMPTY

        def held(code: str) -> bool:
            return code.startswith(holder) if isinstance(holder, str) else code[:3] in holder

        excludes1 = tuple(
            r for r in self.refs(notes.excludes1) if not (held(r.first) and held(r.last))
        )
        return _Effective(
            _Refs(excludes1), self.refs(notes.code_first), self.refs(notes.use_additional)
        )

    def heading(self, record: CodeRecord) -> _Effective:
        """What a category inherits: its sections', innermost first, then its chapter's."""
        key = (self.sections[record.category], record.chapter)
        found = self.headings.get(key)
        if found is None:
            found = _EMPTY
            for section_id in key[0]:
                notes = self.source.sections.get(section_id)
                found = found.then(self.own(notes, self.held.get(section_id, frozenset())))
            chapter = self.source.chapters.get(record.chapter)
            found = self.headings[key] = found.then(self.own(chapter, frozenset()))
        return found

    def resolve(self, record: CodeRecord) -> _Effective:
        found = self.effective.get(record.code)
        if found is None:
            parent = self.records.get(record.parent) if record.parent else None
            found = self.heading(record) if parent is None else self.resolve(parent)
            notes = self.source.codes.get(record.code)
            if notes is not None:
                found = self.own(notes, record.code).then(found)
            self.effective[record.code] = found
        return found


# --- per release --------------------------------------------------------------------------------

_BUILT: Final[weakref.WeakKeyDictionary[CodesetCatalog, dict[str, TabularNotes]]] = (
    weakref.WeakKeyDictionary()
)
_LOCK: Final = threading.Lock()


def _packaged(catalog: CodesetCatalog, release: str) -> PackagedCodeset:
    """The packaged release whose tabular XML holds the notes of ``release``: itself, the base
    of a derived release (repeatedly), or for a loaded release the base of the newest shipped
    one (the release whose notes ``CodesetCatalog`` gives a loaded release's codes)."""
    source: CodesetSource = catalog.source(release)
    for _ in range(len(catalog.releases) + len(catalog.shipped.codeset_releases) + 1):
        if isinstance(source, PackagedCodeset):
            return source
        if isinstance(source, DerivedCodeset):
            source = catalog.source(source.base)
        else:
            source = catalog.shipped.codeset(catalog.shipped.newest_release)
    raise ReferenceDataError(f"code set {release} has no packaged release with a tabular list")


def notes_for(catalog: CodesetCatalog, release: str) -> TabularNotes:
    """The effective notes of ``release``'s codes: the hierarchy of ``catalog.codeset(release)``
    with the notes of the packaged release's tabular XML. Built on first use (about a second,
    plus the code set's own build) and kept as long as ``catalog`` lives. Raises
    ReferenceDataError as ``catalog.codeset`` does, or when no packaged release underlies
    ``release``."""
    with _LOCK:
        built = _BUILT.setdefault(catalog, {})
        found = built.get(release)
        if found is None:
            source = read_notes(packaged_files(_packaged(catalog, release)))
            found = built[release] = TabularNotes.build(source, catalog.codeset(release))
        return found
