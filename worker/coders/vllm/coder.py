"""`VLLMCoder`: narratives to codes with a chat model in the worker's own vLLM engine.

One claim's path: narrative (special tokens removed, so a narrative cannot close its own turn)
-> the profile's chat messages -> one engine request under the structured-outputs constraint of
the claim's code-set release (``CodingRequest.codeset_release``, from its discharge date; the
catalog's newest release for a claim with no period), with the claim's LoRA adapter or the
deployment's -> the profile's parser -> codes, principal first. All claims of a batch are
submitted at once, whatever their releases, and vLLM's scheduler batches them; a semaphore
shared by all batches bounds the requests in the engine (backpressure).

With ``constrain="codeset"`` the coder holds one grammar per release of its catalog, built at
start (off the event loop) and compiled by the engine during the warm-up, one request a grammar;
``format`` and ``none`` use one constraint for every release.

Failures: a claim that times out, is rejected or cannot be parsed, or whose release the catalog
does not hold (``unknown_release``), gets a per-claim CoderError; a dead engine raises
EngineStoppedError for the whole batch, and `restart` (or `start`) replaces the engine. A cancelled
batch aborts its requests before the cancellation propagates.
"""

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from drg.codeset.catalog import CodesetCatalog, shipped_catalog
from drg.exceptions import ReferenceDataError
from schemas.coded import ModelInfo
from worker.coders.base import Coder, CoderResult, CodingRequest
from worker.coders.exceptions import CoderError, CoderUnavailableError, EngineStoppedError
from worker.coders.vllm.config import VLLMSettings
from worker.coders.vllm.engine import VLLMEngine
from worker.coders.vllm.grammar import billable_codes
from worker.coders.vllm.profiles import EngineConstraint, make_profile

if TYPE_CHECKING:
    from vllm.lora.request import LoRARequest
    from vllm.sampling_params import SamplingParams

log = logging.getLogger(__name__)

# Sent after each engine start, once a grammar, so that no claim pays a grammar compile.
WARMUP_NARRATIVE = "Warm-up request: no patient."


class VLLMCoder(Coder):
    """``engine``: share a started engine between coders (several profiles on one model, the
    tests); the engine-level settings are then the engine's, and `aclose` leaves it running.
    ``catalog``: the code-set releases the coder serves (default: the releases claimcoder ships,
    ``shipped_catalog()``); with ``constrain="codeset"`` each gets its own grammar."""

    def __init__(
        self,
        settings: VLLMSettings,
        engine: VLLMEngine | None = None,
        catalog: CodesetCatalog | None = None,
    ) -> None:
        self.settings = settings
        self.profile = make_profile(settings)  # reads prompt_file: fails at construction
        self.engine = engine or VLLMEngine(settings)
        self.catalog = catalog or shipped_catalog()
        self._owns_engine = engine is None
        # Code-set release -> its constraint; under format or none the same one for every release.
        self.constraints: dict[str, EngineConstraint] = {}
        # Seconds spent building the constraints at start (reading code sets, writing grammars):
        # in all, and per release (codeset only; format and none take microseconds).
        self.constraint_build_s = 0.0
        self.constraint_build_s_by_release: dict[str, float] = {}
        self._semaphore = asyncio.Semaphore(settings.max_in_flight)
        self._lock = asyncio.Lock()
        self._params: dict[str, SamplingParams] = {}  # release -> params (shared when equal)
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
        """Replace the engine, dead or alive: what the worker calls after EngineStoppedError."""
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
        if not self.constraints:
            # Reading the code sets (~1-2 s a release, once a process) and building their
            # grammars (~0.3 s a release) is CPU work: off the loop.
            started = time.perf_counter()
            self.constraints = await asyncio.to_thread(self._build_constraints)
            self.constraint_build_s = time.perf_counter() - started
        if restart:
            await self.engine.restart()
        else:
            await self.engine.start()
        if self._ready_generation == self.engine.generation:
            return
        # One SamplingParams a distinct constraint; the newest release that uses it warms it up.
        releases_of: dict[EngineConstraint, list[str]] = {}
        for release, constraint in self.constraints.items():
            releases_of.setdefault(constraint, []).append(release)
        params: dict[str, SamplingParams] = {}
        for constraint, releases in releases_of.items():
            shared = self.engine.sampling_params(
                temperature=s.temperature,
                top_p=s.top_p,
                max_tokens=self.max_tokens,
                regex=constraint.regex,
                grammar=constraint.grammar,
                seed=s.seed if s.temperature > 0 else None,
            )
            params.update(dict.fromkeys(releases, shared))
        self._params = params
        # Adapter ids are fixed by name order, so they stay the same across restarts.
        self._loras = {
            name: self.engine.lora_request(name, index, s.lora_adapters[name])
            for index, name in enumerate(sorted(s.lora_adapters), start=1)
        }
        for lora in self._loras.values():
            await self.engine.add_lora(lora)
        self._specials = self.engine.special_tokens()
        if s.warmup:
            # All grammars at once, so that their compiles overlap.
            started = time.perf_counter()
            warmups = [
                (CodingRequest(f"warmup-{releases[-1]}", WARMUP_NARRATIVE), releases[-1])
                for releases in releases_of.values()
            ]
            for result in await self._code_all(warmups):
                if result.error is not None:
                    raise CoderUnavailableError(
                        f"the warm-up request {result.claim_id} failed: {result.error.kind}"
                    )
            log.info(
                "vLLM coder warmed up %d grammar(s) in %.1f s",
                len(warmups),
                time.perf_counter() - started,
            )
        self._ready_generation = self.engine.generation

    def _build_constraints(self) -> dict[str, EngineConstraint]:
        """Release -> constraint for every release of the catalog (blocking: in a thread)."""
        s = self.settings
        backend = self.engine.settings.structured_outputs_backend  # the grammar's syntax
        releases = self.catalog.releases
        if not releases:
            raise CoderUnavailableError("the code-set catalog holds no release")
        if s.constrain != "codeset":
            return dict.fromkeys(releases, self.profile.constraint(s.constrain, backend, ()))
        constraints: dict[str, EngineConstraint] = {}
        seconds: dict[str, float] = {}
        for release in releases:
            started = time.perf_counter()
            try:
                codes = billable_codes(self.catalog.codeset(release))
                constraints[release] = self.profile.constraint(s.constrain, backend, codes)
            except (ReferenceDataError, ValueError) as exc:
                raise CoderUnavailableError(
                    f"no code-set grammar for release {release}: {exc}"
                ) from exc
            seconds[release] = time.perf_counter() - started
            log.info(
                "code-set grammar of %s: %d codes in %.1f s", release, len(codes), seconds[release]
            )
        self.constraint_build_s_by_release = seconds
        return constraints

    # -- coding ----------------------------------------------------------------------------------
    async def code_batch(self, requests: Sequence[CodingRequest]) -> list[CoderResult]:
        if self._ready_generation == 0:
            raise EngineStoppedError("the vLLM coder is not started")
        started = time.perf_counter()
        newest = self.catalog.registry.newest_release
        results = await self._code_all([(r, r.codeset_release or newest) for r in requests])
        log.debug(
            "vLLM coded %d claims in %.2f s (%d errors)",
            len(results),
            time.perf_counter() - started,
            sum(not r.ok for r in results),
        )
        return results

    async def _code_all(self, jobs: Sequence[tuple[CodingRequest, str]]) -> list[CoderResult]:
        """All requests, each with its code-set release, at once; the first EngineStoppedError
        cancels the rest and is raised."""
        if self.engine.dead:
            raise EngineStoppedError()
        tasks = [asyncio.create_task(self._code_one(r, release)) for r, release in jobs]
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
                if isinstance(error, EngineStoppedError):
                    raise EngineStoppedError() from error
                raise error  # a bug: _code_one turns every other failure into a result
            results.append(task.result())
        return results

    async def _code_one(self, request: CodingRequest, release: str) -> CoderResult:
        claim_id = request.claim_id
        adapter = request.adapter or self.settings.default_adapter
        params = self._params.get(release)
        if params is None:
            error = CoderError("unknown_release", f"no code set {release!r} in the vLLM coder")
            return CoderResult(claim_id, error=error, adapter=adapter)
        lora = None
        if adapter is not None:
            lora = self._loras.get(adapter)
            if lora is None:
                error = CoderError("unknown_adapter", f"no LoRA adapter named {adapter!r}")
                return CoderResult(claim_id, error=error, adapter=adapter)
        messages = self.profile.messages(self._clean(request.narrative))
        async with self._semaphore:
            started = time.perf_counter()
            try:
                completion = await self.engine.generate(
                    messages, params, lora, self.settings.request_timeout_s
                )
            except EngineStoppedError:
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
