"""`python -m tests.broken_stage_worker worker ...`: the claimcoder command with a bug in one
stage, for tests/test_dlq_replay.py.

Test-only boundary: the stage list of ``worker.pipeline`` (``pipeline_stages``) is wrapped so
that ``drg.group`` raises RuntimeError for any batch holding a claim whose claim_id starts with
``BROKEN_PREFIX``; everything else is the real worker. The retry policy then isolates such a
claim and dead-letters it (``internal_error``, stage ``drg.group``). "Fixing" the bug is
running the ordinary ``python -m worker worker``.
"""

from collections.abc import Sequence
from typing import Any, Final

from worker import pipeline
from worker.retry import Stage
from worker.stages import pipeline_stages
from worker.work import WorkItem

BROKEN_PREFIX: Final = "broken-"
BROKEN_STAGE: Final = "drg.group"


class BrokenStage:
    """The real stage, but it raises for a batch with a claim of ``BROKEN_PREFIX``."""

    def __init__(self, stage: Stage) -> None:
        self._stage = stage
        self.name = stage.name

    def wants(self, item: WorkItem) -> bool:
        return self._stage.wants(item)

    async def run(self, items: Sequence[WorkItem]) -> None:
        if any(i.claim_id.startswith(BROKEN_PREFIX) for i in items):
            raise RuntimeError("a bug in this stage (tests/broken_stage_worker.py)")
        await self._stage.run(items)


def broken_stages(*args: Any, **kwargs: Any) -> tuple[Stage, ...]:
    return tuple(
        BrokenStage(stage) if stage.name == BROKEN_STAGE else stage
        for stage in pipeline_stages(*args, **kwargs)
    )


if __name__ == "__main__":
    pipeline.pipeline_stages = broken_stages  # type: ignore[attr-defined]  # the boundary above
    from worker.cli import main

    main()
