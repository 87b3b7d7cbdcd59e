"""Settings come from CLAIMCODER_* variables, then the local stack's stack.env, then defaults."""

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from worker.cli import app
from worker.settings import Settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean environment: no CLAIMCODER_* variable of the caller's, an empty state dir."""
    import os

    for name in list(os.environ):
        if name.startswith("CLAIMCODER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CLAIMCODER_STATE_DIR", str(tmp_path))
    return monkeypatch


def test_nested_variables_reach_their_component(env: pytest.MonkeyPatch) -> None:
    env.setenv("CLAIMCODER_KAFKA_BOOTSTRAP_SERVERS", "k1:9092, k2:9093")
    env.setenv("CLAIMCODER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    env.setenv("CLAIMCODER_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    env.setenv("CLAIMCODER_KAFKA_SASL_PASSWORD", "hunter2")
    env.setenv("CLAIMCODER_TOPICS_RAW", "intake.claims")
    env.setenv("CLAIMCODER_BATCH_MAX_SIZE", "8")
    env.setenv("CLAIMCODER_BATCH_MAX_WAIT_S", "0.05")
    env.setenv("CLAIMCODER_CODER_KIND", "vllm")
    s = Settings()
    assert s.kafka.servers == ["k1:9092", "k2:9093"]
    assert (s.kafka.security_protocol, s.kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert s.kafka.sasl_password == SecretStr("hunter2")
    assert "hunter2" not in repr(s)
    assert (s.topics.raw, s.topics.coded, s.topics.dlq) == (
        "intake.claims",
        "claims.coded",
        "claims.dlq",
    )
    assert (s.batch.max_size, s.batch.max_wait_s, s.coder.kind) == (8, 0.05, "vllm")


def test_stack_env_is_weaker_than_the_environment(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "stack.env").write_text(
        "export CLAIMCODER_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1111\n"
        "export CLAIMCODER_REDIS_URL=redis://127.0.0.1:2222/0\n"
    )
    env.setenv("CLAIMCODER_REDIS_URL", "redis://from-env:6379/0")
    s = Settings()
    assert s.kafka.bootstrap_servers == "127.0.0.1:1111"
    assert s.redis.url.get_secret_value() == "redis://from-env:6379/0"


def test_to_env_reproduces_the_settings(env: pytest.MonkeyPatch) -> None:
    env.setenv("CLAIMCODER_DATABASE_SCHEMA_NAME", "claims_a")
    env.setenv("CLAIMCODER_KAFKA_SASL_PASSWORD", "s3cret")
    original = Settings()
    for name, value in original.to_env().items():
        env.setenv(name, value)
    assert Settings() == original


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLAIMCODER_KAFKA_BOOTSTRAP_SERVERS", "no-port"),
        ("CLAIMCODER_BATCH_MAX_SIZE", "0"),
        ("CLAIMCODER_CODER_KIND", "gpt"),
        ("CLAIMCODER_DATABASE_SCHEMA_NAME", "Robert'); DROP TABLE"),
    ],
)
def test_a_bad_value_is_refused(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_the_cli_names_a_bad_variable_and_never_echoes_its_value(env: pytest.MonkeyPatch) -> None:
    env.setenv("CLAIMCODER_KAFKA_BOOTSTRAP_SERVERS", "secret-host-without-port")
    result = CliRunner().invoke(app, ["publish", "--dry-run", __file__])
    assert result.exit_code == 2
    assert "kafka.bootstrap_servers" in result.output
    assert "secret-host-without-port" not in result.output
