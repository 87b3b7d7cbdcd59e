"""Reference data the pipeline needs, made ready before the worker starts (``claimcoder run``):
schema migrated, FY2026 DRG weights and IPPS rates seeded, the ICD-10-CM release in PostgreSQL
and warm in Redis. Every step is idempotent and cheap when already done."""

import asyncio
import logging
from dataclasses import dataclass

from drg.codeset.cache import CodesetKeys, warm
from drg.codeset.source import packaged_release
from drg.codeset.store import load_release
from drg.reference import seed
from migrations.runner import upgrade
from worker.resources import async_engine, redis_client, sync_engine
from worker.settings import Settings

log = logging.getLogger(__name__)

RELEASES = ("2026-04",)  # FY2026: the October 2025 and April 2026 code sets are identical


@dataclass(frozen=True, slots=True)
class Prepared:
    releases_loaded: tuple[str, ...]  # newly written to PostgreSQL
    releases_warmed: tuple[str, ...]  # newly built in Redis


def prepare_reference_data(settings: Settings) -> Prepared:
    engine = sync_engine(settings.database)
    loaded = []
    try:
        upgrade(engine, settings.database.schema_name)
        seed(engine)
        for release in RELEASES:
            if load_release(engine, packaged_release(release)).loaded:
                loaded.append(release)
                log.info("loaded ICD-10-CM %s into PostgreSQL", release)
    finally:
        engine.dispose()
    warmed = asyncio.run(_warm(settings))
    return Prepared(tuple(loaded), warmed)


async def _warm(settings: Settings) -> tuple[str, ...]:
    client = redis_client(settings.redis)
    engine = async_engine(settings.database)
    warmed = []
    try:
        for release in RELEASES:
            result = await warm(client, engine, CodesetKeys(settings.redis.key_prefix), release)
            if result.warmed:
                warmed.append(release)
                log.info("warmed ICD-10-CM %s in Redis", release)
    finally:
        await client.aclose()
        await engine.dispose()
    return tuple(warmed)
