"""The code set in PostgreSQL, the system of record.

A release is written in one transaction (bulk COPY of its codes, then its release row), so a
release row exists only for a complete code set and a second load of the same release is a no-op.
"""

import datetime as dt
import importlib.metadata
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, fields

from sqlalchemy import Connection, Engine, RowMapping, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from drg.codeset.source import CodeRecord, ReleaseFiles, read_release
from drg.exceptions import ReferenceDataError
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


def _source(files: ReleaseFiles) -> str:
    try:
        version = importlib.metadata.version("simple-icd-10-cm")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"simple-icd-10-cm {version}: {files.code_list.name} + {files.tabular_xml.name}"


def write_release(
    engine: Engine,
    release: str,
    fiscal_year: int,
    source: str,
    records: Sequence[CodeRecord],
    progress: Progress | None = None,
) -> ReleaseInfo:
    """COPY ``records`` and the release row in one transaction."""
    if not records:
        raise ReferenceDataError(f"release {release} has no codes")
    billable = sum(1 for r in records if r.billable)
    columns = ", ".join(_COPY_COLUMNS)
    with engine.begin() as connection:
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
        info = release_info(connection, release)
    assert info is not None
    return info


def load_release(
    engine: Engine,
    files: ReleaseFiles,
    progress: Progress | None = None,
    parsed: Callable[[int], None] | None = None,
) -> LoadResult:
    """Parse the release's files and write them, unless PostgreSQL already holds the release."""
    with engine.connect() as connection:
        existing = release_info(connection, files.release)
    if existing is not None:
        return LoadResult(existing, loaded=False)
    records = list(read_release(files))
    if parsed is not None:
        parsed(len(records))
    try:
        info = write_release(
            engine, files.release, files.fiscal_year, _source(files), records, progress
        )
    except IntegrityError:
        # Another loader committed the same release first; its transaction was complete.
        with engine.connect() as connection:
            existing = release_info(connection, files.release)
        if existing is None:
            raise
        return LoadResult(existing, loaded=False)
    return LoadResult(info, loaded=True)


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
