"""The configured coder: the embedded retrieval coder, vLLM (imported only when asked for), or
the fixed coder of benchmarks."""

import importlib.util
from collections.abc import Sequence

from drg.codeset.catalog import CodesetCatalog
from worker.coders.base import Coder
from worker.coders.config import DEFAULT_FIXED_CODES, CoderKind
from worker.coders.exceptions import CoderUnavailableError
from worker.coders.fixed import FixedCoder
from worker.coders.retrieval.coder import RetrievalCoder
from worker.coders.retrieval.config import RetrievalSettings
from worker.coders.vllm.config import VLLMSettings

VLLM_HINT = "pip install 'claimcoder[gpu]' (CUDA) or 'claimcoder[cpu-llm]'"


def build_coder(
    kind: CoderKind,
    *,
    retrieval: RetrievalSettings,
    vllm: VLLMSettings,
    catalog: CodesetCatalog | None = None,
    fixed_codes: Sequence[str] = DEFAULT_FIXED_CODES,
) -> Coder:
    """A coder of ``kind``, not yet started, with its own settings, serving the code-set
    releases of ``catalog`` (default: those claimcoder ships, ``shipped_catalog()``). Raises
    CoderUnavailableError for an unknown kind or a missing vLLM. ``fixed_codes``: what the
    ``fixed`` coder gives every claim."""
    if kind == "retrieval":
        return RetrievalCoder(retrieval, catalog)
    if kind == "fixed":
        return FixedCoder(fixed_codes)
    if kind == "vllm":
        # find_spec, not import: importing vllm takes seconds and the coder imports it anyway
        if importlib.util.find_spec("vllm") is None:
            raise CoderUnavailableError(f"the vLLM coder needs vLLM: {VLLM_HINT}")
        # imported here: a worker on the retrieval coder never loads the engine's modules
        from worker.coders.vllm.coder import VLLMCoder

        return VLLMCoder(vllm, catalog=catalog)
    raise CoderUnavailableError(f"unknown coder kind {kind!r}")
