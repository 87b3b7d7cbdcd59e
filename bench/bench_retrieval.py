"""Benchmark of the embedded retrieval coder on one core: start-up and claims/s.

    .venv/bin/python -m bench.bench_retrieval [--file ../shared/data/codiesp/dev.jsonl]
        [--text-field text_en] [--rounds 3] [--cpu 0]

The process is pinned to one CPU. Start-up is timed in its parts (parsing the packaged ICD-10-CM
release, building the BM25 index of its code texts, loading the learned evidence); throughput is
the narratives of the file coded one after another (`code_one`, the work of one claim), best and
median of ``--rounds`` passes, plus one pass through the async `code_batch` path the worker uses
(batches of 64). The machine's load average is recorded with the numbers: other processes on a
shared core lower them. Prints the numbers and writes them to ``bench/results/retrieval.json``.
"""

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Final

from bench.report import write_report
from drg.codeset.catalog import CodesetCatalog
from drg.registry import ReleaseRegistry
from worker.coders.base import CodingRequest
from worker.coders.retrieval.coder import RetrievalCoder
from worker.coders.retrieval.config import RetrievalSettings
from worker.coders.retrieval.evidence import load
from worker.coders.retrieval.index import CodeIndex

ROOT: Final = Path(__file__).resolve().parents[1]
DEV: Final = ROOT.parent / "shared" / "data" / "codiesp" / "dev.jsonl"
RESULTS: Final = ROOT / "bench" / "results" / "retrieval.json"
BATCH: Final = 64


def _seconds(start: float) -> float:
    return round(time.perf_counter() - start, 3)


def startup() -> dict[str, float]:
    """The parts of a cold start, each timed again on its own (uncached), for the FY2026
    release; the coder builds one index per release of the registry."""
    started = time.perf_counter()
    codeset = CodesetCatalog(ReleaseRegistry.load()).codeset("2026-04")
    parse_s = _seconds(started)
    started = time.perf_counter()
    index = CodeIndex(codeset)
    index_s = _seconds(started)
    started = time.perf_counter()
    load()
    evidence_s = _seconds(started)
    return {
        "parse_release_s": parse_s,
        "build_index_s": index_s,
        "load_evidence_s": evidence_s,
        "index_entries": len(index.entries),
    }


def throughput(coder: RetrievalCoder, texts: list[str], rounds: int) -> dict[str, Any]:
    per_round: list[float] = []
    latencies_ms: list[float] = []
    emitted = 0
    for _ in range(rounds):
        started = time.perf_counter()
        for text in texts:
            one = time.perf_counter()
            emitted += len(coder.code_one(text).codes)
            latencies_ms.append((time.perf_counter() - one) * 1000)
        per_round.append(len(texts) / (time.perf_counter() - started))
    latencies_ms.sort()
    return {
        "claims": len(texts),
        "rounds": rounds,
        "claims_per_s_best": round(max(per_round), 1),
        "claims_per_s_median": round(statistics.median(per_round), 1),
        "claim_ms_p50": round(latencies_ms[len(latencies_ms) // 2], 2),
        "claim_ms_p95": round(latencies_ms[int(len(latencies_ms) * 0.95)], 2),
        "codes_per_claim": round(emitted / (len(texts) * rounds), 2),
    }


async def batched(coder: RetrievalCoder, texts: list[str]) -> dict[str, Any]:
    started = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        requests = [
            CodingRequest(claim_id=str(i), narrative=texts[i])
            for i in range(start, min(start + BATCH, len(texts)))
        ]
        results = await coder.code_batch(requests)
        assert all(r.ok for r in results)
    return {
        "batch_size": BATCH,
        "claims_per_s": round(len(texts) / (time.perf_counter() - started), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEV, help="JSON Lines with narratives")
    parser.add_argument("--text-field", default="text_en")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to [default: first]")
    args = parser.parse_args(argv)

    cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    texts = [
        json.loads(line)[args.text_field]
        for line in args.file.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    coder = RetrievalCoder(RetrievalSettings())
    started = time.perf_counter()
    coder.load()
    coder_start_s = _seconds(started)  # cold: nothing cached in the process yet
    report = {
        "input": args.file.name,
        "startup": {"coder_start_s": coder_start_s, **startup()},
        "code_one": throughput(coder, texts, args.rounds),
        "code_batch": asyncio.run(batched(coder, texts)),
        "model": coder.info.model,
        "cpu_pinned": cpu,
    }
    write_report(RESULTS, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
