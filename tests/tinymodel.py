"""The tiny vLLM model of the tests: built by ``worker.benchmark.tinymodel`` (where
`claimcoder bench` finds it too)."""

from worker.benchmark.tinymodel import TinyModel, build_tiny_model

__all__ = ["TinyModel", "build_tiny_model"]
