"""Seed Table 5 and IPPS rates, and load provider wage indexes (bulk, synchronous).

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
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, Table, func, select
from sqlalchemy.dialects.postgresql import insert

from drg.exceptions import ReferenceDataError
from drg.tables import drg_weights, ipps_rates, providers

#: Table 5 files in drg/data by fiscal year (see drg/data/README.md for their provenance).
TABLE5_FILES: Final = {2026: "table5_fy2026.csv"}
IPPS_RATES_FILE: Final = "ipps_rates.json"
PROVIDER_ID: Final = re.compile(r"[0-9A-Z]{6}")
PROVIDER_COLUMNS: Final = ("provider_id", "name", "wage_index", "fiscal_year")


@dataclass(frozen=True, slots=True)
class SeedResult:
    drg_weights: dict[int, int]  # fiscal year -> DRG rows
    ipps_rates: list[int]  # fiscal years


def _data_text(name: str) -> str:
    return files("drg.data").joinpath(name).read_text(encoding="utf-8")


def _decimal(value: str) -> Decimal | None:
    return Decimal(value) if value else None


def table5_rows(fiscal_year: int) -> list[dict[str, Any]]:
    if fiscal_year not in TABLE5_FILES:
        raise ReferenceDataError(f"no Table 5 for fiscal year {fiscal_year}")
    reader = csv.DictReader(io.StringIO(_data_text(TABLE5_FILES[fiscal_year])))
    return [
        {
            "fiscal_year": fiscal_year,
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


def ipps_rate_rows() -> list[dict[str, Any]]:
    data = json.loads(_data_text(IPPS_RATES_FILE))
    rows = []
    for rate in data["rates"]:
        row: dict[str, Any] = dict(rate)
        row["effective_from"] = dt.date.fromisoformat(rate["effective_from"])
        row["effective_to"] = dt.date.fromisoformat(rate["effective_to"])
        for key in (
            "labor_wage_index_above_1",
            "non_labor_wage_index_above_1",
            "labor_wage_index_at_most_1",
            "non_labor_wage_index_at_most_1",
            "capital_rate",
            "outlier_fixed_loss",
        ):
            row[key] = Decimal(rate[key])
        rows.append(row)
    return rows


def _upsert(engine: Engine, table: Table, rows: list[dict[str, Any]]) -> None:
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
    with engine.begin() as connection:
        connection.execute(
            statement.on_conflict_do_update(index_elements=sorted(keys), set_=update), rows
        )


def seed(engine: Engine) -> SeedResult:
    """Table 5 of every shipped fiscal year and the IPPS rates (idempotent)."""
    weights = {}
    for fiscal_year in TABLE5_FILES:
        rows = table5_rows(fiscal_year)
        _upsert(engine, drg_weights, rows)
        weights[fiscal_year] = len(rows)
    rates = ipps_rate_rows()
    _upsert(engine, ipps_rates, rates)
    return SeedResult(weights, [r["fiscal_year"] for r in rates])


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
    _upsert(engine, providers, batch)
    return len(batch)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: int(
                connection.execute(select(func.count()).select_from(table)).scalar_one()
            )
            for table in (drg_weights, ipps_rates, providers)
        }
