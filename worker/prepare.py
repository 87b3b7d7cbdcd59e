"""Reference data the pipeline needs, made ready before the worker starts (``claimcoder run``):
schema migrated, the DRG weights and IPPS rates of every shipped fiscal year seeded, and every
code-set release of the registry in PostgreSQL and warm in Redis. Every step is idempotent and
cheap when already done.

The registry (``drg.registry``) is the list every step iterates: the fiscal years claimcoder
ships, merged with those an operator loaded (``claimcoder reference load``)."""

import asyncio
import logging
from dataclasses import dataclass

from drg.codeset.cache import CodesetKeys, warm
from drg.codeset.catalog import shipped_catalog
from drg.codeset.store import load_release
from drg.reference import registry_from, seed
from drg.registry import ReleaseRegistry
from migrations.runner import upgrade
from worker.resources import async_engine, redis_client, sync_engine
from worker.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prepared:
    registry: ReleaseRegistry  # shipped and loaded fiscal years
    releases_loaded: tuple[str, ...]  # newly written to PostgreSQL
    releases_warmed: tuple[str, ...]  # newly built in Redis


def prepare_reference_data(settings: Settings) -> Prepared:
    engine = sync_engine(settings.database)
    loaded = []
    catalog = shipped_catalog()
    try:
        upgrade(engine, settings.database.schema_name)
        seed(engine, catalog.registry)
        with engine.connect() as connection:
            registry = registry_from(connection, catalog.registry)
        for year in registry.fiscal_years:
            if load_release(engine, year.codeset, catalog).loaded:
                loaded.append(year.codeset.release)
                log.info("loaded ICD-10-CM %s into PostgreSQL", year.codeset.release)
    finally:
        engine.dispose()
    warmed = asyncio.run(_warm(settings, registry.codeset_releases))
    return Prepared(registry, tuple(loaded), warmed)


async def _warm(settings: Settings, releases: tuple[str, ...]) -> tuple[str, ...]:
    client = redis_client(settings.redis)
    engine = async_engine(settings.database)
    warmed = []
    try:
        for release in releases:
            result = await warm(client, engine, CodesetKeys(settings.redis.key_prefix), release)
            if result.warmed:
                warmed.append(release)
                log.info("warmed ICD-10-CM %s in Redis", release)
    finally:
        await client.aclose()
        await engine.dispose()
    return tuple(warmed)
