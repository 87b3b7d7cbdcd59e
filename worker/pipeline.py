"""Stages 2-5 for a micro-batch of accepted claims: code, validate, group and price, store.

``ClaimPipeline.process`` is called by the Faust agent (``worker/app.py``) with the claims of one
batch that passed the contract check. In order:

1. ``inference``: the configured coder codes the whole batch (``worker/coding.py``: bounded
   retries; what still fails becomes ``needs_review`` / ``coder_error``);
2. ``validate_codes``, ``drg.group``, ``drg.price``: ``drg.assess.Assessor`` (one Redis round
   trip, one grouping hop off the event loop, one PostgreSQL query for the batch);
3. ``store``: the idempotent upsert keyed by ``event_id`` (``worker/store.py``);
4. the ``claims.coded`` events, keyed by ``claim_id``, for the agent to publish.

A claim that breaks a stage for a reason of its own (a bug, odd data) is isolated and
dead-lettered with the stage and error type; servers that are down (Redis, PostgreSQL) raise
:class:`TransientError` and the agent retries the batch until they are back.
"""

import asyncio
import datetime as dt
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from opentelemetry.trace import Link

from drg.assess import Assessment, AssessmentInput, Assessor
from drg.codeset.catalog import CodesetCatalog
from drg.codeset.store import read_catalog
from schemas.coded import ClaimCoded, ModelInfo
from worker.app import Outgoing
from worker.coders.base import Coder, CoderResult, CodingRequest
from worker.coders.factory import build_coder
from worker.coding import code_with_retries
from worker.errors import describe, is_transient
from worker.intake import Accepted, dead_letter
from worker.resources import async_engine, redis_client
from worker.settings import Settings
from worker.store import NoStore, ResultStore, ResultWriter
from worker.telemetry import BatchTrace, StageClock, batch_span

log = logging.getLogger(__name__)

#: Pauses between attempts to read the registry at start while PostgreSQL is down.
START_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

_ASSESS_STAGES = (
    ("validate_codes", "validate_codes"),
    ("drg_group", "drg.group"),
    ("drg_price", "drg.price"),
)


class ClaimPipeline:
    """The coding stages behind the contract check. One per worker process; it owns the coder
    and, when built by :meth:`from_settings`, the Redis and PostgreSQL clients."""

    def __init__(
        self,
        settings: Settings,
        coder: Coder | Callable[[CodesetCatalog], Coder],
        assessor: Assessor,
        store: ResultWriter,
        *,
        on_stop: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        """``coder``: a coder, or a factory that :meth:`start` calls with the code sets of the
        registry (shipped and loaded fiscal years) once it has read the registry."""
        self.settings = settings
        self._coder_factory = None if isinstance(coder, Coder) else coder
        self._coder = coder if isinstance(coder, Coder) else None
        self.assessor = assessor
        self.store = store
        self._on_stop = list(on_stop)

    @property
    def coder(self) -> Coder:
        if self._coder is None:
            raise RuntimeError("the pipeline is not started")
        return self._coder

    @classmethod
    def from_settings(cls, settings: Settings, *, record: bool = True) -> "ClaimPipeline":
        """The configured coder, and clients for the configured servers (connected lazily);
        ``record=False`` writes no claim_results (a one-off check)."""
        engine = async_engine(settings.database)
        redis = redis_client(settings.redis)
        assessor = Assessor(redis=redis, engine=engine, key_prefix=settings.redis.key_prefix)

        async def close_clients() -> None:
            assessor.close()
            await redis.aclose()
            await engine.dispose()

        return cls(
            settings,
            lambda catalog: build_coder(settings, catalog=catalog),
            assessor,
            ResultStore(engine) if record else NoStore(),
            on_stop=[close_clients],
        )

    async def start(self) -> None:
        """Read the release registry (shipped and loaded fiscal years), build the coder for its
        code sets when given a factory, and start it. While PostgreSQL is down this waits and
        retries, as a batch does."""
        for attempt in itertools.count():
            try:
                self._coder = await self._open_coder()
                break
            except Exception as exc:
                if not is_transient(exc):
                    raise
                pause = START_BACKOFF_S[min(attempt, len(START_BACKOFF_S) - 1)]
                log.warning(
                    "start waits %.1f s for PostgreSQL (the release registry): %s",
                    pause,
                    type(exc).__name__,
                )
                await asyncio.sleep(pause)
        await self.coder.start()

    async def _open_coder(self) -> Coder:
        registry = await self.assessor.read_registry()
        if self._coder is not None:
            return self._coder
        assert self._coder_factory is not None
        return self._coder_factory(await read_catalog(self.assessor.engine, registry))

    async def stop(self) -> None:
        try:
            if self._coder is not None:
                await self._coder.aclose()
        finally:
            for close in self._on_stop:
                await close()

    async def process(self, batch: Sequence[Accepted], trace: BatchTrace) -> list[Outgoing]:
        results, inference_ms = await self._code(batch, trace)
        events: list[ClaimCoded | None] = []
        letters: dict[int, Outgoing] = {}
        coded = [(i, a, r) for i, (a, r) in enumerate(zip(batch, results, strict=True)) if r.ok]
        assessments = await self._assess([(a, r) for _, a, r in coded], trace)
        by_index: dict[int, Assessment | Exception] = {
            i: assessment for (i, _, _), assessment in zip(coded, assessments, strict=True)
        }
        for i, (accepted, result) in enumerate(zip(batch, results, strict=True)):
            outcome = by_index.get(i)
            if isinstance(outcome, Exception):
                letters[i] = self._dead_letter(accepted, "drg", outcome, trace)
                events.append(None)
            else:
                events.append(self._event(accepted, result, outcome, inference_ms))
        stored = await self._store([e for e in events if e is not None], batch, events, trace)
        outputs: list[Outgoing] = []
        stored_iter = iter(stored)
        for i, (accepted, event) in enumerate(zip(batch, events, strict=True)):
            if event is None:
                outputs.append(letters[i])
                continue
            output = next(stored_iter)
            trace.set(
                accepted.record,
                **{
                    "claimcoder.status": output["status"],
                    "claimcoder.codes.count": len(output["codes"]),
                    "claimcoder.drg": (output.get("drg") or {}).get("code") or "",
                    "claimcoder.event_id": output["event_id"],
                },
            )
            outputs.append(
                Outgoing(
                    "coded",
                    accepted.claim.claim_id.encode("utf-8"),
                    ClaimCoded.model_validate(output).model_dump_json().encode("utf-8"),
                    source=accepted.record,
                    label=output["status"],
                )
            )
        return outputs

    # --- stages -------------------------------------------------------------------------

    async def _code(
        self, batch: Sequence[Accepted], trace: BatchTrace
    ) -> tuple[list[CoderResult], float]:
        registry = self.assessor.registry
        requests = [
            CodingRequest(
                a.claim.claim_id,
                a.claim.narrative,
                period=registry.period_for(a.claim.discharge_date),
            )
            for a in batch
        ]
        info = self.coder.info
        with batch_span(
            "inference.batch",
            trace,
            **{"claimcoder.coder": info.engine, "claimcoder.batch.size": len(batch)},
        ) as span:
            clock = StageClock("inference")
            results = await code_with_retries(self.coder, requests, self.settings.coder)
            clock.stop()
        link = Link(span.get_span_context())
        for accepted, result in zip(batch, results, strict=True):
            trace.stage_span(
                accepted.record,
                "inference",
                clock.start_ns,
                clock.end_ns,
                links=[link],
                attributes={
                    "claimcoder.coder": info.engine,
                    "claimcoder.model": info.model,
                    "claimcoder.codes.proposed": len(result.codes),
                },
                error=result.error.kind if result.error else None,
            )
        return results, (clock.end_ns - clock.start_ns) / 1e6

    async def _assess(
        self, coded: Sequence[tuple[Accepted, CoderResult]], trace: BatchTrace
    ) -> list[Assessment | Exception]:
        if not coded:
            return []
        inputs: list[AssessmentInput | Exception] = []
        for accepted, result in coded:
            claim = accepted.claim
            try:
                inputs.append(
                    AssessmentInput(
                        claim_id=claim.claim_id,
                        codes=result.codes,
                        age=claim.patient.age,
                        sex=claim.patient.sex,
                        discharge_date=claim.discharge_date,
                        discharge_status=int(claim.discharge_status),
                        provider_id=claim.provider_id,
                    )
                )
            except ValueError as exc:
                inputs.append(exc)
        valid = [x for x in inputs if isinstance(x, AssessmentInput)]
        start_ns = time.time_ns()
        with batch_span("assess.batch", trace, **{"claimcoder.batch.size": len(valid)}) as span:
            assessed = await self._assess_isolating(valid)
        link = Link(span.get_span_context())
        out: list[Assessment | Exception] = []
        assessed_iter = iter(assessed)
        for (accepted, _), item in zip(coded, inputs, strict=True):
            outcome: Assessment | Exception = (
                item if isinstance(item, Exception) else next(assessed_iter)
            )
            out.append(outcome)
            if isinstance(outcome, Assessment):
                at = start_ns
                for key, name in _ASSESS_STAGES:
                    took = int(outcome.timings_ms.get(key, 0.0) * 1e6)
                    trace.stage_span(accepted.record, name, at, at + took, links=[link])
                    at += took
        return out

    async def _assess_isolating(
        self, inputs: Sequence[AssessmentInput]
    ) -> list[Assessment | Exception]:
        """The whole batch at once; if that fails for a reason other than a server being down,
        claim by claim, so one odd claim cannot hold back the others."""
        try:
            return list(await self.assessor.assess_batch(inputs))
        except Exception as exc:
            if is_transient(exc) or len(inputs) == 1:
                if is_transient(exc):
                    raise
                return [exc]
            log.error(
                "assessing a batch of %d failed; isolating claims: %s", len(inputs), describe(exc)
            )
        out: list[Assessment | Exception] = []
        for item in inputs:
            try:
                out.extend(await self.assessor.assess_batch([item]))
            except Exception as exc:
                if is_transient(exc):
                    raise
                out.append(exc)
        return out

    async def _store(
        self,
        fresh: Sequence[ClaimCoded],
        batch: Sequence[Accepted],
        events: Sequence[ClaimCoded | None],
        trace: BatchTrace,
    ) -> list[dict[str, Any]]:
        with batch_span("store.batch", trace, **{"claimcoder.batch.size": len(fresh)}) as span:
            clock = StageClock("store")
            stored = await self.store.upsert(fresh)
            clock.stop()
        link = Link(span.get_span_context())
        for accepted, event in zip(batch, events, strict=True):
            if event is not None:
                trace.stage_span(
                    accepted.record, "store", clock.start_ns, clock.end_ns, links=[link]
                )
        return stored

    # --- outputs ------------------------------------------------------------------------

    def _model(self, result: CoderResult) -> ModelInfo:
        info = self.coder.info
        if result.adapter and result.adapter != info.adapter:
            return info.model_copy(update={"adapter": result.adapter})
        return info

    def _event(
        self,
        accepted: Accepted,
        result: CoderResult,
        assessment: Assessment | None,
        inference_ms: float,
    ) -> ClaimCoded:
        claim = accepted.claim
        timings = {"inference": round(inference_ms, 3)}
        fields: dict[str, Any]
        if assessment is None:  # the coder failed every attempt: a claim for a person to code
            period = self.assessor.registry.period_for(claim.discharge_date)
            fields = {
                "fiscal_year": period.fiscal_year if period else None,
                "msdrg_version": period.msdrg_version if period else None,
                "status": "needs_review",
                "review_reasons": ["coder_error"],
                "codes": [],
                "rejected_codes": [],
                "drg": None,
                "estimate": None,
                "codeset_release": None,
            }
        else:
            fields = assessment.coded_fields()
            timings.update({k: round(v, 3) for k, v in assessment.timings_ms.items()})
        return ClaimCoded.model_validate(
            {
                **fields,
                "event_id": accepted.event_id,
                "claim_id": claim.claim_id,
                "model": self._model(result).model_dump(mode="json"),
                "discharge_date": claim.discharge_date,
                "timings_ms": timings,
                "coded_at": dt.datetime.now(dt.UTC),
            }
        )

    def _dead_letter(
        self, accepted: Accepted, stage: str, exc: Exception, trace: BatchTrace
    ) -> Outgoing:
        # The type only: an exception's message can quote the data it choked on.
        kind = "internal_error"
        letter = dead_letter(
            accepted.record,
            stage=stage,
            kind=kind,
            message=f"{type(exc).__name__} while processing the claim",
        )
        log.error(
            "dead-lettered claim at offset %d: %s in %s",
            accepted.record.offset,
            type(exc).__name__,
            stage,
        )
        trace.fail(accepted.record, f"{stage}: {type(exc).__name__}")
        return Outgoing(
            "dlq",
            accepted.record.key,
            letter.model_dump_json().encode("utf-8"),
            source=accepted.record,
            label=kind,
        )
