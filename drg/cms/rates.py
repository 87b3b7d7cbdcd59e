"""IPPS Tables 1A-1E: national standardized amounts and the capital federal rate.

Source of the layout: the "Tables 1A-1E" text file CMS publishes with each IPPS final rule and
correction notice (e.g. ``CMS-1849-CN Tables 1A - 1E.txt`` in ``fy2027-ipps-fr-table-1a-1e.zip``):
tab-separated as Excel exports it, quoted cells that may hold newlines, dollar cells written
``"$4,519.68 "``. The first line names the fiscal year ("FY 2027 CN Tables 1A-1E"); each table
starts with a row whose first cell is its title ("TABLE 1A.  NATIONAL ADJUSTED OPERATING
STANDARDIZED AMOUNTS; LABOR/NONLABOR (66.0 PERCENT LABOR SHARE/...").

Tables 1A (wage index above 1) and 1B (at most 1) have four labor/non-labor column pairs, one per
column group ("Hospital Submitted Quality Data and is a Meaningful EHR User (Update = 2.3
Percent)", then the reduced updates); the first pair, the full update, is the one our pricing
uses. Table 1D has the capital rate on its row ``National``. The outlier fixed-loss threshold is
not in these tables (it is stated in the rule's preamble) and is passed in by the caller.
"""

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from drg.cms.sources import SourceFile, excerpt, tab_rows
from drg.exceptions import ReferenceDataError

#: Largest allowed gap between the labor share the amounts imply and the one a title states.
LABOR_SHARE_TOLERANCE: Final = Decimal("0.005")
_FULL_UPDATE_GROUP: Final = "Submitted Quality Data and is a Meaningful EHR User"
_TABLE_TITLE: Final = re.compile(r"TABLE\s+1([A-E])\b", re.IGNORECASE)
_LABOR_SHARE: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s+PERCENT\s+LABOR\s+SHARE", re.IGNORECASE)
# A cell that looks like an amount, to find the row of amounts; _DOLLARS then parses it strictly.
_AMOUNT_LIKE: Final = re.compile(r"\$?\s*[0-9][0-9,]*(?:\.[0-9]*)?")
_DOLLARS: Final = re.compile(r"\$?\s*([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)\.([0-9]{2})")

Row = tuple[int, list[str]]


def parse_rates_tables(
    source: SourceFile, fiscal_year: int, *, outlier_fixed_loss: Decimal | None = None
) -> dict[str, object]:
    """The ``ipps_rates`` row of ``fiscal_year`` from a Tables 1A-1E file.

    Keys: ``fiscal_year``; ``effective_from`` and ``effective_to`` (dates: October 1 of the year
    before, September 30 of the year); ``labor_wage_index_above_1`` and
    ``non_labor_wage_index_above_1`` (Table 1A), ``labor_wage_index_at_most_1`` and
    ``non_labor_wage_index_at_most_1`` (Table 1B), each the first labor/non-labor pair of the
    table's first row of amounts, the column group of hospitals that submitted quality data and
    are meaningful EHR users; ``capital_rate`` (Table 1D, row ``National``);
    ``outlier_fixed_loss`` (the argument, to 2 places, or None); ``source`` (the file, its
    SHA-256, and the table, line and column group of each figure). Amounts are US dollars as
    Decimal with 2 places.

    Raises ReferenceDataError when the first line does not name ``FY <fiscal_year>``, Table 1A,
    1B or 1D is missing or listed twice, the column group above the first amounts is not the one
    named above, an amount is not a positive dollar figure with 2 decimals, the labor share the 1A
    or 1B amounts imply is more than :data:`LABOR_SHARE_TOLERANCE` from the share the table's
    title states, or ``outlier_fixed_loss`` is not a positive amount with at most 2 decimals.
    """
    if not 2000 <= fiscal_year <= 2100:
        raise ReferenceDataError(
            f"{source.name}: fiscal year {fiscal_year} is out of range (2000-2100)"
        )
    fixed_loss = (
        None if outlier_fixed_loss is None else _fixed_loss(source.name, outlier_fixed_loss)
    )
    rows = [(line, cells) for line, cells in tab_rows(source) if any(c.strip() for c in cells)]
    if not rows:
        raise ReferenceDataError(f"{source.name}: empty file; expected IPPS Tables 1A-1E")
    first_line, first_cells = rows[0]
    first = " ".join(" ".join(first_cells).split())
    if not re.search(rf"\bFY\s*{fiscal_year}\b", first):
        raise ReferenceDataError(
            f"{source.name} line {first_line}: not the FY {fiscal_year} Tables 1A-1E "
            f"(first line {excerpt(first, 120)})"
        )
    tables = _tables(source.name, rows)
    above = _standardized(source.name, "1A", tables)
    at_most = _standardized(source.name, "1B", tables)
    capital_line, capital = _capital(source.name, tables)
    figures = (
        f"labor and non-labor amounts from Table 1A line {above.line} (wage index above 1) and "
        f"Table 1B line {at_most.line} (wage index at most 1), first column pair, column group "
        f"{above.group!r}; capital rate from Table 1D line {capital_line}, row 'National'"
    )
    fixed_loss_note = (
        "; outlier fixed-loss threshold given by the operator (not in these tables)"
        if fixed_loss is not None
        else ""
    )
    return {
        "fiscal_year": fiscal_year,
        "effective_from": dt.date(fiscal_year - 1, 10, 1),
        "effective_to": dt.date(fiscal_year, 9, 30),
        "labor_wage_index_above_1": above.labor,
        "non_labor_wage_index_above_1": above.non_labor,
        "labor_wage_index_at_most_1": at_most.labor,
        "non_labor_wage_index_at_most_1": at_most.non_labor,
        "capital_rate": capital,
        "outlier_fixed_loss": fixed_loss,
        "source": f"{source.name} (sha256 {source.sha256}): {figures}{fixed_loss_note}",
    }


@dataclass(frozen=True, slots=True)
class _Pair:
    """The first labor/non-labor pair of Table 1A or 1B, and where it was read."""

    line: int
    group: str  # the column group's title, whitespace collapsed
    labor: Decimal
    non_labor: Decimal


def _tables(name: str, rows: list[Row]) -> dict[str, list[Row]]:
    """Table letter ("1A") -> its rows, title row first, up to the next table's title."""
    tables: dict[str, list[Row]] = {}
    current: list[Row] | None = None
    for line, cells in rows:
        match = _TABLE_TITLE.match(" ".join(cells[0].split()))
        if match:
            table = "1" + match.group(1).upper()
            if table in tables:
                raise ReferenceDataError(
                    f"{name} line {line}: TABLE {table} appears twice "
                    f"(first on line {tables[table][0][0]})"
                )
            current = tables[table] = []
        if current is not None:
            current.append((line, cells))
    for table in ("1A", "1B", "1D"):
        if table not in tables:
            raise ReferenceDataError(
                f"{name}: TABLE {table} not found (expected a row whose first cell starts "
                f"with 'TABLE {table}'); found: {', '.join(sorted(tables)) or 'no table'}"
            )
    return tables


def _standardized(name: str, table: str, tables: dict[str, list[Row]]) -> _Pair:
    rows = tables[table]
    title_line, title_cells = rows[0]
    title = " ".join(title_cells[0].split())
    stated = _LABOR_SHARE.search(title)
    if stated is None:
        raise ReferenceDataError(
            f"{name} line {title_line}: TABLE {table} title does not state the labor share "
            f"(expected 'NN PERCENT LABOR SHARE')"
        )
    share = Decimal(stated.group(1)) / 100
    at = next(
        (
            i
            for i, (_, cells) in enumerate(rows[1:], start=1)
            if _AMOUNT_LIKE.fullmatch(cells[0].strip())
        ),
        None,
    )
    if at is None:
        raise ReferenceDataError(
            f"{name} line {title_line}: TABLE {table} has no row of dollar amounts"
        )
    line, cells = rows[at]
    if at < 3:
        raise ReferenceDataError(
            f"{name} line {line}: TABLE {table}: expected a column-group row and a "
            f"labor/non-labor row above the first amounts"
        )
    labels_line, labels = rows[at - 1]
    if len(labels) < 2 or not (
        _letters(labels[0]).startswith("labor") and _letters(labels[1]).startswith("nonlabor")
    ):
        raise ReferenceDataError(
            f"{name} line {labels_line}: TABLE {table}: expected 'Labor-related' and "
            f"'Nonlabor-related' above the first amounts, found {excerpt(' | '.join(labels[:2]))}"
        )
    group_line, group_cells = rows[at - 2]
    group = " ".join(group_cells[0].split())
    if _FULL_UPDATE_GROUP.lower() not in group.lower():
        raise ReferenceDataError(
            f"{name} line {group_line}: TABLE {table}: the column group of the first amounts is "
            f"{excerpt(group, 120)}, expected one naming {_FULL_UPDATE_GROUP!r}"
        )
    if len(cells) < 2:
        raise ReferenceDataError(
            f"{name} line {line}: TABLE {table}: expected a labor and a non-labor amount"
        )
    where = f"{name} line {line}: TABLE {table}"
    labor = _dollars(f"{where} labor amount", cells[0])
    non_labor = _dollars(f"{where} non-labor amount", cells[1])
    implied = labor / (labor + non_labor)
    if abs(implied - share) > LABOR_SHARE_TOLERANCE:
        raise ReferenceDataError(
            f"{where}: labor share {implied:.4f} of ${labor} / ${non_labor} is not the "
            f"{stated.group(1)} percent the title states (tolerance {LABOR_SHARE_TOLERANCE})"
        )
    return _Pair(line, group, labor, non_labor)


def _capital(name: str, tables: dict[str, list[Row]]) -> tuple[int, Decimal]:
    rows = tables["1D"]
    for line, cells in rows[1:]:
        if " ".join(cells[0].split()).lower() != "national":
            continue
        amounts = [cell for cell in cells[1:] if cell.strip()]
        if len(amounts) != 1:
            raise ReferenceDataError(
                f"{name} line {line}: TABLE 1D row 'National' has {len(amounts)} filled cells "
                f"after its label, expected one (the rate)"
            )
        return line, _dollars(f"{name} line {line}: TABLE 1D capital rate", amounts[0])
    raise ReferenceDataError(
        f"{name} line {rows[0][0]}: TABLE 1D has no row 'National' (the capital rate)"
    )


def _letters(cell: str) -> str:
    return re.sub(r"[^a-z]", "", cell.lower())


def _dollars(where: str, cell: str) -> Decimal:
    match = _DOLLARS.fullmatch(cell.strip())
    if match is None:
        raise ReferenceDataError(
            f"{where} is {excerpt(cell)}, expected dollars with 2 decimals ('$4,519.68')"
        )
    amount = Decimal(f"{match.group(1).replace(',', '')}.{match.group(2)}")
    if amount <= 0:
        raise ReferenceDataError(f"{where} is {excerpt(cell)}, expected a positive amount")
    return amount


def _fixed_loss(name: str, value: Decimal) -> Decimal:
    try:
        cents = value.quantize(Decimal("0.01")) if value.is_finite() else None
    except InvalidOperation:  # more digits than the decimal context holds
        cents = None
    if cents is None or cents != value or cents <= 0:
        raise ReferenceDataError(
            f"{name}: outlier fixed-loss threshold {value}, expected a positive amount with at "
            f"most 2 decimals"
        )
    return cents
