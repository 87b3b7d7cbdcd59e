"""Which code-set release, MS-DRG version and fiscal year apply to a discharge date.

Data-driven: the periods live in ``drg/data/releases.json`` (inclusive date ranges). A discharge
outside every period has no release: it is never grouped or priced with another year's data.
"""

import datetime as dt
import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from drg.exceptions import ReferenceDataError

DEFAULT_REGISTRY = "releases.json"


@dataclass(frozen=True, slots=True)
class ReleasePeriod:
    start: dt.date
    end: dt.date  # inclusive
    fiscal_year: int
    msdrg_version: int  # e.g. 430 for v43.0
    codeset_release: str  # e.g. "2026-04"

    def covers(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


class ReleaseRegistry:
    """Non-overlapping periods, looked up by discharge date."""

    def __init__(self, periods: Iterable[ReleasePeriod]) -> None:
        ordered = sorted(periods, key=lambda p: p.start)
        for period in ordered:
            if period.end < period.start:
                raise ReferenceDataError(f"release period {period.start} ends before it starts")
        for before, after in itertools.pairwise(ordered):
            if after.start <= before.end:
                raise ReferenceDataError(
                    f"release periods overlap: {before.start}..{before.end} and "
                    f"{after.start}..{after.end}"
                )
        self.periods: tuple[ReleasePeriod, ...] = tuple(ordered)

    def period_for(self, discharge_date: dt.date) -> ReleasePeriod | None:
        for period in self.periods:
            if period.covers(discharge_date):
                return period
        return None

    @property
    def codeset_releases(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.codeset_release for p in self.periods))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ReleaseRegistry":
        try:
            return cls(
                ReleasePeriod(
                    start=dt.date.fromisoformat(p["start"]),
                    end=dt.date.fromisoformat(p["end"]),
                    fiscal_year=int(p["fiscal_year"]),
                    msdrg_version=int(p["msdrg_version"]),
                    codeset_release=str(p["codeset_release"]),
                )
                for p in data["periods"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ReferenceDataError(f"bad release registry: {exc}") from exc

    @classmethod
    def load(cls, path: Path | None = None) -> "ReleaseRegistry":
        """The registry shipped in ``drg/data`` or the file at ``path``."""
        try:
            text = (
                path.read_text(encoding="utf-8")
                if path is not None
                else files("drg.data").joinpath(DEFAULT_REGISTRY).read_text(encoding="utf-8")
            )
            return cls.from_json(json.loads(text))
        except (OSError, json.JSONDecodeError) as exc:
            raise ReferenceDataError(f"cannot read the release registry: {exc}") from exc
