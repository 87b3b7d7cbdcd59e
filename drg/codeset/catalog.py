"""Every code-set release of the registry, in memory: its records and a :class:`MemoryCodeSet`.

What each kind of release is built from (``drg.registry``):

- packaged (FY2026, ``2026-04``): simple-icd-10-cm's code list and tabular XML (~2 s to parse);
- derived (FY2027, ``2026-10``): its base release plus the change lists shipped in
  ``drg/data/fy2027/icd10cm`` (``drg.codeset.derive``);
- loaded by an operator: the code list ``claimcoder reference load`` wrote to PostgreSQL, passed
  in as ``loaded``; codes the newest shipped release also lists keep its notes.

Each release is built once, on first use, and then shared read-only by every thread (the coders,
``claimcoder eval``, the loaders). The Redis code set is what the pipeline validates against;
this copy serves the coders.
"""

import functools
import threading
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version

from drg.codeset.derive import ListedCode, apply_changes, derive_records, read_changes
from drg.codeset.memory import MemoryCodeSet
from drg.codeset.source import CodeRecord, packaged_files, read_release
from drg.exceptions import ReferenceDataError
from drg.registry import (
    CodesetSource,
    DerivedCodeset,
    LoadedCodeset,
    PackagedCodeset,
    ReleaseRegistry,
)


class CodesetCatalog:
    """The code sets of ``registry`` (the merged one, with operators' fiscal years), built on
    first use. ``loaded`` holds the code list of each loaded release, as read from PostgreSQL
    (``drg.codeset.store.read_listed``); ``shipped`` resolves the bases of derived releases and
    the notes of loaded ones, even when an operator's year replaced the shipped one."""

    def __init__(
        self,
        registry: ReleaseRegistry,
        loaded: Mapping[str, Sequence[ListedCode]] | None = None,
        shipped: ReleaseRegistry | None = None,
    ) -> None:
        self.registry = registry
        self.shipped = shipped or ReleaseRegistry.load()
        self._loaded = dict(loaded or {})
        self._records: dict[str, list[CodeRecord]] = {}  # loaded releases, by name
        self._shipped_records: dict[str, list[CodeRecord]] = {}  # as claimcoder ships them
        self._codesets: dict[str, MemoryCodeSet] = {}
        self._lock = threading.RLock()

    def merged(
        self, registry: ReleaseRegistry, loaded: Mapping[str, Sequence[ListedCode]]
    ) -> "CodesetCatalog":
        """A catalog of ``registry`` (with operators' years) that shares the releases this one
        has built already; this one when nothing differs."""
        if registry is self.registry and not loaded:
            return self
        other = CodesetCatalog(registry, loaded, self.shipped)
        with self._lock:
            other._shipped_records = self._shipped_records  # shared: they never change
            for release, codeset in self._codesets.items():
                if release not in loaded:
                    other._codesets[release] = codeset
        return other

    @property
    def releases(self) -> tuple[str, ...]:
        """The registry's code-set releases, oldest fiscal year first."""
        return self.registry.codeset_releases

    def source(self, release: str) -> CodesetSource:
        if release in self.registry.codeset_releases:
            return self.registry.codeset(release)
        return self.shipped.codeset(release)

    def records(self, release: str) -> list[CodeRecord]:
        """Every code of ``release`` in code-list order. Raises ReferenceDataError when its files
        are missing or break the conventions (drg.codeset.derive)."""
        source = self.source(release)
        if not isinstance(source, LoadedCodeset):
            return self.shipped_records(release)
        with self._lock:
            found = self._records.get(release)
            if found is None:
                listed = self._loaded.get(release)
                if listed is None:
                    raise ReferenceDataError(
                        f"code set {release} was loaded into PostgreSQL; read it from there first"
                    )
                # codes the newest shipped release also lists keep its notes; a loaded release
                # may bear a shipped one's name (an operator's FY2027): the shipped one is meant
                base = self.shipped_records(self.shipped.newest_release)
                found = self._records[release] = derive_records(base, listed)
            return found

    def shipped_records(self, release: str) -> list[CodeRecord]:
        """The records of ``release`` as claimcoder ships it (``drg/data/releases.json``)."""
        with self._lock:
            found = self._shipped_records.get(release)
            if found is None:
                source = self.shipped.codeset(release)
                if isinstance(source, PackagedCodeset):
                    found = list(read_release(packaged_files(source)))
                else:
                    assert isinstance(source, DerivedCodeset)  # the shipped registry has no other
                    base = self.shipped_records(source.base)
                    found = derive_records(base, apply_changes(base, read_changes(source.changes)))
                self._shipped_records[release] = found
            return found

    def codeset(self, release: str) -> MemoryCodeSet:
        with self._lock:
            found = self._codesets.get(release)
            if found is None:
                source = self.source(release)
                found = self._codesets[release] = MemoryCodeSet.from_records(
                    release, source.fiscal_year, self.records(release)
                )
            return found


def describe(source: CodesetSource) -> str:
    """Where a release's codes come from, as recorded in ``icd10cm_releases.source``."""
    if isinstance(source, PackagedCodeset):
        try:
            installed = version(source.package)
        except PackageNotFoundError:
            installed = "unknown"
        return f"{source.package} {installed}: {source.code_list} + {source.tabular_xml}"
    if isinstance(source, DerivedCodeset):
        return (
            f"{source.base} + FY{source.fiscal_year} ICD-10-CM changes shipped with claimcoder "
            f"(drg/data/fy{source.fiscal_year}/{source.changes.name}: added, deleted, "
            "billable-status-changes, revised; see drg/data/README.md)"
        )
    assert isinstance(source, LoadedCodeset)
    return source.source


@functools.cache
def shipped_catalog() -> CodesetCatalog:
    """The code sets claimcoder ships (no operator-loaded years), one per process."""
    return CodesetCatalog(ReleaseRegistry.load())
