"""Read an ICD-10-CM release from the files that `simple-icd-10-cm` ships (the registry names
them: drg/data/releases.json).

The package's own lookups are linear scans and its import takes seconds, so the two files are read
directly: the code list decides which codes exist (it holds every level, 7-character codes included,
and drops combinations the XML would allow), the tabular XML gives descriptions, inclusion terms and
7th-character meanings. A code is billable when it is a leaf of the list.
"""

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

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


def _parse_xml(path: Path) -> dict[str, _XmlNode]:
    """Every ``<diag>`` by undotted name, with inherited 7th-character definitions."""
    nodes: dict[str, _XmlNode] = {}
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
        nodes[name.replace(".", "")] = _XmlNode(
            " ".join(desc.split()), terms, includes, excludes, seven, chapter
        )
        for child in diag.findall("diag"):
            walk(child, chapter, seven)

    for chapter in root.findall("chapter"):
        number = int(chapter.findtext("name") or 0)
        for section in chapter.findall("section"):
            for diag in section.findall("diag"):
                walk(diag, number, None)
    return nodes


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
    xml = _parse_xml(files.tabular_xml)
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
