"""`claimcoder bench`: throughput, latency and memory of the worker against pass-throughs."""

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from worker.benchmark.runs import RUNS, RunName
from worker.cli.common import err, fail, out


def bench(
    claims: Annotated[
        int, typer.Option(min=1, help="Claims published at once in each run.")
    ] = 5000,
    json_out: Annotated[
        Path, typer.Option("--json", help="Where the JSON report goes (printed too).")
    ] = Path("bench-results.json"),
    png: Annotated[
        Path | None,
        typer.Option(help="Latency chart; default: the JSON report's path with .png."),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(help=f"Runs to make (repeatable), of {', '.join(RUNS)}; default: all."),
    ] = None,
    vllm_claims: Annotated[
        int, typer.Option(min=1, help="At most this many claims in the vLLM run (it is slow).")
    ] = 1000,
    profile: Annotated[
        bool,
        typer.Option(
            help="Run each worker under pyinstrument: WORK_DIR/<run>.profile.txt (the "
            "pipeline then runs in the worker's own process, which pyinstrument sees)."
        ),
    ] = False,
    work_dir: Annotated[
        Path | None,
        typer.Option(help="Logs, local servers, the tiny model; default: beside the JSON."),
    ] = None,
) -> None:
    """Publish CLAIMS claims to fresh topics on one broker (the local stack's Tansu unless
    CLAIMCODER_KAFKA_BOOTSTRAP_SERVERS is set; PostgreSQL and Redis likewise) and measure, each
    with one worker process: a raw aiokafka pass-through, a Faust pass-through with the worker's
    batching and commits, and the worker with the fixed coder (no coder cost), the retrieval
    coder and the vLLM CPU engine with a tiny random model (when vLLM is installed). Reports
    claims/s, latency p50/p95/p99 from produce to claims.coded, latency at half the fixed
    pipeline's rate and each worker's peak RSS."""
    chosen: list[RunName] = []
    for name in only or RUNS:
        if name not in RUNS:
            fail(f"unknown run {name!r}; choose among {', '.join(RUNS)}")
        chosen.append(name)
    # imported here: every other command starts without the benchmark's modules
    from worker.benchmark.measure import BenchError
    from worker.benchmark.plot import MATPLOTLIB_HINT, matplotlib_installed, plot_latencies
    from worker.benchmark.suite import Suite, run_suite

    if not matplotlib_installed():
        fail(MATPLOTLIB_HINT)
    if profile and importlib.util.find_spec("pyinstrument") is None:
        fail("--profile needs pyinstrument: pip install pyinstrument")
    png_path = png or json_out.with_suffix(".png")
    suite = Suite(
        claims=claims,
        only=tuple(chosen),
        vllm_claims=vllm_claims,
        profile=profile,
        work_dir=work_dir or json_out.resolve().parent / "claimcoder-bench",
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=False) as progress:

        def track(name: str, total: int) -> Callable[[int], None]:
            task = progress.add_task(name, total=total)
            return lambda n: progress.advance(task, n)

        try:
            report, results = run_suite(suite, track)
        except BenchError as exc:
            fail(str(exc), code=1)
    plot_latencies(results, png_path)
    report["png"] = str(png_path)
    text = json.dumps(report, indent=2) + "\n"
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(text, encoding="utf-8")
    out.print(text, end="")
    err.print(f"written to {json_out} and {png_path}")
