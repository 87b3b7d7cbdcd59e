"""The ICD-10-CM order file: every code of a release, headers included, in tabular order.

Source of the layout: the "ICD-10-CM Order File Format" note that CMS and CDC ship with the order
file in the code-descriptions zip (e.g. ``2027-code-descriptions-tabular-order.zip``, member
``icd10cm_order_2027.txt``). Fixed width, one entry a line, columns 1-based:

====== ========================================================================
1-5    order number, 5 digits, zero padded
6      blank
7-13   ICD-10-CM code without the dot, left-justified, space padded to 7
14     blank
15     ``0`` header (not valid for HIPAA-covered transactions), ``1`` valid (billable)
16     blank
17-76  short description, space padded to 60
77     blank
78-    long description
====== ========================================================================

A code is valid for submission exactly when it is a leaf: a billable code has no listed
extension and every header has at least one, which this parser checks over the whole file.
"""

import re
from dataclasses import dataclass
from typing import Final

from drg.cms.sources import SourceFile, decode_text
from drg.codeset.normalize import normalize
from drg.exceptions import ReferenceDataError

_ORDER: Final = re.compile(r"[0-9]{5}")
# Every C0 control but the line feed, and DEL: a tab or a lone carriage return breaks the columns.
_CONTROL: Final = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_BLANK_COLUMNS: Final = (6, 14, 16, 77)  # 1-based
_MIN_LENGTH: Final = 78  # through the first character of the long description


@dataclass(frozen=True, slots=True)
class OrderEntry:
    """One line of the order file.

    ``code`` is undotted and upper case (``"QA171"``); ``billable`` is the flag in column 15;
    the descriptions have their padding removed.
    """

    order: int
    code: str
    billable: bool
    short_description: str
    long_description: str


def parse_order_file(source: SourceFile) -> list[OrderEntry]:
    """Every entry of an ICD-10-CM order file, in file order.

    Text is UTF-8 (a byte-order mark is tolerated), else cp1252; lines end in ``\\n`` or
    ``\\r\\n``, and one empty line at the end is ignored. Runs in linear time (the FY2027 file has
    98,403 lines).

    Raises ReferenceDataError, naming the file and line, for: an undecodable byte, an empty file,
    an empty or short line, a control character (a tab), a non-blank column 6, 14, 16 or 77, an
    order number that is not 5 digits or does not increase, a code field that is not an undotted,
    left-justified ICD-10-CM code (``drg.codeset.normalize.normalize``), a flag other than 0 or 1,
    an empty short or long description, a code listed twice, a billable code that another listed
    code extends, or a header that no listed code extends.
    """
    text = decode_text(source).replace("\r\n", "\n")
    control = _CONTROL.search(text)  # one scan of the whole text instead of one per line
    if control:
        start = text.rfind("\n", 0, control.start()) + 1
        number = text.count("\n", 0, start) + 1
        raise ReferenceDataError(
            f"{source.name} line {number}: control character "
            f"{control.group()!r} in column {control.start() - start + 1}; expected fixed-width "
            f"text, space padded"
        )
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines:
        raise ReferenceDataError(f"{source.name}: empty file; expected ICD-10-CM order entries")
    entries: list[OrderEntry] = []
    first_line: dict[str, int] = {}  # code -> line it is listed on
    previous = -1
    for number, line in enumerate(lines, start=1):
        entry = _entry(source.name, number, line)
        if entry.order <= previous:
            raise ReferenceDataError(
                f"{source.name} line {number}: order number {entry.order:05d} does not increase "
                f"(line {number - 1} has {previous:05d})"
            )
        if entry.code in first_line:
            raise ReferenceDataError(
                f"{source.name} line {number}: {entry.code} is listed twice "
                f"(first on line {first_line[entry.code]})"
            )
        previous = entry.order
        first_line[entry.code] = number
        entries.append(entry)
    _check_hierarchy(source.name, entries)
    return entries


def _entry(name: str, number: int, line: str) -> OrderEntry:
    """One line, without its line break; checks run in column order."""
    if len(line) < _MIN_LENGTH:
        found = "an empty line" if not line else f"{len(line)} characters"
        raise _error(
            name,
            number,
            f"{found}, expected at least {_MIN_LENGTH} characters (the long description starts "
            f"in column {_MIN_LENGTH})",
        )
    if line[5] != " " or line[13] != " " or line[15] != " " or line[76] != " ":
        column = next(c for c in _BLANK_COLUMNS if line[c - 1] != " ")
        raise _error(name, number, f"column {column} is {line[column - 1]!r}, expected a blank")
    order = line[0:5]
    if not _ORDER.fullmatch(order):
        raise _error(name, number, f"order number {order!r} in columns 1-5, expected 5 digits")
    field = line[6:13]
    code = field.rstrip(" ")
    if normalize(code) != code:
        raise _error(
            name,
            number,
            f"{field!r} in columns 7-13 is not an ICD-10-CM code (expected it undotted, upper "
            f"case, left-justified)",
        )
    flag = line[14]
    if flag != "0" and flag != "1":
        raise _error(
            name, number, f"flag {flag!r} in column 15, expected 0 (header) or 1 (billable)"
        )
    short = line[16:76].rstrip(" ")
    if not short:
        raise _error(name, number, "empty short description (columns 17-76)")
    long = line[77:].rstrip(" ")
    if not long:
        raise _error(name, number, "empty long description (column 78 on)")
    return OrderEntry(int(order), code, flag == "1", short, long)


def _error(name: str, number: int, message: str) -> ReferenceDataError:
    return ReferenceDataError(f"{name} line {number}: {message}")


def _check_hierarchy(name: str, entries: list[OrderEntry]) -> None:
    """A billable code is a leaf and a header is not: one pass to collect every proper prefix
    (3 characters and longer) of a listed code, one pass to compare. Line n holds entries[n-1]."""
    extended_by: dict[str, int] = {}  # prefix -> index of the first code that extends it
    for index, entry in enumerate(entries):
        for length in range(3, len(entry.code)):
            extended_by.setdefault(entry.code[:length], index)
    for index, entry in enumerate(entries):
        child = extended_by.get(entry.code)
        if entry.billable and child is not None:
            raise ReferenceDataError(
                f"{name} line {index + 1}: {entry.code} is flagged billable (1), but "
                f"{entries[child].code} on line {child + 1} extends it; expected 0 (header)"
            )
        if not entry.billable and child is None:
            raise ReferenceDataError(
                f"{name} line {index + 1}: {entry.code} is a header (0), but no listed code "
                f"extends it; expected 1 (billable) or its codes"
            )
