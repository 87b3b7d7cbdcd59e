"""The one retry and isolation policy of the pipeline.

The rule (README, "Statuses and delivery"):

- **A server is down** (an error whose ``recoverable`` is True: Redis, PostgreSQL, a lost coder
  engine): the stage waits with a growing pause (``server_backoff_s``) and runs again for the
  same claims, until the server is back. Nothing is acknowledged meanwhile, so the partition
  waits instead of losing claims; at shutdown the wait ends and the batch stays unacknowledged
  for redelivery.
- **A claim fails on its own**:
  - its coder could not code it (a :class:`CoderError` for that claim): retried
    ``claim_retries`` times with a growing pause (``claim_backoff_s``), then the claim is
    ``needs_review`` with reason ``coder_error``: a claim for a person, not bad input;
  - anything else (a bug, odd data): the claim goes to the dead-letter topic with the stage and
    ``internal_error``.
- **A batch fails** (a stage raises for the whole batch, for no recoverable reason): the stage
  runs again, ``stage_attempts`` times in all, then claim by claim; a claim that fails alone is
  dead-lettered. One odd claim never stalls its partition.

Whether an error is recoverable is read from ``exc.recoverable`` alone: foreign errors are
wrapped where they occur (``drg.exceptions.wrap_database_error``, ``drg.codeset.validate``,
``worker.store``).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

from worker.errors import describe, is_recoverable
from worker.telemetry import BatchTrace
from worker.work import WorkItem

log = logging.getLogger(__name__)

#: Pauses while a server is down, then steady at the last value.
SERVER_BACKOFF_S: Final = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    server_backoff_s: tuple[float, ...] = SERVER_BACKOFF_S
    stage_attempts: int = 3  # a failing batch, before it is split into single claims
    claim_retries: int = 2  # a claim its coder failed, before needs_review
    claim_backoff_s: float = 0.5  # doubled at each claim retry

    def server_pause(self, attempt: int) -> float:
        return self.server_backoff_s[min(attempt, len(self.server_backoff_s) - 1)]


class Stage(Protocol):
    """A step of the pipeline over a batch of work items (``worker/stages.py``)."""

    name: str

    def wants(self, item: WorkItem) -> bool:
        """Whether ``item`` goes through this stage (it failed earlier, or needs nothing)."""
        ...

    async def run(self, items: Sequence[WorkItem]) -> None:
        """Fill each item with its result, or record on it its own failure. Raises for the
        whole batch only: recoverable errors (a server is down) or a bug."""
        ...


async def wait_for_servers(
    what: str, attempt: int, exc: BaseException, policy: RetryPolicy, stopping: Callable[[], bool]
) -> None:
    """The pause after a recoverable failure; at shutdown, CancelledError instead (the batch
    stays unacknowledged and is redelivered: worker/app.py ends the worker at once rather than
    let faust acknowledge it)."""
    if stopping():
        raise asyncio.CancelledError from exc
    pause = policy.server_pause(attempt)
    log.warning("%s waits %.1f s for a server: %s", what, pause, type(exc).__name__)
    await asyncio.sleep(pause)


async def run_stage(
    stage: Stage,
    items: Sequence[WorkItem],
    trace: BatchTrace,
    policy: RetryPolicy,
    stopping: Callable[[], bool] = lambda: False,
) -> None:
    """Run ``stage`` over the items that want it, under the policy above."""
    todo = [i for i in items if stage.wants(i)]
    if todo:
        await _isolating(stage, todo, trace, policy, stopping)


async def _isolating(
    stage: Stage,
    items: Sequence[WorkItem],
    trace: BatchTrace,
    policy: RetryPolicy,
    stopping: Callable[[], bool],
) -> None:
    waited = failed = 0
    error: Exception | None = None
    while error is None:
        try:
            with trace.stage(stage.name, items):
                await stage.run(items)
            return
        except Exception as exc:
            if is_recoverable(exc):
                await wait_for_servers(
                    f"{stage.name} of {len(items)}", waited, exc, policy, stopping
                )
                waited += 1
                continue
            failed += 1
            log.error(
                "%s failed for %d claim(s) (attempt %d of %d): %s",
                stage.name,
                len(items),
                failed,
                policy.stage_attempts,
                describe(exc),
            )
            if failed >= policy.stage_attempts:
                error = exc
    if len(items) == 1:
        (item,) = items
        item.fail(stage.name, error, "dead_letter")
        trace.fail(item.record, f"{stage.name}: {type(error).__name__}")
        log.error("claim dead-lettered at stage %s: %s", stage.name, type(error).__name__)
        return
    for item in items:
        await _isolating(stage, [item], trace, policy, stopping)


T = TypeVar("T")
R = TypeVar("R")


async def retry_claims(
    attempt: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
    claims: Sequence[T],
    failed: Callable[[R], bool],
    policy: RetryPolicy,
) -> list[R]:
    """``attempt`` on ``claims``, then again on those whose result ``failed``, ``claim_retries``
    times with a pause of ``claim_backoff_s`` doubled each time: one result per claim, in
    order, the last one for a claim that failed every attempt. ``attempt`` returns one result
    per claim it is given."""
    results: list[R | None] = [None] * len(claims)
    pending = list(range(len(claims)))
    for round_ in range(policy.claim_retries + 1):
        if round_:
            log.warning("retrying %d claim(s) that failed", len(pending))
            await asyncio.sleep(policy.claim_backoff_s * 2 ** (round_ - 1))
        outcome = await attempt([claims[i] for i in pending])
        if len(outcome) != len(pending):
            raise RuntimeError("an attempt returned a wrong number of results")
        still = []
        for index, result in zip(pending, outcome, strict=True):
            results[index] = result
            if failed(result):
                still.append(index)
        pending = still
        if not pending:
            break
    return [r for r in results if r is not None]
