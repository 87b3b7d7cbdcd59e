"""The worker end to end with the in-process vLLM engine (CPU build) and a tiny random model.

Whatever a random model writes, every code in ``codes`` is billable and everything else it wrote
is in ``rejected_codes``: the validator, not the model, decides what reaches the estimator.
"""

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.pipeline_support import check_event, claim_events, publish_claims
from tests.support import fetch, running_worker
from tests.tinymodel import build_tiny_model
from worker.prepare import prepare_reference_data
from worker.settings import Settings


@pytest.mark.vllm
def test_vllm_worker_emits_only_billable_codes_from_a_random_model(
    settings: Settings, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    prepare_reference_data(settings)
    model = build_tiny_model(tmp_path_factory.getbasetemp() / "tinymodel")
    engine_env = {
        "CLAIMCODER_CODER_KIND": "vllm",
        "CLAIMCODER_VLLM_MODEL": str(model.path),
        "CLAIMCODER_VLLM_MODEL_NAME": "tiny-qwen2",
        "CLAIMCODER_VLLM_ENFORCE_EAGER": "true",
        "CLAIMCODER_VLLM_KV_CACHE_MEMORY_BYTES": str(256 * 2**20),
        "CLAIMCODER_VLLM_MAX_MODEL_LEN": "2048",
        "CLAIMCODER_VLLM_TEMPERATURE": "1.0",  # a random model sampling freely: varied output
        "VLLM_CACHE_ROOT": str(tmp_path / "vllm-cache"),
    }
    events = claim_events(40, "vllm", seed=3)
    with running_worker(settings, tmp_path / "worker.log", extra_env=engine_env) as worker:
        publish_claims(settings, events)
        records = fetch(settings, settings.topics.coded, 40, seconds=300, settle=2.0, worker=worker)

    assert Counter(r.key.decode() for r in records) == Counter(e["claim_id"] for e in events)
    coded = [check_event(r.value) for r in records]  # schema-valid, every code billable
    assert {e.model.engine for e in coded} == {"vllm"}
    assert {e.model.model for e in coded} == {"tiny-qwen2"}
    # The random model wrote codes; the invalid ones are rejected, never emitted.
    assert sum(len(e.codes) + len(e.rejected_codes) for e in coded) > 0
    for event in coded:
        emitted = {c.code.replace(".", "") for c in event.codes}
        assert not emitted & {
            r.raw.replace(".", "").upper()
            for r in event.rejected_codes
            if r.reason in ("invalid", "not_billable")
        }
        if not event.codes:
            assert event.status == "needs_review"
            assert event.estimate is None
        assert json.loads(records[0].value)["schema_version"] == 1
