"""`VLLMCoder`: narratives to codes with a chat model in the worker's own vLLM engine.

One claim's path: narrative (special tokens removed, so a narrative cannot close its own turn)
-> the profile's chat messages -> one engine request under the profile's structured-outputs
constraint, with the claim's LoRA adapter or the deployment's -> the profile's parser -> codes,
principal first. All claims of a batch are submitted at once and vLLM's scheduler batches them;
a semaphore shared by all batches bounds the requests in the engine (backpressure).

Failures: a claim that times out, is rejected or cannot be parsed gets a per-claim CoderError; a
dead engine raises EngineDeadError for the whole batch, and `restart` (or `start`) replaces the
engine. A cancelled batch aborts its requests before the cancellation propagates.
"""

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from schemas.coded import ModelInfo
from worker.coders.base import Coder, CoderResult, CodingRequest
from worker.coders.exceptions import CoderError, CoderUnavailableError, EngineDeadError
from worker.coders.vllm.config import VLLMSettings
from worker.coders.vllm.engine import VLLMEngine
from worker.coders.vllm.profiles import EngineConstraint, make_profile

if TYPE_CHECKING:
    from vllm.lora.request import LoRARequest
    from vllm.sampling_params import SamplingParams

log = logging.getLogger(__name__)

# Sent once after each engine start, so that no claim pays the grammar compile.
WARMUP_NARRATIVE = "Warm-up request: no patient."


class VLLMCoder(Coder):
    """``engine``: share a started engine between coders (several profiles on one model, the
    tests); the engine-level settings are then the engine's, and `aclose` leaves it running."""

    def __init__(self, settings: VLLMSettings, engine: VLLMEngine | None = None) -> None:
        self.settings = settings
        self.profile = make_profile(settings)  # reads prompt_file: fails at construction
        self.engine = engine or VLLMEngine(settings)
        self._owns_engine = engine is None
        self.constraint: EngineConstraint | None = None
        self.constraint_build_s = 0.0
        self._semaphore = asyncio.Semaphore(settings.max_in_flight)
        self._lock = asyncio.Lock()
        self._params: SamplingParams | None = None
        self._loras: dict[str, LoRARequest] = {}
        self._specials: tuple[str, ...] = ()
        self._ready_generation = 0  # the engine generation that was prepared (adapters, warm-up)

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            engine="vllm",
            model=self.settings.display_name,
            adapter=self.settings.default_adapter,
            profile=self.settings.profile,
        )

    @property
    def max_tokens(self) -> int:
        """The settings' bound, or the longest output the constraint allows plus the EOS token
        (a token is at least one character), so that a constrained output is never cut."""
        return self.settings.max_tokens or self.profile.max_output_chars() + 1

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the engine (or replace a dead one), load the adapters and warm up."""
        async with self._lock:
            await self._start_locked(restart=False)

    async def restart(self) -> None:
        """Replace the engine, dead or alive: what the worker calls after EngineDeadError."""
        async with self._lock:
            await self._start_locked(restart=True)

    async def aclose(self) -> None:
        async with self._lock:
            if self._owns_engine:
                await self.engine.aclose()
            self._ready_generation = 0

    async def _start_locked(self, *, restart: bool) -> None:
        s = self.settings
        for name, path in s.lora_adapters.items():
            if not (path / "adapter_config.json").is_file():
                raise CoderUnavailableError(f"LoRA adapter {name!r}: no adapter_config.json")
        if self.constraint is None:
            # Reading the code set and building the grammar is CPU work (~1.5 s): off the loop.
            started = time.perf_counter()
            backend = self.engine.settings.structured_outputs_backend  # the grammar's syntax
            self.constraint = await asyncio.to_thread(
                self.profile.constraint, s.constrain, backend, s.codeset_release
            )
            self.constraint_build_s = time.perf_counter() - started
        if restart:
            await self.engine.restart()
        else:
            await self.engine.start()
        if self._ready_generation == self.engine.generation:
            return
        self._params = self.engine.sampling_params(
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=self.max_tokens,
            regex=self.constraint.regex,
            grammar=self.constraint.grammar,
            seed=s.seed if s.temperature > 0 else None,
        )
        # Adapter ids are fixed by name order, so they stay the same across restarts.
        self._loras = {
            name: self.engine.lora_request(name, index, s.lora_adapters[name])
            for index, name in enumerate(sorted(s.lora_adapters), start=1)
        }
        for lora in self._loras.values():
            await self.engine.add_lora(lora)
        self._specials = self.engine.special_tokens()
        if s.warmup:
            started = time.perf_counter()
            (result,) = await self._code_all([CodingRequest("warmup", WARMUP_NARRATIVE)])
            if result.error is not None:
                raise CoderUnavailableError(f"the warm-up request failed: {result.error.kind}")
            log.info("vLLM coder warmed up in %.1f s", time.perf_counter() - started)
        self._ready_generation = self.engine.generation

    # -- coding ----------------------------------------------------------------------------------
    async def code_batch(self, requests: Sequence[CodingRequest]) -> list[CoderResult]:
        if self._ready_generation == 0:
            raise EngineDeadError("the vLLM coder is not started")
        started = time.perf_counter()
        results = await self._code_all(requests)
        log.debug(
            "vLLM coded %d claims in %.2f s (%d errors)",
            len(results),
            time.perf_counter() - started,
            sum(not r.ok for r in results),
        )
        return results

    async def _code_all(self, requests: Sequence[CodingRequest]) -> list[CoderResult]:
        """All requests at once; the first EngineDeadError cancels the rest and is raised."""
        if self.engine.dead:
            raise EngineDeadError()
        tasks = [asyncio.create_task(self._code_one(r)) for r in requests]
        if not tasks:
            return []
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            # On cancellation or a dead engine: cancel what is left and wait, so that every
            # request is aborted in the engine before this call ends.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        results: list[CoderResult] = []
        for task in tasks:
            error = task.exception()
            if error is not None:
                if isinstance(error, EngineDeadError):
                    raise EngineDeadError() from error
                raise error  # a bug: _code_one turns every other failure into a result
            results.append(task.result())
        return results

    async def _code_one(self, request: CodingRequest) -> CoderResult:
        claim_id = request.claim_id
        adapter = request.adapter or self.settings.default_adapter
        lora = None
        if adapter is not None:
            lora = self._loras.get(adapter)
            if lora is None:
                error = CoderError("unknown_adapter", f"no LoRA adapter named {adapter!r}")
                return CoderResult(claim_id, error=error, adapter=adapter)
        params = self._params
        assert params is not None  # set before the first request (the warm-up)
        messages = self.profile.messages(self._clean(request.narrative))
        async with self._semaphore:
            started = time.perf_counter()
            try:
                completion = await self.engine.generate(
                    messages, params, lora, self.settings.request_timeout_s
                )
            except EngineDeadError:
                raise
            except CoderError as exc:
                latency_ms = (time.perf_counter() - started) * 1000
                return CoderResult(claim_id, error=exc, latency_ms=latency_ms, adapter=adapter)
        latency_ms = (time.perf_counter() - started) * 1000
        kept = self.profile.kept_output(completion.text)  # codes-xml: the reasoning is dropped
        try:
            if completion.finish_reason == "length":
                raise CoderError("bad_output", f"output cut at {params.max_tokens} tokens")
            codes = self.profile.parse(completion.text)
        except CoderError as exc:
            return CoderResult(
                claim_id, error=exc, raw_output=kept, latency_ms=latency_ms, adapter=adapter
            )
        return CoderResult(
            claim_id,
            codes=tuple(dict.fromkeys(codes)),  # a code written twice counts once
            raw_output=kept,
            latency_ms=latency_ms,
            adapter=adapter,
        )

    def _clean(self, narrative: str) -> str:
        """The narrative without the tokenizer's special tokens: text such as "<|im_end|>"
        would otherwise end the user turn and let the narrative write the instructions."""
        for token in self._specials:
            narrative = narrative.replace(token, " ")
        return narrative
