"""Fixtures of the reference tests: the full code set, Table 5, IPPS rates and a few providers,
loaded ONCE per session into their own PostgreSQL schema and Redis key prefix (loading takes
~8 s). Tests that only read share them; tests that change Redis take the per-test prefix of
the ``settings`` fixture instead (``cold_settings``).

A test module uses them with ``pytest_plugins = ("tests.reference_fixtures",)``; it must not
import this module (pytest could not rewrite its asserts). Helpers are in
``tests/reference_support.py``."""

import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from psycopg import sql
from sqlalchemy.ext.asyncio import AsyncEngine

from drg.assess import Assessor
from drg.grouping import GroupingEngine
from tests.reference_support import PROVIDERS_CSV, RELEASE, CodeList, drop_prefix, invoke
from worker.localstack import Service, ServiceName
from worker.resources import async_engine, redis_client
from worker.settings import Settings


@pytest.fixture(scope="session")
def reference(
    stack: dict[ServiceName, Service], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Settings whose schema and prefix hold the reference data, built once per session the way
    an operator does it (db upgrade, db seed, codeset load, providers load). Read-only for
    tests."""
    ref_id = uuid.uuid4().hex[:10]
    tmp = tmp_path_factory.mktemp("reference")
    settings = Settings(
        database={"url": stack["postgres"].url, "schema_name": f"ref_{ref_id}"},
        redis={"url": stack["redis"].url, "key_prefix": f"test:ref{ref_id}:"},
        state_dir=tmp / "state",
    )
    providers_csv = tmp / "providers.csv"
    providers_csv.write_text(PROVIDERS_CSV, encoding="utf-8")
    schema = settings.database.schema_name
    assert schema is not None
    try:
        invoke(settings, "db", "upgrade")
        invoke(settings, "db", "seed")
        loaded = invoke(settings, "codeset", "load").output
        # ICD-10-CM FY2026 (April 2026 files) and FY2027 (counts of CMS's FY2027 order file,
        # icd10cm_order_2027.txt: 98,403 entries, 74,879 billable)
        assert f"code set {RELEASE} (FY2026) loaded: 98186 codes, 74719 billable" in loaded
        assert "code set 2026-10 (FY2027) loaded: 98403 codes, 74879 billable" in loaded
        invoke(settings, "providers", "load", str(providers_csv))
        yield settings
    finally:
        with psycopg.connect(settings.database.url.get_secret_value(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        drop_prefix(settings.redis.url.get_secret_value(), settings.redis.key_prefix)


@pytest.fixture(scope="session")
def listed_codes(reference: Settings) -> CodeList:
    """Every code of the release in PostgreSQL: undotted code -> billable."""
    with psycopg.connect(
        reference.database.url.get_secret_value(),
        options=f"-c search_path={reference.database.schema_name}",
    ) as conn:
        rows = conn.execute(
            "SELECT code, billable FROM icd10cm_codes WHERE release = %s", (RELEASE,)
        ).fetchall()
    return CodeList(rows)


@pytest.fixture
def cold_settings(reference: Settings, settings: Settings) -> Settings:
    """The session's PostgreSQL data with this test's own, empty Redis key prefix."""
    return reference.model_copy(update={"redis": settings.redis})


@pytest.fixture(scope="session")
def grouping_engine() -> Iterator[GroupingEngine]:
    with GroupingEngine() as engine:
        yield engine


@pytest_asyncio.fixture(scope="session")
async def ref_engine(reference: Settings) -> AsyncIterator[AsyncEngine]:
    engine = async_engine(reference.database)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture(scope="session")
async def ref_redis(reference: Settings) -> AsyncIterator["aioredis.Redis"]:
    client = redis_client(reference.redis)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def assessor(
    reference: Settings,
    ref_engine: AsyncEngine,
    ref_redis: "aioredis.Redis",
    grouping_engine: GroupingEngine,
) -> Assessor:
    return Assessor(
        redis=ref_redis,
        engine=ref_engine,
        key_prefix=reference.redis.key_prefix,
        grouper=grouping_engine,
    )
