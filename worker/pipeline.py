"""The pipeline of a micro-batch: intake, then the stages of ``worker/stages.py`` in order,
then one output per record.

``ClaimPipeline.handle`` is what the Faust agent (``worker/app.py``) calls with the records of a
batch; ``ClaimPipeline.run`` is the same stage list for work items with no Kafka record
(`claimcoder code`). Per record, in input order, the output is:

- a dead letter, when the record breaks the contract (``validate_event``) or a claim broke a
  stage on its own (``internal_error``, with the stage);
- otherwise its ``claims.coded`` event as stored (``needs_review`` / ``coder_error`` when the
  coder could not code it).

Failures follow the one policy of ``worker/retry.py``: a server that is down makes the batch
wait; a failing batch is split.
"""

import asyncio
import dataclasses
import gc
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from drg.assess import Assessor
from drg.codeset.catalog import CodesetCatalog
from drg.codeset.store import read_catalog
from drg.conventions.apply import Conventions, conventions_for
from drg.registry import ReleaseRegistry
from worker.coders.base import Coder
from worker.coders.factory import build_coder
from worker.errors import is_recoverable
from worker.intake import accept
from worker.outputs import Outgoing, coded_output, dead_letter
from worker.records import Record
from worker.resources import async_engine, connector, redis_client
from worker.retry import RetryPolicy, run_stage, wait_for_servers
from worker.settings import Settings
from worker.stages import INFERENCE, pipeline_stages
from worker.store import NoStore, ResultStore, ResultWriter
from worker.telemetry import BatchTrace, Telemetry, replace_headers
from worker.work import WorkItem

log = logging.getLogger(__name__)

CoderFactory = Callable[[CodesetCatalog], Coder]
DEFAULT_POLICY = RetryPolicy()
#: Batches in the stages after inference at once. The worker hands the pipeline one batch per
#: partition (4 by default) and the stages after the coder are CPU work with a Redis and a
#: PostgreSQL round trip: all four interleaved, each took as long as all four together, and
#: each partition waited that long before its next batch. Two at a time, a batch computes
#: while the other waits for a server, and batches finish one after another
#: (`claimcoder bench`, fixed coder, 5,000 claims, three runs each on one machine: 1,253,
#: 1,508, 1,343 claims/s interleaved; 1,655, 1,378, 1,998 two at a time).
ASSESSING_BATCHES: Final = 2


@dataclass(slots=True)
class ProcessedBatch:
    """A batch's outputs, one per record in input order, ready to publish: each output's headers
    carry its claim span's context on (``source`` is dropped). The batch's spans stay open
    until :meth:`finish`."""

    outputs: list[Outgoing]
    trace: BatchTrace

    async def finish(self, published: bool) -> None:
        """End the batch's spans; ``published``: every output was sent and acknowledged (they
        are then counted in the metrics)."""
        if published:
            for output in self.outputs:
                self.trace.published(output.topic, output.label)
        self.trace.close()


def _freeze_startup_objects() -> None:
    """Move every object alive now (code sets, tabular notes, the coder's index: ~400,000
    objects that live as long as the process) out of the garbage collector's sight
    (``gc.freeze``). Otherwise each full collection walks them all: ~150 ms of pause here, a
    batch's worth of latency every few thousand claims (``bench.bench_handle``: 312 -> 240 µs
    of CPU a claim)."""
    gc.collect()
    gc.freeze()


class ClaimPipeline:
    """The stages behind the contract check. One per worker process; it owns the coder and,
    when built by :meth:`from_settings`, the Redis and PostgreSQL clients.

    ``coder``: a coder, or a factory that :meth:`start` calls with the code sets of the
    registry (shipped and loaded fiscal years) once it has read the registry."""

    def __init__(
        self,
        coder: Coder | CoderFactory,
        assessor: Assessor,
        store: ResultWriter,
        telemetry: Telemetry,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        on_stop: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self._coder_factory = None if isinstance(coder, Coder) else coder
        self._coder = coder if isinstance(coder, Coder) else None
        self.assessor = assessor
        self.store = store
        self.telemetry = telemetry
        self.policy = policy
        self.catalog: CodesetCatalog | None = None
        self.stages = pipeline_stages(
            lambda: self.coder, self._conventions, assessor, store, policy
        )
        self._assessing = asyncio.Semaphore(ASSESSING_BATCHES)
        self._on_stop = list(on_stop)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, record: bool = True, coder: CoderFactory | None = None
    ) -> "ClaimPipeline":
        """The configured coder (or ``coder``'s, a factory as for ``__init__``), and clients
        for the configured servers (connected lazily); ``record=False`` writes no
        claim_results (a one-off check)."""
        engine = async_engine(settings.database)
        redis = redis_client(settings.redis)
        assessor = Assessor(
            redis=redis,
            engine=engine,
            key_prefix=settings.redis.key_prefix,
            reference_ttl_s=settings.database.reference_ttl_s,
        )

        store = ResultStore(connector(settings.database, autocommit=True)) if record else None

        async def close_clients() -> None:
            assessor.close()
            await redis.aclose()
            await engine.dispose()
            if store is not None:
                await store.aclose()

        config = settings.coder
        return cls(
            coder
            or (
                lambda catalog: build_coder(
                    config.kind,
                    retrieval=settings.retrieval,
                    vllm=settings.vllm,
                    catalog=catalog,
                    fixed_codes=config.fixed_codes,
                )
            ),
            assessor,
            store if store is not None else NoStore(),
            Telemetry(settings.kafka.consumer_group),
            policy=RetryPolicy(
                claim_retries=config.retries, claim_backoff_s=config.retry_backoff_s
            ),
            on_stop=[close_clients],
        )

    @property
    def coder(self) -> Coder:
        if self._coder is None:
            raise RuntimeError("the pipeline is not started")
        return self._coder

    async def start(self, stopping: Callable[[], bool] = lambda: False) -> None:
        """Read the release registry (shipped and loaded fiscal years), build the coder for its
        code sets when given a factory, and start it. While PostgreSQL is away this waits and
        retries, as a batch does."""
        for attempt in itertools.count():
            try:
                self._coder = await self._open_coder()
                break
            except Exception as exc:
                if not is_recoverable(exc):
                    raise
                await wait_for_servers("start", attempt, exc, self.policy, stopping)
        await self.coder.start()
        _freeze_startup_objects()

    async def _open_coder(self) -> Coder:
        registry = await self.assessor.read_registry()
        catalog = await read_catalog(self.assessor.engine, registry)
        # the conventions' tables of every release, built now so that no batch waits for them
        await asyncio.to_thread(lambda: [conventions_for(catalog, r) for r in catalog.releases])
        self.catalog = catalog
        if self._coder is not None:
            return self._coder
        assert self._coder_factory is not None
        return self._coder_factory(catalog)

    def _conventions(self, release: str) -> Conventions:
        if self.catalog is None:
            raise RuntimeError("the pipeline is not started")
        return conventions_for(self.catalog, release)

    async def stop(self) -> None:
        try:
            if self._coder is not None:
                await self._coder.aclose()
        finally:
            for close in self._on_stop:
                await close()

    async def responsive(self) -> bool:
        """True: in process, a running heartbeat is this event loop answering (see
        ``PipelineProcess.responsive``)."""
        return True

    async def process(
        self, records: Sequence[Record], stopping: Callable[[], bool] = lambda: False
    ) -> ProcessedBatch:
        """:meth:`handle` under the batch's spans, with each output's headers carrying its
        claim span's context. What the Faust agent publishes, in process or from
        ``worker/pipeline_process.py``'s child process."""
        trace = self.telemetry.batch(records)
        try:
            outputs = await self.handle(records, trace, stopping)
        except BaseException:
            trace.close()
            raise
        ready = [
            dataclasses.replace(
                output,
                headers=tuple(replace_headers(output.headers, trace.context(output.source))),
                source=None,
            )
            for output in outputs
        ]
        return ProcessedBatch(ready, trace)

    async def handle(
        self,
        records: Sequence[Record],
        trace: BatchTrace,
        stopping: Callable[[], bool] = lambda: False,
    ) -> list[Outgoing]:
        """One output per record, in input order (see the module docstring)."""
        registry = await self._registry(stopping)
        taken: list[WorkItem | Outgoing] = []
        for record in records:
            outcome = accept(record, registry)
            if isinstance(outcome, Outgoing):
                trace.set(record, **{"claimcoder.dead_letter.reason": outcome.label})
                log.warning(
                    "dead-lettered %s[%d]@%d: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    outcome.label,
                )
                trace.fail(record, f"validate_event: {outcome.label}")
            taken.append(outcome)
        await self.run([i for i in taken if isinstance(i, WorkItem)], trace, stopping)
        return [o if isinstance(o, Outgoing) else self._output(o, trace) for o in taken]

    async def run(
        self,
        items: Sequence[WorkItem],
        trace: BatchTrace,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        """Every stage, in order, over ``items``; each item ends with its stored output or a
        failure. The stages after inference take at most :data:`ASSESSING_BATCHES` batches at
        once; the coder takes every batch it is given (an engine batches them together)."""
        inference = [s for s in self.stages if s.name == INFERENCE]
        for stage in inference:
            await run_stage(stage, items, trace, self.policy, stopping)
        async with self._assessing:
            for stage in self.stages[len(inference) :]:
                await run_stage(stage, items, trace, self.policy, stopping)

    async def _registry(self, stopping: Callable[[], bool]) -> ReleaseRegistry:
        for attempt in itertools.count():
            try:
                return await self.assessor.read_registry()
            except Exception as exc:
                if not is_recoverable(exc):
                    raise
                await wait_for_servers("intake", attempt, exc, self.policy, stopping)
        raise AssertionError("unreachable")

    def _output(self, item: WorkItem, trace: BatchTrace) -> Outgoing:
        if item.output is None:
            assert item.record is not None  # claimcoder code reads item.output itself
            failure = item.failure
            stage = failure.stage if failure is not None else "pipeline"
            return dead_letter(
                item.record,
                stage=stage,
                kind="internal_error",
                message=f"{type(failure.error).__name__ if failure else 'no output'} while "
                "processing the claim; see the worker log for where",
            )
        output = item.output
        trace.set(
            item.record,
            **{
                "claimcoder.status": output.status,
                "claimcoder.codes.count": len(output.codes),
                "claimcoder.drg": output.drg.code if output.drg is not None else "",
                "claimcoder.event_id": output.event_id,
            },
        )
        return coded_output(item)
