"""The configured coder: the embedded retrieval coder, or vLLM (imported only when asked for)."""

import importlib.util
from typing import Literal

from drg.codeset.catalog import CodesetCatalog
from worker.coders.base import Coder
from worker.coders.exceptions import CoderUnavailableError
from worker.coders.retrieval.coder import RetrievalCoder
from worker.settings import Settings

CoderKind = Literal["retrieval", "vllm"]
VLLM_HINT = "pip install 'claimcoder[gpu]' (CUDA) or 'claimcoder[cpu-llm]'"


def build_coder(
    settings: Settings, kind: CoderKind | None = None, catalog: CodesetCatalog | None = None
) -> Coder:
    """A coder of ``kind`` (default: ``settings.coder.kind``), not yet started, serving the
    code-set releases of ``catalog`` (default: those claimcoder ships, ``shipped_catalog()``).
    Raises CoderUnavailableError for an unknown kind or a missing vLLM."""
    kind = kind or settings.coder.kind
    if kind == "retrieval":
        return RetrievalCoder(settings.retrieval, catalog)
    if kind == "vllm":
        # find_spec, not import: importing vllm takes seconds and the coder imports it anyway
        if importlib.util.find_spec("vllm") is None:
            raise CoderUnavailableError(f"the vLLM coder needs vLLM: {VLLM_HINT}")
        # imported here: a worker on the retrieval coder never loads the engine's modules
        from worker.coders.vllm.coder import VLLMCoder

        return VLLMCoder(settings.vllm, catalog=catalog)
    raise CoderUnavailableError(f"unknown coder kind {kind!r}")
