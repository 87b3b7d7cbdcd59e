"""Reading a release's hierarchy: which child is a code's default ("unspecified", "without
complications"), and how far up a code is that default.

ICD-10-CM gives most subdivisions a residual child for "unspecified" or "without complications"
(Official Guidelines I.A.9, "Other" and "Unspecified" codes); coders reach it when the record says
nothing more specific. Used by the retrieval coder (a code text that is a header stands for its
default leaf) and by the conventions stage (an unspecified code beside a more specific code of
the same subdivision says less about the same condition).
"""

from drg.codeset.memory import MemoryCodeSet
from drg.codeset.source import CodeRecord


def default_rank(record: CodeRecord) -> tuple[int, int, int]:
    """How much a child reads like its parent's default; (0, 0, 0) for none of it."""
    text = record.description.lower()
    return (
        int("without complication" in text or "uncomplicated" in text),
        text.count("unspecified") - int("with unspecified" in text),
        int(record.code.endswith("9") and not text.startswith("other")),
    )


def default_child(codeset: MemoryCodeSet, code: str) -> str | None:
    """The child of ``code`` that reads as its default, or None (no children, 7th-character
    children, or no child reads as a default: G89 "Pain, not elsewhere classified")."""
    kids = codeset.children.get(code, ())
    if not kids or len(kids[0]) == 7:
        return None
    ranks = {c: default_rank(codeset.records[c]) for c in kids}
    best = max(kids, key=ranks.__getitem__)
    return best if any(ranks[best]) else None


def default_leaf(codeset: MemoryCodeSet, code: str) -> str | None:
    """The code a listed ``code`` stands for when nothing more specific is said: its default
    child, recursively, down to a leaf or to a base whose children differ only by a 7th
    character (that base itself). None when some level has no default."""
    node = code
    while True:
        kids = codeset.children.get(node, ())
        if not kids or len(kids[0]) == 7:
            return node
        child = default_child(codeset, node)
        if child is None:
            return None
        node = child


def unspecified_root(codeset: MemoryCodeSet, code: str) -> str | None:
    """The highest ancestor of ``code`` whose default leaf ``code`` is (7th character aside):
    E11 for E11.9 ("without complications"), I50 for I50.9, S82.2 for S82.209A ("unspecified
    fracture of shaft of unspecified tibia"). None when ``code`` is no ancestor's default. Any
    other code under that ancestor says more about the same condition."""
    node = code[:6] if len(code) == 7 and code[:6] in codeset.records else code
    record = codeset.records.get(node)
    root: str | None = None
    while record is not None and record.parent is not None:
        if default_child(codeset, record.parent) != record.code:
            break
        root = record.parent
        record = codeset.records.get(record.parent)
    return root
