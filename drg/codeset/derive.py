"""A release built from another: a new code list keeps the base release's texts and notes.

CMS publishes each fiscal year's ICD-10-CM as a complete code list (the order file: code,
billable flag, title) and as changes against the year before (codes added, deleted, turned into
headers, retitled). Only the base release that claimcoder reads from simple-icd-10-cm comes with
the tabular XML (inclusion terms, Excludes notes, 7th-character meanings). So a new release is
made from its code list, and every code that the base release also lists keeps the base's notes;
a new code has its title only.

Two inputs give the code list:

- :func:`apply_changes`: the base release plus change lists, as shipped in
  ``drg/data/fy<YYYY>/icd10cm/`` (``added.csv``, ``deleted.csv``,
  ``billable-status-changes.csv``, ``revised.csv``; their source is in drg/data/README.md);
- a complete list, e.g. CMS's order file read by ``drg.cms.order_file``.

:func:`derive_records` checks what the ICD-10-CM conventions require of any code list: a code is
billable exactly when no other listed code extends it (a leaf: Official Guidelines I.B.3,
"Level of detail in coding"), every code has the shape of ``schemas.icd10cm``, and none is
listed twice. A list that breaks them is refused with :class:`ReferenceDataError`.
"""

import bisect
import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib.resources.abc import Traversable
from typing import Final

from drg.codeset.normalize import nearest_listed_parent, normalize
from drg.codeset.source import CodeRecord
from drg.exceptions import ReferenceDataError

ADDED: Final = "added.csv"
DELETED: Final = "deleted.csv"
STATUS_CHANGES: Final = "billable-status-changes.csv"
REVISED: Final = "revised.csv"


@dataclass(frozen=True, slots=True)
class ListedCode:
    """One entry of a release's code list."""

    code: str  # undotted, upper case
    billable: bool
    description: str  # the long title


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """A fiscal year's ICD-10-CM changes against its base release."""

    added: tuple[ListedCode, ...]
    deleted: frozenset[str]
    billable: Mapping[str, bool]  # code that stays -> its new billable flag
    retitled: Mapping[str, str]  # code that stays -> its new long title


def _rows(
    folder: Traversable, name: str, columns: Sequence[str]
) -> list[tuple[int, dict[str, str]]]:
    try:
        text = folder.joinpath(name).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReferenceDataError(f"{name}: cannot read ({type(exc).__name__})") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = set(columns) - set(reader.fieldnames or ())
    if missing:
        raise ReferenceDataError(f"{name}: missing column(s) {', '.join(sorted(missing))}")
    rows = []
    try:
        for row in reader:
            if None in row or any(row.get(c) is None for c in columns):
                raise ReferenceDataError(f"{name} line {reader.line_num}: wrong number of fields")
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise ReferenceDataError(f"{name} line {reader.line_num}: bad CSV ({exc})") from exc
    return rows


def _code(name: str, line: int, raw: str) -> str:
    code = normalize(raw)
    if code is None or code != raw.strip().upper().replace(".", ""):
        raise ReferenceDataError(f"{name} line {line}: {raw!r} is not an ICD-10-CM code")
    return code


def _flag(name: str, line: int, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in {"true", "false"}:
        raise ReferenceDataError(f"{name} line {line}: expected true or false, got {raw!r}")
    return value == "true"


def read_changes(folder: Traversable) -> ChangeSet:
    """The four change lists of ``folder``, checked line by line (shape, flags, no code twice)."""
    added = []
    for line, row in _rows(folder, ADDED, ("code", "billable", "longTitle")):
        title = " ".join(row["longTitle"].split())
        if not title:
            raise ReferenceDataError(f"{ADDED} line {line}: empty longTitle")
        added.append(
            ListedCode(_code(ADDED, line, row["code"]), _flag(ADDED, line, row["billable"]), title)
        )
    deleted = [_code(DELETED, line, row["code"]) for line, row in _rows(folder, DELETED, ("code",))]
    status = {
        _code(STATUS_CHANGES, line, row["code"]): _flag(STATUS_CHANGES, line, row["newBillable"])
        for line, row in _rows(folder, STATUS_CHANGES, ("code", "newBillable"))
    }
    retitled = {}
    for line, row in _rows(folder, REVISED, ("code", "newLongTitle")):
        title = " ".join(row["newLongTitle"].split())
        if not title:
            raise ReferenceDataError(f"{REVISED} line {line}: empty newLongTitle")
        retitled[_code(REVISED, line, row["code"])] = title
    named = [c.code for c in added] + deleted
    if len(set(named)) != len(named):
        raise ReferenceDataError("a code is added or deleted twice in the change lists")
    return ChangeSet(tuple(added), frozenset(deleted), status, retitled)


def apply_changes(base: Sequence[CodeRecord], changes: ChangeSet) -> list[ListedCode]:
    """The code list of the new release: ``base`` without the deleted codes, with new billable
    flags and titles, plus the added codes (placed by :func:`derive_records`)."""
    listed = {r.code for r in base}
    for code in changes.deleted:
        if code not in listed:
            raise ReferenceDataError(f"{DELETED}: {code} is not in the base release")
    for code in (*changes.billable, *changes.retitled):
        if code not in listed or code in changes.deleted:
            raise ReferenceDataError(f"change lists: {code} is not a code that stays")
    for entry in changes.added:
        if entry.code in listed:
            raise ReferenceDataError(f"{ADDED}: {entry.code} is already in the base release")
    kept = [
        ListedCode(
            r.code,
            changes.billable.get(r.code, r.billable),
            changes.retitled.get(r.code, r.description),
        )
        for r in base
        if r.code not in changes.deleted
    ]
    return kept + list(changes.added)


def _ordered(base: Sequence[CodeRecord], listed: Sequence[ListedCode]) -> list[ListedCode]:
    """``listed`` in the base's order, each new code right after the code that precedes it in
    sorted order (its parent or the last lower sibling's subtree: within a parent, codes sort in
    tabular order)."""
    by_code = {e.code: e for e in listed}
    if len(by_code) != len(listed):
        twice = next(code for code, n in Counter(e.code for e in listed).items() if n > 1)
        raise ReferenceDataError(f"{twice} is listed twice")
    base_order = [r.code for r in base if r.code in by_code]
    new = sorted(set(by_code) - set(base_order))
    if not new:
        return [by_code[c] for c in base_order]
    everything = sorted(by_code)
    after: dict[str | None, list[str]] = {}
    for code in new:
        i = bisect.bisect_left(everything, code)
        anchor = everything[i - 1] if i > 0 else None
        after.setdefault(anchor, []).append(code)
    out: list[ListedCode] = []

    def emit(code: str) -> None:
        out.append(by_code[code])
        for follower in after.get(code, ()):
            emit(follower)

    for follower in after.get(None, ()):
        emit(follower)
    for code in base_order:
        emit(code)
    return out


def derive_records(base: Sequence[CodeRecord], listed: Sequence[ListedCode]) -> list[CodeRecord]:
    """The records of a release whose code list is ``listed``: a code the base also lists keeps
    the base's inclusion terms, Includes and Excludes notes and chapter; a new code has its title
    only and the chapter of the code before it. Raises ReferenceDataError when the list breaks
    the conventions in the module docstring."""
    for entry in listed:
        if normalize(entry.code) != entry.code:
            raise ReferenceDataError(f"{entry.code!r} is not an undotted ICD-10-CM code")
        if not entry.description.strip():
            raise ReferenceDataError(f"{entry.code} has no title")
    ordered = _ordered(base, listed)
    codes = {e.code for e in ordered}
    parents = {p for c in codes if (p := nearest_listed_parent(c, codes)) is not None}
    base_records = {r.code: r for r in base}
    records: list[CodeRecord] = []
    previous: CodeRecord | None = None
    for entry in ordered:
        leaf = entry.code not in parents
        if entry.billable and not leaf:
            raise ReferenceDataError(f"{entry.code} is billable but other codes extend it")
        if not entry.billable and leaf:
            raise ReferenceDataError(f"{entry.code} is a header but no code extends it")
        known = base_records.get(entry.code)
        parent = nearest_listed_parent(entry.code, codes)
        if parent is None and len(entry.code) > 3:
            raise ReferenceDataError(f"{entry.code} has no listed category ({entry.code[:3]})")
        if known is not None and (known.description, known.billable, known.parent) == (
            entry.description,
            entry.billable,
            parent,
        ):
            record = known  # unchanged: the same object, shared with the base release
        elif known is not None:
            record = replace(
                known, description=entry.description, billable=entry.billable, parent=parent
            )
        else:
            if previous is None:
                raise ReferenceDataError(f"{entry.code} comes before every known code")
            record = CodeRecord(
                code=entry.code,
                description=entry.description,
                billable=entry.billable,
                parent=parent,
                chapter=previous.chapter,
            )
        records.append(record)
        previous = record
    return records


def listed_codes(records: Iterable[CodeRecord]) -> list[ListedCode]:
    """The code list of a release's records."""
    return [ListedCode(r.code, r.billable, r.description) for r in records]
