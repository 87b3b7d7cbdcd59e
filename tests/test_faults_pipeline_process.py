"""Faults of the worker's pipeline process (worker/pipeline_process.py): no claim is lost when
the child dies, hangs or is stopped while it waits, with the private servers, scripted coder and
helpers of tests/fault_support.py.

Run time: ~120 s on 2 busy cores (a hung pipeline process 20 s; the private servers ~20 s).
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.fault_support import (
    PrivateServers,
    Reader,
    Trickle,
    assert_none_lost_and_duplicates_identical,
    every_claim_out,
    pipeline_child,
    stop_all,
    worker,
)
from tests.support import WorkerProcess, wait_for
from worker import localstack
from worker.app import EXIT_BATCH_FAILED
from worker.heartbeat import HEARTBEAT_INTERVAL_S, heartbeat_path
from worker.settings import Settings


def test_pipeline_process_killed_crashes_the_worker_and_nothing_is_lost(
    fault_settings: Settings, tmp_path: Path
) -> None:
    """The pipeline runs in a child of the worker (worker/pipeline_process.py). Claims keep
    arriving (~40/s) while:
    1. the child is SIGKILLed (a bug, the OOM killer): the worker does not go on without it,
       silently stalled; it says so and exits at once with status 70, committing nothing:
       the batches in flight then are taken again (faust acknowledges a batch whose loop body
       raised, and a graceful stop would commit it: 64 claims were lost that way);
    2. a worker is started again; then the worker itself is SIGKILLed: its pipeline child
       reads the end of their socket and exits too (no orphan holds a coder or connections);
    3. a third worker takes everything: every claim is out, none dead-lettered, a repeated
       output is the first byte for byte."""
    reader = Reader(fault_settings)
    workers: list[WorkerProcess] = []
    try:
        with Trickle(fault_settings, "child", per_second=40) as trickle:
            first = worker(fault_settings, tmp_path / "a.log")
            workers.append(first)
            reader.until(40, 90, [first], "outputs before the kill")
            pipeline_child(first).kill()
            assert first.proc is not None
            code = first.proc.wait(60)
            assert code == EXIT_BATCH_FAILED, first.log()
            assert "pipeline process ended" in first.log(), first.log()[-4000:]

            second = worker(fault_settings, tmp_path / "b.log")
            workers.append(second)
            reader.until(len(reader.out.claim_ids) + 40, 90, [second], "outputs after restart")
            child = pipeline_child(second)
            second.stop(signal.SIGKILL)
            child.wait(30)  # raises psutil.TimeoutExpired if the child outlives its worker

            third = worker(fault_settings, tmp_path / "c.log")
            workers.append(third)
            reader.until(len(reader.out.claim_ids) + 20, 90, [third], "outputs from the third")
        out, claims = every_claim_out(reader, trickle, third)
    finally:
        stop_all(*workers)
        reader.close()
    assert_none_lost_and_duplicates_identical(out, claims)


def test_stopped_while_waiting_for_redis_nothing_is_lost(
    fault_settings: Settings, servers: PrivateServers, tmp_path: Path
) -> None:
    """Redis is stopped mid-stream, so batches wait for it; then the worker is told to stop
    (SIGTERM, a deployment). A batch that gives up waiting is not done: it must not be
    acknowledged, or faust's take_events would acknowledge it on the way out and the stop
    would commit it, losing its claims. The worker exits at once with status 70, committing
    nothing; a worker started once Redis is back puts every claim out, none dead-lettered."""
    reader = Reader(fault_settings)
    workers: list[WorkerProcess] = []
    try:
        with Trickle(fault_settings, "stopwait", per_second=30) as trickle:
            first = worker(fault_settings, tmp_path / "a.log")
            workers.append(first)
            reader.until(60, 90, [first], "outputs before the outage")
            mark = len(first.log())
            servers.stop("redis")
            try:
                wait_for(
                    lambda: "for a server: CodesetUnavailableError" in first.log()[mark:],
                    60,
                    "a batch waiting for Redis",
                )
                assert first.proc is not None
                first.proc.send_signal(signal.SIGTERM)
                code = first.proc.wait(60)
            finally:
                servers.start("redis")
            tail = first.log()[mark:]
            assert code == EXIT_BATCH_FAILED, tail[-4000:]
            assert "exiting at once" in tail, tail[-4000:]
            second = worker(fault_settings, tmp_path / "b.log")
            workers.append(second)
            reader.until(len(reader.out.claim_ids) + 50, 90, [second], "outputs after restart")
        out, claims = every_claim_out(reader, trickle, second)
    finally:
        stop_all(*workers)
        reader.close()
    assert_none_lost_and_duplicates_identical(out, claims)


def test_a_hung_pipeline_process_fails_the_health_check(
    fault_settings: Settings, tmp_path: Path
) -> None:
    """The heartbeat (`claimcoder health --worker`) is written only while the pipeline's
    process answers the worker within 5 s: a child that hangs (SIGSTOP here; a deadlock) stops
    it, the worker says so, and the health check fails; resumed, the heartbeat comes back."""
    # a state directory of its own: the module's other workers wrote heartbeats in theirs
    settings = fault_settings.model_copy(update={"state_dir": tmp_path / "state"})
    proc = worker(settings, tmp_path / "worker.log")
    heartbeat = heartbeat_path(settings)

    def age() -> float:
        return time.time() - heartbeat.stat().st_mtime if heartbeat.exists() else 1e9

    try:
        wait_for(lambda: age() < 5, 90, "the first heartbeat")
        child = pipeline_child(proc)
        child.suspend()
        try:
            time.sleep(2 * HEARTBEAT_INTERVAL_S)
            assert age() > 1.5 * HEARTBEAT_INTERVAL_S, "the heartbeat went on"
            assert "did not answer within" in proc.log()
            check = ("health", "--worker", "--no-dependencies", "--max-age", "15")
            health = subprocess.run(
                [sys.executable, "-m", "worker", *check],
                env=proc.env,
                capture_output=True,
                timeout=60,
            )
            assert health.returncode == 1, health.stdout
        finally:
            child.resume()
        wait_for(lambda: age() < HEARTBEAT_INTERVAL_S, 60, "a heartbeat once resumed")
        assert proc.alive, proc.log()[-4000:]
    finally:
        stop_all(proc)


def test_stopped_while_starting_exits_cleanly(prepared: Settings, tmp_path: Path) -> None:
    """A worker stopped (SIGTERM) while its pipeline process still waits for PostgreSQL at
    start exits 0, at once, with no traceback and no process left behind."""
    closed = f"postgresql://postgres@127.0.0.1:{localstack._free_port()}/postgres"
    settings = prepared.model_copy(
        update={"database": prepared.database.model_copy(update={"url": closed})}
    )
    proc = worker(settings, tmp_path / "worker.log")
    assert proc.proc is not None
    try:
        wait_for(
            lambda: "start waits" in proc.log() and "Starting actor" in proc.log(),
            90,
            "faust running and the pipeline waiting for PostgreSQL",
        )
        child = pipeline_child(proc)
        started = time.monotonic()
        code = proc.stop(signal.SIGTERM)
        elapsed = time.monotonic() - started
    finally:
        stop_all(proc)
    assert code == 0, proc.log()[-4000:]
    assert elapsed < 20, f"{elapsed:.0f} s to stop"
    assert "Traceback" not in proc.log(), proc.log()[-4000:]
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
