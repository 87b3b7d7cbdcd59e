"""The deployment files (docker/compose.yaml, docker/Dockerfile, docker/Dockerfile.gpu) agree with
the code: services, settings names, ports, commands, users and health checks. No Docker engine
runs here, so the files are parsed (PyYAML) and cross-checked, and the containers' commands run
outside Docker: the init job against a fresh schema, then the worker, then the image's health
check (real PostgreSQL, Redis and Kafka from the session stack; no mocks).

Cost: the file checks ~5 s (CliRunner imports the CLI); the init-worker-health run 60-90 s on
this shared 2-core machine (the code-set load of two releases ~30 s, the worker's start ~20 s,
two health checks ~5-10 s each).
"""

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from drg.codeset.cache import CodesetKeys
from drg.codeset.store import all_releases
from drg.registry import ReleaseRegistry
from migrations.runner import current_revision, head_revision
from tests.support import WorkerProcess
from worker.cli import app
from worker.health import check_heartbeat
from worker.heartbeat import beat, heartbeat_path, read_heartbeat, write_heartbeat
from worker.resources import sync_engine
from worker.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERFILES = {"cpu": ROOT / "docker" / "Dockerfile", "gpu": ROOT / "docker" / "Dockerfile.gpu"}
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = compose["services"]
    assert isinstance(services, dict)
    return services


def _interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with an empty environment: the defaults."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...]
        env = dict(item.split("=", 1) for item in env)
    return {str(k): _interpolate(str(v)) for k, v in env.items()}


def setting_variables() -> set[str]:
    """Every variable the settings model reads, from the model itself: its prefix, its nested
    delimiter and one level of components (``env_nested_max_split``)."""
    config = Settings.model_config
    prefix = str(config.get("env_prefix") or "")
    delimiter = str(config.get("env_nested_delimiter") or "")
    assert config.get("env_nested_max_split") == 1, "the walk below knows one level of nesting"
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        component = field.annotation
        if isinstance(component, type) and issubclass(component, BaseModel):
            names.update(
                f"{prefix}{name}{delimiter}{inner}".upper() for inner in component.model_fields
            )
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def _final_stage(dockerfile: Path) -> list[str]:
    """Instructions of the last stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    last_from = max(i for i, line in enumerate(instructions) if line.upper().startswith("FROM "))
    return instructions[last_from:]


def _exec_form(instruction: str, keyword: str) -> list[str]:
    """``KEYWORD [..."a", "b"]`` -> ["a", "b"] (the JSON array at the end)."""
    assert instruction.upper().startswith(keyword), instruction
    array = json.loads(instruction[instruction.index("[") :])
    assert isinstance(array, list)
    return [str(a) for a in array]


def _subcommand_exists(args: list[str]) -> None:
    """``claimcoder ARGS --help`` succeeds: the subcommand and every option in ARGS exist (click
    rejects an unknown option before it prints the help)."""
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, f"claimcoder {' '.join(args)}: {result.output}"


# --- compose -------------------------------------------------------------------------------


def test_the_stack_has_its_services(compose: dict[str, Any]) -> None:
    services = _services(compose)
    assert {"kafka", "redis", "postgres", "jaeger", "init", "worker"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["jaeger"]["image"].startswith("jaegertracing/")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_every_claimcoder_variable_is_a_setting(
    compose: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = setting_variables()
    assert "CLAIMCODER_DATABASE_URL" in known
    assert "CLAIMCODER_VLLM_MODEL" in known
    texts = [COMPOSE.read_text(), *(path.read_text() for path in DOCKERFILES.values())]
    used = {name for text in texts for name in re.findall(r"\bCLAIMCODER_[A-Z0-9_]+", text)}
    assert used - known == set()
    # and each service's values validate as the settings would read them (defaults interpolated)
    for name, service in _services(compose).items():
        env = {k: v for k, v in _environment(service).items() if k.startswith("CLAIMCODER_")}
        if not env:
            continue
        with monkeypatch.context() as patch:
            for variable in [v for v in os.environ if v.startswith("CLAIMCODER_")]:
                patch.delenv(variable)
            for variable, value in {"CLAIMCODER_STATE_DIR": str(tmp_path), **env}.items():
                patch.setenv(variable, value)
            settings = Settings()
        assert settings.to_env().items() >= env.items(), name


def test_the_worker_traces_to_jaegers_otlp_port(compose: dict[str, Any]) -> None:
    services = _services(compose)
    # inside its container, so that the other services reach it (published on loopback only)
    assert _environment(services["jaeger"])["JAEGER_LISTEN_HOST"] == "0.0.0.0"  # noqa: S104
    jaeger_ports = {str(p) for p in services["jaeger"].get("expose", [])} | {
        str(p).rsplit(":", 1)[-1] for p in services["jaeger"].get("ports", [])
    }
    for name in ("worker", "worker-gpu"):
        env = _environment(services[name])
        endpoint = (
            env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env["OTEL_EXPORTER_OTLP_ENDPOINT"]
        )
        protocol = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        url = urlsplit(endpoint)
        assert url.hostname == "jaeger", name
        assert url.port == (4317 if protocol == "grpc" else 4318), (name, protocol)
        assert str(url.port) in jaeger_ports


def test_published_ports_bind_loopback_only(compose: dict[str, Any]) -> None:
    published = 0
    for name, service in _services(compose).items():
        for port in service.get("ports", []):
            published += 1
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", (name, port)
            else:
                assert str(port).startswith("127.0.0.1:"), (name, port)
    assert published >= 4


def test_kafka_advertises_the_host_port_it_publishes(compose: dict[str, Any]) -> None:
    """A host client is sent to the advertised HOST listener: it must be the published port,
    whatever KAFKA_HOST_PORT moves it to (raw text, before interpolation)."""
    kafka = _services(compose)["kafka"]
    published = [str(p) for p in kafka["ports"] if str(p).endswith(":29092")]
    assert len(published) == 1
    # "127.0.0.1:${KAFKA_HOST_PORT:-29092}:29092" -> "${KAFKA_HOST_PORT:-29092}"
    host_port = published[0].removeprefix("127.0.0.1:").removesuffix(":29092")
    advertised = str(kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"])
    assert f"HOST://127.0.0.1:{host_port}" in advertised.split(","), advertised


def test_a_health_check_that_checks_nothing_is_refused(tmp_path: Path) -> None:
    """A probe with every check turned off would always pass: a usage error instead."""
    result = CliRunner().invoke(
        app,
        ["health", "--no-worker", "--no-dependencies"],
        env={"CLAIMCODER_STATE_DIR": str(tmp_path)},
    )
    assert result.exit_code == 2
    assert "--worker or --dependencies" in result.output


def test_startup_order_health_checks_and_volumes(compose: dict[str, Any]) -> None:
    services = _services(compose)
    for name in ("kafka", "postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("worker", "worker-gpu"):
        depends = services[name]["depends_on"]
        assert depends["init"]["condition"] == "service_completed_successfully"
        for server in ("kafka", "postgres", "redis"):
            assert depends[server]["condition"] == "service_healthy", (name, server)
    for server in ("kafka", "postgres", "redis"):
        assert services["init"]["depends_on"][server]["condition"] == "service_healthy"
    # named volumes hold every server's data: Kafka's log dirs, PostgreSQL's data, Redis's AOF
    named = set(compose["volumes"])

    def mounted(service: str) -> dict[str, str]:
        pairs = (str(v).split(":")[:2] for v in services[service]["volumes"])
        return {target: source for source, target in pairs}

    kafka_dir = services["kafka"]["environment"]["KAFKA_LOG_DIRS"]
    assert mounted("kafka")[kafka_dir] in named
    assert mounted("postgres")["/var/lib/postgresql/data"] in named
    assert mounted("redis")["/data"] in named
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"


def test_the_gpu_reservation_is_in_the_gpu_profile(compose: dict[str, Any]) -> None:
    services = _services(compose)
    cpu, gpu = services["worker"], services["worker-gpu"]
    assert "profiles" not in cpu
    assert "resources" not in cpu.get("deploy", {})
    assert gpu["profiles"] == ["gpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert gpu["build"]["dockerfile"] == "docker/Dockerfile.gpu"
    assert _environment(gpu)["CLAIMCODER_CODER_KIND"] == "vllm"
    assert _environment(cpu)["CLAIMCODER_CODER_KIND"] == "retrieval"


def test_the_containers_run_real_claimcoder_subcommands(compose: dict[str, Any]) -> None:
    services = _services(compose)
    for name in ("init", "worker", "worker-gpu"):
        _subcommand_exists(list(services[name]["command"]))
    for dockerfile in DOCKERFILES.values():
        stage = _final_stage(dockerfile)
        (entrypoint,) = [i for i in stage if i.upper().startswith("ENTRYPOINT")]
        assert _exec_form(entrypoint, "ENTRYPOINT") == ["claimcoder"]
        (cmd,) = [i for i in stage if i.upper().startswith("CMD")]
        _subcommand_exists(_exec_form(cmd, "CMD"))
        (check,) = [i for i in stage if i.upper().startswith("HEALTHCHECK")]
        probe = _exec_form(check[check.index("CMD") :], "CMD")
        assert probe[0] == "claimcoder"
        _subcommand_exists(probe[1:])


# --- Dockerfiles ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_the_image_runs_as_a_user_and_checks_its_health(kind: str) -> None:
    stage = _final_stage(DOCKERFILES[kind])
    users = [i.split()[1] for i in stage if i.upper().startswith("USER ")]
    assert users, "the final stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert any(i.upper().startswith("HEALTHCHECK ") for i in stage)


def test_the_images_install_what_pyproject_declares() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    for extra, dockerfile in (("cpu-llm", DOCKERFILES["cpu"]), ("gpu", DOCKERFILES["gpu"])):
        text = dockerfile.read_text()
        for requirement in extras[extra]:
            assert f"'{requirement}'" in text, (dockerfile.name, requirement)
        copied = set(re.findall(r"^COPY (\w+) \1$", text, re.MULTILINE))
        assert copied == set(packages), dockerfile.name


def test_a_stale_or_unreadable_heartbeat_fails_the_worker_check(tmp_path: Path) -> None:
    beat = tmp_path / "worker.heartbeat"
    assert not check_heartbeat(beat, 60).ok  # none yet: starting, or not running
    write_heartbeat(beat)
    assert check_heartbeat(beat, 60).ok
    late = check_heartbeat(beat, 60, now=time.time() + 61)
    assert not late.ok
    assert "old" in late.detail
    beat.write_text("{")
    assert check_heartbeat(beat, 60).detail == "unreadable heartbeat: JSONDecodeError"


def test_prepare_names_the_server_it_cannot_reach_and_no_secret(tmp_path: Path) -> None:
    """An init job against a PostgreSQL that refuses: one line naming the server and the error
    type, exit code 2, the password in the URL never printed."""
    env = {
        "CLAIMCODER_STATE_DIR": str(tmp_path),
        "CLAIMCODER_DATABASE_URL": "postgresql://claimcoder:s3cret-pw@127.0.0.1:1/claimcoder",
    }
    result = CliRunner().invoke(app, ["prepare"], env=env)
    assert result.exit_code == 2
    assert "error: PostgreSQL: OperationalError" in result.output
    assert "s3cret-pw" not in result.output


# --- the containers' commands, outside Docker ------------------------------------------------


def _claimcoder(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_init_then_worker_then_health_check(
    compose: dict[str, Any], settings: Settings, tmp_path: Path
) -> None:
    """The init job's command on an empty schema (its own key prefix and topics), then the
    worker's command, then the image's HEALTHCHECK command, as the containers would run them."""
    services = _services(compose)
    topics = settings.topics.model_copy(
        update={
            name: f"{getattr(settings.topics, name)}.deploy" for name in ("raw", "coded", "dlq")
        }
    )
    settings = settings.model_copy(update={"topics": topics})
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMCODER_")}
    env.update(settings.to_env())
    env["OTEL_SDK_DISABLED"] = "true"

    init = _claimcoder(env, *services["init"]["command"])
    assert init.returncode == 0, init.stderr
    schema = settings.database.schema_name
    engine = sync_engine(settings.database)
    try:
        assert current_revision(engine, schema) == head_revision()
        with engine.connect() as connection:
            stored = {info.release: info.code_count for info in all_releases(connection)}
    finally:
        engine.dispose()
    releases = set(ReleaseRegistry.load().codeset_releases)
    assert releases <= set(stored)
    assert all(stored[r] > 90_000 for r in releases)
    client = redis.Redis.from_url(settings.redis.url.get_secret_value(), decode_responses=True)
    try:
        pointer = client.hgetall(CodesetKeys(settings.redis.key_prefix).pointer)
    finally:
        client.close()
    assert set(pointer) == releases
    for topic in (topics.raw, topics.coded, topics.dlq):
        assert f"{topic}: created" in init.stderr

    (check,) = [i for i in _final_stage(DOCKERFILES["cpu"]) if i.startswith("HEALTHCHECK")]
    probe = _exec_form(check[check.index("CMD") :], "CMD")[1:]
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start(*services["worker"]["command"][1:])
    try:
        beat = heartbeat_path(settings)
        deadline = time.monotonic() + 120
        while not beat.exists() and worker.alive and time.monotonic() < deadline:
            time.sleep(0.5)
        assert beat.exists(), worker.log()
        healthy = _claimcoder(env, *probe, "--json")
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        report = json.loads(healthy.stdout)
        assert [c["name"] for c in report["checks"] if c["ok"]] == [
            "worker",
            "postgres",
            "redis",
            "kafka",
        ]
    finally:
        assert worker.stop(signal.SIGTERM) == 0, worker.log()
    # the worker gone and Kafka unreachable: one clear line each, exit code 1, no secret
    env["CLAIMCODER_KAFKA_BOOTSTRAP_SERVERS"] = "127.0.0.1:1"
    failed = _claimcoder(env, *probe, "--timeout", "1")
    assert failed.returncode == 1, failed.stderr
    assert re.search(r"^worker: FAILED process \d+ is gone$", failed.stderr, re.MULTILINE)
    assert re.search(r"^postgres: ok revision \w+$", failed.stderr, re.MULTILINE)
    assert re.search(r"^kafka: FAILED unreachable: \w+$", failed.stderr, re.MULTILINE)
    assert "ECONNREFUSED" not in failed.stderr  # kafka-python's own error logs are silenced
    password = urlsplit(settings.database.url.get_secret_value()).password
    assert not password or password not in healthy.stdout + failed.stderr


def test_overlapping_heartbeats_never_fail_and_leave_one_file(tmp_path: Path) -> None:
    """The worker's first beat and its timer's can overlap: each writes its own temporary file
    (a shared name once crashed a worker: one rename took the other's file away)."""
    path = tmp_path / "state" / "worker.heartbeat"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: write_heartbeat(path), range(200)))
    assert [p.name for p in path.parent.iterdir()] == ["worker.heartbeat"]
    assert read_heartbeat(path)[0] == os.getpid()


async def test_a_heartbeat_that_cannot_be_written_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING):
        await beat(blocker / "worker.heartbeat")  # its parent is a file: OSError
    assert "could not write the heartbeat file" in caplog.text
