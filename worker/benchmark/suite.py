"""Every run of `claimcoder bench` on one broker, and the JSON report.

Runs, each with one worker process on fresh topics and its own consumer group, all on the same
broker, PostgreSQL schema and Redis key prefix (made for the benchmark and removed afterwards):

========================  ====================================================================
``raw``                   aiokafka consume, produce, ack, commit (``passthrough.py``)
``faust``                 Faust agent, the worker's batching and commit discipline, no work
``pipeline_null``         the worker, coder ``fixed`` (no coder cost; every other stage works)
``pipeline_retrieval``    the worker, the retrieval coder
``pipeline_vllm_cpu``     the worker, vLLM on CPU with the tiny random model (``tinymodel.py``)
========================  ====================================================================

Each run warms its worker up with one full batch a partition (every actor, connection and cache
has run), then publishes ``claims`` claims at once, :data:`BURSTS` times in a row (the vLLM run
once, with at most ``vllm_claims``): the run's figures are its median burst's, by claims per
second, and every burst's rate is in the report. On a shared two-core machine one burst's rate
moved by a third between invocations of one commit; the median of three moves less.
``pipeline_null`` and ``faust`` then also take claims published at a steady half of
``pipeline_null``'s measured rate, for at most ``HALF_LOAD_S`` seconds: the latency the pipeline
adds over Faust at a load it sustains.
"""

import asyncio
import contextlib
import importlib.util
import os
import platform
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psycopg
import redis
from psycopg import sql

from worker.benchmark.claims import claim_events
from worker.benchmark.measure import BenchError, Latencies, MemorySampler, Probe, tree_cpu_s
from worker.benchmark.runs import RUNS, RunName
from worker.kafka import create_topics
from worker.localstack import LocalStack
from worker.prepare import prepare_reference_data
from worker.settings import Settings

HALF_LOAD_S: Final = 10.0  # the steady run lasts at most this long
BURSTS: Final = 3  # bursts a run (the vLLM run: one); its figures are the median burst's
VLLM_WARM_UP_CLAIMS: Final = 16  # the tiny model on CPU codes tens of claims a second
RUN_TIMEOUT_S: Final = 300.0
LATENCY_SOURCE: Final = (
    "Kafka CreateTime: the input's set by the benchmark's producer at send, the output's by "
    "the worker's producer; one machine, one clock"
)

#: Called with (run name, claims expected); returns the function that counts arrived claims.
ProgressFactory = Callable[[str, int], Callable[[int], None]]


@dataclass(frozen=True, slots=True)
class RunResult:
    name: str
    burst: Latencies
    rss_mb: float
    half_load: Latencies | None = None
    cpu_us_per_claim: float | None = None  # the worker's and its children's, during the bursts
    bursts_cps: tuple[float, ...] = ()  # every burst's claims per second, in order


@dataclass(slots=True)
class Suite:
    """Options of one `claimcoder bench` invocation."""

    claims: int
    only: Sequence[RunName] = RUNS
    vllm_claims: int = 1000
    batch_max_size: int = 64
    batch_max_wait_s: float = 0.2
    profile: bool = False  # each worker under pyinstrument: <work_dir>/<run>.profile.txt
    work_dir: Path = field(default_factory=lambda: Path.cwd() / "claimcoder-bench")


def _worker_command(name: RunName, profile: Path | None = None) -> list[str]:
    """The worker of run ``name``; with ``profile``, under pyinstrument, which writes its
    text report there when the worker ends."""
    module = ["worker.benchmark.passthrough", name] if name in ("raw", "faust") else ["worker"]
    args = ["worker"] if module == ["worker"] else []
    if profile is None:
        return [sys.executable, "-m", *module, *args]
    profiler = ["-m", "pyinstrument", "--renderer", "text", "--outfile", str(profile)]
    return [sys.executable, *profiler, "-m", *module, *args]


def _coder_env(name: RunName, work_dir: Path) -> dict[str, str]:
    if name == "pipeline_null":
        return {"CLAIMCODER_CODER_KIND": "fixed"}
    if name == "pipeline_retrieval":
        return {"CLAIMCODER_CODER_KIND": "retrieval"}
    if name == "pipeline_vllm_cpu":
        from worker.benchmark.tinymodel import build_tiny_model

        model = build_tiny_model(work_dir / "tinymodel", lora=False)
        return {
            "CLAIMCODER_CODER_KIND": "vllm",
            "CLAIMCODER_VLLM_MODEL": str(model.path),
            "CLAIMCODER_VLLM_MODEL_NAME": "tiny-qwen2",
            "CLAIMCODER_VLLM_ENFORCE_EAGER": "true",
            "CLAIMCODER_VLLM_KV_CACHE_MEMORY_BYTES": str(256 * 2**20),
            "CLAIMCODER_VLLM_MAX_MODEL_LEN": "2048",
            "VLLM_CACHE_ROOT": str(work_dir / "vllm-cache"),
        }
    return {}


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


async def _measure(
    name: RunName,
    base: Settings,
    suite: Suite,
    claims: int,
    half_rate: float | None,
    halve: bool,
    progress: ProgressFactory,
) -> RunResult:
    """One worker: warm-up, a burst of ``claims``, then (``half_rate``, or with ``halve`` half
    the burst's rate) claims at a steady rate for at most ``HALF_LOAD_S``."""
    tag = uuid.uuid4().hex[:8]
    settings = base.model_copy(
        update={
            "kafka": base.kafka.model_copy(update={"consumer_group": f"bench-{name}-{tag}"}),
            "topics": base.topics.model_copy(
                update={
                    "raw": f"bench-{tag}.raw",
                    "coded": f"bench-{tag}.coded",
                    "dlq": f"bench-{tag}.dlq",
                }
            ),
        }
    )
    await asyncio.to_thread(create_topics, settings.kafka, settings.topics)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMCODER_")}
    env.update(settings.to_env())
    env.update(await asyncio.to_thread(_coder_env, name, suite.work_dir))
    log_path = suite.work_dir / f"{name}.log"
    profile = suite.work_dir / f"{name}.profile.txt" if suite.profile else None
    if profile is not None:
        # pyinstrument sees one process: the stages in the worker's own, not in a child
        env["CLAIMCODER_PIPELINE_PROCESS"] = "false"
    vllm = "vllm" in name
    bursts = 1 if vllm else BURSTS
    warm_up = VLLM_WARM_UP_CLAIMS if vllm else settings.topics.partitions * settings.batch.max_size
    events = claim_events(warm_up + claims * bursts, f"{name}-{tag}")
    warm = events[:warm_up]
    chunks = [events[warm_up + i * claims : warm_up + (i + 1) * claims] for i in range(bursts)]
    with log_path.open("wb") as log:
        # started once, awaited in a thread at the end: nothing blocks the loop meanwhile
        worker = subprocess.Popen(  # noqa: ASYNC220
            _worker_command(name, profile), env=env, stdout=log, stderr=log
        )
    sampler = MemorySampler(worker.pid)
    try:
        async with Probe(settings, worker, log_path, RUN_TIMEOUT_S) as probe:
            await probe.warm_up(warm)
            cpu_before = tree_cpu_s(worker.pid)
            measured_bursts = []
            for number, chunk in enumerate(chunks, 1):
                label = name if bursts == 1 else f"{name} burst {number}/{bursts}"
                measured_bursts.append(await probe.burst(chunk, progress(label, len(chunk))))
            cpu_us = (tree_cpu_s(worker.pid) - cpu_before) * 1e6 / (claims * bursts)
            measured = median_burst(measured_bursts)
            half = None
            if halve:
                half_rate = measured.claims_per_s / 2
            if half_rate is not None:
                count = max(1, min(claims, int(half_rate * HALF_LOAD_S)))
                steady = claim_events(count, f"{name}-{tag}-steady", seed=11)
                half = await probe.steady(
                    steady, half_rate, progress(f"{name} at half load", count)
                )
    finally:
        worker.terminate()
        try:
            await asyncio.to_thread(worker.wait, 60)
        except subprocess.TimeoutExpired:
            worker.kill()
            await asyncio.to_thread(worker.wait)
        rss_mb = sampler.stop()
    rates = tuple(round(b.claims_per_s, 1) for b in measured_bursts)
    return RunResult(name, measured, rss_mb, half, round(cpu_us, 1), rates)


def median_burst(bursts: Sequence[Latencies]) -> Latencies:
    """The burst of median claims per second (of an even number, the slower middle one).
    Raises ValueError for none."""
    if not bursts:
        raise ValueError("no burst to take the median of")
    ranked = sorted(bursts, key=lambda b: b.claims_per_s)
    return ranked[(len(ranked) - 1) // 2]


@contextlib.contextmanager
def bench_servers(work_dir: Path) -> Iterator[Settings]:
    """Settings on the local stack's servers or those given by URL, with a PostgreSQL schema
    and Redis key prefix of the benchmark's own, prepared with the reference data and removed
    afterwards."""
    stack = LocalStack(work_dir / "stack")
    services = stack.up()
    tag = uuid.uuid4().hex[:8]
    schema = f"bench_{tag}"
    settings = Settings(
        kafka={"bootstrap_servers": services["kafka"].url, "session_timeout_s": 6.0},
        database={"url": services["postgres"].url, "schema_name": schema},
        redis={"url": services["redis"].url, "key_prefix": f"bench:{tag}:"},
        state_dir=work_dir / "state",
    )
    db_url = settings.database.url.get_secret_value()
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        prepare_reference_data(settings)
        yield settings
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        client = redis.Redis.from_url(settings.redis.url.get_secret_value())
        try:
            keys = list(client.scan_iter(match=f"{settings.redis.key_prefix}*", count=1000))
            for start in range(0, len(keys), 1000):
                client.unlink(*keys[start : start + 1000])
        finally:
            client.close()
        stack.down()


def run_suite(suite: Suite, progress: ProgressFactory) -> tuple[dict[str, Any], list[RunResult]]:
    """Every run of ``suite.only`` (vLLM's only when vLLM is installed), and the report.
    Raises BenchError when a run cannot be measured."""
    suite.work_dir.mkdir(parents=True, exist_ok=True)
    wanted = [r for r in RUNS if r in suite.only]
    skipped: dict[str, str] = {}
    if "pipeline_vllm_cpu" in wanted and not vllm_installed():
        wanted.remove("pipeline_vllm_cpu")
        skipped["pipeline_vllm_cpu"] = "vLLM is not installed (the cpu-llm extra)"
    results: list[RunResult] = []
    with bench_servers(suite.work_dir) as base:
        base = base.model_copy(
            update={
                "batch": base.batch.model_copy(
                    update={"max_size": suite.batch_max_size, "max_wait_s": suite.batch_max_wait_s}
                )
            }
        )
        half_rate: float | None = None
        for name in wanted:
            claims = min(suite.claims, suite.vllm_claims) if "vllm" in name else suite.claims
            steady = half_rate if name == "faust" else None
            halve = name == "pipeline_null"  # then half of its own burst's rate
            result = asyncio.run(_measure(name, base, suite, claims, steady, halve, progress))
            if halve:
                half_rate = result.burst.claims_per_s / 2
            results.append(result)
    return report(suite, results, half_rate, skipped), results


def report(
    suite: Suite, results: Sequence[RunResult], half_rate: float | None, skipped: dict[str, str]
) -> dict[str, Any]:
    """The JSON report: ``<run>_cps`` (the median burst's), ``<run>_burst_cps`` (every
    burst's), ``<run>_rss_mb``, ``<run>_cpu_us_per_claim`` (CPU the worker used during the
    bursts, a claim), ``<run>_latency_ms`` (p50/p95/p99, the median burst's),
    ``<run>_claims`` and ``<run>_statuses`` for every run made; the half-load latencies;
    ``ratio_null_vs_faust``; and the machine's facts."""
    out: dict[str, Any] = {
        "claims": suite.claims,
        "bursts": BURSTS,
        "batch_max_size": suite.batch_max_size,
        "batch_max_wait_s": suite.batch_max_wait_s,
        "latency_source": LATENCY_SOURCE,
        "runs": [r.name for r in results],
    }
    by_name = {r.name: r for r in results}
    for r in results:
        out[f"{r.name}_cps"] = round(r.burst.claims_per_s, 1)
        if r.bursts_cps:
            out[f"{r.name}_burst_cps"] = list(r.bursts_cps)
        out[f"{r.name}_rss_mb"] = round(r.rss_mb, 1)
        if r.cpu_us_per_claim is not None:
            out[f"{r.name}_cpu_us_per_claim"] = r.cpu_us_per_claim
        out[f"{r.name}_claims"] = len(r.burst.ms)
        out[f"{r.name}_latency_ms"] = r.burst.summary()
        out[f"{r.name}_statuses"] = r.burst.statuses
    if "pipeline_vllm_cpu" in by_name and suite.vllm_claims < suite.claims:
        out["pipeline_vllm_cpu_note"] = (
            f"run with {suite.vllm_claims} claims (not {suite.claims}) to keep within the "
            "10-minute budget: the tiny model on CPU codes tens of claims a second"
        )
    null, faust = by_name.get("pipeline_null"), by_name.get("faust")
    if null is not None and null.half_load is not None and half_rate is not None:
        out["half_load_cps"] = round(half_rate, 1)
        out["half_load_claims"] = len(null.half_load.ms)
        out["null_latency_ms_at_half_load"] = null.half_load.summary()
        out["null_p99_ms_at_half_load"] = round(null.half_load.percentile(99), 1)
    if faust is not None and faust.half_load is not None:
        out["faust_latency_ms_at_half_load"] = faust.half_load.summary()
        out["faust_p99_ms_at_half_load"] = round(faust.half_load.percentile(99), 1)
        if "null_p99_ms_at_half_load" in out:
            out["null_p99_added_ms_at_half_load"] = round(
                out["null_p99_ms_at_half_load"] - out["faust_p99_ms_at_half_load"], 1
            )
    if null is not None and faust is not None:
        out["ratio_null_vs_faust"] = round(null.burst.claims_per_s / faust.burst.claims_per_s, 3)
    if skipped:
        out["skipped"] = skipped
    out.update(
        python=platform.python_version(),
        cpus=os.cpu_count(),
        load_average_1m=round(os.getloadavg()[0], 2),
        otel_traces_exporter=os.environ.get("OTEL_TRACES_EXPORTER", "none (SDK spans, not sent)"),
    )
    return out


__all__ = ["RUNS", "BenchError", "RunName", "RunResult", "Suite", "report", "run_suite"]
