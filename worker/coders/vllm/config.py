"""Settings of the in-process vLLM engine (``CLAIMCODER_VLLM_*``).

Plain values only: importing this module never imports vLLM. Mappings and lists are JSON in the
environment, e.g. ``CLAIMCODER_VLLM_LORA_ADAPTERS='{"fraudlens": "/models/fraudlens-lora"}'``.
"""

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

Profile = Literal["codes-csv", "codes-xml"]
Constraint = Literal["codeset", "format", "none"]
StructuredOutputsBackend = Literal["xgrammar", "guidance"]


class VLLMSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    # --- model -------------------------------------------------------------------------------
    model: str | None = Field(
        default=None, description="Model directory or Hugging Face id; required for this coder."
    )
    model_name: str | None = Field(
        default=None,
        description="Name reported in claims.coded (default: the model path's last part).",
    )
    tokenizer: str | None = Field(default=None, description="Default: the model's own.")
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    """Weights and activations type; auto: the model's."""
    quantization: str | None = Field(
        default=None, description="vLLM quantization method, e.g. awq, gptq, fp8; None: as saved."
    )
    max_model_len: Annotated[int, Field(ge=256)] | None = Field(
        default=None, description="Context length; None: the model's."
    )
    trust_remote_code: bool = False
    """Allow model code from the model directory."""

    # --- engine resources ---------------------------------------------------------------------
    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = 0.9
    """Share of the GPU's memory vLLM takes (weights and KV cache)."""
    max_num_seqs: Annotated[int, Field(ge=1, le=4096)] = 64
    """Sequences the scheduler runs in one step (match CLAIMCODER_BATCH_MAX_SIZE)."""
    kv_cache_memory_bytes: Annotated[int, Field(ge=16 * 2**20)] | None = Field(
        default=None,
        description="KV cache size; None: GPU memory fraction on GPUs, 512 MiB on CPU.",
    )
    tensor_parallel_size: Annotated[int, Field(ge=1)] = 1
    """GPUs one model is split over."""
    enforce_eager: bool = Field(default=False, description="True on CPU: no graph capture.")
    seed: int = 0
    """Engine seed; also each request's seed when temperature > 0."""
    engine_args: dict[str, JsonValue] = Field(
        default_factory=dict,
        description='Further vLLM AsyncEngineArgs, e.g. {"max_num_batched_tokens": 8192}.',
    )

    # --- prompts and outputs ------------------------------------------------------------------
    profile: Profile = "codes-csv"
    """Prompt and output format: codes-csv (merged codes-only models) or codes-xml (reasoning,
    then codes; base + LoRA models). docs/engines.md."""
    system_prompt: str | None = Field(
        default=None, description="Replaces the profile's system prompt."
    )
    prompt_file: Path | None = Field(
        default=None,
        description="TOML file with `system` and/or `user` (the user turn; {narrative} marks "
        "where the narrative goes); overrides the profile's prompts and system_prompt.",
    )
    constrain: Constraint = Field(
        default="codeset",
        description="codeset: only billable codes of the claim's code-set release (one "
        "grammar per release of the release registry, chosen by the claim's discharge date; "
        "the newest for a claim with no period); format: any code-shaped string in the "
        "profile's format; none: no constraint (for measurements: outputs that do not parse "
        "become bad_output errors). The default and its cost are in docs/engines.md.",
    )
    structured_outputs_backend: StructuredOutputsBackend = "xgrammar"
    """Constrained decoding backend: xgrammar (EBNF) or guidance (Lark)."""
    max_codes: Annotated[int, Field(ge=1, le=100)] = Field(
        default=25, description="At most this many codes a claim (UB-04: 1 principal + 24)."
    )
    reasoning_max_chars: Annotated[int, Field(ge=0, le=16384)] = Field(
        default=1024, description="codes-xml: bound of the discarded <reasoning> section."
    )

    # --- sampling -----------------------------------------------------------------------------
    temperature: Annotated[float, Field(ge=0)] = 0.0
    """Sampling temperature; 0: greedy."""
    top_p: Annotated[float, Field(gt=0, le=1)] = 1.0
    """Nucleus sampling."""
    max_tokens: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="None: enough for the longest output the profile allows (no truncation).",
    )

    # --- LoRA ---------------------------------------------------------------------------------
    enable_lora: bool = False
    """Serve LoRA adapters (lora_adapters)."""
    lora_adapters: dict[str, Path] = Field(
        default_factory=dict, description="Adapter name -> adapter directory (peft format)."
    )
    default_adapter: str | None = Field(
        default=None, description="Adapter for claims that name none; None: the base model."
    )
    # vLLM accepts these ranks only. An int (not Literal[8, ...]) so that the environment's
    # string "16" validates.
    max_lora_rank: Annotated[int, Field(ge=8, le=256, multiple_of=8)] = 16
    """At least the adapters' rank r (adapter_config.json): 8, 16, 32, 64, 128 or 256."""
    max_loras: Annotated[int, Field(ge=1)] = Field(
        default=4, description="Adapters usable in one engine step."
    )

    # --- flow control -------------------------------------------------------------------------
    max_in_flight: Annotated[int, Field(ge=1)] = Field(
        default=256, description="Requests submitted to the engine at once (backpressure)."
    )
    request_timeout_s: Annotated[float, Field(gt=0)] = Field(
        default=120.0, description="Per claim, from submission to the engine to the last token."
    )
    warmup: bool = Field(
        default=True,
        description="Send one request a grammar (a code-set release) at start, so that no claim "
        "pays a grammar compile.",
    )
    shutdown_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    """How long shutdown waits for the engine's processes before killing them, seconds."""

    @model_validator(mode="after")
    def _adapters_consistent(self) -> Self:
        if self.lora_adapters and not self.enable_lora:
            raise ValueError("lora_adapters are set but enable_lora is false")
        if self.default_adapter is not None and self.default_adapter not in self.lora_adapters:
            raise ValueError(f"default_adapter {self.default_adapter!r} is not in lora_adapters")
        return self

    @property
    def display_name(self) -> str:
        if self.model_name:
            return self.model_name
        if self.model:
            return Path(self.model.rstrip("/")).name or self.model
        return "unset"
