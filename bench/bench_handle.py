"""CPU and wall time a claim of the worker's pipeline costs, in process, without Kafka.

    CLAIMCODER_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    CLAIMCODER_REDIS_URL=redis://127.0.0.1:6379/0 python -m bench.bench_handle --claims 3000

``ClaimPipeline.process`` (what the worker's pipeline process runs for a batch: the stages, the
spans, the outputs' headers) with the fixed coder (no coder cost), real PostgreSQL and Redis (a
fresh schema and key prefix, as `claimcoder bench` makes them), the OpenTelemetry SDK installed
as the worker installs it (spans made, none exported unless OTEL_* says so), batches of 64.
The process CPU time a claim is the steadiest figure on a shared machine: `claimcoder bench`'s
rates move with other load. ``--profile`` prints a cProfile listing (``--sort tottime``: by
time in each function). Writes bench/results/handle.json.
"""

import argparse
import asyncio
import cProfile
import json
import pstats
import time
from pathlib import Path
from tempfile import mkdtemp

from bench.report import write_report
from worker import telemetry
from worker.benchmark.claims import claim_events
from worker.benchmark.suite import bench_servers
from worker.pipeline import ClaimPipeline
from worker.records import Record
from worker.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results" / "handle.json"
BATCH = 64


async def measure(
    settings: Settings, claims: int, profile: bool, sort: str = "cumulative"
) -> dict[str, float]:
    pipeline = ClaimPipeline.from_settings(settings)
    await pipeline.start()
    events = claim_events(claims + BATCH, f"handle-{time.time_ns()}")
    records = [
        Record("claims.raw", i % 4, i, e["claim_id"].encode(), json.dumps(e).encode())
        for i, e in enumerate(events)
    ]

    async def batch(chunk: list[Record]) -> None:
        processed = await pipeline.process(chunk)  # as the worker's pipeline process does
        await processed.finish(True)

    try:
        await batch(records[:BATCH])  # warm: connections, scripts, conventions
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        wall, cpu = time.perf_counter(), time.process_time()
        for start in range(BATCH, len(records), BATCH):
            await batch(records[start : start + BATCH])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats(sort).print_stats(40)
    finally:
        await pipeline.stop()
    return {
        "cpu_us_per_claim": round(cpu / claims * 1e6, 1),
        "wall_us_per_claim": round(wall / claims * 1e6, 1),
        "claims_per_s_one_batch_at_a_time": round(claims / wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=3000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--sort", default="cumulative", choices=("cumulative", "tottime"), help="of --profile"
    )
    args = parser.parse_args()
    with bench_servers(Path(mkdtemp(prefix="claimcoder-handle-"))) as base:
        settings = base.model_copy(
            update={"coder": base.coder.model_copy(update={"kind": "fixed"})}
        )
        shutdown = telemetry.configure("bench")
        telemetry.instrument_clients()
        try:
            result = asyncio.run(measure(settings, args.claims, args.profile, args.sort))
        finally:
            shutdown()
    write_report(RESULTS, {"claims": args.claims, "batch": BATCH, "coder": "fixed", **result})


if __name__ == "__main__":
    main()
