"""`claimcoder publish` and `claimcoder tail` against the real broker."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support import fetch
from worker.cli import app
from worker.settings import Settings


def _claim(claim_id: str) -> dict[str, object]:
    return {
        "schema_version": 1,
        "claim_id": claim_id,
        "narrative": "I was cycling and a car ran over my leg. My tibia is fractured.",
        "patient": {"age": 34, "sex": "F"},
        "discharge_date": "2026-01-15",
    }


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    return CliRunner()


def test_publish_reports_bad_lines_by_number_and_publishes_only_good_ones(
    settings: Settings, cli_env: CliRunner, tmp_path: Path
) -> None:
    missing_age = _claim("c-3")
    del missing_age["patient"]["age"]  # type: ignore[attr-defined]  # a dict literal above
    lines = [
        json.dumps(_claim("c-1")),
        "{not json",
        json.dumps(missing_age),
        "",
        json.dumps(_claim("c-5")),
    ]
    file = tmp_path / "claims.jsonl"
    file.write_text("\n".join(lines) + "\n")

    result = cli_env.invoke(app, ["publish", str(file)])

    assert result.exit_code == 1
    assert "line 2: bad_json" in result.output
    assert "line 3: invalid_event: patient.age" in result.output
    assert "2 published" in result.output
    records = fetch(settings, settings.topics.raw, 2, settle=1.0)
    assert sorted((r.key, json.loads(r.value)["claim_id"]) for r in records) == [
        (b"c-1", "c-1"),
        (b"c-5", "c-5"),
    ]


def test_publish_dry_run_publishes_nothing(
    settings: Settings, cli_env: CliRunner, tmp_path: Path
) -> None:
    file = tmp_path / "claims.jsonl"
    file.write_text(json.dumps(_claim("c-1")) + "\n")
    result = cli_env.invoke(app, ["publish", "--dry-run", str(file)])
    assert result.exit_code == 0, result.output
    assert "1 valid, 0 rejected" in result.output
    tail = cli_env.invoke(app, ["tail", "raw", "--idle-timeout", "2"])
    assert tail.exit_code == 1
    assert "no events" in tail.output


def test_tail_prints_the_events_as_json_lines(
    settings: Settings, cli_env: CliRunner, tmp_path: Path
) -> None:
    file = tmp_path / "claims.jsonl"
    file.write_text("".join(json.dumps(_claim(f"c-{i}")) + "\n" for i in range(3)))
    assert cli_env.invoke(app, ["publish", str(file)]).exit_code == 0

    result = cli_env.invoke(app, ["tail", "raw", "--max-events", "3", "--meta"])

    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(e["key"] for e in events) == ["c-0", "c-1", "c-2"]
    assert all(e["topic"] == settings.topics.raw for e in events)
    assert sorted(e["value"]["claim_id"] for e in events) == ["c-0", "c-1", "c-2"]
