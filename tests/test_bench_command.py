"""`claimcoder bench` end to end, small: the Faust pass-through and the fixed-coder pipeline on
the session's real servers (Tansu, PostgreSQL, Redis), three bursts of 50 claims each. It checks
that the command measures and reports, not how fast anything is (speed is the command's own
output).
About 40-60 s: two worker processes join their groups, and the benchmark's PostgreSQL schema is
migrated and loaded with the reference data.

No mocks."""

import json
import os
import subprocess
import sys
from pathlib import Path

from worker.localstack import ENV_VARS, Service, ServiceName

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_bench_reports_rates_latencies_memory_and_draws_the_latencies(
    stack: dict[ServiceName, Service], tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMCODER_")}
    env.update({ENV_VARS[name]: service.url for name, service in stack.items()})
    env["CLAIMCODER_STATE_DIR"] = str(tmp_path / "state")
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "worker", "bench", "--claims", "50", "--json", str(out)]
    command += ["--only", "pipeline_null", "--only", "faust", "--work-dir", str(tmp_path / "w")]
    done = subprocess.run(command, env=env, capture_output=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]

    report = json.loads(out.read_text())
    assert report == json.loads(done.stdout)  # printed as written
    assert report["runs"] == ["pipeline_null", "faust"]
    for key in (
        "pipeline_null_cps",
        "faust_cps",
        "pipeline_null_rss_mb",
        "faust_rss_mb",
        "pipeline_null_cpu_us_per_claim",
        "faust_cpu_us_per_claim",
        "null_p99_ms_at_half_load",
        "faust_p99_ms_at_half_load",
        "half_load_cps",
        "ratio_null_vs_faust",
    ):
        assert report[key] > 0, key
    assert report["bursts"] == 3
    for run in ("pipeline_null", "faust"):
        assert report[f"{run}_claims"] == 50
        # three bursts after the warm-up; the run's rate is the median burst's
        bursts = report[f"{run}_burst_cps"]
        assert len(bursts) == 3
        assert all(rate > 0 for rate in bursts)
        assert report[f"{run}_cps"] == sorted(bursts)[1]
        latency = report[f"{run}_latency_ms"]
        assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    # the fixed coder's codes went through every stage: grouped and priced
    assert report["pipeline_null_statuses"] == {"estimated": 50}
    assert report["faust_statuses"] == {"copied": 50}
    assert "pipeline_retrieval_cps" not in report  # not asked for
    png = Path(report["png"])
    assert png == out.with_suffix(".png")
    assert png.read_bytes().startswith(PNG_MAGIC)
