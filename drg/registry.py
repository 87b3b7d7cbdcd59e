"""The release registry: which fiscal year, ICD-10-CM code set and MS-DRG version apply to a
discharge date. One list that preparation, the loaders, the seed, validation, grouping, pricing
and both coders iterate or look up.

Two sources, merged:

- the fiscal years claimcoder ships, listed in ``drg/data/releases.json``, each with its data
  folder ``drg/data/fy<YYYY>/`` (``table5.csv``, ``ipps_rates.json`` and, for a code set derived
  from an earlier one, its ICD-10-CM change lists). Adding a year adds a folder and an entry and
  touches no code;
- the fiscal years an operator loaded from CMS's own files (``claimcoder reference load``),
  recorded in PostgreSQL (tables ``fiscal_years`` and ``release_periods``). An operator's fiscal
  year replaces a shipped one of the same number: what the operator loaded from CMS is the more
  authoritative copy (e.g. a Table 5 after a correction notice).

A period is an inclusive range of discharge dates with one MS-DRG grouper version; periods never
overlap. A discharge outside every period has no release: it is never grouped or priced with
another year's data.
"""

import datetime as dt
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final

from drg.exceptions import ReferenceDataError

DEFAULT_REGISTRY: Final = "releases.json"
TABLE5_FILE: Final = "table5.csv"
IPPS_RATES_FILE: Final = "ipps_rates.json"


@dataclass(frozen=True, slots=True)
class PackagedCodeset:
    """A code set read from the files of an installed package (simple-icd-10-cm): its code list
    decides which codes exist, its tabular XML gives their texts."""

    release: str  # e.g. "2026-04"
    fiscal_year: int
    package: str  # distribution name, e.g. "simple-icd-10-cm"
    code_list: str  # file name inside the package's data folder
    tabular_xml: str


@dataclass(frozen=True, slots=True)
class DerivedCodeset:
    """A code set made of an earlier one plus CMS's changes (added, deleted, billable-status
    changes, revised titles), read from the change lists in ``changes``."""

    release: str  # e.g. "2026-10"
    fiscal_year: int
    base: str  # the release the changes apply to
    changes: Traversable  # folder with added.csv, deleted.csv, billable-status-changes.csv,
    # revised.csv


@dataclass(frozen=True, slots=True)
class LoadedCodeset:
    """A code set an operator loaded into PostgreSQL from CMS's order file; its codes and texts
    live only there."""

    release: str
    fiscal_year: int
    source: str  # the files and SHA-256 digests it was loaded from


CodesetSource = PackagedCodeset | DerivedCodeset | LoadedCodeset


@dataclass(frozen=True, slots=True)
class ReleasePeriod:
    """Discharge dates ``start``..``end`` (inclusive), grouped with msdrg ``msdrg_version`` and
    validated against code-set release ``codeset_release`` of fiscal year ``fiscal_year``."""

    start: dt.date
    end: dt.date  # inclusive
    fiscal_year: int
    msdrg_version: int  # e.g. 430 for v43.0
    codeset_release: str  # e.g. "2026-04"

    def covers(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class FiscalYear:
    """One federal fiscal year's reference data (October 1 to September 30)."""

    fiscal_year: int
    codeset: CodesetSource
    periods: tuple[ReleasePeriod, ...]
    folder: Traversable | None  # shipped data (Table 5, rates); None: loaded, in PostgreSQL

    @property
    def shipped(self) -> bool:
        return self.folder is not None

    @property
    def table5(self) -> Traversable:
        """``table5.csv`` of a shipped year (CMS Table 5, converted: see drg/data/README.md)."""
        return self._file(TABLE5_FILE)

    @property
    def ipps_rates(self) -> Traversable:
        """``ipps_rates.json`` of a shipped year: the national rates of its IPPS final rule."""
        return self._file(IPPS_RATES_FILE)

    def _file(self, name: str) -> Traversable:
        if self.folder is None:
            raise ReferenceDataError(f"FY{self.fiscal_year} was loaded, it ships no {name}")
        return self.folder.joinpath(name)


def federal_fiscal_year(day: dt.date) -> int:
    """The federal fiscal year of a date: FY2027 runs from 2026-10-01 to 2027-09-30."""
    return day.year + 1 if day.month >= 10 else day.year


class ReleaseRegistry:
    """Fiscal years and their non-overlapping periods, looked up by discharge date.

    Raises :class:`ReferenceDataError` when fiscal years repeat, periods overlap or fall outside
    their fiscal year, or a code-set release belongs to two fiscal years (and, for the shipped
    registry, when a derived code set's base is not shipped)."""

    def __init__(self, fiscal_years: Iterable[FiscalYear]) -> None:
        years = sorted(fiscal_years, key=lambda y: y.fiscal_year)
        for before, after in itertools.pairwise(years):
            if before.fiscal_year == after.fiscal_year:
                raise ReferenceDataError(f"FY{after.fiscal_year} is listed twice")
        releases: dict[str, int] = {}
        for year in years:
            owner = releases.setdefault(year.codeset.release, year.fiscal_year)
            if owner != year.fiscal_year:
                raise ReferenceDataError(
                    f"code set {year.codeset.release} belongs to FY{owner} and FY{year.fiscal_year}"
                )
            for period in year.periods:
                if period.end < period.start:
                    raise ReferenceDataError(f"release period {period.start} ends before it starts")
                if (period.fiscal_year, period.codeset_release) != (
                    year.fiscal_year,
                    year.codeset.release,
                ):
                    raise ReferenceDataError(f"period {period.start} is not FY{year.fiscal_year}'s")
                if {federal_fiscal_year(period.start), federal_fiscal_year(period.end)} != {
                    year.fiscal_year
                }:
                    raise ReferenceDataError(
                        f"period {period.start}..{period.end} is not inside FY{year.fiscal_year} "
                        f"({year.fiscal_year - 1}-10-01..{year.fiscal_year}-09-30)"
                    )
        periods = sorted((p for y in years for p in y.periods), key=lambda p: p.start)
        for earlier, later in itertools.pairwise(periods):
            if later.start <= earlier.end:
                raise ReferenceDataError(
                    f"release periods overlap: {earlier.start}..{earlier.end} and "
                    f"{later.start}..{later.end}"
                )
        self.fiscal_years: tuple[FiscalYear, ...] = tuple(years)
        self.periods: tuple[ReleasePeriod, ...] = tuple(periods)
        self._codesets: dict[str, CodesetSource] = {y.codeset.release: y.codeset for y in years}

    def period_for(self, discharge_date: dt.date) -> ReleasePeriod | None:
        """The period covering ``discharge_date``, or None: the claim is not priced."""
        for period in self.periods:
            if period.covers(discharge_date):
                return period
        return None

    @property
    def codeset_releases(self) -> tuple[str, ...]:
        """Every code-set release, oldest fiscal year first."""
        return tuple(self._codesets)

    @property
    def newest_release(self) -> str:
        """The code-set release of the newest fiscal year (a coder's choice for a claim with no
        period)."""
        if not self.fiscal_years:
            raise ReferenceDataError("the release registry is empty")
        return self.fiscal_years[-1].codeset.release

    def codeset(self, release: str) -> CodesetSource:
        try:
            return self._codesets[release]
        except KeyError:
            raise ReferenceDataError(f"code set {release!r} is not in the registry") from None

    def fiscal_year(self, year: int) -> FiscalYear:
        for candidate in self.fiscal_years:
            if candidate.fiscal_year == year:
                return candidate
        raise ReferenceDataError(f"FY{year} is not in the registry")

    def merged(self, loaded: Iterable[FiscalYear]) -> "ReleaseRegistry":
        """This registry with the operator's fiscal years, each replacing a shipped fiscal year
        of the same number."""
        extra = {y.fiscal_year: y for y in loaded}
        if not extra:
            return self
        kept = [y for y in self.fiscal_years if y.fiscal_year not in extra]
        return ReleaseRegistry([*kept, *extra.values()])

    # --- the shipped registry ----------------------------------------------------------------

    @classmethod
    def from_json(cls, data: Mapping[str, Any], root: Traversable) -> "ReleaseRegistry":
        """Fiscal years as ``releases.json`` lists them; folders are resolved under ``root``."""
        try:
            return cls(_fiscal_year(entry, root) for entry in data["fiscal_years"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ReferenceDataError(f"bad release registry: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def load(cls, path: Path | None = None) -> "ReleaseRegistry":
        """The registry shipped in ``drg/data`` or the file at ``path`` (folders relative to
        it)."""
        root: Traversable = files("drg.data") if path is None else path.parent
        source = root.joinpath(DEFAULT_REGISTRY) if path is None else path
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ReferenceDataError(f"cannot read the release registry: {exc}") from exc
        return cls.from_json(data, root)


def _periods(
    entries: Sequence[Mapping[str, Any]], fiscal_year: int, release: str
) -> tuple[ReleasePeriod, ...]:
    return tuple(
        ReleasePeriod(
            start=dt.date.fromisoformat(p["start"]),
            end=dt.date.fromisoformat(p["end"]),
            fiscal_year=fiscal_year,
            msdrg_version=int(p["msdrg_version"]),
            codeset_release=release,
        )
        for p in entries
    )


def _fiscal_year(entry: Mapping[str, Any], root: Traversable) -> FiscalYear:
    year = int(entry["fiscal_year"])
    folder = root.joinpath(str(entry["folder"]))
    if not folder.is_dir():
        raise ReferenceDataError(f"FY{year}: data folder {entry['folder']!r} is missing")
    spec = entry["codeset"]
    release = str(spec["release"])
    codeset: CodesetSource
    if "package" in spec:
        codeset = PackagedCodeset(
            release, year, str(spec["package"]), str(spec["code_list"]), str(spec["tabular_xml"])
        )
    elif "base" in spec:
        codeset = DerivedCodeset(
            release, year, str(spec["base"]), folder.joinpath(str(spec["changes"]))
        )
    else:
        raise ReferenceDataError(f"FY{year}: code set {release} has neither package nor base")
    return FiscalYear(year, codeset, _periods(entry["periods"], year, release), folder)


def loaded_fiscal_year(
    fiscal_year: int, release: str, source: str, periods: Iterable[tuple[dt.date, dt.date, int]]
) -> FiscalYear:
    """A fiscal year an operator loaded, as PostgreSQL records it: periods are
    (start, end, msdrg_version)."""
    return FiscalYear(
        fiscal_year,
        LoadedCodeset(release, fiscal_year, source),
        tuple(
            ReleasePeriod(start, end, fiscal_year, version, release)
            for start, end, version in periods
        ),
        folder=None,
    )
