"""The code set in PostgreSQL, the system of record.

A release is written in one transaction (bulk COPY of its codes, then its release row), so a
release row exists only for a complete code set and a second load of the same release is a no-op.
"""

import datetime as dt
import functools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, fields

from sqlalchemy import Connection, Engine, RowMapping, func, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from drg.codeset.catalog import CodesetCatalog, describe, shipped_catalog
from drg.codeset.derive import ListedCode
from drg.codeset.source import CodeRecord
from drg.exceptions import ReferenceDataError, wrap_database_error
from drg.registry import CodesetSource, LoadedCodeset, ReleaseRegistry
from drg.tables import icd10cm_codes, icd10cm_releases

#: ``progress(done, total)`` after each chunk of rows.
Progress = Callable[[int, int], None]

_COPY_COLUMNS = ("release", "code", "dotted", "description", "billable", "parent", "category")


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    release: str
    fiscal_year: int
    code_count: int
    billable_count: int
    source: str
    loaded_at: dt.datetime


@dataclass(frozen=True, slots=True)
class LoadResult:
    info: ReleaseInfo
    loaded: bool  # False: the release was already complete in PostgreSQL


def _info(row: RowMapping) -> ReleaseInfo:
    return ReleaseInfo(**{f.name: row[f.name] for f in fields(ReleaseInfo)})


_SELECT_INFO = select(
    icd10cm_releases.c.release,
    icd10cm_releases.c.fiscal_year,
    icd10cm_releases.c.code_count,
    icd10cm_releases.c.billable_count,
    icd10cm_releases.c.source,
    icd10cm_releases.c.loaded_at,
)


def release_info(connection: Connection, release: str) -> ReleaseInfo | None:
    row = connection.execute(
        _SELECT_INFO.where(icd10cm_releases.c.release == release)
    ).one_or_none()
    return _info(row._mapping) if row is not None else None


def latest_release(connection: Connection) -> ReleaseInfo | None:
    row = connection.execute(
        _SELECT_INFO.order_by(icd10cm_releases.c.release.desc()).limit(1)
    ).one_or_none()
    return _info(row._mapping) if row is not None else None


def counted(connection: Connection, release: str) -> tuple[int, int]:
    """(codes, billable codes) of ``release`` as counted in its rows, not as recorded."""
    row = connection.execute(
        select(func.count(), func.count().filter(icd10cm_codes.c.billable)).where(
            icd10cm_codes.c.release == release
        )
    ).one()
    return int(row[0]), int(row[1])


def write_codes(
    connection: Connection,
    release: str,
    fiscal_year: int,
    source: str,
    records: Sequence[CodeRecord],
    progress: Progress | None = None,
) -> None:
    """COPY ``records`` and the release row inside the caller's transaction."""
    if not records:
        raise ReferenceDataError(f"release {release} has no codes")
    billable = sum(1 for r in records if r.billable)
    columns = ", ".join(_COPY_COLUMNS)
    connection.execute(
        insert(icd10cm_releases).values(
            release=release,
            fiscal_year=fiscal_year,
            source=source,
            code_count=len(records),
            billable_count=billable,
        )
    )
    driver = connection.connection.driver_connection
    assert driver is not None
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY icd10cm_codes ({columns}) FROM STDIN") as copy,
    ):
        for done, r in enumerate(records, start=1):
            copy.write_row(
                (release, r.code, r.dotted, r.description, r.billable, r.parent, r.category)
            )
            if progress is not None and (done % 5000 == 0 or done == len(records)):
                progress(done, len(records))


def write_release(
    engine: Engine,
    release: str,
    fiscal_year: int,
    source: str,
    records: Sequence[CodeRecord],
    progress: Progress | None = None,
) -> ReleaseInfo:
    """COPY ``records`` and the release row in one transaction."""
    with engine.begin() as connection:
        write_codes(connection, release, fiscal_year, source, records, progress)
        info = release_info(connection, release)
    assert info is not None
    return info


def load_release(
    engine: Engine,
    source: CodesetSource,
    catalog: CodesetCatalog,
    progress: Progress | None = None,
    parsed: Callable[[int], None] | None = None,
) -> LoadResult:
    """Build a shipped release (``catalog``) and write it, unless PostgreSQL already holds it.
    A release an operator loaded is already there (or is an error: it cannot be rebuilt)."""
    with engine.connect() as connection:
        existing = release_info(connection, source.release)
    if existing is not None:
        return LoadResult(existing, loaded=False)
    if isinstance(source, LoadedCodeset):
        raise ReferenceDataError(
            f"code set {source.release} is recorded as loaded but PostgreSQL lacks it; load it "
            "again with claimcoder reference load"
        )
    records = catalog.records(source.release)
    if parsed is not None:
        parsed(len(records))
    try:
        info = write_release(
            engine, source.release, source.fiscal_year, describe(source), records, progress
        )
    except IntegrityError:
        # Another loader committed the same release first; its transaction was complete.
        with engine.connect() as connection:
            existing = release_info(connection, source.release)
        if existing is None:
            raise
        return LoadResult(existing, loaded=False)
    return LoadResult(info, loaded=True)


def read_listed(connection: Connection, release: str) -> list[ListedCode]:
    """The code list of a release as PostgreSQL holds it (sorted by code)."""
    rows = connection.execute(
        select(icd10cm_codes.c.code, icd10cm_codes.c.billable, icd10cm_codes.c.description)
        .where(icd10cm_codes.c.release == release)
        .order_by(icd10cm_codes.c.code)
    )
    return [ListedCode(code, bool(billable), description) for code, billable, description in rows]


async def read_catalog(engine: AsyncEngine, registry: ReleaseRegistry) -> CodesetCatalog:
    """The code sets of ``registry``: shipped ones built from claimcoder's data (shared with
    :func:`shipped_catalog`), loaded ones from their code lists in PostgreSQL (one query each)."""
    loaded_releases = [
        y.codeset.release for y in registry.fiscal_years if isinstance(y.codeset, LoadedCodeset)
    ]
    loaded: dict[str, list[ListedCode]] = {}
    if loaded_releases:
        try:
            async with engine.connect() as connection:
                for release in loaded_releases:
                    loaded[release] = await connection.run_sync(
                        functools.partial(read_listed, release=release)
                    )
        except SQLAlchemyError as exc:
            raise wrap_database_error(exc, "reading loaded code sets") from exc
    return shipped_catalog().merged(registry, loaded)


def all_releases(connection: Connection) -> list[ReleaseInfo]:
    """Every release PostgreSQL holds, oldest name first."""
    return [
        _info(row._mapping)
        for row in connection.execute(_SELECT_INFO.order_by(icd10cm_releases.c.release))
    ]


async def release_loaded(engine: AsyncEngine, release: str) -> ReleaseInfo | None:
    async with engine.connect() as connection:
        row = (
            await connection.execute(_SELECT_INFO.where(icd10cm_releases.c.release == release))
        ).one_or_none()
    return _info(row._mapping) if row is not None else None


async def stream_codes(
    engine: AsyncEngine, release: str, chunk: int = 5000
) -> AsyncIterator[list[tuple[str, str, bool]]]:
    """(code, description, billable) of ``release`` in chunks, for warming Redis."""
    query = (
        select(icd10cm_codes.c.code, icd10cm_codes.c.description, icd10cm_codes.c.billable)
        .where(icd10cm_codes.c.release == release)
        .execution_options(yield_per=chunk)
    )
    async with engine.connect() as connection:
        result = await connection.stream(query)
        async for partition in result.partitions(chunk):
            yield [(r[0], r[1], bool(r[2])) for r in partition]
