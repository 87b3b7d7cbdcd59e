"""Seed Table 5 and IPPS rates, load provider wage indexes, and read the release registry's
loaded half from PostgreSQL (bulk, synchronous).

Every load is an upsert, so running it twice changes nothing.
"""

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, Table, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from drg.exceptions import ReferenceDataError
from drg.registry import FiscalYear, ReleaseRegistry, loaded_fiscal_year
from drg.tables import drg_weights, fiscal_years, ipps_rates, providers, release_periods

PROVIDER_ID: Final = re.compile(r"[0-9A-Z]{6}")
PROVIDER_COLUMNS: Final = ("provider_id", "name", "wage_index", "fiscal_year")
TABLE5_COLUMNS: Final = (
    "drg",
    "post_acute",
    "special_pay",
    "mdc",
    "type",
    "title",
    "weight_before_cap",
    "weight",
    "gmlos",
    "amlos",
)
RATE_AMOUNTS: Final = (
    "labor_wage_index_above_1",
    "non_labor_wage_index_above_1",
    "labor_wage_index_at_most_1",
    "non_labor_wage_index_at_most_1",
    "capital_rate",
)


@dataclass(frozen=True, slots=True)
class SeedResult:
    drg_weights: dict[int, int]  # fiscal year -> DRG rows
    ipps_rates: list[int]  # fiscal years
    skipped: list[int]  # shipped fiscal years an operator's load replaces


def _decimal(value: str) -> Decimal | None:
    return Decimal(value) if value else None


def table5_rows(year: FiscalYear) -> list[dict[str, Any]]:
    """The shipped ``table5.csv`` of ``year`` as ``drg_weights`` rows.

    Columns: see drg/data/README.md. Raises ReferenceDataError on a missing column."""
    reader = csv.DictReader(io.StringIO(year.table5.read_text(encoding="utf-8")))
    missing = set(TABLE5_COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise ReferenceDataError(
            f"FY{year.fiscal_year} table5.csv lacks {', '.join(sorted(missing))}"
        )
    return [
        {
            "fiscal_year": year.fiscal_year,
            "drg": row["drg"],
            "mdc": row["mdc"] or None,
            "type": row["type"] or None,
            "title": row["title"],
            "post_acute": row["post_acute"] == "true",
            "special_pay": row["special_pay"] == "true",
            "weight_before_cap": _decimal(row["weight_before_cap"]),
            "weight": _decimal(row["weight"]),
            "gmlos": _decimal(row["gmlos"]),
            "amlos": _decimal(row["amlos"]),
        }
        for row in reader
    ]


def ipps_rate_row(year: FiscalYear) -> dict[str, Any]:
    """The shipped ``ipps_rates.json`` of ``year`` as an ``ipps_rates`` row (amounts in US
    dollars; ``outlier_fixed_loss`` may be null: not known)."""
    return rate_row(json.loads(year.ipps_rates.read_text(encoding="utf-8")), year.fiscal_year)


def rate_row(rate: dict[str, Any], fiscal_year: int) -> dict[str, Any]:
    """An ``ipps_rates`` row from its JSON form (amounts as decimal strings)."""
    try:
        row: dict[str, Any] = {
            "fiscal_year": int(rate["fiscal_year"]),
            "effective_from": dt.date.fromisoformat(rate["effective_from"]),
            "effective_to": dt.date.fromisoformat(rate["effective_to"]),
            "source": str(rate["source"]),
            **{key: Decimal(rate[key]) for key in RATE_AMOUNTS},
            "outlier_fixed_loss": (
                None if rate["outlier_fixed_loss"] is None else Decimal(rate["outlier_fixed_loss"])
            ),
        }
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise ReferenceDataError(f"FY{fiscal_year} rates: {type(exc).__name__}: {exc}") from exc
    if row["fiscal_year"] != fiscal_year:
        raise ReferenceDataError(f"FY{fiscal_year} rates name fiscal year {row['fiscal_year']}")
    return row


def _upsert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    statement = insert(table)
    keys = {c.name for c in table.primary_key.columns}
    update: dict[str, Any] = {
        c.name: statement.excluded[c.name]
        for c in table.columns
        if c.name not in keys and c.name in rows[0]
    }
    if "loaded_at" in table.c:
        update["loaded_at"] = func.now()
    connection.execute(
        statement.on_conflict_do_update(index_elements=sorted(keys), set_=update), rows
    )


def replace_fiscal_year_prices(
    connection: Connection, fiscal_year: int, weights: list[dict[str, Any]], rate: dict[str, Any]
) -> None:
    """Make ``drg_weights`` and ``ipps_rates`` of ``fiscal_year`` exactly these rows (a DRG
    that a newer table dropped does not linger)."""
    connection.execute(delete(drg_weights).where(drg_weights.c.fiscal_year == fiscal_year))
    _upsert(connection, drg_weights, weights)
    _upsert(connection, ipps_rates, [rate])


def seed(engine: Engine, registry: ReleaseRegistry | None = None) -> SeedResult:
    """Table 5 and the IPPS rates of every shipped fiscal year of the registry, except those an
    operator's load replaced (idempotent; one transaction)."""
    shipped = registry or ReleaseRegistry.load()
    weights: dict[int, int] = {}
    rates: list[int] = []
    with engine.begin() as connection:
        replaced = set(connection.execute(select(fiscal_years.c.fiscal_year)).scalars())
        for year in shipped.fiscal_years:
            if not year.shipped or year.fiscal_year in replaced:
                continue
            rows = table5_rows(year)
            replace_fiscal_year_prices(connection, year.fiscal_year, rows, ipps_rate_row(year))
            weights[year.fiscal_year] = len(rows)
            rates.append(year.fiscal_year)
    return SeedResult(
        weights, rates, sorted(replaced & {y.fiscal_year for y in shipped.fiscal_years})
    )


# --- the release registry: shipped, merged with what operators loaded ---------------------


def loaded_fiscal_years(connection: Connection) -> list[FiscalYear]:
    """The fiscal years ``claimcoder reference load`` recorded, with their periods."""
    periods: dict[int, list[tuple[dt.date, dt.date, int]]] = {}
    for start, end, year, version in connection.execute(
        select(
            release_periods.c.start_date,
            release_periods.c.end_date,
            release_periods.c.fiscal_year,
            release_periods.c.msdrg_version,
        ).order_by(release_periods.c.start_date)
    ):
        periods.setdefault(int(year), []).append((start, end, int(version)))
    return [
        loaded_fiscal_year(int(year), release, source, periods.get(int(year), []))
        for year, release, source in connection.execute(
            select(
                fiscal_years.c.fiscal_year, fiscal_years.c.codeset_release, fiscal_years.c.source
            ).order_by(fiscal_years.c.fiscal_year)
        )
    ]


def registry_from(
    connection: Connection, shipped: ReleaseRegistry | None = None
) -> ReleaseRegistry:
    """The shipped registry merged with the fiscal years loaded into this database."""
    return (shipped or ReleaseRegistry.load()).merged(loaded_fiscal_years(connection))


async def load_registry(
    engine: AsyncEngine, shipped: ReleaseRegistry | None = None
) -> ReleaseRegistry:
    """:func:`registry_from` over an async engine (one short read)."""
    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: registry_from(sync, shipped))


def read_providers(path: Path) -> list[dict[str, Any]]:
    """Rows of a provider CSV with the header ``provider_id,name,wage_index,fiscal_year``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReferenceDataError(f"cannot read {path.name}: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = set(PROVIDER_COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise ReferenceDataError(
            f"{path.name}: missing column(s) {', '.join(sorted(missing))}; "
            f"expected {','.join(PROVIDER_COLUMNS)}"
        )
    numbered: list[tuple[int, dict[Any, Any]]] = []
    try:
        for row in reader:
            numbered.append((reader.line_num, row))
    except csv.Error as exc:
        raise ReferenceDataError(f"{path.name} line {reader.line_num}: bad CSV ({exc})") from exc
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for line, row in numbered:
        if None in row:  # DictReader files surplus fields under the key None
            raise ReferenceDataError(f"{path.name} line {line}: more fields than the header")
        if any(row[c] is None for c in PROVIDER_COLUMNS):
            raise ReferenceDataError(f"{path.name} line {line}: fewer fields than the header")
        provider_id = (row["provider_id"] or "").strip().upper()
        if not PROVIDER_ID.fullmatch(provider_id):
            raise ReferenceDataError(f"{path.name} line {line}: provider_id is not a 6-char CCN")
        try:
            wage_index = Decimal((row["wage_index"] or "").strip())
            fiscal_year = int((row["fiscal_year"] or "").strip())
        except (InvalidOperation, ValueError) as exc:
            raise ReferenceDataError(
                f"{path.name} line {line}: wage_index or fiscal_year is not a number"
            ) from exc
        if not wage_index.is_finite() or not Decimal("0") < wage_index < Decimal("100"):
            raise ReferenceDataError(f"{path.name} line {line}: wage_index out of range")
        if wage_index != wage_index.quantize(Decimal("0.0001")):
            raise ReferenceDataError(f"{path.name} line {line}: wage_index has > 4 decimals")
        if not 2000 <= fiscal_year <= 2100:
            raise ReferenceDataError(f"{path.name} line {line}: fiscal_year out of range")
        name = " ".join((row["name"] or "").split())
        if not name:
            raise ReferenceDataError(f"{path.name} line {line}: name is empty")
        if (provider_id, fiscal_year) in rows:
            raise ReferenceDataError(
                f"{path.name} line {line}: provider {provider_id} is listed twice for "
                f"fiscal year {fiscal_year}"
            )
        rows[(provider_id, fiscal_year)] = {
            "provider_id": provider_id,
            "fiscal_year": fiscal_year,
            "name": name,
            "wage_index": wage_index,
        }
    return list(rows.values())


def load_providers(engine: Engine, rows: Iterable[dict[str, Any]]) -> int:
    """Upsert providers; the number of rows written."""
    batch = list(rows)
    with engine.begin() as connection:
        _upsert(connection, providers, batch)
    return len(batch)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: int(
                connection.execute(select(func.count()).select_from(table)).scalar_one()
            )
            for table in (drg_weights, ipps_rates, providers)
        }
