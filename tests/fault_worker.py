"""`python -m tests.fault_worker`: `claimcoder worker` with a scripted coder, for
tests/test_faults.py.

The coder is the boundary replaced here (the real ones take ~20 s to start on this machine,
which the fault tests' budget cannot pay for every worker they start). Everything else is the
worker as deployed: settings from ``CLAIMCODER_*``, Faust on the real broker, Redis and
PostgreSQL, the stages and the retry policy.

:class:`ScriptedCoder` reads the codes to propose from the narrative: a narrative
``"codes: I50.21 J96.01"`` gives ``("I50.21", "J96.01")``. A claim whose id contains
``FAIL_MARK`` fails every attempt (``CoderError``), one that contains ``FLAKY_MARK`` fails its
first attempt in this process only.
"""

from collections import Counter
from collections.abc import Sequence

from drg.codeset.catalog import CodesetCatalog
from schemas.coded import ModelInfo
from worker.cli import configure_logging
from worker.coders.base import Coder, CoderResult, CodingRequest
from worker.coders.exceptions import CoderError
from worker.runner import run_worker
from worker.settings import Settings

FAIL_MARK = "-coderfail-"
FLAKY_MARK = "-flaky-"
CODES_PREFIX = "codes:"


class ScriptedCoder(Coder):
    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(engine="manual", model="scripted")

    async def code_batch(self, requests: Sequence[CodingRequest]) -> list[CoderResult]:
        results = []
        for request in requests:
            self.attempts[request.claim_id] += 1
            failing = FAIL_MARK in request.claim_id or (
                FLAKY_MARK in request.claim_id and self.attempts[request.claim_id] == 1
            )
            if failing:
                error = CoderError("engine_error", "scripted failure")
                results.append(CoderResult(request.claim_id, error=error))
                continue
            codes = tuple(request.narrative.removeprefix(CODES_PREFIX).split())
            results.append(CoderResult(request.claim_id, codes=codes))
        return results


def scripted(_catalog: CodesetCatalog) -> Coder:
    return ScriptedCoder()


def main() -> None:
    configure_logging()  # as `claimcoder` does
    run_worker(Settings(), coder=scripted)


if __name__ == "__main__":
    main()
