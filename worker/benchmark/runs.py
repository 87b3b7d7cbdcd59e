"""The runs of `claimcoder bench`, in the order they run (a light module: the CLI lists them)."""

from typing import Final, Literal

RunName = Literal["raw", "faust", "pipeline_null", "pipeline_retrieval", "pipeline_vllm_cpu"]
RUNS: Final[tuple[RunName, ...]] = (
    "pipeline_null",  # first: the half load of the others is half of its rate
    "faust",
    "raw",
    "pipeline_retrieval",
    "pipeline_vllm_cpu",
)
