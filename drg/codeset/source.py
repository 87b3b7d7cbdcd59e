"""Read an ICD-10-CM release from the files that `simple-icd-10-cm` ships (the registry names
them: drg/data/releases.json).

The package's own lookups are linear scans and its import takes seconds, so the two files are read
directly: the code list decides which codes exist (it holds every level, 7-character codes included,
and drops combinations the XML would allow), the tabular XML gives descriptions, inclusion terms and
7th-character meanings. A code is billable when it is a leaf of the list.

The same XML also gives the instructional notes the ICD-10-CM conventions act on (Excludes1,
"code first", "use additional code": Official Guidelines I.A.12-I.A.13), printed under codes,
sections and chapters: :func:`read_notes`. The XML is parsed once per process and file.
"""

import functools
import importlib.util
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final

from lxml import etree

from drg.codeset.normalize import dotted, nearest_listed_parent
from drg.exceptions import ReferenceDataError
from drg.registry import PackagedCodeset


@dataclass(frozen=True, slots=True)
class ReleaseFiles:
    """Where one release's files are, and what the release is called."""

    release: str  # e.g. "2026-04"
    fiscal_year: int
    code_list: Path
    tabular_xml: Path


@dataclass(frozen=True, slots=True)
class CodeRecord:
    code: str  # undotted, upper case: "S82201A"
    description: str
    billable: bool
    parent: str | None  # nearest listed ancestor, undotted: "S82201" for "S82201A"
    chapter: int
    inclusion_terms: tuple[str, ...] = field(default=())
    # Category-level "Includes:" notes ("diabetes NOS" under E11), and the Excludes1/Excludes2
    # notes, which often name the code to use instead ("renal colic (N23)"). Own notes only.
    includes: tuple[str, ...] = field(default=())
    excludes: tuple[str, ...] = field(default=())

    @property
    def dotted(self) -> str:
        return dotted(self.code)

    @property
    def category(self) -> str:
        return self.code[:3]


@dataclass(frozen=True, slots=True)
class _XmlNode:
    description: str
    inclusion_terms: tuple[str, ...]
    includes: tuple[str, ...]
    excludes: tuple[str, ...]
    seven_chr: dict[str, str] | None  # 7th character -> meaning, from this node or an ancestor
    chapter: int


@dataclass(frozen=True, slots=True)
class NodeNotes:
    """The instructional notes printed under one entry of the tabular list (a code, a section or
    a chapter): its own notes only, each text whitespace-collapsed, in the tabular's order.
    ``code_first`` and ``use_additional`` keep the lead-in notes ("code to identify control
    using:") beside the notes that name codes, as the XML has them."""

    excludes1: tuple[str, ...] = ()  # <excludes1>: "type 1 diabetes mellitus (E10.-)"
    code_first: tuple[str, ...] = ()  # <codeFirst>: "Alzheimer's (G30.-)"
    use_additional: tuple[str, ...] = ()  # <useAdditionalCode>: "insulin (Z79.4)"

    @property
    def empty(self) -> bool:
        return not (self.excludes1 or self.code_first or self.use_additional)


_NO_NOTES: Final = NodeNotes()


@dataclass(frozen=True, slots=True)
class TabularNotesSource:
    """The Excludes1, "code first" and "use additional code" notes of a release's tabular XML,
    where the XML prints them. Entries without any of these notes are left out of ``codes``,
    ``sections`` and ``chapters``.

    ``category_sections`` names, for every category of the XML in tabular order, the sections
    that hold it, innermost first: its own section, then any heading section whose range covers
    it. A heading section is a ``<section>`` without codes of its own that heads the sections
    after it ("V00-V99" Transport accidents over "V00-V09" ... "V98-V99"; "C00-C96" over
    "C00-C75" over "C00-C14"); its notes apply to every code of its range like a section's."""

    release: str
    codes: Mapping[str, NodeNotes]  # undotted <diag> name ("E11", "E119") -> own notes
    sections: Mapping[str, NodeNotes]  # section id ("I10-I1A", "T07") -> own notes
    chapters: Mapping[int, NodeNotes]  # chapter number (1-22) -> own notes
    category_sections: Mapping[str, tuple[str, ...]]  # "V43" -> ("V40-V49", "V00-V99")


@dataclass(frozen=True, slots=True)
class _Tabular:
    nodes: Mapping[str, _XmlNode]  # undotted <diag> name -> texts
    codes: Mapping[str, NodeNotes]
    sections: Mapping[str, NodeNotes]
    chapters: Mapping[int, NodeNotes]
    category_sections: Mapping[str, tuple[str, ...]]


def packaged_files(source: PackagedCodeset) -> ReleaseFiles:
    """Where the files of a packaged release are inside the installed package. Raises
    ReferenceDataError when the package or a file is missing."""
    module = source.package.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ReferenceDataError(f"{source.package} is not installed")
    data = Path(spec.origin).parent / "data"
    files = ReleaseFiles(
        source.release, source.fiscal_year, data / source.code_list, data / source.tabular_xml
    )
    for path in (files.code_list, files.tabular_xml):
        if not path.is_file():
            raise ReferenceDataError(
                f"{path.name} is missing from {source.package}; install the version that ships "
                f"the {source.release} release"
            )
    return files


def _text(node: etree._Element) -> str:
    return " ".join("".join(node.itertext()).split())


_NOTE_TAGS: Final = ("excludes1", "codeFirst", "useAdditionalCode")  # NodeNotes' fields


def _notes(entry: etree._Element) -> NodeNotes:
    found: dict[str, list[str]] = {}
    for child in entry:  # one pass over the children: most entries have none of these notes
        if child.tag in _NOTE_TAGS:
            texts = found.setdefault(child.tag, [])
            texts.extend(t for n in child.iterchildren("note") if (t := _text(n)))
    if not found:
        return _NO_NOTES
    return NodeNotes(*(tuple(found.get(tag, ())) for tag in _NOTE_TAGS))


@functools.cache
def _parse_xml(path: Path) -> _Tabular:
    """Every ``<diag>`` by undotted name, with inherited 7th-character definitions, and the
    notes of every code, section and chapter. Cached per path: the file is read-only package
    data, and parsing it takes seconds. Raises ReferenceDataError on a ``<diag>`` without name
    or description or a ``<section>`` without id."""
    nodes: dict[str, _XmlNode] = {}
    codes: dict[str, NodeNotes] = {}
    sections: dict[str, NodeNotes] = {}
    chapters: dict[int, NodeNotes] = {}
    category_sections: dict[str, tuple[str, ...]] = {}
    root = etree.parse(str(path)).getroot()

    def walk(diag: etree._Element, chapter: int, seven: dict[str, str] | None) -> None:
        name = diag.findtext("name")
        desc = diag.findtext("desc")
        if not name or desc is None:
            raise ReferenceDataError(f"{path.name}: a <diag> without name or desc")
        own = diag.find("sevenChrDef")
        if own is not None:
            seven = {e.get("char", ""): _text(e) for e in own.findall("extension")}
        terms = tuple(_text(n) for n in diag.findall("inclusionTerm/note"))
        includes = tuple(_text(n) for n in diag.findall("includes/note"))
        excludes = tuple(
            _text(n) for n in (*diag.findall("excludes1/note"), *diag.findall("excludes2/note"))
        )
        code = name.replace(".", "")
        nodes[code] = _XmlNode(" ".join(desc.split()), terms, includes, excludes, seven, chapter)
        notes = _notes(diag)
        if not notes.empty:
            codes[code] = notes
        for child in diag.findall("diag"):
            walk(child, chapter, seven)

    for chapter in root.findall("chapter"):
        number = int(chapter.findtext("name") or 0)
        if not (notes := _notes(chapter)).empty:
            chapters[number] = notes
        headings: list[tuple[str, str]] = []  # open heading sections: (id, last category)
        for section in chapter.findall("section"):
            section_id = section.get("id")
            if not section_id:
                raise ReferenceDataError(f"{path.name}: a <section> without id")
            if not (notes := _notes(section)).empty:
                sections[section_id] = notes
            diags = section.findall("diag")
            if not diags:
                headings.insert(0, (section_id, section_id.rpartition("-")[2]))
                continue
            for diag in diags:
                walk(diag, number, None)
                category = diag.findtext("name")
                category_sections[category] = (section_id, *(h for h, _ in headings))
                headings = [(h, last) for h, last in headings if last != category]
    return _Tabular(
        nodes,
        MappingProxyType(codes),
        MappingProxyType(sections),
        MappingProxyType(chapters),
        MappingProxyType(category_sections),
    )


def _read_code_list(path: Path) -> list[str]:
    codes: dict[str, None] = {}  # ordered set: the April 2026 list names five codes twice
    for line in path.read_text(encoding="utf-8").splitlines():
        code = line.strip().upper()
        # The list also names chapters ("1") and sections ("A00-A09"): those are not codes.
        if code[:1].isalpha() and "-" not in code:
            codes[code] = None
    return list(codes)


def read_release(files: ReleaseFiles) -> Iterator[CodeRecord]:
    """All codes of a release, in code-list order."""
    codes = _read_code_list(files.code_list)
    listed = set(codes)
    xml = _parse_xml(files.tabular_xml).nodes
    parents = {p for c in codes if (p := nearest_listed_parent(c, listed)) is not None}
    for code in codes:
        node = xml.get(code)
        includes: tuple[str, ...] = ()
        excludes: tuple[str, ...] = ()
        if node is not None:
            description, terms, chapter = node.description, node.inclusion_terms, node.chapter
            includes, excludes = node.includes, node.excludes
        else:
            # A 7-character code: its base is the longest ancestor the XML defines (placeholder
            # X's dropped), its meaning the base's description plus the 7th character's.
            base = next(
                (xml[code[:end]] for end in range(len(code) - 1, 2, -1) if code[:end] in xml),
                None,
            )
            meaning = base.seven_chr.get(code[-1]) if base and base.seven_chr else None
            if base is None or meaning is None:
                raise ReferenceDataError(f"{files.code_list.name}: no definition for {code}")
            description = f"{base.description}, {meaning}"
            terms, chapter = base.inclusion_terms, base.chapter
        yield CodeRecord(
            code=code,
            description=description,
            billable=code not in parents,
            parent=nearest_listed_parent(code, listed),
            chapter=chapter,
            inclusion_terms=terms,
            includes=includes,
            excludes=excludes,
        )


def read_notes(files: ReleaseFiles) -> TabularNotesSource:
    """The Excludes1, "code first" and "use additional code" notes of ``files.tabular_xml``, as
    printed under each code, section and chapter (own notes only: what applies to a code through
    its ancestors, section and chapter is ``drg.conventions.notes``). Shares the parse with
    :func:`read_release`. Raises ReferenceDataError as :func:`read_release` does."""
    tabular = _parse_xml(files.tabular_xml)
    return TabularNotesSource(
        files.release,
        tabular.codes,
        tabular.sections,
        tabular.chapters,
        tabular.category_sections,
    )
