"""The PNG of `claimcoder bench`: each run's latency distribution (matplotlib, an optional
dependency: the ``bench`` extra)."""

from collections.abc import Sequence
from pathlib import Path

from worker.benchmark.suite import RunResult

MATPLOTLIB_HINT = "pip install 'claimcoder[bench]' (matplotlib draws the latency chart)"


def matplotlib_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def plot_latencies(results: Sequence[RunResult], path: Path) -> None:
    """Latency (ms, log scale) against the share of claims at or below it, one line per run:
    the bursts on the left, the steady half-load runs on the right. Raises ImportError without
    matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (burst_axes, half_axes) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for result in results:
        _cdf(burst_axes, result.burst.ms, f"{result.name} ({result.burst.claims_per_s:.0f}/s)")
        if result.half_load is not None:
            half = result.half_load
            _cdf(half_axes, half.ms, f"{result.name} (steady, {half.claims_per_s:.0f}/s out)")
    burst_axes.set_title("all claims published at once")
    half_axes.set_title("steady, half of pipeline_null's rate")
    for axes in (burst_axes, half_axes):
        axes.set_xscale("log")
        axes.set_xlabel("produce to arrival on claims.coded (ms)")
        axes.grid(True, which="both", alpha=0.3)
        if axes.lines:
            axes.legend(fontsize="small")
    burst_axes.set_ylabel("share of claims")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _cdf(axes: object, values: Sequence[float], label: str) -> None:
    ordered = sorted(max(v, 0.5) for v in values)
    share = [(i + 1) / len(ordered) for i in range(len(ordered))]
    axes.step(ordered, share, where="post", label=label)  # type: ignore[attr-defined]
