"""One vLLM ``AsyncLLM`` engine owned by the worker process: start, generate, restart, shut down.

The engine core runs in child processes (on the CPU build: ``VLLM::EngineCore`` and its
``VLLM::Worker``); vLLM watches them and marks the engine dead when one exits. This module turns
that into :class:`EngineStoppedError` (recoverable: restart and code the batch again) and makes sure
no engine process outlives the worker:

- `aclose` shuts the engine down and waits for its processes;
- an ``atexit`` hook shuts down engines still running when the interpreter exits, and SIGTERM is
  turned into a clean exit when nobody else handles it (Faust installs its own handler, which
  stops the app and so calls `aclose`);
- a reaper process (`reaper.py`) kills the engine processes when the worker dies in a way that
  runs no Python at all (SIGKILL, the OOM killer).

Blocking calls (engine start ~15-25 s, shutdown ~5 s) run in a thread, never on the event loop.
vLLM is imported here lazily, so the worker runs without the engine extra installed.
"""

import asyncio
import atexit
import contextlib
import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

import psutil

from worker.coders.exceptions import CoderError, CoderUnavailableError, EngineStoppedError
from worker.coders.vllm.config import VLLMSettings

if TYPE_CHECKING:
    from vllm.lora.request import LoRARequest
    from vllm.sampling_params import SamplingParams
    from vllm.v1.engine.async_llm import AsyncLLM

log = logging.getLogger(__name__)

ENGINE_TITLE_PREFIX: Final = "VLLM::"  # vLLM's process titles: VLLM::EngineCore, VLLM::Worker
CPU_DEFAULT_KV_CACHE_BYTES: Final = 512 * 2**20
_REAPER: Final = Path(__file__).with_name("reaper.py")


def import_vllm() -> Any:
    """The vllm module, or CoderUnavailableError naming the extra to install."""
    try:
        import vllm
    except ImportError as exc:
        raise CoderUnavailableError(
            "the vllm coder needs vLLM: install the `gpu` extra (CUDA) or the `cpu-llm` extra "
            "(CPU build), e.g. `pip install 'claimcoder[cpu-llm]'`"
        ) from exc
    return vllm


@dataclass
class EngineStats:
    """What the scheduler reported, step by step (from vLLM's stat logger interface)."""

    steps: int = 0
    running: int = 0
    waiting: int = 0
    max_running: int = 0
    generated_tokens: int = 0

    def reset_peak(self) -> None:
        self.max_running = self.running


@dataclass(frozen=True, slots=True)
class Completion:
    text: str = field(repr=False)  # model output: never in a repr or log
    finish_reason: str | None
    num_tokens: int


def engine_processes(root: psutil.Process | None = None) -> list[psutil.Process]:
    """Descendants of ``root`` (default: this process) that carry a vLLM engine title."""
    root = root or psutil.Process()
    found = []
    for proc in root.children(recursive=True):
        try:
            cmdline = proc.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if cmdline and cmdline[0].startswith(ENGINE_TITLE_PREFIX):
            found.append(proc)
    return found


# --- process-exit protection -------------------------------------------------------------------

_live: "set[VLLMEngine]" = set()
_live_lock = threading.Lock()
_hooks_installed = False


def _shutdown_live_engines() -> None:
    with _live_lock:
        engines = list(_live)
    for engine in engines:
        engine.shutdown_now()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SystemExit unwinds the program normally, so atexit shuts the engines down.
    raise SystemExit(128 + signum)


def _install_exit_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_shutdown_live_engines)
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


# --- the engine ----------------------------------------------------------------------------------


class VLLMEngine:
    """An ``AsyncLLM`` with a lifecycle: `start`, `generate`, `restart`, `aclose`.

    Methods are called from one asyncio event loop; several batches may call `generate`
    concurrently (vLLM batches them in its scheduler).
    """

    def __init__(self, settings: VLLMSettings) -> None:
        if not settings.model:
            raise CoderUnavailableError("CLAIMCODER_VLLM_MODEL is not set")
        self.settings = settings
        self.stats = EngineStats()
        self._llm: AsyncLLM | None = None
        self._pids: tuple[int, ...] = ()
        self._reaper: subprocess.Popen[bytes] | None = None
        self._lock = asyncio.Lock()
        self._generation = 0  # counts starts: a restart makes a new engine

    # -- state -----------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._llm is not None

    @property
    def dead(self) -> bool:
        """True when started and the engine core stopped (vLLM saw a process exit or an error)."""
        return self._llm is not None and bool(self._llm.errored)

    @property
    def pids(self) -> tuple[int, ...]:
        """Engine process ids (EngineCore and its workers) of the current engine."""
        return self._pids

    @property
    def generation(self) -> int:
        return self._generation

    def num_unfinished_requests(self) -> int:
        """Requests the engine front end still tracks (0 when idle)."""
        return 0 if self._llm is None else int(self._llm.get_num_unfinished_requests())

    def special_tokens(self) -> tuple[str, ...]:
        """The tokenizer's special-token strings, longest first (stripped from narratives).
        Added tokens count only when marked special: some tokenizers add ordinary words."""
        if self._llm is None:
            return ()
        tokenizer = self._llm.get_tokenizer()
        specials = set(getattr(tokenizer, "all_special_tokens", ()))
        added = getattr(tokenizer, "added_tokens_decoder", {})
        specials.update(t.content for t in added.values() if getattr(t, "special", False))
        return tuple(sorted((s for s in specials if s), key=len, reverse=True))

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the engine; after a death this replaces the dead engine (as `restart`)."""
        async with self._lock:
            if self._llm is not None and not self._llm.errored:
                return
            await self._stop_locked()
            await self._start_locked()

    async def restart(self) -> None:
        """Shut the current engine down (dead or not) and start a new one."""
        async with self._lock:
            await self._stop_locked()
            await self._start_locked()

    async def aclose(self) -> None:
        async with self._lock:
            await self._stop_locked()

    async def _start_locked(self) -> None:
        started = time.perf_counter()
        # Importing vLLM takes seconds: in a thread, and in a call of its own, because a failed
        # optional import inside vLLM keeps its traceback, and with it the importing frame.
        await asyncio.to_thread(_import_engine_modules)
        _install_exit_hooks()
        llm, pids = await asyncio.to_thread(self._create)
        self._llm, self._pids = llm, pids
        self._generation += 1
        with _live_lock:
            _live.add(self)
        try:
            self._reaper = await asyncio.to_thread(_start_reaper, pids)
        except OSError:
            log.warning("could not start the engine reaper; a killed worker may orphan the engine")
        log.info(
            "vLLM engine %d started in %.1f s (engine processes: %s)",
            self._generation,
            time.perf_counter() - started,
            ",".join(map(str, pids)),
        )

    async def _stop_locked(self) -> None:
        llm = self._llm
        if llm is None:
            return
        handler = getattr(llm, "output_handler", None)
        if isinstance(handler, asyncio.Task) and llm.get_num_unfinished_requests() == 0:
            # Idle: stop reading outputs first, or vLLM logs the engine core's exit during
            # shutdown as a failure. With requests in flight it must keep running, so that
            # they end with EngineStoppedError instead of waiting forever.
            handler.cancel()
            await asyncio.gather(handler, return_exceptions=True)
        await asyncio.to_thread(self.shutdown_now)

    def shutdown_now(self) -> None:
        """Blocking shutdown: engine, its processes, the reaper. Idempotent, any thread."""
        llm, self._llm = self._llm, None
        pids, self._pids = self._pids, ()
        reaper, self._reaper = self._reaper, None
        with _live_lock:
            _live.discard(self)
        if llm is not None:
            try:
                llm.shutdown(timeout=self.settings.shutdown_timeout_s)
            except Exception:
                # Shutting down a dead engine may fail; its processes are killed below.
                log.warning("vLLM engine shutdown failed; killing its processes", exc_info=True)
            del llm
            # AsyncLLM.__del__ calls shutdown again; run it now, while the interpreter is whole
            # (at exit it fails on half-torn-down modules and prints a traceback).
            gc.collect()
        _kill(pids, grace_s=self.settings.shutdown_timeout_s)
        if reaper is not None:
            _stop_reaper(reaper)

    def _create(self) -> "tuple[AsyncLLM, tuple[int, ...]]":
        """Runs in a thread: build the engine (spawns and waits for its processes)."""
        os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")  # no telemetry from a PHI worker
        os.environ.setdefault("VLLM_DO_NOT_TRACK", "1")
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        before = {p.pid for p in psutil.Process().children(recursive=True)}
        args = AsyncEngineArgs(**self._engine_kwargs())
        try:
            llm = AsyncLLM.from_engine_args(args, stat_loggers=[_stat_logger(self.stats)])
        except Exception as exc:
            raise CoderUnavailableError(f"the vLLM engine did not start: {exc}") from exc
        pids = tuple(p.pid for p in engine_processes() if p.pid not in before)
        return llm, pids

    def _engine_kwargs(self) -> dict[str, Any]:
        from vllm.config import StructuredOutputsConfig

        s = self.settings
        kv_bytes = s.kv_cache_memory_bytes
        if kv_bytes is None and _on_cpu() and not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
            kv_bytes = CPU_DEFAULT_KV_CACHE_BYTES
        kwargs: dict[str, Any] = {
            "model": s.model,
            "tokenizer": s.tokenizer,
            "dtype": s.dtype,
            "quantization": s.quantization,
            "max_model_len": s.max_model_len,
            "trust_remote_code": s.trust_remote_code,
            "gpu_memory_utilization": s.gpu_memory_utilization,
            "kv_cache_memory_bytes": kv_bytes,
            "max_num_seqs": s.max_num_seqs,
            "tensor_parallel_size": s.tensor_parallel_size,
            "enforce_eager": s.enforce_eager,
            "seed": s.seed,
            "structured_outputs_config": StructuredOutputsConfig(
                backend=s.structured_outputs_backend
            ),
            "enable_lora": s.enable_lora,
            "disable_log_stats": True,  # our stat logger still records; no periodic log lines
            "enable_log_requests": False,  # request logs could carry patient data
        }
        if s.enable_lora:
            kwargs.update(max_lora_rank=s.max_lora_rank, max_loras=s.max_loras)
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        kwargs.update(s.engine_args)
        return kwargs

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Hold new requests in the engine's queue; on exit they are scheduled together.
        For measurements and tests that need a known batch (vLLM's `pause_generation`)."""
        llm = self._llm
        if llm is None or llm.errored:
            raise EngineStoppedError("the vLLM engine is not running")
        await llm.pause_generation(mode="keep", clear_cache=False)
        try:
            yield
        finally:
            if not llm.errored:
                await llm.resume_generation()

    # -- requests --------------------------------------------------------------------------------
    @staticmethod
    def sampling_params(
        *,
        temperature: float,
        top_p: float,
        max_tokens: int,
        regex: str | None = None,
        grammar: str | None = None,
        seed: int | None = None,
    ) -> "SamplingParams":
        """Final-output-only sampling parameters; no structured outputs when neither ``regex``
        nor ``grammar`` is given."""
        from vllm.sampling_params import RequestOutputKind, SamplingParams, StructuredOutputsParams

        structured = None
        if regex is not None or grammar is not None:
            structured = StructuredOutputsParams(regex=regex, grammar=grammar)
        return SamplingParams(
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            seed=seed,
            output_kind=RequestOutputKind.FINAL_ONLY,
            structured_outputs=structured,
        )

    @staticmethod
    def lora_request(name: str, index: int, path: Path) -> "LoRARequest":
        from vllm.lora.request import LoRARequest

        return LoRARequest(lora_name=name, lora_int_id=index, lora_path=str(path))

    async def add_lora(self, lora: "LoRARequest") -> None:
        """Load an adapter now: a bad adapter fails the start, not the first claims."""
        llm = self._llm
        if llm is None or llm.errored:
            raise EngineStoppedError("the vLLM engine is not running")
        try:
            await llm.add_lora(lora)
        except Exception as exc:
            raise CoderUnavailableError(
                f"LoRA adapter {lora.lora_name!r} did not load: {type(exc).__name__}: {exc}"
            ) from exc

    async def generate(
        self,
        messages: list[dict[str, str]],
        params: "SamplingParams",
        lora: "LoRARequest | None",
        timeout_s: float,
    ) -> Completion:
        """One chat completion. Raises CoderError(timeout | rejected | engine_error) for this
        request, EngineStoppedError when the engine is gone; on cancellation the request is
        aborted and CancelledError re-raised. The request never outlives this call."""
        llm = self._llm
        if llm is None or llm.errored:
            raise EngineStoppedError("the vLLM engine is not running")
        from vllm.exceptions import VLLMClientError
        from vllm.inputs import TokensPrompt
        from vllm.renderers.params import ChatParams
        from vllm.v1.engine.exceptions import EngineDeadError

        request_id = f"claimcoder-{uuid.uuid4().hex}"
        finished = False
        try:
            async with asyncio.timeout(timeout_s):
                conversation: list[Any] = list(messages)  # vLLM's message TypedDicts
                _, (rendered,) = await llm.renderer.render_chat_async([conversation], ChatParams())
                # Token ids, not the rendered input: vLLM then checks the request (which parses
                # the grammar text again, ~10-20 ms for the code-set grammar) in its thread
                # pool instead of on this event loop. xgrammar releases the GIL while parsing.
                prompt = TokensPrompt(prompt_token_ids=list(rendered["prompt_token_ids"]))
                final = None
                # aclosing: a cancelled generator is closed now (vLLM aborts the request),
                # not whenever the garbage collector finds it.
                outputs = llm.generate(prompt, params, request_id, lora_request=lora)
                async with contextlib.aclosing(outputs):
                    async for output in outputs:
                        final = output
                finished = True
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            raise CoderError("timeout", f"no answer within {timeout_s:g} s") from None
        except EngineDeadError as exc:  # vLLM's: the engine is gone (fatal for it)
            raise EngineStoppedError() from exc
        except VLLMClientError as exc:
            # Validation (e.g. a prompt longer than the context). The message may quote input.
            raise CoderError(
                "rejected", f"the engine rejected the request: {type(exc).__name__}"
            ) from None
        except Exception as exc:
            if llm.errored:
                raise EngineStoppedError() from exc
            raise CoderError("engine_error", f"generation failed: {type(exc).__name__}") from exc
        finally:
            if not finished and not llm.errored:
                # vLLM aborts a cancelled request itself once it owns it; this also covers
                # the moments before that (rendering, submission). Aborting twice is a no-op.
                # An engine dying meanwhile must not replace the error or cancellation.
                with contextlib.suppress(Exception):
                    await asyncio.shield(llm.abort(request_id))
        if final is None or not final.outputs:
            raise CoderError("engine_error", "the engine returned no output")
        choice = final.outputs[0]
        return Completion(choice.text, choice.finish_reason, len(choice.token_ids))


def _import_engine_modules() -> None:
    import_vllm()
    import vllm.engine.arg_utils
    import vllm.v1.engine.async_llm  # noqa: F401 - imported for the side effect of loading


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def _stat_logger(stats: EngineStats) -> Any:
    """A vLLM stat logger class that records scheduler steps into ``stats``."""
    from vllm.v1.metrics.loggers import StatLoggerBase

    class SchedulerRecorder(StatLoggerBase):
        def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
            self.engine_index = engine_index

        def record(
            self,
            scheduler_stats: Any,
            iteration_stats: Any,
            mm_cache_stats: Any = None,
            engine_idx: int = 0,
        ) -> None:
            if scheduler_stats is not None:
                stats.steps += 1
                stats.running = scheduler_stats.num_running_reqs
                stats.waiting = scheduler_stats.num_waiting_reqs
                stats.max_running = max(stats.max_running, stats.running)
            if iteration_stats is not None:
                stats.generated_tokens += iteration_stats.num_generation_tokens

        def log_engine_initialized(self) -> None:
            pass

    return SchedulerRecorder


# --- processes -----------------------------------------------------------------------------------


def _alive(pids: tuple[int, ...]) -> Iterator[psutil.Process]:
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                yield proc
        except psutil.NoSuchProcess:
            continue


def _kill(pids: tuple[int, ...], grace_s: float) -> None:
    """Terminate what is left of the engine processes (normally nothing after shutdown)."""
    procs = list(_alive(pids))
    if not procs:
        return
    log.warning("engine processes still running after shutdown: %d; terminating", len(procs))
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            continue
    _, left = psutil.wait_procs(procs, timeout=grace_s)
    for proc in left:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(left, timeout=5)


def _start_reaper(pids: tuple[int, ...]) -> subprocess.Popen[bytes]:
    """A watchdog that kills ``pids`` when its stdin closes, i.e. when this process ends."""
    targets = []
    for proc in _alive(pids):
        targets.append(f"{proc.pid}:{proc.create_time():.6f}")
    return subprocess.Popen(
        [sys.executable, "-I", str(_REAPER), *targets],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        close_fds=True,
    )


def _stop_reaper(reaper: subprocess.Popen[bytes]) -> None:
    if reaper.stdin is not None:
        reaper.stdin.close()  # EOF: the reaper checks its targets (gone by now) and exits
    try:
        reaper.wait(timeout=10)
    except subprocess.TimeoutExpired:
        reaper.kill()
        reaper.wait()
