"""IPPS Table 5: MS-DRG relative weights and geometric and arithmetic mean lengths of stay.

Source of the layout: the Table 5 text file CMS publishes with each IPPS final rule (e.g.
``CMS-1849-F Table 5.txt``; the FY2026 one, ``drg/data/README.md``, was used to check this
parser): cp1252, tab-separated as Excel exports it (quoted cells may hold newlines). A title of
one or two lines ("TABLE 5.--LIST OF MS-DRGS, RELATIVE WEIGHTING FACTORS, ... FY 2025 Final
Rule"), a header row, one row per DRG, then possibly blank or footnote rows. Columns are found by
header name because they move between years (some years have a single ``Weights`` column).

The number and Yes/No rules are those of ``drg/data/convert_table5.py``, which made the shipped
FY2026 Table 5 CSV (``drg/data/README.md``): ``.`` or an empty cell is a missing number, leading
zeros may be dropped (``.7``). The rows have the columns of that CSV and of the ``drg_weights``
table; on the FY2026 CMS file this parser gives that CSV's 772 rows exactly.
"""

import re
from decimal import Decimal
from typing import Final

from drg.cms.sources import SourceFile, excerpt, tab_rows
from drg.exceptions import ReferenceDataError

MIN_DRGS: Final = 500  # a whole table has ~770 DRGs; fewer means a truncated or partial file
_DRG: Final = re.compile(r"[0-9]{1,3}")
_MDC: Final = re.compile(r"[0-9]{1,2}")
_NUMBER: Final = re.compile(r"[0-9]*\.?[0-9]+")
_MISSING: Final = frozenset({"", ".", "n/a"})
_TYPES: Final = frozenset({"MED", "SURG"})
_NO_TYPE: Final = frozenset({"", "**"})  # DRGs 998 and 999 have "**" in the FY2026 file

# Our key -> header name (trimmed, whitespace collapsed, lower case): equal, or contained when
# the key is in _CONTAINED (those headers carry the year: "FY 2025 Final Post-Acute DRG").
_EXACT: Final = {
    "drg": "ms-drg",
    "mdc": "mdc",
    "type": "type",
    "title": "ms-drg title",
    "gmlos": "geometric mean los",
    "amlos": "arithmetic mean los",
}
_CONTAINED: Final = {"post_acute": "post-acute", "special_pay": "special pay"}
_WEIGHT_CAPPED: Final = "weights - 10% cap applied"
_WEIGHT_SINGLE: Final = "weights"
_WEIGHT_BEFORE_CAP: Final = "weights - before cap"
_DISPLAY: Final = {
    "drg": "MS-DRG",
    "post_acute": "...Post-Acute...",
    "special_pay": "...Special Pay...",
    "mdc": "MDC",
    "type": "TYPE",
    "title": "MS-DRG Title",
    "weight": "Weights - 10% Cap Applied (or Weights)",
    "gmlos": "Geometric mean LOS",
    "amlos": "Arithmetic mean LOS",
}


def parse_table5(source: SourceFile, fiscal_year: int) -> list[dict[str, object]]:
    """Every DRG row of a Table 5 file, in file order.

    Each row has exactly the keys ``drg`` (``"001"``: zero padded to 3 digits), ``post_acute``,
    ``special_pay`` (bool, from Yes/No), ``mdc`` (``"01"``..``"25"``, ``"PRE"`` or None),
    ``type`` (``"MED"``, ``"SURG"`` or None), ``title`` (whitespace collapsed),
    ``weight_before_cap`` and ``weight`` (Decimal with 4 places, or None; ``weight`` is
    "Weights - 10% Cap Applied" when the file has it, else "Weights"; ``weight_before_cap`` is
    None when the file has no such column), ``gmlos`` and ``amlos`` (days, Decimal with 1 place,
    or None). A number is missing when its cell is empty, ``.`` or ``N/A``.

    Rows before the header are the title; after it, a row is a DRG when its first cell is a 1-3
    digit number, and every other row (blank, footnote) is skipped.

    Raises ReferenceDataError when the title does not name ``FY <fiscal_year>``, the header lacks
    a column (the message lists the columns found), a DRG row is malformed (too few cells, a value
    that is not Yes/No, an MDC, a type or a number, an empty title: the message names the line),
    a DRG is listed twice, a weight is not positive, GMLOS exceeds AMLOS, or there are fewer than
    :data:`MIN_DRGS` DRG rows.
    """
    rows = tab_rows(source)
    header_at = _header_index(source.name, rows)
    header_line, header = rows[header_at]
    title = " ".join(
        " ".join(cell.split()) for _, cells in rows[:header_at] for cell in cells if cell.strip()
    )
    if not re.search(rf"\bFY\s*{fiscal_year}\b", title):
        raise ReferenceDataError(
            f"{source.name}: not the FY {fiscal_year} Table 5 ({_years_named(title)})"
        )
    columns = _columns(source.name, header_line, header)
    width = max(columns.values()) + 1
    result: list[dict[str, object]] = []
    seen: dict[str, int] = {}  # DRG -> line
    for line, cells in rows[header_at + 1 :]:
        first = cells[0].strip() if cells else ""
        if first.isdigit() and not _DRG.fullmatch(first):
            raise ReferenceDataError(
                f"{source.name} line {line}: DRG {first!r}, expected 1-3 digits (MS-DRGs are "
                "001-999)"
            )
        if not _DRG.fullmatch(first):
            continue  # blank or footnote
        drg = first.zfill(3)
        where = f"{source.name} line {line}: DRG {drg}"
        if len(cells) < width:
            raise ReferenceDataError(
                f"{where}: {len(cells)} cells, expected at least {width} (as the header)"
            )
        if drg in seen:
            raise ReferenceDataError(f"{where} is listed twice (first on line {seen[drg]})")
        seen[drg] = line
        row = _row(where, drg, cells, columns)
        result.append(row)
    if len(result) < MIN_DRGS:
        raise ReferenceDataError(
            f"{source.name}: {len(result)} DRG rows, expected at least {MIN_DRGS} "
            f"(a truncated or partial Table 5?)"
        )
    return result


def _header_index(name: str, rows: list[tuple[int, list[str]]]) -> int:
    for index, (line, cells) in enumerate(rows):
        first = _key(cells[0]) if cells else ""
        if first == _EXACT["drg"]:
            return index
        if _DRG.fullmatch(first):
            raise ReferenceDataError(
                f"{name} line {line}: a DRG row before the header row (expected a row starting "
                f"with 'MS-DRG' first)"
            )
    raise ReferenceDataError(f"{name}: no header row; expected a row whose first cell is 'MS-DRG'")


def _years_named(title: str) -> str:
    """What a title says about the fiscal year, for an error message."""
    years = sorted(set(re.findall(r"\bFY\s*([0-9]{4})\b", title)))
    if years:
        return f"its title names FY {', FY '.join(years)}"
    return f"its title names no fiscal year: {excerpt(title)}"


def _key(cell: str) -> str:
    return " ".join(cell.split()).lower()


def _columns(name: str, line: int, header: list[str]) -> dict[str, int]:
    """Our key -> 0-based column index; raises when a required column is missing or ambiguous."""
    keys = [_key(cell) for cell in header]

    def find(wanted: str, contained: bool) -> int | None:
        found = [i for i, key in enumerate(keys) if (wanted in key if contained else key == wanted)]
        if len(found) > 1:
            raise ReferenceDataError(
                f"{name} line {line}: {len(found)} header columns match {wanted!r} "
                f"(columns {', '.join(str(i + 1) for i in found)}); expected one"
            )
        return found[0] if found else None

    located: dict[str, int | None] = {key: find(text, False) for key, text in _EXACT.items()}
    located |= {key: find(text, True) for key, text in _CONTAINED.items()}
    capped = find(_WEIGHT_CAPPED, False)
    located["weight"] = capped if capped is not None else find(_WEIGHT_SINGLE, False)
    missing = [_DISPLAY[key] for key, index in located.items() if index is None]
    if missing:
        found_names = ", ".join(repr(" ".join(cell.split())) for cell in header if cell.strip())
        raise ReferenceDataError(
            f"{name} line {line}: header lacks {', '.join(repr(m) for m in missing)}; "
            f"columns found: {found_names}"
        )
    columns = {key: index for key, index in located.items() if index is not None}
    before_cap = find(_WEIGHT_BEFORE_CAP, False)
    if before_cap is not None:
        columns["weight_before_cap"] = before_cap
    return columns


def _row(where: str, drg: str, cells: list[str], columns: dict[str, int]) -> dict[str, object]:
    def cell(key: str) -> str:
        return cells[columns[key]].strip()

    title = " ".join(cell("title").split())
    if not title:
        raise ReferenceDataError(f"{where}: empty MS-DRG Title")
    weight_before_cap = (
        _number(where, "Weights - Before Cap", cell("weight_before_cap"), 4)
        if "weight_before_cap" in columns
        else None
    )
    weight = _number(where, "weight", cell("weight"), 4)
    for label, value in (("weight before cap", weight_before_cap), ("weight", weight)):
        if value is not None and value <= 0:
            raise ReferenceDataError(f"{where}: {label} {value} is not positive")
    gmlos = _number(where, "Geometric mean LOS", cell("gmlos"), 1)
    amlos = _number(where, "Arithmetic mean LOS", cell("amlos"), 1)
    if gmlos is not None and amlos is not None and gmlos > amlos:
        raise ReferenceDataError(
            f"{where}: geometric mean LOS {gmlos} exceeds arithmetic mean LOS {amlos}"
        )
    return {
        "drg": drg,
        "post_acute": _yes_no(where, "Post-Acute DRG", cell("post_acute")),
        "special_pay": _yes_no(where, "Special Pay DRG", cell("special_pay")),
        "mdc": _mdc(where, cell("mdc")),
        "type": _type(where, cell("type")),
        "title": title,
        "weight_before_cap": weight_before_cap,
        "weight": weight,
        "gmlos": gmlos,
        "amlos": amlos,
    }


def _yes_no(where: str, label: str, value: str) -> bool:
    lowered = value.lower()
    if lowered not in {"yes", "no"}:
        raise ReferenceDataError(f"{where}: {label} is {excerpt(value)}, expected Yes or No")
    return lowered == "yes"


def _mdc(where: str, value: str) -> str | None:
    upper = value.upper()
    if not upper:
        return None
    if upper == "PRE":
        return upper
    if _MDC.fullmatch(upper) and 1 <= int(upper) <= 25:
        return upper.zfill(2)
    raise ReferenceDataError(f"{where}: MDC is {excerpt(value)}, expected 01-25, PRE or empty")


def _type(where: str, value: str) -> str | None:
    upper = value.upper()
    if upper in _TYPES:
        return upper
    if upper in _NO_TYPE:
        return None
    raise ReferenceDataError(f"{where}: TYPE is {excerpt(value)}, expected MED, SURG or empty")


def _number(where: str, label: str, value: str, places: int) -> Decimal | None:
    """``value`` with exactly ``places`` decimals; None when missing ("", ".", "N/A")."""
    if value.lower() in _MISSING:
        return None
    if not _NUMBER.fullmatch(value):
        raise ReferenceDataError(f"{where}: {label} is {excerpt(value)}, expected a number")
    whole, _, fraction = value.partition(".")
    if len(fraction) > places:
        raise ReferenceDataError(
            f"{where}: {label} {excerpt(value)} has more than {places} decimal place(s)"
        )
    return Decimal(f"{int(whole or '0')}.{fraction.ljust(places, '0')}")
