"""An ICD-10-CM release held in memory: look codes up, classify raw codes, walk the hierarchy.

Built once per release by ``drg.codeset.catalog`` and then read-only, so one instance can serve
every thread. The Redis code set is what the pipeline validates against; this copy serves the
coders and ``claimcoder eval``.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from drg.codeset.normalize import normalize
from drg.codeset.source import CodeRecord
from drg.codeset.status import CodeStatus


@dataclass(frozen=True, slots=True)
class MemoryCodeSet:
    release: str
    fiscal_year: int
    records: Mapping[str, CodeRecord]  # undotted code -> record, in code-list order
    children: Mapping[str, tuple[str, ...]]  # undotted code -> listed children, in list order

    @classmethod
    def from_records(
        cls, release: str, fiscal_year: int, records: Iterable[CodeRecord]
    ) -> "MemoryCodeSet":
        by_code: dict[str, CodeRecord] = {}
        kids: dict[str, list[str]] = {}
        for record in records:
            by_code[record.code] = record
            if record.parent is not None:
                kids.setdefault(record.parent, []).append(record.code)
        return cls(
            release=release,
            fiscal_year=fiscal_year,
            records=MappingProxyType(by_code),
            children=MappingProxyType({k: tuple(v) for k, v in kids.items()}),
        )

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code in self.records

    def get(self, raw: str) -> CodeRecord | None:
        """The record of ``raw`` in any accepted spelling ("e11.9", "E119"), or None."""
        code = normalize(raw)
        return None if code is None else self.records.get(code)

    def classify(self, raw: str) -> CodeStatus:
        """BILLABLE, NOT_BILLABLE or INVALID (one code alone is never a DUPLICATE)."""
        record = self.get(raw)
        if record is None:
            return CodeStatus.INVALID
        return CodeStatus.BILLABLE if record.billable else CodeStatus.NOT_BILLABLE

    def is_billable(self, raw: str) -> bool:
        return self.classify(raw) is CodeStatus.BILLABLE

    def billable(self) -> Iterator[CodeRecord]:
        return (r for r in self.records.values() if r.billable)

    def ancestors(self, code: str) -> Iterator[CodeRecord]:
        """Parent, grandparent, ... of an undotted code, nearest first."""
        record = self.records.get(code)
        while record is not None and record.parent is not None:
            record = self.records.get(record.parent)
            if record is not None:
                yield record
